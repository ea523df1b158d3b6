//! The exchange against a wiremock token endpoint on loopback: every error row of
//! `shared/reference/google-token-endpoint.md`, successes, retries and their waits, timeouts,
//! dropped connections, malformed successes, redirects, client authentication, and proof that
//! no planted secret reaches a message, a `Debug` string or a log line.
//!
//! Each test has its own mock server on port 0; backoffs are a few milliseconds.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const CLIENT_ID: &str = "123-planted.apps.googleusercontent.com";
const CLIENT_SECRET: &str = "GOCSPX-planted-client-secret-9f3a";
const REFRESH_TOKEN: &str = "1//planted-refresh-token-0c7e51";
const ACCESS_TOKEN: &str = "ya29.planted-access-token-a1b2c3";
const ID_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.planted-id-token.c2ln";
const ROTATED_REFRESH_TOKEN: &str = "1//planted-rotated-refresh-token-77d";
/// Every secret a test plants; none may ever be printed.
const PLANTED: [&str; 5] = [
    CLIENT_SECRET,
    REFRESH_TOKEN,
    ACCESS_TOKEN,
    ID_TOKEN,
    ROTATED_REFRESH_TOKEN,
];

const GMAIL_SCOPE: &str = "https://www.googleapis.com/auth/gmail.readonly";
const JSON: &str = "application/json; charset=utf-8";
const HTML: &str = "text/html; charset=UTF-8";

const SORRY_PAGE: &str = "<html><head><meta http-equiv=\"content-type\" content=\"text/html; \
charset=utf-8\"/><title>Sorry...</title></head><body><div><h1>Sorry...</h1><p>We're sorry... \
but your computer or network may be sending automated queries. To protect our users, we can't \
process your request right now.</p></div></body></html>";
const BAD_GATEWAY_PAGE: &str = "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error \
502 (Server Error)!!1</title><p><b>502.</b> <ins>That's an error.</ins><p>The server \
encountered a temporary error and could not complete your request.<p>Please try again in 30 \
seconds. <ins>That's all we know.</ins></html>";

/// The caller's secrets, owned by the test so a [`RefreshRequest`] can borrow them.
struct Secrets {
    client_secret: SecretString,
    refresh_token: SecretString,
}

impl Secrets {
    fn new() -> Self {
        Self {
            client_secret: SecretString::from(CLIENT_SECRET),
            refresh_token: SecretString::from(REFRESH_TOKEN),
        }
    }

    fn request(&self) -> RefreshRequest<'_> {
        RefreshRequest {
            client_id: CLIENT_ID,
            client_secret: Some(&self.client_secret),
            refresh_token: &self.refresh_token,
            scopes: &[],
        }
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(2),
        multiplier: 2.0,
        jitter: 0.1,
        max_retry_after: Duration::from_millis(50),
    }
}

fn config_for(server: &MockServer) -> ExchangeConfig {
    ExchangeConfig {
        token_url: Url::parse(&format!("{}/token", server.uri())).expect("mock URL parses"),
        request_timeout: Duration::from_secs(5),
        retry: fast_retry(),
        auth_in_body: false,
    }
}

async fn refresh_with(config: ExchangeConfig) -> Exchange {
    let http = build_http_client(config.request_timeout).expect("HTTP client builds");
    let secrets = Secrets::new();
    TokenExchanger::new(http, config)
        .refresh(&secrets.request())
        .await
}

async fn refresh_against(server: &MockServer) -> Exchange {
    refresh_with(config_for(server)).await
}

fn json(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), JSON)
}

fn google_success(body: &str) -> ResponseTemplate {
    json(200, body)
        .insert_header(
            "cache-control",
            "no-cache, no-store, max-age=0, must-revalidate",
        )
        .insert_header("pragma", "no-cache")
        .insert_header("expires", "Mon, 01 Jan 1990 00:00:00 GMT")
}

fn success_body() -> String {
    format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"scope":"{GMAIL_SCOPE}","token_type":"Bearer"}}"#
    )
}

/// Mounts `response` for every POST to `/token`, expecting exactly `times` requests.
async fn mount(server: &MockServer, response: ResponseTemplate, times: impl Into<wiremock::Times>) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

/// Mounts `response` for the first `times` POSTs to `/token` only, ahead of other mocks.
async fn mount_first(server: &MockServer, response: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(response)
        .up_to_n_times(times)
        .expect(times)
        .with_priority(1)
        .mount(server)
        .await;
}

fn grant(exchange: &Exchange) -> &TokenGrant {
    match &exchange.outcome {
        Outcome::Refreshed(grant) => grant,
        other => panic!("expected refreshed, got {other:?}"),
    }
}

fn protocol_detail(exchange: &Exchange) -> &str {
    match &exchange.outcome {
        Outcome::ProtocolError { detail } => detail,
        other => panic!("expected protocol_error, got {other:?}"),
    }
}

fn assert_prints_no_secret(exchange: &Exchange) {
    let printed = [
        format!("{exchange:?}"),
        format!("{exchange:#?}"),
        exchange.outcome.to_string(),
    ];
    for text in &printed {
        for secret in PLANTED {
            assert!(!text.contains(secret), "{secret:?} leaked into {text:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Every error row of the reference table
// ---------------------------------------------------------------------------------------------

/// One row of the reference's "Errors seen from the real endpoint" table and what it must become.
struct Row {
    case: &'static str,
    status: u16,
    content_type: &'static str,
    body: &'static str,
    code: &'static str,
    class: &'static str,
    /// `error` for OAuth-error outcomes, `reason` for `retry_later`.
    error_or_reason: &'static str,
    description: Option<&'static str>,
    subtype: Option<&'static str>,
    /// Requests the endpoint must see: 1 for definite answers, `max_attempts` (3) when retried.
    requests: u64,
}

const REFERENCE_ERRORS: &[Row] = &[
    Row {
        case: "refresh token revoked or expired",
        status: 400,
        content_type: JSON,
        body: r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        code: "needs_reconnect",
        class: attempt_class::NEEDS_RECONNECT,
        error_or_reason: "invalid_grant",
        description: Some("Token has been expired or revoked."),
        subtype: None,
        requests: 1,
    },
    Row {
        case: "malformed or unknown refresh token",
        status: 400,
        content_type: JSON,
        body: r#"{"error":"invalid_grant","error_description":"Bad Request"}"#,
        code: "needs_reconnect",
        class: attempt_class::NEEDS_RECONNECT,
        error_or_reason: "invalid_grant",
        description: Some("Bad Request"),
        subtype: None,
        requests: 1,
    },
    Row {
        case: "Workspace session-control policy (invalid_rapt)",
        status: 400,
        content_type: JSON,
        body: r#"{"error":"invalid_grant","error_description":"reauth related error (invalid_rapt)","error_subtype":"invalid_rapt"}"#,
        code: "needs_reconnect",
        class: attempt_class::NEEDS_RECONNECT,
        error_or_reason: "invalid_grant",
        description: Some("reauth related error (invalid_rapt)"),
        subtype: Some("invalid_rapt"),
        requests: 1,
    },
    Row {
        case: "unknown client id",
        status: 401,
        content_type: JSON,
        body: r#"{"error":"invalid_client","error_description":"The OAuth client was not found."}"#,
        code: "client_misconfigured",
        class: attempt_class::CLIENT_MISCONFIGURED,
        error_or_reason: "invalid_client",
        description: Some("The OAuth client was not found."),
        subtype: None,
        requests: 1,
    },
    Row {
        case: "wrong client secret",
        status: 401,
        content_type: JSON,
        body: r#"{"error":"invalid_client","error_description":"Unauthorized"}"#,
        code: "client_misconfigured",
        class: attempt_class::CLIENT_MISCONFIGURED,
        error_or_reason: "invalid_client",
        description: Some("Unauthorized"),
        subtype: None,
        requests: 1,
    },
    Row {
        case: "client deleted",
        status: 401,
        content_type: JSON,
        body: r#"{"error":"deleted_client","error_description":"The OAuth client was deleted."}"#,
        code: "client_misconfigured",
        class: attempt_class::CLIENT_MISCONFIGURED,
        error_or_reason: "deleted_client",
        description: Some("The OAuth client was deleted."),
        subtype: None,
        requests: 1,
    },
    Row {
        case: "refresh token issued to another client",
        status: 401,
        content_type: JSON,
        body: r#"{"error":"unauthorized_client","error_description":"Unauthorized"}"#,
        code: "client_misconfigured",
        class: attempt_class::CLIENT_MISCONFIGURED,
        error_or_reason: "unauthorized_client",
        description: Some("Unauthorized"),
        subtype: None,
        requests: 1,
    },
    Row {
        case: "missing parameter",
        status: 400,
        content_type: JSON,
        body: r#"{"error":"invalid_request","error_description":"Missing required parameter: refresh_token"}"#,
        code: "request_rejected",
        class: attempt_class::REQUEST_REJECTED,
        error_or_reason: "invalid_request",
        description: Some("Missing required parameter: refresh_token"),
        subtype: None,
        requests: 1,
    },
    Row {
        case: "wrong grant type",
        status: 400,
        content_type: JSON,
        body: r#"{"error":"unsupported_grant_type","error_description":"Invalid grant_type: password"}"#,
        code: "request_rejected",
        class: attempt_class::REQUEST_REJECTED,
        error_or_reason: "unsupported_grant_type",
        description: Some("Invalid grant_type: password"),
        subtype: None,
        requests: 1,
    },
    Row {
        case: "bad scope",
        status: 400,
        content_type: JSON,
        body: r#"{"error":"invalid_scope","error_description":"Some requested scopes were invalid. {invalid=[…]}"}"#,
        code: "request_rejected",
        class: attempt_class::REQUEST_REJECTED,
        error_or_reason: "invalid_scope",
        description: Some("Some requested scopes were invalid. {invalid=[…]}"),
        subtype: None,
        requests: 1,
    },
    Row {
        case: "server fault, 500",
        status: 500,
        content_type: JSON,
        body: r#"{"error":"internal_failure"}"#,
        code: "retry_later",
        class: attempt_class::SERVER_ERROR,
        error_or_reason: "HTTP 500: internal_failure",
        description: None,
        subtype: None,
        requests: 3,
    },
    Row {
        case: "server fault, 503",
        status: 503,
        content_type: JSON,
        body: r#"{"error":"internal_failure"}"#,
        code: "retry_later",
        class: attempt_class::SERVER_ERROR,
        error_or_reason: "HTTP 503: internal_failure",
        description: None,
        subtype: None,
        requests: 3,
    },
    Row {
        case: "bad gateway page, 502",
        status: 502,
        content_type: HTML,
        body: BAD_GATEWAY_PAGE,
        code: "retry_later",
        class: attempt_class::SERVER_ERROR,
        error_or_reason: "HTTP 502 with a non-JSON body (text/html)",
        description: None,
        subtype: None,
        requests: 3,
    },
    Row {
        case: "too many refreshes: HTML Sorry page, 403",
        status: 403,
        content_type: HTML,
        body: SORRY_PAGE,
        code: "retry_later",
        class: attempt_class::NON_JSON_ERROR,
        error_or_reason: "HTTP 403 with a non-JSON body (text/html)",
        description: None,
        subtype: None,
        requests: 3,
    },
];

#[tokio::test]
async fn every_error_row_of_the_reference_is_classified_as_documented() {
    for row in REFERENCE_ERRORS {
        let server = MockServer::start().await;
        let response = ResponseTemplate::new(row.status)
            .set_body_raw(row.body.as_bytes().to_vec(), row.content_type);
        mount(&server, response, row.requests).await;

        let exchange = refresh_against(&server).await;
        let case = row.case;

        assert_eq!(exchange.outcome.code(), row.code, "{case}: {exchange:?}");
        assert_eq!(
            exchange.attempts.len() as u64,
            row.requests,
            "{case}: {exchange:?}"
        );
        for attempt in &exchange.attempts {
            assert_eq!(attempt.status, Some(row.status), "{case}");
            assert_eq!(attempt.class, row.class, "{case}");
        }
        match &exchange.outcome {
            Outcome::NeedsReconnect {
                error,
                description,
                subtype,
            } => {
                assert_eq!(error, row.error_or_reason, "{case}");
                assert_eq!(description.as_deref(), row.description, "{case}");
                assert_eq!(subtype.as_deref(), row.subtype, "{case}");
            }
            Outcome::ClientMisconfigured { error, description }
            | Outcome::RequestRejected { error, description } => {
                assert_eq!(error, row.error_or_reason, "{case}");
                assert_eq!(description.as_deref(), row.description, "{case}");
            }
            Outcome::RetryLater {
                reason,
                status,
                retry_after,
            } => {
                assert_eq!(reason, row.error_or_reason, "{case}");
                assert_eq!(*status, Some(row.status), "{case}");
                assert_eq!(*retry_after, None, "{case}");
            }
            other => panic!("{case}: unexpected {other:?}"),
        }
        server.verify().await;
    }
}

#[tokio::test]
async fn invalid_grant_is_never_retried() {
    let server = MockServer::start().await;
    mount(
        &server,
        json(
            400,
            r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        ),
        1,
    )
    .await;
    let mut config = config_for(&server);
    config.retry.max_attempts = 5;

    let exchange = refresh_with(config).await;

    assert_eq!(exchange.outcome.code(), "needs_reconnect");
    assert_eq!(exchange.attempts.len(), 1);
    assert_eq!(
        exchange.outcome.to_string(),
        "needs_reconnect: invalid_grant: Token has been expired or revoked."
    );
}

#[tokio::test]
async fn invalid_rapt_subtype_shows_in_the_message() {
    let server = MockServer::start().await;
    mount(
        &server,
        json(
            400,
            r#"{"error":"invalid_grant","error_description":"reauth related error (invalid_rapt)","error_subtype":"invalid_rapt"}"#,
        ),
        1,
    )
    .await;

    let exchange = refresh_against(&server).await;

    assert_eq!(
        exchange.outcome.to_string(),
        "needs_reconnect: invalid_grant [invalid_rapt]: reauth related error (invalid_rapt)"
    );
}

#[tokio::test]
async fn json_error_without_an_error_code_is_a_rejected_request_not_a_retry() {
    let server = MockServer::start().await;
    mount(
        &server,
        json(400, r#"{"error_description":"Invalid Value"}"#),
        1,
    )
    .await;

    let exchange = refresh_against(&server).await;

    match &exchange.outcome {
        Outcome::RequestRejected { error, description } => {
            assert_eq!(error, "unrecognised_error");
            assert_eq!(
                description.as_deref(),
                Some("HTTP 400 with a JSON body that is not an OAuth error")
            );
        }
        other => panic!("expected request_rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn transient_oauth_error_code_is_retried_whatever_the_status() {
    let server = MockServer::start().await;
    mount(
        &server,
        json(
            400,
            r#"{"error":"temporarily_unavailable","error_description":"try later"}"#,
        ),
        3,
    )
    .await;

    let exchange = refresh_against(&server).await;

    match &exchange.outcome {
        Outcome::RetryLater { reason, status, .. } => {
            assert_eq!(reason, "HTTP 400: temporarily_unavailable: try later");
            assert_eq!(*status, Some(400));
        }
        other => panic!("expected retry_later, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Successes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn success_returns_the_access_token_with_expiry_scopes_and_token_type() {
    let server = MockServer::start().await;
    mount(&server, google_success(&success_body()), 1).await;

    let exchange = refresh_against(&server).await;

    let grant = grant(&exchange);
    assert_eq!(grant.access_token.expose_secret(), ACCESS_TOKEN);
    assert_eq!(grant.expires_in, Duration::from_secs(3599));
    assert_eq!(grant.scopes, vec![GMAIL_SCOPE.to_owned()]);
    assert_eq!(grant.token_type, "Bearer");
    assert!(grant.refresh_token.is_none(), "Google does not rotate");
    assert!(grant.id_token.is_none());
    assert_eq!(exchange.attempts.len(), 1);
    assert_eq!(exchange.attempts[0].status, Some(200));
    assert_eq!(exchange.attempts[0].class, attempt_class::REFRESHED);
    assert_eq!(exchange.attempts[0].waited_before, Duration::ZERO);
    assert_eq!(
        exchange.outcome.to_string(),
        format!("refreshed: new Bearer access token valid for 3599 s, scopes: {GMAIL_SCOPE}")
    );
}

#[tokio::test]
async fn success_splits_several_granted_scopes() {
    let server = MockServer::start().await;
    let body = format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"scope":"openid {GMAIL_SCOPE} email","token_type":"Bearer"}}"#
    );
    mount(&server, google_success(&body), 1).await;

    let exchange = refresh_against(&server).await;

    assert_eq!(
        grant(&exchange).scopes,
        vec![
            "openid".to_owned(),
            GMAIL_SCOPE.to_owned(),
            "email".to_owned()
        ]
    );
}

#[tokio::test]
async fn success_with_an_id_token_carries_the_id_token() {
    let server = MockServer::start().await;
    let body = format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"scope":"openid {GMAIL_SCOPE}","token_type":"Bearer","id_token":"{ID_TOKEN}"}}"#
    );
    mount(&server, google_success(&body), 1).await;

    let exchange = refresh_against(&server).await;

    let grant = grant(&exchange);
    assert_eq!(
        grant.id_token.as_ref().map(|t| t.expose_secret()),
        Some(ID_TOKEN)
    );
    assert!(grant.refresh_token.is_none());
}

#[tokio::test]
async fn success_with_a_rotated_refresh_token_returns_the_new_refresh_token() {
    let server = MockServer::start().await;
    let body = format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"scope":"{GMAIL_SCOPE}","token_type":"Bearer","refresh_token":"{ROTATED_REFRESH_TOKEN}"}}"#
    );
    mount(&server, google_success(&body), 1).await;

    let exchange = refresh_against(&server).await;

    let grant = grant(&exchange);
    assert_eq!(
        grant.refresh_token.as_ref().map(|t| t.expose_secret()),
        Some(ROTATED_REFRESH_TOKEN)
    );
    assert!(exchange
        .outcome
        .to_string()
        .ends_with("refresh token rotated"));
}

#[tokio::test]
async fn success_without_a_scope_field_has_no_scopes() {
    let server = MockServer::start().await;
    let body =
        format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"token_type":"Bearer"}}"#);
    mount(&server, google_success(&body), 1).await;

    let exchange = refresh_against(&server).await;

    assert!(grant(&exchange).scopes.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Retries and waits
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn server_error_then_success_refreshes_on_the_second_attempt() {
    let server = MockServer::start().await;
    mount_first(&server, json(500, r#"{"error":"internal_failure"}"#), 1).await;
    mount(&server, google_success(&success_body()), 1).await;

    let exchange = refresh_against(&server).await;

    assert_eq!(exchange.outcome.code(), "refreshed");
    let statuses: Vec<_> = exchange.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![Some(500), Some(200)]);
    assert_eq!(exchange.attempts[0].class, attempt_class::SERVER_ERROR);
    assert_eq!(exchange.attempts[0].waited_before, Duration::ZERO);
    let backoff = exchange.attempts[1].waited_before;
    assert!(
        backoff >= Duration::from_micros(1800) && backoff <= Duration::from_micros(2200),
        "first backoff is 2 ms ± 10 %: {backoff:?}"
    );
}

#[tokio::test]
async fn service_unavailable_until_retries_run_out_makes_exactly_max_attempts_requests() {
    let server = MockServer::start().await;
    mount(&server, json(503, r#"{"error":"internal_failure"}"#), 3).await;

    let exchange = refresh_against(&server).await;

    assert_eq!(exchange.attempts.len(), 3);
    match &exchange.outcome {
        Outcome::RetryLater {
            reason,
            status,
            retry_after,
        } => {
            assert_eq!(reason, "HTTP 503: internal_failure");
            assert_eq!(*status, Some(503));
            assert_eq!(*retry_after, None);
        }
        other => panic!("expected retry_later, got {other:?}"),
    }
    let waits: Vec<_> = exchange.attempts.iter().map(|a| a.waited_before).collect();
    assert_eq!(waits[0], Duration::ZERO);
    assert!(waits[1] >= Duration::from_micros(1800) && waits[1] <= Duration::from_micros(2200));
    assert!(waits[2] >= Duration::from_micros(3600) && waits[2] <= Duration::from_micros(4400));
    server.verify().await;
}

#[tokio::test]
async fn every_transient_status_is_retried() {
    for status in [500_u16, 502, 503, 504, 408, 429] {
        let server = MockServer::start().await;
        mount(&server, json(status, r#"{"error":"something"}"#), 3).await;

        let exchange = refresh_against(&server).await;

        assert_eq!(exchange.outcome.code(), "retry_later", "HTTP {status}");
        assert_eq!(exchange.attempts.len(), 3, "HTTP {status}");
        server.verify().await;
    }
}

#[tokio::test]
async fn retry_after_zero_is_honoured_instead_of_a_long_backoff() {
    let server = MockServer::start().await;
    mount_first(
        &server,
        json(429, r#"{"error":"rate_limit_exceeded"}"#).insert_header("retry-after", "0"),
        1,
    )
    .await;
    mount(&server, google_success(&success_body()), 1).await;
    let mut config = config_for(&server);
    config.retry.initial_backoff = Duration::from_secs(60);
    config.retry.jitter = 0.0;
    let started = Instant::now();

    let exchange = refresh_with(config).await;

    assert_eq!(exchange.outcome.code(), "refreshed");
    assert_eq!(exchange.attempts[0].status, Some(429));
    assert_eq!(exchange.attempts[0].class, attempt_class::RATE_LIMITED);
    assert_eq!(exchange.attempts[1].waited_before, Duration::ZERO);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "did not back off 60 s"
    );
}

#[tokio::test]
async fn retry_after_longer_than_the_cap_waits_only_the_cap() {
    let server = MockServer::start().await;
    mount_first(
        &server,
        json(429, r#"{"error":"rate_limit_exceeded"}"#).insert_header("retry-after", "3600"),
        1,
    )
    .await;
    mount(&server, google_success(&success_body()), 1).await;
    let started = Instant::now();

    let exchange = refresh_against(&server).await;

    let elapsed = started.elapsed();
    assert_eq!(exchange.outcome.code(), "refreshed");
    assert_eq!(
        exchange.attempts[1].waited_before,
        Duration::from_millis(50)
    );
    assert!(
        elapsed >= Duration::from_millis(50),
        "slept the cap: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(30), "did not sleep an hour");
}

#[tokio::test]
async fn retry_after_as_an_http_date_in_the_past_means_retry_now() {
    let server = MockServer::start().await;
    let past = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    mount_first(
        &server,
        json(503, r#"{"error":"internal_failure"}"#).insert_header("retry-after", past.as_str()),
        1,
    )
    .await;
    mount(&server, google_success(&success_body()), 1).await;
    let mut config = config_for(&server);
    config.retry.initial_backoff = Duration::from_secs(60);

    let exchange = refresh_with(config).await;

    assert_eq!(exchange.outcome.code(), "refreshed");
    assert_eq!(exchange.attempts[1].waited_before, Duration::ZERO);
}

#[tokio::test]
async fn retry_later_reports_the_servers_retry_after_uncapped() {
    let server = MockServer::start().await;
    mount(
        &server,
        json(503, r#"{"error":"internal_failure"}"#).insert_header("retry-after", "120"),
        2,
    )
    .await;
    let mut config = config_for(&server);
    config.retry.max_attempts = 2;
    config.retry.max_retry_after = Duration::from_millis(5);

    let exchange = refresh_with(config).await;

    assert_eq!(exchange.attempts[1].waited_before, Duration::from_millis(5));
    match &exchange.outcome {
        Outcome::RetryLater { retry_after, .. } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(120)));
        }
        other => panic!("expected retry_later, got {other:?}"),
    }
    assert_eq!(
        exchange.outcome.to_string(),
        "retry_later: HTTP 503: internal_failure (server asked to wait 120 s)"
    );
}

#[tokio::test]
async fn zero_max_attempts_still_tries_once() {
    let server = MockServer::start().await;
    mount(&server, json(503, r#"{"error":"internal_failure"}"#), 1).await;
    let mut config = config_for(&server);
    config.retry.max_attempts = 0;

    let exchange = refresh_with(config).await;

    assert_eq!(exchange.attempts.len(), 1);
    assert_eq!(exchange.outcome.code(), "retry_later");
}

// ---------------------------------------------------------------------------------------------
// No HTTP response at all
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn response_slower_than_the_request_timeout_is_retried_then_retry_later() {
    let server = MockServer::start().await;
    mount(
        &server,
        google_success(&success_body()).set_delay(Duration::from_secs(3)),
        2,
    )
    .await;
    let mut config = config_for(&server);
    config.request_timeout = Duration::from_millis(150);
    config.retry.max_attempts = 2;
    let started = Instant::now();

    let exchange = refresh_with(config).await;

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "did not wait for the slow response"
    );
    assert_eq!(exchange.attempts.len(), 2);
    for attempt in &exchange.attempts {
        assert_eq!(attempt.status, None);
        assert_eq!(attempt.class, attempt_class::TIMEOUT);
    }
    match &exchange.outcome {
        Outcome::RetryLater { reason, status, .. } => {
            assert_eq!(reason, "no complete response within 150ms");
            assert_eq!(*status, None);
        }
        other => panic!("expected retry_later, got {other:?}"),
    }
}

#[tokio::test]
async fn per_request_timeout_applies_even_when_the_injected_client_waits_longer() {
    let server = MockServer::start().await;
    mount(
        &server,
        google_success(&success_body()).set_delay(Duration::from_secs(3)),
        1,
    )
    .await;
    let mut config = config_for(&server);
    config.request_timeout = Duration::from_millis(100);
    config.retry = RetryPolicy::no_retries();
    let http = build_http_client(Duration::from_secs(60)).expect("HTTP client builds");
    let secrets = Secrets::new();

    let exchange = TokenExchanger::new(http, config)
        .refresh(&secrets.request())
        .await;

    assert_eq!(exchange.attempts[0].class, attempt_class::TIMEOUT);
}

#[tokio::test]
async fn dropped_connection_is_retried_then_retry_later() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with_err(|_: &wiremock::Request| {
            io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by test")
        })
        .expect(3)
        .mount(&server)
        .await;

    let exchange = refresh_against(&server).await;

    assert_eq!(exchange.attempts.len(), 3);
    for attempt in &exchange.attempts {
        assert_eq!(attempt.status, None);
        assert_eq!(attempt.class, attempt_class::CONNECTION);
    }
    match &exchange.outcome {
        Outcome::RetryLater { reason, status, .. } => {
            assert!(
                reason.starts_with("connection failed before a complete response"),
                "{reason}"
            );
            assert_eq!(*status, None);
        }
        other => panic!("expected retry_later, got {other:?}"),
    }
    server.verify().await;
}

#[tokio::test]
async fn refused_connection_is_retry_later() {
    // Bind a port, then free it: nothing listens there any more.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.local_addr().expect("local addr").port()
    };
    let mut config = ExchangeConfig::with_token_url(&format!("http://127.0.0.1:{port}/token"))
        .expect("URL parses");
    config.retry = RetryPolicy {
        max_attempts: 2,
        ..fast_retry()
    };

    let exchange = refresh_with(config).await;

    assert_eq!(exchange.outcome.code(), "retry_later");
    assert_eq!(exchange.attempts.len(), 2);
    assert_eq!(exchange.attempts[0].class, attempt_class::CONNECTION);
    assert!(exchange.outcome.to_string().contains("could not connect"));
}

// ---------------------------------------------------------------------------------------------
// Malformed successes: protocol errors, never retried
// ---------------------------------------------------------------------------------------------

async fn protocol_error_for(response: ResponseTemplate) -> Exchange {
    let server = MockServer::start().await;
    mount(&server, response, 1).await;
    let exchange = refresh_against(&server).await;
    assert_eq!(exchange.attempts.len(), 1, "{exchange:?}");
    assert_eq!(exchange.attempts[0].class, attempt_class::PROTOCOL_ERROR);
    server.verify().await;
    exchange
}

#[tokio::test]
async fn malformed_json_success_is_a_protocol_error_without_retry() {
    let body = format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":"#);
    let exchange = protocol_error_for(json(200, &body)).await;
    assert_eq!(
        protocol_detail(&exchange),
        format!("body is not JSON (application/json, {} bytes)", body.len())
    );
}

#[tokio::test]
async fn html_success_body_is_a_protocol_error() {
    let body = format!("<html><body>{ACCESS_TOKEN}</body></html>");
    let exchange =
        protocol_error_for(ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), HTML))
            .await;
    assert_eq!(
        protocol_detail(&exchange),
        format!("body is not JSON (text/html, {} bytes)", body.len())
    );
}

#[tokio::test]
async fn success_without_access_token_is_a_protocol_error() {
    let exchange =
        protocol_error_for(json(200, r#"{"expires_in":3599,"token_type":"Bearer"}"#)).await;
    assert_eq!(
        protocol_detail(&exchange),
        "success body has no access_token"
    );
}

#[tokio::test]
async fn success_without_expires_in_is_a_protocol_error() {
    let body = format!(r#"{{"access_token":"{ACCESS_TOKEN}","token_type":"Bearer"}}"#);
    let exchange = protocol_error_for(json(200, &body)).await;
    assert_eq!(protocol_detail(&exchange), "success body has no expires_in");
}

#[tokio::test]
async fn expires_in_as_a_string_is_a_protocol_error_that_quotes_nothing() {
    let body = format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":"{ACCESS_TOKEN}","token_type":"Bearer"}}"#
    );
    let exchange = protocol_error_for(json(200, &body)).await;
    assert_eq!(
        protocol_detail(&exchange),
        "expires_in is a string, not a number"
    );
    assert_prints_no_secret(&exchange);
}

#[tokio::test]
async fn negative_expires_in_is_a_protocol_error() {
    let body =
        format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":-5,"token_type":"Bearer"}}"#);
    let exchange = protocol_error_for(json(200, &body)).await;
    assert_eq!(
        protocol_detail(&exchange),
        "expires_in is a negative or fractional number, not whole seconds"
    );
}

#[tokio::test]
async fn success_without_token_type_is_a_protocol_error() {
    let body = format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599}}"#);
    let exchange = protocol_error_for(json(200, &body)).await;
    assert_eq!(protocol_detail(&exchange), "success body has no token_type");
}

#[tokio::test]
async fn empty_success_body_is_a_protocol_error() {
    let exchange = protocol_error_for(json(200, "")).await;
    assert_eq!(protocol_detail(&exchange), "success body is empty");
}

#[tokio::test]
async fn success_body_that_is_not_an_object_is_a_protocol_error() {
    let exchange = protocol_error_for(json(200, &format!(r#"["{ACCESS_TOKEN}"]"#))).await;
    assert_eq!(
        protocol_detail(&exchange),
        "success body is an array, not a JSON object"
    );
}

#[tokio::test]
async fn oversized_success_body_is_a_protocol_error() {
    let body = format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"token_type":"Bearer","pad":"{}"}}"#,
        "x".repeat(300 * 1024)
    );
    let exchange = protocol_error_for(json(200, &body)).await;
    assert_eq!(
        protocol_detail(&exchange),
        "success body is longer than 262144 bytes"
    );
}

#[tokio::test]
async fn oversized_server_error_page_is_still_retry_later() {
    let server = MockServer::start().await;
    let page = format!("<html>{}</html>", "x".repeat(300 * 1024));
    mount(
        &server,
        ResponseTemplate::new(503).set_body_raw(page.into_bytes(), HTML),
        3,
    )
    .await;

    let exchange = refresh_against(&server).await;

    match &exchange.outcome {
        Outcome::RetryLater { reason, status, .. } => {
            assert_eq!(reason, "HTTP 503 with a body longer than 262144 bytes");
            assert_eq!(*status, Some(503));
        }
        other => panic!("expected retry_later, got {other:?}"),
    }
    server.verify().await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    mount(
        &server,
        ResponseTemplate::new(302).insert_header("location", format!("{}/elsewhere", server.uri())),
        1,
    )
    .await;
    Mock::given(path("/elsewhere"))
        .respond_with(google_success(&success_body()))
        .expect(0)
        .mount(&server)
        .await;

    let exchange = refresh_against(&server).await;

    assert_eq!(exchange.attempts.len(), 1);
    assert_eq!(exchange.attempts[0].status, Some(302));
    assert_eq!(
        protocol_detail(&exchange),
        "HTTP 302 redirect not followed (redirects are off: is the token URL right?)"
    );
    server.verify().await;
}

// ---------------------------------------------------------------------------------------------
// What is sent
// ---------------------------------------------------------------------------------------------

/// The one request the server received, as a header lookup and form fields.
async fn only_request(server: &MockServer) -> (wiremock::Request, HashMap<String, String>) {
    let mut requests = server
        .received_requests()
        .await
        .expect("request recording is on");
    assert_eq!(requests.len(), 1);
    let request = requests.remove(0);
    let form = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    (request, form)
}

#[tokio::test]
async fn request_is_a_form_encoded_refresh_token_grant_without_scope() {
    let server = MockServer::start().await;
    mount(&server, google_success(&success_body()), 1).await;

    refresh_against(&server).await;

    let (request, form) = only_request(&server).await;
    assert_eq!(
        request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("refresh_token")
    );
    assert_eq!(
        form.get("refresh_token").map(String::as_str),
        Some(REFRESH_TOKEN)
    );
    assert!(
        !form.contains_key("scope"),
        "no scope asked for: {:?}",
        form.keys()
    );
}

#[tokio::test]
async fn requested_scopes_are_sent_space_separated() {
    let server = MockServer::start().await;
    mount(&server, google_success(&success_body()), 1).await;
    let secrets = Secrets::new();
    let scopes = vec!["openid".to_owned(), GMAIL_SCOPE.to_owned()];
    let request = RefreshRequest {
        scopes: &scopes,
        ..secrets.request()
    };
    let config = config_for(&server);
    let http = build_http_client(config.request_timeout).expect("HTTP client builds");

    TokenExchanger::new(http, config).refresh(&request).await;

    let (_, form) = only_request(&server).await;
    assert_eq!(
        form.get("scope").map(String::as_str),
        Some(format!("openid {GMAIL_SCOPE}").as_str())
    );
}

#[tokio::test]
async fn client_credentials_go_in_a_basic_auth_header_by_default() {
    let server = MockServer::start().await;
    mount(&server, google_success(&success_body()), 1).await;

    refresh_against(&server).await;

    let (request, form) = only_request(&server).await;
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    let id: String = url::form_urlencoded::byte_serialize(CLIENT_ID.as_bytes()).collect();
    let secret: String = url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect();
    let expected = format!("Basic {}", BASE64_STANDARD.encode(format!("{id}:{secret}")));
    assert_eq!(
        request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(expected.as_str())
    );
    assert!(!form.contains_key("client_secret"));
    assert!(!form.contains_key("client_id"));
}

#[tokio::test]
async fn client_credentials_go_in_the_body_when_auth_in_body_is_set() {
    let server = MockServer::start().await;
    mount(&server, google_success(&success_body()), 1).await;
    let mut config = config_for(&server);
    config.auth_in_body = true;

    refresh_with(config).await;

    let (request, form) = only_request(&server).await;
    assert!(request.headers.get("authorization").is_none());
    assert_eq!(form.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_eq!(
        form.get("client_secret").map(String::as_str),
        Some(CLIENT_SECRET)
    );
}

#[tokio::test]
async fn client_without_a_secret_sends_only_its_id_in_the_body() {
    let server = MockServer::start().await;
    mount(&server, google_success(&success_body()), 1).await;
    let secrets = Secrets::new();
    let request = RefreshRequest {
        client_secret: None,
        ..secrets.request()
    };
    let config = config_for(&server);
    let http = build_http_client(config.request_timeout).expect("HTTP client builds");

    let exchange = TokenExchanger::new(http, config).refresh(&request).await;

    assert_eq!(exchange.outcome.code(), "refreshed");
    let (request, form) = only_request(&server).await;
    assert!(request.headers.get("authorization").is_none());
    assert_eq!(form.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert!(!form.contains_key("client_secret"));
}

// ---------------------------------------------------------------------------------------------
// Secrets never print
// ---------------------------------------------------------------------------------------------

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .expect("log buffer lock")
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_planted_secret_reaches_debug_output_messages_or_logs() {
    let echoing_error = format!(
        r#"{{"error":"invalid_grant","error_description":"token {REFRESH_TOKEN} of client {CLIENT_SECRET} is revoked","error_subtype":"{REFRESH_TOKEN}"}}"#
    );
    let full_success = format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"scope":"openid","token_type":"Bearer","id_token":"{ID_TOKEN}","refresh_token":"{ROTATED_REFRESH_TOKEN}"}}"#
    );
    let scenarios: Vec<(&str, ResponseTemplate)> = vec![
        ("full success", google_success(&full_success)),
        ("error echoing our secrets", json(400, &echoing_error)),
        (
            "expires_in holds a token",
            json(
                200,
                &format!(
                    r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":"{ID_TOKEN}","token_type":"Bearer"}}"#
                ),
            ),
        ),
        (
            "access_token is a number, id_token in body",
            json(
                200,
                &format!(
                    r#"{{"access_token":1,"expires_in":3599,"token_type":"Bearer","id_token":"{ID_TOKEN}"}}"#
                ),
            ),
        ),
        (
            "truncated JSON",
            json(200, &format!(r#"{{"access_token":"{ACCESS_TOKEN}""#)),
        ),
        (
            "HTML error page quoting the refresh token",
            ResponseTemplate::new(403).set_body_raw(
                format!("<html>{REFRESH_TOKEN} {CLIENT_SECRET}</html>").into_bytes(),
                HTML,
            ),
        ),
        (
            "JSON error that is not OAuth",
            json(
                400,
                &format!(r#"{{"error":{{"message":"{REFRESH_TOKEN}"}}}}"#),
            ),
        ),
        (
            "transient error echoing the secret",
            json(
                503,
                &format!(r#"{{"error":"internal_failure","error_description":"{CLIENT_SECRET}"}}"#),
            ),
        ),
    ];

    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests run on other threads without a subscriber. While only one scoped subscriber
    // exists, `tracing` computes a callsite's interest from whichever thread hits it first, so
    // this module's callsites could be cached as "never". A second live dispatcher makes
    // `tracing` ask every registered subscriber; then re-ask for callsites already cached.
    let _second_dispatcher = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    tracing::callsite::rebuild_interest_cache();

    let secrets = Secrets::new();
    let request = secrets.request();
    let request_debug = format!("{request:?}");
    for secret in PLANTED {
        assert!(!request_debug.contains(secret), "{request_debug}");
    }

    for (name, response) in scenarios {
        let server = MockServer::start().await;
        mount(&server, response, 1..=3).await;
        let exchange = refresh_against(&server).await;
        let printed = [format!("{exchange:?}"), exchange.outcome.to_string()];
        for text in &printed {
            for secret in PLANTED {
                assert!(
                    !text.contains(secret),
                    "{name}: {secret:?} leaked into {text}"
                );
            }
        }
        if let Outcome::Refreshed(grant) = &exchange.outcome {
            let debug = format!("{grant:?}");
            assert!(debug.contains("access_token: \"[redacted]\""), "{debug}");
            assert!(debug.contains("id_token: Some(\"[redacted]\")"), "{debug}");
            assert!(
                debug.contains("refresh_token: Some(\"[redacted]\")"),
                "{debug}"
            );
        }
    }

    let logged =
        String::from_utf8(logs.0.lock().expect("log buffer lock").clone()).expect("logs are UTF-8");
    assert!(
        logged.contains("token exchange finished"),
        "the subscriber captured the module's logs: {logged}"
    );
    for secret in PLANTED {
        assert!(
            !logged.contains(secret),
            "{secret:?} leaked into the logs:\n{logged}"
        );
    }
}

#[tokio::test]
async fn server_text_echoing_our_secrets_is_scrubbed() {
    let server = MockServer::start().await;
    mount(
        &server,
        json(
            400,
            &format!(
                r#"{{"error":"invalid_grant","error_description":"bad token {REFRESH_TOKEN}"}}"#
            ),
        ),
        1,
    )
    .await;

    let exchange = refresh_against(&server).await;

    match &exchange.outcome {
        Outcome::NeedsReconnect { description, .. } => {
            assert_eq!(description.as_deref(), Some("bad token [redacted]"));
        }
        other => panic!("expected needs_reconnect, got {other:?}"),
    }
}

#[tokio::test]
async fn server_text_echoing_a_url_encoded_secret_is_scrubbed() {
    let server = MockServer::start().await;
    let encoded: String = url::form_urlencoded::byte_serialize(REFRESH_TOKEN.as_bytes()).collect();
    assert_ne!(encoded, REFRESH_TOKEN, "the planted token needs encoding");
    mount(
        &server,
        json(
            400,
            &format!(
                r#"{{"error":"invalid_request","error_description":"refresh_token={encoded}"}}"#
            ),
        ),
        1,
    )
    .await;

    let exchange = refresh_against(&server).await;

    match &exchange.outcome {
        Outcome::RequestRejected { description, .. } => {
            assert_eq!(description.as_deref(), Some("refresh_token=[redacted]"));
        }
        other => panic!("expected request_rejected, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration and codes
// ---------------------------------------------------------------------------------------------

#[test]
fn defaults_follow_google_auth() {
    let config = ExchangeConfig::default();
    assert_eq!(config.token_url.as_str(), GOOGLE_TOKEN_URL);
    assert_eq!(config.request_timeout, Duration::from_secs(10));
    assert!(!config.auth_in_body);
    assert_eq!(
        config.retry,
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.1,
            max_retry_after: Duration::from_secs(30),
        }
    );
}

#[test]
fn an_invalid_token_url_is_refused_up_front() {
    let error = ExchangeConfig::with_token_url("not a url").expect_err("must not parse");
    assert!(matches!(error, ExchangeError::InvalidTokenUrl { .. }));
    assert!(error.to_string().contains("not a url"));
}

#[test]
fn outcome_codes_are_the_documented_names() {
    let grant = TokenGrant {
        access_token: SecretString::from(ACCESS_TOKEN),
        expires_in: Duration::from_secs(1),
        scopes: Vec::new(),
        token_type: "Bearer".to_owned(),
        refresh_token: None,
        id_token: None,
    };
    let outcomes = [
        (Outcome::Refreshed(grant), "refreshed"),
        (
            Outcome::NeedsReconnect {
                error: "invalid_grant".to_owned(),
                description: None,
                subtype: None,
            },
            "needs_reconnect",
        ),
        (
            Outcome::ClientMisconfigured {
                error: "invalid_client".to_owned(),
                description: None,
            },
            "client_misconfigured",
        ),
        (
            Outcome::RequestRejected {
                error: "invalid_request".to_owned(),
                description: None,
            },
            "request_rejected",
        ),
        (
            Outcome::RetryLater {
                reason: "HTTP 503".to_owned(),
                status: Some(503),
                retry_after: None,
            },
            "retry_later",
        ),
        (
            Outcome::ProtocolError {
                detail: "x".to_owned(),
            },
            "protocol_error",
        ),
    ];
    for (outcome, code) in outcomes {
        assert_eq!(outcome.code(), code);
        assert!(outcome.to_string().starts_with(code), "{outcome}");
    }
}
