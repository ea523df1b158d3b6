//! Configuration and outcome codes.

use super::*;

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
        access_token: AccessToken::from(ACCESS_TOKEN),
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
