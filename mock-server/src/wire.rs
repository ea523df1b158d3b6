//! Google's exact bytes: the bodies, headers and error strings the real endpoints send.
//!
//! Everything the mock puts on the wire is spelled here, once, as observed from Google's token,
//! tokeninfo, revoke and Gmail endpoints. The module is public so another crate can test its
//! error classifier against every error Google sends ([`reference_errors`]) without copying
//! strings that would then drift apart; [`ReferenceError::to_step`] replays one through the mock.
//!
//! This module depends on nothing else in the crate: it is bytes only.

use serde::Serialize;

/// `content-type` of every JSON answer from the token endpoint.
pub const CONTENT_TYPE_JSON: &str = "application/json; charset=utf-8";
/// `content-type` of Google's HTML error pages.
pub const CONTENT_TYPE_HTML: &str = "text/html; charset=utf-8";
/// `cache-control` of every token-endpoint JSON answer.
pub const CACHE_CONTROL: &str = "no-cache, no-store, max-age=0, must-revalidate";
/// `pragma` of every token-endpoint JSON answer.
pub const PRAGMA: &str = "no-cache";
/// `expires` of every token-endpoint JSON answer.
pub const EXPIRES: &str = "Mon, 01 Jan 1990 00:00:00 GMT";

/// The headers of every token-endpoint JSON answer, names in lower case.
pub fn token_endpoint_headers() -> [(&'static str, &'static str); 4] {
    [
        ("content-type", CONTENT_TYPE_JSON),
        ("cache-control", CACHE_CONTROL),
        ("pragma", PRAGMA),
        ("expires", EXPIRES),
    ]
}

/// `token_type` of every access token.
pub const TOKEN_TYPE: &str = "Bearer";
/// Google access tokens start with this.
pub const ACCESS_TOKEN_PREFIX: &str = "ya29.";
/// Google refresh tokens usually start with this.
pub const REFRESH_TOKEN_PREFIX: &str = "1//";
/// `iss` of Google id_tokens.
pub const ID_TOKEN_ISSUER: &str = "https://accounts.google.com";

/// `error` codes of the token endpoint.
pub const INVALID_GRANT: &str = "invalid_grant";
/// `error` code for an unknown client or a wrong secret.
pub const INVALID_CLIENT: &str = "invalid_client";
/// `error` code for a deleted client.
pub const DELETED_CLIENT: &str = "deleted_client";
/// `error` code for a refresh token presented by a client it was not issued to.
pub const UNAUTHORIZED_CLIENT: &str = "unauthorized_client";
/// `error` code for a missing parameter.
pub const INVALID_REQUEST: &str = "invalid_request";
/// `error` code for any grant type but `refresh_token` (the mock supports no other).
pub const UNSUPPORTED_GRANT_TYPE: &str = "unsupported_grant_type";
/// `error` code for a requested scope that was not granted.
pub const INVALID_SCOPE: &str = "invalid_scope";
/// `error` code of Google's server faults.
pub const INTERNAL_FAILURE: &str = "internal_failure";
/// `error` code the mock journals for tokeninfo, revoke and API rejections.
pub const INVALID_TOKEN: &str = "invalid_token";

/// `error_description` of a revoked, expired or superseded refresh token.
pub const DESC_EXPIRED_OR_REVOKED: &str = "Token has been expired or revoked.";
/// `error_description` of a malformed or unknown refresh token.
pub const DESC_BAD_REQUEST: &str = "Bad Request";
/// `error_description` of the Workspace session-control (`invalid_rapt`) rejection.
pub const DESC_INVALID_RAPT: &str = "reauth related error (invalid_rapt)";
/// `error_description` of an unknown client id.
pub const DESC_CLIENT_NOT_FOUND: &str = "The OAuth client was not found.";
/// `error_description` of a wrong secret and of a token issued to another client.
pub const DESC_UNAUTHORIZED: &str = "Unauthorized";
/// `error_description` of a deleted client.
pub const DESC_CLIENT_DELETED: &str = "The OAuth client was deleted.";

/// `error_description` of a used, expired or foreign authorization code.
pub const DESC_MALFORMED_CODE: &str = "Malformed auth code.";
/// `error_description` of a code exchange without the PKCE verifier its sign-in asked for.
pub const DESC_MISSING_CODE_VERIFIER: &str = "Missing code verifier.";
/// `error_description` of a code exchange whose PKCE verifier does not match.
pub const DESC_INVALID_CODE_VERIFIER: &str = "Invalid code verifier.";
/// `error` code of a code exchange whose `redirect_uri` differs from the sign-in's.
pub const REDIRECT_URI_MISMATCH: &str = "redirect_uri_mismatch";
/// `error_description` of a service-account assertion with a bad signature.
pub const DESC_INVALID_JWT_SIGNATURE: &str = "Invalid JWT Signature.";
/// `error_description` of a service-account assertion whose `iat`/`exp` are off.
pub const DESC_JWT_NOT_SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";
/// `error_description` of an assertion from an unknown (or deleted) service account.
pub const DESC_ACCOUNT_NOT_FOUND: &str = "Invalid grant: account not found";
/// `error_description` of an assertion whose `aud` is not the token endpoint (wording a guess).
pub const DESC_JWT_AUDIENCE: &str = "Invalid JWT: Failed audience check.";
/// `error_description` of an assertion without a scope.
pub const DESC_INVALID_SA_SCOPE: &str = "Invalid OAuth scope or ID token audience provided.";
/// `error_description` of domain-wide delegation that was not granted.
pub const DESC_DELEGATION_DENIED: &str = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.";

/// Device flow: the user has not answered yet (status 428).
pub const AUTHORIZATION_PENDING: &str = "authorization_pending";
/// Device flow: polled sooner than the interval allows (status 403).
pub const SLOW_DOWN: &str = "slow_down";
/// Device flow and sign-in: the user refused (status 403 at the token endpoint).
pub const ACCESS_DENIED: &str = "access_denied";
/// Device flow: the device code's 30 minutes are over (status 400).
pub const EXPIRED_TOKEN: &str = "expired_token";
/// `error_description` of `authorization_pending`: the status's reason phrase, as Google sends.
pub const DESC_PRECONDITION_REQUIRED: &str = "Precondition Required";
/// `error_description` of `slow_down` and `access_denied`.
pub const DESC_FORBIDDEN: &str = "Forbidden";

/// `error_description` for a missing parameter: `Missing required parameter: <name>`.
pub fn missing_parameter(name: &str) -> String {
    format!("Missing required parameter: {name}")
}

/// `error_description` for a grant type other than `refresh_token`.
pub fn invalid_grant_type(grant_type: &str) -> String {
    format!("Invalid grant_type: {grant_type}")
}

/// `error_description` for requested scopes outside the grant.
pub fn invalid_scopes<S: AsRef<str>>(invalid: &[S]) -> String {
    let list: Vec<&str> = invalid.iter().map(AsRef::as_ref).collect();
    format!(
        "Some requested scopes were invalid. {{invalid=[{}]}}",
        list.join(", ")
    )
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

#[derive(Serialize)]
struct ErrorBodyWithSubtype<'a> {
    error: &'a str,
    error_description: &'a str,
    error_subtype: &'a str,
}

/// A token-endpoint error body: `{"error":"…","error_description":"…"}`, keys in that order.
pub fn error_body(error: &str, description: &str) -> String {
    to_json(&ErrorBody {
        error,
        error_description: description,
    })
}

/// The Workspace session-control rejection, with its `error_subtype`.
pub fn invalid_rapt_body() -> String {
    to_json(&ErrorBodyWithSubtype {
        error: INVALID_GRANT,
        error_description: DESC_INVALID_RAPT,
        error_subtype: "invalid_rapt",
    })
}

/// Google's server fault body: no description.
pub const INTERNAL_FAILURE_BODY: &str = r#"{"error":"internal_failure"}"#;

/// tokeninfo's answer to an invalid or expired access token (status 400).
pub const TOKENINFO_INVALID_BODY: &str = r#"{"error_description":"Invalid Value"}"#;

/// userinfo's answer to a missing, unknown or expired access token (status 401).
pub const USERINFO_INVALID_BODY: &str =
    r#"{"error":"invalid_request","error_description":"Invalid Credentials"}"#;

/// The revoke endpoint's answer to an unknown or already revoked token (status 400).
pub const REVOKE_INVALID_BODY: &str =
    r#"{"error":"invalid_token","error_description":"Token expired or revoked"}"#;

/// A Google API's answer to a missing, unknown, expired or revoked access token (status 401).
pub const API_UNAUTHENTICATED_BODY: &str = concat!(
    r#"{"error":{"code":401,"message":"Request had invalid authentication credentials. "#,
    r#"Expected OAuth 2 access token, login cookie or other valid authentication credential. "#,
    r#"See https://developers.google.com/identity/sign-in/web/devconsole-project.","#,
    r#""errors":[{"message":"Invalid Credentials","domain":"global","reason":"authError","#,
    r#""location":"Authorization","locationType":"header"}],"status":"UNAUTHENTICATED"}}"#
);

/// `www-authenticate` sent with [`API_UNAUTHENTICATED_BODY`].
pub const API_WWW_AUTHENTICATE: &str =
    r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#;

/// The HTML "Sorry..." page Google serves (status 403) when one token is refreshed too often from
/// many machines. A faithful reconstruction of the page's shape; its point is that it is HTML,
/// not JSON, and carries no machine-readable error.
pub const SORRY_HTML: &str = concat!(
    "<html><head><meta http-equiv=\"content-type\" content=\"text/html; charset=utf-8\"/>",
    "<title>Sorry...</title></head><body>",
    "<div style=\"margin-left: 4em;\"><h1>We're sorry...</h1>",
    "<p>... but your computer or network may be sending automated queries. ",
    "To protect our users, we can't process your request right now.</p></div>",
    "<div style=\"margin-left: 4em;\">See <a href=\"https://support.google.com/websearch/answer/86640\">",
    "Google Help</a> for more information.<br/><br/></div>",
    "</body></html>"
);

/// Serializes a body the mock built itself. Those types cannot fail to serialize; should that
/// ever change, the answer degrades to Google's own server-fault body rather than a panic.
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|err| {
        tracing::error!(%err, "mock-server could not serialize a response body");
        INTERNAL_FAILURE_BODY.to_string()
    })
}

/// One error Google sends: what it answers in one failure case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceError {
    /// A stable snake_case name for the case, e.g. `invalid_grant_revoked`.
    pub case: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// The exact body.
    pub body: String,
}

impl ReferenceError {
    /// The `content-type` Google sends with this body.
    pub fn content_type(&self) -> &'static str {
        if self.body.starts_with('<') {
            CONTENT_TYPE_HTML
        } else {
            CONTENT_TYPE_JSON
        }
    }
}

/// Every error Google's token endpoint is known to send, one entry per distinct body and
/// status: a classifier under test should be run against each.
///
/// The `server_fault_502` row reuses the `internal_failure` body: a 502 was seen, its body not.
pub fn reference_errors() -> Vec<ReferenceError> {
    let row = |case, status, body: String| ReferenceError { case, status, body };
    vec![
        row(
            "invalid_grant_revoked",
            400,
            error_body(INVALID_GRANT, DESC_EXPIRED_OR_REVOKED),
        ),
        row(
            "invalid_grant_bad_request",
            400,
            error_body(INVALID_GRANT, DESC_BAD_REQUEST),
        ),
        row("invalid_grant_invalid_rapt", 400, invalid_rapt_body()),
        row(
            "invalid_client_not_found",
            401,
            error_body(INVALID_CLIENT, DESC_CLIENT_NOT_FOUND),
        ),
        row(
            "invalid_client_unauthorized",
            401,
            error_body(INVALID_CLIENT, DESC_UNAUTHORIZED),
        ),
        row(
            "deleted_client",
            401,
            error_body(DELETED_CLIENT, DESC_CLIENT_DELETED),
        ),
        row(
            "unauthorized_client",
            401,
            error_body(UNAUTHORIZED_CLIENT, DESC_UNAUTHORIZED),
        ),
        row(
            "invalid_request_missing_refresh_token",
            400,
            error_body(INVALID_REQUEST, &missing_parameter("refresh_token")),
        ),
        row(
            "unsupported_grant_type",
            400,
            error_body(UNSUPPORTED_GRANT_TYPE, &invalid_grant_type("password")),
        ),
        row(
            "invalid_scope",
            400,
            error_body(
                INVALID_SCOPE,
                &invalid_scopes(&["https://www.googleapis.com/auth/drive"]),
            ),
        ),
        row(
            "internal_failure_500",
            500,
            INTERNAL_FAILURE_BODY.to_string(),
        ),
        row(
            "internal_failure_503",
            503,
            INTERNAL_FAILURE_BODY.to_string(),
        ),
        row("server_fault_502", 502, INTERNAL_FAILURE_BODY.to_string()),
        row("rate_limited_sorry_html", 403, SORRY_HTML.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_keep_googles_key_order() {
        assert_eq!(
            error_body(INVALID_GRANT, DESC_BAD_REQUEST),
            r#"{"error":"invalid_grant","error_description":"Bad Request"}"#
        );
        assert_eq!(
            invalid_rapt_body(),
            r#"{"error":"invalid_grant","error_description":"reauth related error (invalid_rapt)","error_subtype":"invalid_rapt"}"#
        );
    }

    #[test]
    fn reference_errors_cover_every_row_of_the_reference_once() {
        let rows = reference_errors();
        let cases: std::collections::HashSet<_> = rows.iter().map(|r| r.case).collect();
        assert_eq!(cases.len(), rows.len(), "case names must be unique");
        for expected in [
            "invalid_grant_revoked",
            "invalid_grant_bad_request",
            "invalid_grant_invalid_rapt",
            "invalid_client_not_found",
            "invalid_client_unauthorized",
            "deleted_client",
            "unauthorized_client",
            "invalid_request_missing_refresh_token",
            "unsupported_grant_type",
            "invalid_scope",
            "internal_failure_500",
            "internal_failure_503",
            "rate_limited_sorry_html",
        ] {
            assert!(cases.contains(expected), "missing {expected}");
        }
        for row in &rows {
            if row.content_type() == CONTENT_TYPE_JSON {
                let parsed: serde_json::Value =
                    serde_json::from_str(&row.body).expect("JSON rows parse");
                assert!(parsed["error"].is_string(), "{}", row.case);
            }
        }
    }

    #[test]
    fn invalid_scope_description_lists_the_scopes_like_google() {
        assert_eq!(
            invalid_scopes(&["a", "b"]),
            "Some requested scopes were invalid. {invalid=[a, b]}"
        );
    }

    #[test]
    fn api_unauthenticated_body_is_valid_json_with_googles_shape() {
        let parsed: serde_json::Value =
            serde_json::from_str(API_UNAUTHENTICATED_BODY).expect("valid JSON");
        assert_eq!(parsed["error"]["code"], 401);
        assert_eq!(parsed["error"]["status"], "UNAUTHENTICATED");
        assert_eq!(parsed["error"]["errors"][0]["reason"], "authError");
    }
}
