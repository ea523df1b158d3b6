//! The device flow's polling answers: `authorization_pending` while the user has not answered,
//! `slow_down` when polled sooner than the interval, `access_denied`, `expired_token`, all on
//! the mock clock.

use std::time::Duration;

use mock_server::{Consent, MockGoogle, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};

use crate::helpers::*;

async fn device_code(google: &MockGoogle) -> String {
    let issued = post_form(
        &format!("{}/device/code", google.uri()),
        &[("client_id", DEFAULT_CLIENT_ID), ("scope", "openid email")],
    )
    .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    issued.json()["device_code"]
        .as_str()
        .expect("device_code")
        .to_string()
}

async fn poll(google: &MockGoogle, code: &str) -> Answer {
    post_form(
        &google.token_url(),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", code),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
    .await
}

const PENDING: &str =
    r#"{"error":"authorization_pending","error_description":"Precondition Required"}"#;
const SLOW_DOWN: &str = r#"{"error":"slow_down","error_description":"Forbidden"}"#;

#[tokio::test]
async fn polls_before_the_user_answers_are_pending_and_the_next_one_after_the_interval_gets_tokens()
{
    let google = google().await;
    google.set_consent(Consent {
        device_pending_polls: 2,
        ..Consent::default()
    });
    let code = device_code(&google).await;
    let first = poll(&google, &code).await;
    first.assert_exact(428, PENDING);
    first.assert_token_headers();
    google.advance_clock(Duration::from_secs(5));
    poll(&google, &code).await.assert_exact(428, PENDING);
    google.advance_clock(Duration::from_secs(5));
    let tokens = poll(&google, &code).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert!(tokens.json()["refresh_token"].is_string());
    assert!(tokens.json()["id_token"].is_string());
    let errors: Vec<Option<String>> = google
        .journal()
        .iter()
        .filter(|e| e.endpoint == mock_server::Endpoint::Token)
        .map(|e| e.error.clone())
        .collect();
    assert_eq!(
        errors,
        [
            Some("authorization_pending".to_string()),
            Some("authorization_pending".to_string()),
            None
        ]
    );
}

#[tokio::test]
async fn polling_sooner_than_the_interval_is_slow_down_and_the_interval_grows_by_five_seconds() {
    let google = google().await;
    google.set_consent(Consent {
        device_pending_polls: 3,
        ..Consent::default()
    });
    let code = device_code(&google).await;
    poll(&google, &code).await.assert_exact(428, PENDING);
    // At once: too soon. The interval is now 10 s.
    poll(&google, &code).await.assert_exact(403, SLOW_DOWN);
    google.advance_clock(Duration::from_secs(5));
    poll(&google, &code).await.assert_exact(403, SLOW_DOWN);
    // 10 s after the last poll (which counts, even refused): pending again, not slowed down.
    google.advance_clock(Duration::from_secs(15));
    poll(&google, &code).await.assert_exact(428, PENDING);
    google.advance_clock(Duration::from_secs(15));
    poll(&google, &code).await.assert_exact(428, PENDING);
    google.advance_clock(Duration::from_secs(15));
    assert_eq!(poll(&google, &code).await.status, 200);
}

#[tokio::test]
async fn a_refusal_after_pending_polls_is_access_denied_and_an_old_code_is_expired_token() {
    let google = google().await;
    google.set_consent(Consent {
        deny: true,
        device_pending_polls: 1,
        ..Consent::default()
    });
    let code = device_code(&google).await;
    poll(&google, &code).await.assert_exact(428, PENDING);
    google.advance_clock(Duration::from_secs(5));
    poll(&google, &code).await.assert_exact(
        403,
        r#"{"error":"access_denied","error_description":"Forbidden"}"#,
    );

    google.set_consent(Consent {
        device_pending_polls: 100,
        ..Consent::default()
    });
    let waiting = device_code(&google).await;
    poll(&google, &waiting).await.assert_exact(428, PENDING);
    google.advance_clock(Duration::from_secs(30 * 60));
    poll(&google, &waiting).await.assert_exact(
        400,
        r#"{"error":"expired_token","error_description":"Bad Request"}"#,
    );
}
