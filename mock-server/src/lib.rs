//! A stateful, faithful mock of Google's OAuth 2.0 endpoints, for proving token refresh works.
//!
//! `oauthtest` needs a Google it can control: one that issues, expires, rotates and revokes tokens
//! exactly the way the real `oauth2.googleapis.com` does (same statuses, same bytes, same headers),
//! and that can also misbehave on cue (a canned 429, a dropped connection, a slow answer). This
//! crate is that Google. It runs on loopback through [`wiremock`], keeps its own token state and
//! clock, and writes a journal of every request it saw so a scenario can check what the
//! application under test actually did.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mock_server::MockError> {
//! use mock_server::{MockConfig, MockGoogle, Step, DEFAULT_CLIENT_ID};
//!
//! let google = MockGoogle::start(MockConfig::default()).await?;
//! let refresh_token = google.issue_refresh_token(
//!     DEFAULT_CLIENT_ID,
//!     &["https://www.googleapis.com/auth/gmail.readonly".to_string()],
//! );
//! // The first refresh gets a canned 503, the second a real answer.
//! google.set_token_script(vec![Step::respond(503, r#"{"error":"internal_failure"}"#)]);
//! // ... point the application at google.token_url() and let it refresh ...
//! # let _ = refresh_token;
//! # Ok(())
//! # }
//! ```
//!
//! # Security
//! The mock never writes a raw token into its journal or into any `Debug` output: tokens are
//! identified by [`fingerprint`] (the first 12 hex characters of their SHA-256), and the token
//! store itself is keyed by digests.

mod authorize;
mod config;
mod device;
mod error;
mod google;
mod identity;
mod incoming;
mod journal;
mod oidc;
mod script;
mod server;
mod service_account;
mod signing;
mod tls;
mod tokens;
pub mod wire;

pub use config::{
    ClientRegistration, Consent, MockConfig, SigningKeyPem, DEFAULT_ACCESS_TOKEN_TTL,
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_EMAIL, DEFAULT_JOURNAL_CAPACITY,
    DEFAULT_SUBJECT, TESTING_APP_REFRESH_TOKEN_TTL,
};
pub use error::MockError;
pub use identity::ServiceAccountKey;
pub use journal::{
    ClientAuth, Endpoint, JournalEntry, ACTION_DROPPED, ACTION_GOOGLE, ACTION_SCRIPTED,
};
pub use script::{Action, Step};
pub use server::{Answer, Answered, MockGoogle};
pub use service_account::ServiceAccountSpec;
pub use tls::ThrowawayTls;
pub use tokens::{
    fingerprint, TokenStatus, MAX_LIVE_REFRESH_TOKENS, MAX_TOKENS_PER_GRANT,
    UNUSED_REFRESH_TOKEN_TTL,
};
