//! The device flow through `serve`: the admin API makes the user take a few polls to answer, and
//! a polling device sees Google's `authorization_pending`, `slow_down` and then its tokens.

use crate::support::serve::{admin_get, admin_post, http, Serve, CLIENT_ID, CLIENT_SECRET};
use serde_json::{json, Value};

async fn poll(serve: &Serve, device_code: &str) -> (u16, Value) {
    let r = http()
        .post(serve.url("/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("poll");
    (r.status().as_u16(), r.json().await.expect("JSON"))
}

#[tokio::test]
async fn a_device_polls_through_pending_and_slow_down_to_its_tokens_as_the_admin_api_says() {
    let serve = Serve::start(&[]);
    let (status, consent) = admin_post(&serve, "consent", json!({"device_pending_polls": 1})).await;
    assert_eq!(status, 200, "{consent}");
    assert_eq!(
        admin_get(&serve, "consent").await.1["device_pending_polls"],
        1
    );

    let issued: Value = http()
        .post(serve.url("/device/code"))
        .form(&[("client_id", CLIENT_ID), ("scope", "openid email")])
        .send()
        .await
        .expect("device code")
        .json()
        .await
        .expect("JSON");
    let code = issued["device_code"].as_str().expect("device_code");
    assert_eq!(issued["interval"], 5);

    let (status, pending) = poll(&serve, code).await;
    assert_eq!(
        (status, &pending["error"]),
        (428, &json!("authorization_pending"))
    );
    let (status, slow) = poll(&serve, code).await;
    assert_eq!((status, &slow["error"]), (403, &json!("slow_down")));
    // The interval grew to 10 s: wait that long on the mock clock.
    admin_post(&serve, "clock", json!({"advance_seconds": 10})).await;
    let (status, tokens) = poll(&serve, code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["refresh_token"].is_string() && tokens["id_token"].is_string());

    let (status, refused) =
        admin_post(&serve, "consent", json!({"device_pending_polls": -1})).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("device_pending_polls")),
        "{refused}"
    );
    serve.stop("TERM").assert_code(0);
}
