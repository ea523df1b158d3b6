//! What every endpoint handler takes and gives back: the per-request context ([`Ctx`], the
//! state Google's logic reads or changes) and the answer before it becomes an HTTP response
//! ([`Reply`]). Below the handlers (`google`, `authorize`, `device`, `oidc`, `service_account`)
//! and above the stores it borrows, so each handler depends on it and none on another's
//! dispatch.

use serde::Serialize;

use crate::accounts::ServiceAccounts;
use crate::config::{ClientRegistration, MockConfig};
use crate::sign_in::SignIn;
use crate::signing::Keys;
use crate::tokens::TokenStore;
use crate::wire;

/// An answer, before it becomes an HTTP response.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
    /// What the journal records as the error code.
    pub(crate) error: Option<String>,
}

impl Reply {
    pub(crate) fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            error: None,
        }
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub(crate) fn error(mut self, code: &str) -> Self {
        self.error = Some(code.to_string());
        self
    }

    /// A JSON answer with the token endpoint's headers.
    pub(crate) fn token_json(status: u16, body: String) -> Self {
        let mut reply = Self::new(status, body);
        for (name, value) in wire::token_endpoint_headers() {
            reply = reply.header(name, value);
        }
        reply
    }

    pub(crate) fn token_error(status: u16, error: &str, description: &str) -> Self {
        Self::token_json(status, wire::error_body(error, description)).error(error)
    }

    pub(crate) fn method_not_allowed(allow: &str) -> Self {
        Self::new(405, "")
            .header("allow", allow)
            .error("method_not_allowed")
    }

    /// A canned answer from a script step, journaled with the `error` its body names, if any.
    pub(crate) fn canned(status: u16, headers: &[(String, String)], body: &str) -> Self {
        let error = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|json| match &json["error"] {
                serde_json::Value::String(code) => Some(code.clone()),
                serde_json::Value::Object(api) => api["status"].as_str().map(str::to_string),
                _ => None,
            });
        Self {
            status,
            headers: headers.to_vec(),
            body: body.to_string(),
            error,
        }
    }
}

/// Everything the Google logic reads or changes.
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a MockConfig,
    pub(crate) clients: &'a [ClientRegistration],
    pub(crate) tokens: &'a mut TokenStore,
    pub(crate) now_ms: i64,
    /// The mock's own base URL, for the discovery document.
    pub(crate) base_url: &'a str,
    /// The keys that sign id_tokens.
    pub(crate) keys: &'a Keys,
    /// Authorization codes and past consents.
    pub(crate) sign_in: &'a mut SignIn,
    /// Service accounts created through the mock's owner.
    pub(crate) service_accounts: &'a ServiceAccounts,
}

/// A duration in milliseconds, as the mock clock counts (saturating).
pub(crate) fn ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A token endpoint success body, keys in Google's order.
#[derive(Serialize)]
pub(crate) struct TokenSuccess<'a> {
    pub(crate) access_token: &'a str,
    pub(crate) expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<&'a str>,
    pub(crate) scope: &'a str,
    pub(crate) token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id_token: Option<&'a str>,
}
