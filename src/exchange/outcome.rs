//! What a token exchange reports: the classified [`Outcome`], the [`TokenGrant`] on success and
//! one [`Attempt`] per HTTP try.
//!
//! These are the values other modules act on (store the new token, mark the credential as
//! needing a reconnect, cool down), so each variant names one decision, and nothing here can
//! print a token: `Debug` is written by hand and redacts every secret.

use super::code;
use std::fmt;
use std::time::Duration;

use crate::secret::{AccessToken, IdToken, RefreshToken, REDACTED};

/// The result of one refresh: the classified outcome and every try that led to it.
pub struct Exchange {
    /// What happened, after any retries.
    pub outcome: Outcome,
    /// One entry per HTTP try, in order; never empty.
    pub attempts: Vec<Attempt>,
}

/// One HTTP try at the token endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The HTTP status, or `None` when no response arrived (timeout, reset, refused connection).
    pub status: Option<u16>,
    /// What this try amounted to: one of the [`attempt_class`] constants.
    pub class: &'static str,
    /// How long the exchange slept before this try (zero for the first).
    pub waited_before: Duration,
    /// How long this try took, from sending the request to classifying the answer.
    pub duration: Duration,
}

/// The values of [`Attempt::class`].
///
/// A try that ended the exchange with a definite answer carries the [`Outcome::code`] of that
/// answer; a transient failure (one that is retried) carries a finer class saying which kind.
pub mod attempt_class {
    /// HTTP 200 with a usable token.
    pub const REFRESHED: &str = crate::exchange::code::REFRESHED;
    /// `invalid_grant`: the user must reconnect.
    pub const NEEDS_RECONNECT: &str = crate::exchange::code::NEEDS_RECONNECT;
    /// `invalid_client`, `deleted_client`, `unauthorized_client`.
    pub const CLIENT_MISCONFIGURED: &str = crate::exchange::code::CLIENT_MISCONFIGURED;
    /// Any other OAuth error JSON at a 4xx status.
    pub const REQUEST_REJECTED: &str = crate::exchange::code::REQUEST_REJECTED;
    /// A response that breaks the protocol (bad success body, a redirect).
    pub const PROTOCOL_ERROR: &str = crate::exchange::code::PROTOCOL_ERROR;
    /// Transient: a 5xx status, or the JSON errors `internal_failure`, `server_error`,
    /// `temporarily_unavailable`.
    pub const SERVER_ERROR: &str = "server_error";
    /// Transient: HTTP 429.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// Transient: HTTP 408.
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
    /// Transient: an error page that is not JSON at a 4xx status (Google's 403 "Sorry…" page).
    pub const NON_JSON_ERROR: &str = "non_json_error";
    /// Transient: no complete response within the request timeout.
    pub const TIMEOUT: &str = "timeout";
    /// Transient: the connection could not be made, or broke before a complete response.
    pub const CONNECTION: &str = "connection";
}

/// What a refresh amounted to. Each variant is one decision for the caller.
pub enum Outcome {
    /// Google issued a new access token.
    Refreshed(TokenGrant),
    /// `invalid_grant` (revoked, expired, password changed, `invalid_rapt`, …): the stored
    /// refresh token is dead and the user must reconnect. Never retried.
    NeedsReconnect {
        /// The OAuth `error` code, e.g. `invalid_grant`.
        error: String,
        /// The server's `error_description`, if any (scrubbed of our secrets).
        description: Option<String>,
        /// Google's `error_subtype`, e.g. `invalid_rapt`.
        subtype: Option<String>,
    },
    /// `invalid_client`, `deleted_client`, `unauthorized_client`: the OAuth client (id, secret,
    /// or the pairing of refresh token and client) is wrong. Never retried.
    ClientMisconfigured {
        /// The OAuth `error` code.
        error: String,
        /// The server's `error_description`, if any (scrubbed of our secrets).
        description: Option<String>,
    },
    /// Any other OAuth error at a 4xx status (`invalid_request`, `invalid_scope`,
    /// `unsupported_grant_type`, …): our request is wrong. Not retried.
    RequestRejected {
        /// The OAuth `error` code, or `unrecognised_error` for a JSON body without one.
        error: String,
        /// The server's `error_description`, if any (scrubbed of our secrets).
        description: Option<String>,
    },
    /// A transient failure that outlasted the retries: 5xx, 429, 408, a non-JSON error page,
    /// a timeout, a dropped connection.
    RetryLater {
        /// What the last try ran into, in words; never quotes a body.
        reason: String,
        /// The last try's HTTP status, `None` when no response arrived.
        status: Option<u16>,
        /// The last response's `Retry-After`, as the server sent it (not capped).
        retry_after: Option<Duration>,
    },
    /// HTTP 200 (or another non-error answer) that breaks the protocol: malformed JSON, no
    /// `access_token`, no numeric `expires_in`, no `token_type`, a redirect. Never retried.
    ProtocolError {
        /// What is wrong, in words; never quotes a body.
        detail: String,
    },
}

impl Outcome {
    /// A stable, machine-readable name for the variant: `refreshed`, `needs_reconnect`,
    /// `client_misconfigured`, `request_rejected`, `retry_later` or `protocol_error`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Refreshed(_) => code::REFRESHED,
            Outcome::NeedsReconnect { .. } => code::NEEDS_RECONNECT,
            Outcome::ClientMisconfigured { .. } => code::CLIENT_MISCONFIGURED,
            Outcome::RequestRejected { .. } => code::REQUEST_REJECTED,
            Outcome::RetryLater { .. } => code::RETRY_LATER,
            Outcome::ProtocolError { .. } => code::PROTOCOL_ERROR,
        }
    }
}

/// The token response of a successful refresh.
pub struct TokenGrant {
    /// The new access token.
    pub access_token: AccessToken,
    /// Lifetime of the access token as the server stated it (`expires_in`).
    pub expires_in: Duration,
    /// The granted scopes (`scope`, space-separated on the wire); empty when the server sent none.
    pub scopes: Vec<String>,
    /// `Bearer` for Google. `oauth2` lowercases the value; `bearer` is reported as `Bearer`,
    /// anything else as received in lowercase.
    pub token_type: String,
    /// A new refresh token, present only when the server rotated it (Google does not; other
    /// providers do). When `None`, keep using the old one.
    pub refresh_token: Option<RefreshToken>,
    /// An OpenID Connect ID token, present only when the `openid` scope was granted.
    pub id_token: Option<IdToken>,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("access_token", &REDACTED)
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .field("token_type", &self.token_type)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| REDACTED),
            )
            .field("id_token", &self.id_token.as_ref().map(|_| REDACTED))
            .finish()
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Refreshed(grant) => f.debug_tuple("Refreshed").field(grant).finish(),
            Outcome::NeedsReconnect {
                error,
                description,
                subtype,
            } => f
                .debug_struct("NeedsReconnect")
                .field("error", error)
                .field("description", description)
                .field("subtype", subtype)
                .finish(),
            Outcome::ClientMisconfigured { error, description } => f
                .debug_struct("ClientMisconfigured")
                .field("error", error)
                .field("description", description)
                .finish(),
            Outcome::RequestRejected { error, description } => f
                .debug_struct("RequestRejected")
                .field("error", error)
                .field("description", description)
                .finish(),
            Outcome::RetryLater {
                reason,
                status,
                retry_after,
            } => f
                .debug_struct("RetryLater")
                .field("reason", reason)
                .field("status", status)
                .field("retry_after", retry_after)
                .finish(),
            Outcome::ProtocolError { detail } => f
                .debug_struct("ProtocolError")
                .field("detail", detail)
                .finish(),
        }
    }
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("outcome", &self.outcome)
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// `code: error[subtype]: description`, for the OAuth-error variants.
fn write_oauth_error(
    f: &mut fmt::Formatter<'_>,
    code: &str,
    error: &str,
    subtype: Option<&str>,
    description: Option<&str>,
) -> fmt::Result {
    write!(f, "{code}: {error}")?;
    if let Some(subtype) = subtype {
        write!(f, " [{subtype}]")?;
    }
    if let Some(description) = description {
        write!(f, ": {description}")?;
    }
    Ok(())
}

/// One line for a person: the [`Outcome::code`] and what happened. Never contains a token.
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code();
        match self {
            Outcome::Refreshed(grant) => {
                write!(
                    f,
                    "{code}: new {} access token valid for {} s",
                    grant.token_type,
                    grant.expires_in.as_secs()
                )?;
                if !grant.scopes.is_empty() {
                    write!(f, ", scopes: {}", grant.scopes.join(" "))?;
                }
                if grant.refresh_token.is_some() {
                    write!(f, ", refresh token rotated")?;
                }
                Ok(())
            }
            Outcome::NeedsReconnect {
                error,
                description,
                subtype,
            } => write_oauth_error(f, code, error, subtype.as_deref(), description.as_deref()),
            Outcome::ClientMisconfigured { error, description }
            | Outcome::RequestRejected { error, description } => {
                write_oauth_error(f, code, error, None, description.as_deref())
            }
            Outcome::RetryLater {
                reason,
                retry_after,
                ..
            } => {
                write!(f, "{code}: {reason}")?;
                if let Some(after) = retry_after {
                    write!(f, " (server asked to wait {} s)", after.as_secs())?;
                }
                Ok(())
            }
            Outcome::ProtocolError { detail } => write!(f, "{code}: {detail}"),
        }
    }
}
