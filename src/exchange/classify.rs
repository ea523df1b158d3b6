//! Turns one try — `oauth2`'s result plus the raw response kept beside it — into an
//! [`Outcome`], the [`Attempt::class`](super::Attempt::class) of the try and any `Retry-After`.
//!
//! All of the knowledge of Google's answers lives here; `tests/errors.rs` holds one test row
//! per answer Google is known to give. Messages are built from status codes, media
//! types, field names and JSON kinds only: never from a body or a serde/`oauth2` error message,
//! since those can quote a token.

use std::time::Duration;

use chrono::Utc;
use oauth2::basic::BasicTokenType;
use oauth2::{RequestTokenError, TokenResponse};
use secrecy::SecretString;
use serde_json::Value;

use crate::secret::{AccessToken, IdToken, RefreshToken};

use super::outcome::attempt_class;
use super::retry::parse_retry_after;
use super::transport::{Captured, TransportError};
use super::wire::{GoogleErrorResponse, GoogleTokenResponse};
use super::{Outcome, TokenGrant};

/// What `oauth2` returned for one try.
pub(crate) type OAuthResult =
    Result<GoogleTokenResponse, RequestTokenError<TransportError, GoogleErrorResponse>>;

/// OAuth `error` codes that mean the refresh token is dead.
const RECONNECT_ERRORS: &[&str] = &["invalid_grant", "invalid_rapt"];
/// OAuth `error` codes that mean the client configuration is wrong.
const CLIENT_ERRORS: &[&str] = &["invalid_client", "deleted_client", "unauthorized_client"];
/// OAuth `error` codes that mean "try again", whatever the status (as in `google-auth`).
const TRANSIENT_ERRORS: &[&str] = &[
    "internal_failure",
    "server_error",
    "temporarily_unavailable",
];

/// Longest server-chosen text passed on; more is cut.
const MAX_SERVER_TEXT_CHARS: usize = 300;

/// The verdict on one try.
pub(crate) struct Verdict {
    pub(crate) outcome: Outcome,
    pub(crate) class: &'static str,
    pub(crate) status: Option<u16>,
    /// The server's `Retry-After`, for transient failures only.
    pub(crate) retry_after: Option<Duration>,
}

impl Verdict {
    /// A definite answer: the class is the outcome's code.
    fn definite(outcome: Outcome, status: Option<u16>) -> Self {
        Self {
            class: outcome.code(),
            outcome,
            status,
            retry_after: None,
        }
    }

    /// A transient failure, with the response's `Retry-After` if it had one.
    fn transient(
        class: &'static str,
        reason: String,
        status: Option<u16>,
        captured: Option<&Captured>,
    ) -> Self {
        let retry_after = captured
            .and_then(Captured::retry_after)
            .and_then(|value| parse_retry_after(value, Utc::now()));
        Self {
            outcome: Outcome::RetryLater {
                reason,
                status,
                retry_after,
            },
            class,
            status,
            retry_after,
        }
    }
}

/// Removes the secrets we sent from text the server chose, and bounds its length.
pub(crate) struct Scrubber {
    secrets: Vec<SecretString>,
}

impl Scrubber {
    /// Secrets shorter than 4 characters are ignored (they would match ordinary words).
    /// Each secret is also looked for form-urlencoded (`1//x` as `1%2F%2Fx`), as it was sent.
    pub(crate) fn new(secrets: impl IntoIterator<Item = SecretString>) -> Self {
        use secrecy::ExposeSecret;
        let mut kept = Vec::new();
        for secret in secrets {
            let encoded: String =
                url::form_urlencoded::byte_serialize(secret.expose_secret().as_bytes()).collect();
            if encoded != secret.expose_secret() {
                kept.push(SecretString::from(encoded));
            }
            kept.push(secret);
        }
        kept.retain(|s| s.expose_secret().chars().count() >= 4);
        Self { secrets: kept }
    }

    /// Replaces each secret we sent by `[redacted]`, and nothing else.
    pub(crate) fn redact(&self, text: &str) -> String {
        use secrecy::ExposeSecret;
        let mut out = text.to_owned();
        for secret in &self.secrets {
            out = out.replace(secret.expose_secret(), "[redacted]");
        }
        out
    }

    /// [`redact`](Self::redact), then control characters become spaces and the text is cut to
    /// a bounded length.
    pub(crate) fn clean(&self, text: &str) -> String {
        let mut out: String = self
            .redact(text)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if let Some((cut, _)) = out.char_indices().nth(MAX_SERVER_TEXT_CHARS) {
            out.truncate(cut);
            out.push('…');
        }
        out
    }
}

/// Classifies one try.
pub(crate) fn classify(
    result: OAuthResult,
    captured: Option<Captured>,
    scrub: &Scrubber,
) -> Verdict {
    let status = captured.as_ref().map(|c| c.status.as_u16());
    match result {
        Ok(token) => match grant_from(&token, scrub) {
            Ok(grant) => Verdict::definite(Outcome::Refreshed(grant), status),
            Err(detail) => Verdict::definite(Outcome::ProtocolError { detail }, status),
        },
        Err(RequestTokenError::Request(failure)) => {
            from_transport(&failure, status, captured.as_ref())
        }
        Err(RequestTokenError::ServerResponse(error)) => {
            from_oauth_error(&error, status, captured.as_ref(), scrub)
        }
        // `Parse` and `Other` carry messages that may quote the body: look at the raw response
        // instead.
        Err(RequestTokenError::Parse(..) | RequestTokenError::Other(_)) => match captured {
            Some(c) if c.status.as_u16() == 200 => Verdict::definite(
                Outcome::ProtocolError {
                    detail: describe_bad_success(&c),
                },
                status,
            ),
            Some(c) => from_unreadable_failure(&c, None),
            // Nothing was sent: `oauth2` could not build the request.
            None => Verdict::definite(
                Outcome::RequestRejected {
                    error: "request_not_built".to_owned(),
                    description: Some("oauth2 could not build the token request".to_owned()),
                },
                None,
            ),
        },
    }
}

fn from_transport(
    failure: &TransportError,
    status: Option<u16>,
    captured: Option<&Captured>,
) -> Verdict {
    let reason = failure.to_string();
    match failure {
        TransportError::Timeout(_) => {
            Verdict::transient(attempt_class::TIMEOUT, reason, status, captured)
        }
        TransportError::Connect(_) | TransportError::Interrupted(_) => {
            Verdict::transient(attempt_class::CONNECTION, reason, status, captured)
        }
        // A huge error page is still an error page: classify it by its status.
        TransportError::TooLarge(limit) => match captured {
            Some(c) if c.status.as_u16() != 200 => from_unreadable_failure(c, Some(*limit)),
            _ => Verdict::definite(
                Outcome::ProtocolError {
                    detail: format!("success body is longer than {limit} bytes"),
                },
                status,
            ),
        },
        TransportError::Build(_) => Verdict::definite(
            Outcome::RequestRejected {
                error: "request_not_built".to_owned(),
                description: Some(reason),
            },
            status,
        ),
    }
}

/// The class of a status that is transient whatever the body says.
fn transient_status_class(status: u16) -> Option<&'static str> {
    match status {
        500..=599 => Some(attempt_class::SERVER_ERROR),
        429 => Some(attempt_class::RATE_LIMITED),
        408 => Some(attempt_class::REQUEST_TIMEOUT),
        _ => None,
    }
}

fn from_oauth_error(
    body: &GoogleErrorResponse,
    status: Option<u16>,
    captured: Option<&Captured>,
    scrub: &Scrubber,
) -> Verdict {
    let error = scrub.clean(&body.error);
    let description = body.error_description.as_deref().map(|d| scrub.clean(d));
    let code = body.error.as_str();

    if RECONNECT_ERRORS.contains(&code) {
        let subtype = body.error_subtype.as_deref().map(|s| scrub.clean(s));
        return Verdict::definite(
            Outcome::NeedsReconnect {
                error,
                description,
                subtype,
            },
            status,
        );
    }
    if CLIENT_ERRORS.contains(&code) {
        return Verdict::definite(Outcome::ClientMisconfigured { error, description }, status);
    }
    let status_class = status.and_then(transient_status_class);
    if TRANSIENT_ERRORS.contains(&code) || status_class.is_some() {
        let mut reason = match status {
            Some(s) => format!("HTTP {s}: {error}"),
            None => error,
        };
        if let Some(description) = &description {
            reason.push_str(": ");
            reason.push_str(description);
        }
        let class = status_class.unwrap_or(attempt_class::SERVER_ERROR);
        return Verdict::transient(class, reason, status, captured);
    }
    Verdict::definite(Outcome::RequestRejected { error, description }, status)
}

/// A non-200 answer whose body is not an OAuth error object (or, with `too_long`, whose body
/// went on past that many bytes and was not read).
fn from_unreadable_failure(c: &Captured, too_long: Option<usize>) -> Verdict {
    let status = c.status.as_u16();
    let is_json = too_long.is_none() && serde_json::from_slice::<Value>(&c.body).is_ok();
    let body = if let Some(limit) = too_long {
        format!("a body longer than {limit} bytes")
    } else if c.body.is_empty() {
        "an empty body".to_owned()
    } else if is_json {
        "a JSON body that is not an OAuth error".to_owned()
    } else {
        format!(
            "a non-JSON body ({})",
            c.media_type().as_deref().unwrap_or("no Content-Type")
        )
    };
    let summary = format!("HTTP {status} with {body}");

    if let Some(class) = transient_status_class(status) {
        return Verdict::transient(class, summary, Some(status), Some(c));
    }
    if c.status.is_redirection() {
        return Verdict::definite(
            Outcome::ProtocolError {
                detail: format!(
                    "HTTP {status} redirect not followed (redirects are off: is the token URL right?)"
                ),
            },
            Some(status),
        );
    }
    if c.status.is_success() || c.status.is_informational() {
        return Verdict::definite(
            Outcome::ProtocolError {
                detail: format!("{summary} instead of HTTP 200 with a token"),
            },
            Some(status),
        );
    }
    if is_json {
        return Verdict::definite(
            Outcome::RequestRejected {
                error: "unrecognised_error".to_owned(),
                description: Some(summary),
            },
            Some(status),
        );
    }
    // An HTML or empty error page (Google's 403 "Sorry…"): no machine-readable signal.
    Verdict::transient(
        attempt_class::NON_JSON_ERROR,
        summary,
        Some(status),
        Some(c),
    )
}

/// `a string`, `a number`, … for messages about a field's JSON type.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Why a 200 body did not make a token response, in words that quote nothing from it.
fn describe_bad_success(c: &Captured) -> String {
    if c.body.is_empty() {
        return "success body is empty".to_owned();
    }
    let media = c.media_type();
    let media = media.as_deref().unwrap_or("no Content-Type");
    let Ok(value) = serde_json::from_slice::<Value>(&c.body) else {
        return format!("body is not JSON ({media}, {} bytes)", c.body.len());
    };
    let Some(fields) = value.as_object() else {
        return format!("success body is {}, not a JSON object", json_kind(&value));
    };

    match fields.get("access_token") {
        None => return "success body has no access_token".to_owned(),
        Some(Value::String(_)) => {}
        Some(other) => return format!("access_token is {}, not a string", json_kind(other)),
    }
    match fields.get("token_type") {
        None => return "success body has no token_type".to_owned(),
        Some(Value::String(_)) => {}
        Some(other) => return format!("token_type is {}, not a string", json_kind(other)),
    }
    match fields.get("expires_in") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.is_u64() => {}
        Some(Value::Number(_)) => {
            return "expires_in is a negative or fractional number, not whole seconds".to_owned()
        }
        Some(other) => return format!("expires_in is {}, not a number", json_kind(other)),
    }
    for name in ["scope", "refresh_token", "id_token"] {
        match fields.get(name) {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(other) => return format!("{name} is {}, not a string", json_kind(other)),
        }
    }
    if c.media_type().is_some() && !c.media_type_is_json() {
        return format!(
            "success body is JSON but its Content-Type is {media}, not application/json"
        );
    }
    "success body does not have the shape of a token response".to_owned()
}

/// Checks what `oauth2` accepted but a usable grant needs, and copies it into secrets. The
/// fields that are shown (scopes, token type) have the secrets we sent redacted, should the
/// server echo one there.
fn grant_from(token: &GoogleTokenResponse, scrub: &Scrubber) -> Result<TokenGrant, String> {
    let access_token = token.access_token().secret();
    if access_token.trim().is_empty() {
        return Err("access_token is empty".to_owned());
    }
    let expires_in = token
        .expires_in()
        .ok_or_else(|| "success body has no expires_in".to_owned())?;
    let token_type = match token.token_type() {
        BasicTokenType::Bearer => "Bearer".to_owned(),
        other => scrub.redact(other.as_ref()),
    };
    if token_type.trim().is_empty() {
        return Err("token_type is empty".to_owned());
    }
    let refresh_token = match token.refresh_token() {
        Some(rotated) if rotated.secret().trim().is_empty() => {
            return Err("refresh_token is present but empty".to_owned())
        }
        Some(rotated) => Some(RefreshToken::from(rotated.secret().as_str())),
        None => None,
    };
    let id_token = token
        .extra_fields()
        .id_token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(IdToken::from);
    let scopes = token
        .scopes()
        .map(|scopes| scopes.iter().map(|s| scrub.redact(s.as_str())).collect())
        .unwrap_or_default();

    Ok(TokenGrant {
        access_token: AccessToken::from(access_token.as_str()),
        expires_in,
        scopes,
        token_type,
        refresh_token,
        id_token,
    })
}
