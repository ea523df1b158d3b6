//! The token exchange with Google: one `refresh_token` grant, classified, with bounded retries.
//!
//! Why this module exists: proving that an application's token refresh works starts with doing
//! the refresh exactly as a mature client would, and saying precisely *why* it failed when it
//! does. Google's token endpoint answers with a handful of well-known shapes (the classifier in
//! `classify.rs` and one test per shape): `invalid_grant` means the user must reconnect
//! and must never be retried; `invalid_client` and kin mean our client configuration is wrong;
//! 5xx, 429, 408, HTML "Sorry…" pages, timeouts and dropped connections are transient. This
//! module turns every response into one [`Outcome`] and records every try as an [`Attempt`].
//!
//! It knows nothing of databases or encryption: the caller hands it the secrets in a
//! [`RefreshRequest`] and gets back an [`Exchange`].
//!
//! The grant itself is done by the `oauth2` crate (v5) over an injected [`reqwest::Client`].
//! Because `oauth2`'s error type drops the HTTP status and `Retry-After`, and turns non-JSON
//! error pages into a parse error, the HTTP function handed to `oauth2` also keeps a copy of the
//! raw response; classification looks at both.
//!
//! # Security
//!
//! Tokens and the client secret travel only as their own [`crate::secret`] types (or `oauth2`'s
//! redacted secret types): the request takes a [`RefreshToken`](crate::secret::RefreshToken), the
//! grant gives an [`AccessToken`](crate::secret::AccessToken). Every type here that can hold one has a hand-written, redacted `Debug`.
//! Messages built from a response never quote a body or a serde error (those can quote a token);
//! strings the server chose (`error_description`, …) are scrubbed of the secrets we sent.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), oauthtest::exchange::ExchangeError> {
//! use oauthtest::exchange::{build_http_client, ExchangeConfig, RefreshRequest, TokenExchanger};
//! use oauthtest::secret::{ClientSecret, RefreshToken};
//!
//! let config = ExchangeConfig::default();
//! let http = build_http_client(config.request_timeout)?;
//! let exchanger = TokenExchanger::new(http, config);
//! let secret = ClientSecret::from("client-secret");
//! let refresh_token = RefreshToken::from("1//refresh-token");
//! let exchange = exchanger
//!     .refresh(&RefreshRequest {
//!         client_id: "123.apps.googleusercontent.com",
//!         client_secret: Some(&secret),
//!         refresh_token: &refresh_token,
//!         scopes: &[],
//!     })
//!     .await;
//! println!("{} after {} attempt(s)", exchange.outcome, exchange.attempts.len());
//! # Ok(())
//! # }
//! ```

mod classify;
mod config;
mod exchanger;
mod outcome;
mod retry;
mod transport;
mod wire;

#[cfg(test)]
mod tests;

pub mod code;

pub use config::{ExchangeConfig, RetryPolicy, GOOGLE_TOKEN_URL};
pub use exchanger::{classify_response, RefreshRequest, TokenExchanger};
pub use outcome::{attempt_class, Attempt, Exchange, Outcome, TokenGrant};
pub use transport::build_http_client;

/// What can go wrong while *setting up* an exchange.
///
/// A refresh itself never fails with an error: every result, transport failures included, is an
/// [`Outcome`].
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// reqwest refused to build the HTTP client (e.g. the TLS backend could not initialise).
    #[error("could not build the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// The configured token URL does not parse as an absolute URL.
    #[error("token URL {url:?} is not a valid absolute URL")]
    InvalidTokenUrl {
        /// The URL as given.
        url: String,
        /// Why it did not parse.
        #[source]
        source: url::ParseError,
    },
}
