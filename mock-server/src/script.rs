//! Scripts: what the Nth request to an endpoint gets, when a scenario wants Google to misbehave.
//!
//! A scenario rarely wants Google to fail forever; it wants "the first refresh gets a 503, the
//! second works" or "the connection drops once". A script is a queue of [`Step`]s consumed one
//! per request; when it runs out the mock behaves as Google again.

use std::fmt;
use std::time::Duration;

use crate::wire::{self, ReferenceError};

/// What one request gets.
#[derive(Clone, PartialEq, Eq)]
pub enum Action {
    /// Behave as Google does, statefully.
    Google,
    /// A canned answer: exactly this status, these headers (in order) and these body bytes.
    Respond {
        /// HTTP status; anything outside 200..=599 is answered with a 500 and journaled as a
        /// script error.
        status: u16,
        /// Headers, sent as given. No `content-type` is added unless listed here.
        headers: Vec<(String, String)>,
        /// The body, byte for byte.
        body: String,
    },
    /// Close the connection without sending any response.
    Drop,
    /// Revoke the presented token first (refresh token at the token endpoint, bearer token at the
    /// API), then answer as Google would: `invalid_grant` "Token has been expired or revoked.".
    RevokeThenGoogle,
}

impl fmt::Debug for Action {
    /// Canned bodies may hold tokens: the body is shown by length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Google => f.write_str("Google"),
            Self::Respond {
                status,
                headers,
                body,
            } => f
                .debug_struct("Respond")
                .field("status", status)
                .field("headers", headers)
                .field("body", &format_args!("[{} bytes]", body.len()))
                .finish(),
            Self::Drop => f.write_str("Drop"),
            Self::RevokeThenGoogle => f.write_str("RevokeThenGoogle"),
        }
    }
}

/// One entry of a script: an [`Action`], how long to wait before answering, and how far the
/// mock clock moves when the request arrives.
///
/// The delay is applied after the mock has handled the request (state changes such as an issued
/// token happen immediately; only the answer is late), which models a slow network on the way
/// back. A delay on [`Action::Drop`] is ignored: the connection is closed at once.
///
/// The clock advance happens before the request is handled: time passes on the mock clock
/// between the previous request and this one (a token expires, a revocation takes effect).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What the request gets.
    pub action: Action,
    /// How long the answer is held back.
    pub delay: Duration,
    /// How far the mock clock moves forward when this request arrives, before it is handled
    /// (at most to [`MAX_CLOCK_OFFSET`](crate::MAX_CLOCK_OFFSET)).
    pub advance_clock: Duration,
}

impl Step {
    /// Behave as Google.
    pub fn google() -> Self {
        Action::Google.into()
    }

    /// A canned answer. A `content-type` is chosen from the body, so that clients which insist
    /// on one (the `oauth2` crate does) parse it: JSON objects and arrays get
    /// `application/json; charset=utf-8`, bodies starting with `<` get
    /// `text/html; charset=utf-8`, other non-empty bodies `text/plain; charset=utf-8`, an empty
    /// body none. Replace it with [`Step::with_header`] or build [`Action::Respond`] directly for
    /// full control.
    pub fn respond(status: u16, body: impl Into<String>) -> Self {
        let body = body.into();
        let trimmed = body.trim_start();
        let content_type = if trimmed.starts_with('{') || trimmed.starts_with('[') {
            Some(wire::CONTENT_TYPE_JSON)
        } else if trimmed.starts_with('<') {
            Some(wire::CONTENT_TYPE_HTML)
        } else if body.is_empty() {
            None
        } else {
            Some("text/plain; charset=utf-8")
        };
        let headers = content_type
            .map(|ct| vec![("content-type".to_string(), ct.to_string())])
            .unwrap_or_default();
        Action::Respond {
            status,
            headers,
            body,
        }
        .into()
    }

    /// Close the connection without a response.
    pub fn drop() -> Self {
        Action::Drop.into()
    }

    /// Revoke the presented token, then answer as Google.
    pub fn revoke_then_google() -> Self {
        Action::RevokeThenGoogle.into()
    }

    /// Hold the answer back for `delay`.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Move the mock clock forward by `by` when this request arrives, before it is handled.
    pub fn with_clock_advance(mut self, by: Duration) -> Self {
        self.advance_clock = by;
        self
    }

    /// Sets a header of a canned answer, replacing any header of the same name (case-insensitive).
    /// Has no effect on steps that are not [`Action::Respond`].
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let Action::Respond { headers, .. } = &mut self.action {
            let name = name.into();
            headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(&name));
            headers.push((name, value.into()));
        }
        self
    }
}

impl From<Action> for Step {
    fn from(action: Action) -> Self {
        Self {
            action,
            delay: Duration::ZERO,
            advance_clock: Duration::ZERO,
        }
    }
}

impl ReferenceError {
    /// A script step that answers with exactly this error and Google's headers.
    pub fn to_step(&self) -> Step {
        let step = Step::respond(self.status, self.body.clone())
            .with_header("content-type", self.content_type());
        if self.body.starts_with('<') {
            step
        } else {
            step.with_header("cache-control", wire::CACHE_CONTROL)
                .with_header("pragma", wire::PRAGMA)
                .with_header("expires", wire::EXPIRES)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respond_infers_a_content_type_that_with_header_can_replace() {
        let step = Step::respond(429, r#"{"error":"rate_limit_exceeded"}"#)
            .with_header("Retry-After", "7")
            .with_header("Content-Type", "application/problem+json");
        let Action::Respond { headers, .. } = &step.action else {
            panic!("respond builds a Respond action");
        };
        assert_eq!(
            headers,
            &vec![
                ("Retry-After".to_string(), "7".to_string()),
                (
                    "Content-Type".to_string(),
                    "application/problem+json".to_string()
                ),
            ]
        );
    }

    #[test]
    fn debug_of_a_canned_answer_hides_its_body() {
        let step = Step::respond(200, r#"{"access_token":"ya29.secret-value"}"#);
        let printed = format!("{step:?}");
        assert!(!printed.contains("ya29.secret-value"), "{printed}");
        assert!(printed.contains("bytes"), "{printed}");
    }

    #[test]
    fn empty_and_html_bodies_get_matching_content_types() {
        let empty = Step::respond(204, "");
        assert!(matches!(&empty.action, Action::Respond { headers, .. } if headers.is_empty()));
        let html = Step::respond(403, "<html></html>");
        assert!(matches!(
            &html.action,
            Action::Respond { headers, .. } if headers[0].1 == wire::CONTENT_TYPE_HTML
        ));
    }
}
