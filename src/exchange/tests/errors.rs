//! Every error Google's token endpoint is known to return, and what each must become.

use super::*;

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
