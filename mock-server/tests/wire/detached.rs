//! A detached mock: no server of its own, answers decided for the caller's own HTTP front end;
//! and the runtime configuration changes such a long-running front end needs.

use std::time::Duration;

use mock_server::{
    Answer, ClientRegistration, Endpoint, MockConfig, MockGoogle, Request, Step, TokenStatus,
    ACTION_DROPPED, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
};

use crate::helpers::*;

const BASE: &str = "http://127.0.0.1:9/";

fn detached() -> MockGoogle {
    MockGoogle::detached(MockConfig::default(), BASE).expect("valid config")
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request {
    let mut request = Request::new(
        method.parse().expect("method"),
        path.parse().expect("path and query"),
    );
    for (name, value) in headers {
        request = request.with_header(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            http::HeaderValue::from_str(value).expect("value"),
        );
    }
    request.with_body(body.to_owned())
}

fn refresh_request(refresh_token: &str, client_id: &str, secret: &str) -> Request {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", refresh_token)
        .append_pair("client_id", client_id)
        .append_pair("client_secret", secret)
        .finish();
    request("POST", "/token", &[], &body)
}

fn respond(answer: Answer) -> (u16, String, Duration) {
    match answer {
        Answer::Respond {
            status,
            body,
            delay,
            ..
        } => (status.as_u16(), body, delay),
        Answer::Drop => panic!("expected a response, got a drop"),
    }
}

#[test]
fn detached_mock_answers_like_the_server_and_names_its_given_base_url() {
    let google = detached();
    assert_eq!(google.uri(), "http://127.0.0.1:9");
    assert_eq!(google.token_url(), "http://127.0.0.1:9/token");
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let answered = google.answer(&refresh_request(
        &rt,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
    ));
    assert_eq!(answered.entry.endpoint, Endpoint::Token);
    assert_eq!(answered.entry.status, Some(200));
    let (status, body, delay) = respond(answered.answer);
    assert_eq!((status, delay), (200, Duration::ZERO));
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    let at = json["access_token"].as_str().expect("access_token");
    assert_eq!(google.access_token_status(at), TokenStatus::Live);
    assert_eq!(google.token_request_count(), 1);

    let discovery = google.answer(&request(
        "GET",
        "/.well-known/openid-configuration",
        &[],
        "",
    ));
    let (_, body, _) = respond(discovery.answer);
    let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(doc["token_endpoint"], "http://127.0.0.1:9/token");
}

#[test]
fn detached_mock_hands_drops_and_delays_to_the_caller_and_journals_them() {
    let google = detached();
    google.set_token_script(vec![
        Step::drop(),
        Step::respond(503, r#"{"error":"internal_failure"}"#).with_delay(Duration::from_millis(70)),
    ]);
    let first = google.answer(&refresh_request("1//x", DEFAULT_CLIENT_ID, "s"));
    assert!(matches!(first.answer, Answer::Drop), "{first:?}");
    assert_eq!(first.entry.action, ACTION_DROPPED);
    assert_eq!(first.entry.status, None);
    let (status, body, delay) = respond(
        google
            .answer(&refresh_request("1//x", DEFAULT_CLIENT_ID, "s"))
            .answer,
    );
    assert_eq!(status, 503);
    assert_eq!(body, r#"{"error":"internal_failure"}"#);
    assert_eq!(delay, Duration::from_millis(70));
    let journal = google.journal();
    assert_eq!(journal.len(), 2);
    assert_eq!(journal[1].error.as_deref(), Some("internal_failure"));
}

#[test]
fn answered_debug_never_shows_the_issued_token() {
    let google = detached();
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let answered = google.answer(&refresh_request(
        &rt,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
    ));
    let printed = format!("{answered:?}");
    assert!(!printed.contains("ya29."), "{printed}");
    assert!(!printed.contains(&rt), "{printed}");
}

#[test]
fn runtime_clients_rotation_and_refresh_lifetime_apply_until_reset() {
    let google = detached();
    google
        .register_client(ClientRegistration::new("mine.apps", "my-secret"))
        .expect("registers");
    assert!(google
        .register_client(ClientRegistration::new("", "x"))
        .is_err());
    google.set_rotate_refresh_tokens(true);
    google.set_refresh_token_ttl(Some(Duration::from_secs(60)));
    let rt = google.issue_refresh_token("mine.apps", &scopes(&[GMAIL]));
    let (status, body, _) = respond(
        google
            .answer(&refresh_request(&rt, "mine.apps", "my-secret"))
            .answer,
    );
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    let rotated = json["refresh_token"].as_str().expect("rotated token");
    assert_eq!(google.refresh_token_status(&rt), TokenStatus::Superseded);
    google.advance_clock(Duration::from_secs(61));
    assert_eq!(google.refresh_token_status(rotated), TokenStatus::Expired);

    google.reset();
    let rt = google.issue_refresh_token("mine.apps", &scopes(&[GMAIL]));
    let (status, body, _) = respond(
        google
            .answer(&refresh_request(&rt, "mine.apps", "my-secret"))
            .answer,
    );
    assert_eq!(status, 401, "the runtime client is forgotten: {body}");
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let (_, body, _) = respond(
        google
            .answer(&refresh_request(
                &rt,
                DEFAULT_CLIENT_ID,
                DEFAULT_CLIENT_SECRET,
            ))
            .answer,
    );
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(json.get("refresh_token").is_none(), "rotation is off again");
    // Past the 7-day "Testing" lifetime, within the six months a used token lives.
    google.advance_clock(Duration::from_secs(3600 * 24 * 150));
    assert_eq!(google.refresh_token_status(&rt), TokenStatus::Live);
}
