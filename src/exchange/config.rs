//! Settings of the token exchange: where the token endpoint is, how long to wait, how to retry.
//!
//! Kept apart from the exchange itself so that a caller (flags, a scenario file, a test) can
//! build and validate them once. Defaults follow Google's own Python client (`google-auth`):
//! 3 tries in all, 1 s first backoff, ×2, 10 % jitter.

use std::time::Duration;

use url::Url;

use super::ExchangeError;

/// Google's OAuth 2.0 token endpoint, the default [`ExchangeConfig::token_url`].
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// How to reach the token endpoint and how hard to try.
#[derive(Clone, Debug)]
pub struct ExchangeConfig {
    /// The token endpoint. Always configurable so tests and mock servers can stand in for Google.
    pub token_url: Url,
    /// Budget for one HTTP attempt, from connecting until the whole body is read. Applied per
    /// request, so it holds even when the injected client was built with another timeout.
    /// Default 10 s.
    pub request_timeout: Duration,
    /// Which failures are retried, how often and how far apart.
    pub retry: RetryPolicy,
    /// Send `client_id`/`client_secret` as form fields instead of an HTTP Basic
    /// `Authorization` header. Google accepts both; `oauth2` (and this module) default to Basic.
    pub auth_in_body: bool,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        Self {
            // A constant that parses (checked by a test); `expect` cannot fire.
            token_url: Url::parse(GOOGLE_TOKEN_URL).expect("GOOGLE_TOKEN_URL is a valid URL"),
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            auth_in_body: false,
        }
    }
}

impl ExchangeConfig {
    /// The defaults, with the token endpoint at `token_url`.
    ///
    /// # Errors
    ///
    /// [`ExchangeError::InvalidTokenUrl`] when `token_url` is not an absolute URL.
    pub fn with_token_url(token_url: &str) -> Result<Self, ExchangeError> {
        let parsed = Url::parse(token_url).map_err(|source| ExchangeError::InvalidTokenUrl {
            url: token_url.to_owned(),
            source,
        })?;
        Ok(Self {
            token_url: parsed,
            ..Self::default()
        })
    }
}

/// Bounded retries with exponential backoff, for transient failures only.
///
/// Only [`Outcome::RetryLater`](super::Outcome::RetryLater) failures are retried; `invalid_grant`
/// and every other definite answer never are.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (0 is treated as 1). Default 3, like `google-auth`.
    pub max_attempts: u32,
    /// Wait after the first failed try. Default 1 s.
    pub initial_backoff: Duration,
    /// Each further wait is the previous one times this. Default 2.0.
    pub multiplier: f64,
    /// Each wait is moved by a random amount of up to ± this fraction of itself. Default 0.1.
    pub jitter: f64,
    /// Longest wait a server's `Retry-After` can impose; longer values are cut to this.
    /// Default 30 s.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.1,
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that tries once and never retries.
    #[must_use]
    pub fn no_retries() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Tries in all, never fewer than one.
    pub(crate) fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }
}
