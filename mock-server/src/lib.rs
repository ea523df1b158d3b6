//! A stateful, faithful mock of Google's OAuth 2.0 endpoints, for proving token refresh works.
//!
//! `oauthtest` needs a Google it can control: one that issues, expires, rotates and revokes tokens
//! exactly the way the real `oauth2.googleapis.com` does (same statuses, same bytes, same headers),
//! and that can also misbehave on cue (a canned 429, a dropped connection, a slow answer). This
//! crate is that Google. It serves on loopback through its own bounded HTTP front end
//! ([`front`]), keeps its own token state and clock, and writes a journal of every request it
//! saw so a test can check what the application under test actually did.
//!
//! # In another project's tests
//! Use it the way `wiremock` is used: start one mock per test (a port of its own, nothing
//! shared), point the code under test at [`MockGoogle::token_url`], then look at the journal.
//! The server runs on a thread of its own, so the test may block while it answers; dropping
//! the handle stops it.
//!
//! ```
//! use mock_server::{Endpoint, MockGoogle, Step, TokenStatus, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let google = MockGoogle::start().await?;
//! // A refresh token, as the consent flow would have given the application.
//! let scopes = ["https://www.googleapis.com/auth/gmail.readonly".to_string()];
//! let refresh_token = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes);
//! // A script: the first refresh gets a canned 503, the next ones Google's real answer.
//! google.set_token_script(vec![Step::respond(503, r#"{"error":"internal_failure"}"#)]);
//!
//! // The code under test refreshes (here, a plain HTTP client standing in for it).
//! let refresh = || {
//!     reqwest::Client::new().post(google.token_url()).form(&[
//!         ("grant_type", "refresh_token"),
//!         ("refresh_token", refresh_token.as_str()),
//!         ("client_id", DEFAULT_CLIENT_ID),
//!         ("client_secret", DEFAULT_CLIENT_SECRET),
//!     ])
//! };
//! assert_eq!(refresh().send().await?.status(), 503);
//! let answer: serde_json::Value = refresh().send().await?.json().await?;
//! let access_token = answer["access_token"].as_str().expect("an access token");
//! assert_eq!(google.access_token_status(access_token), TokenStatus::Live);
//!
//! // The journal: what the application did, tokens as fingerprints only.
//! let journal = google.journal();
//! assert_eq!(journal.len(), 2);
//! assert!(journal.iter().all(|entry| entry.endpoint == Endpoint::Token));
//! assert_eq!(journal[0].status, Some(503));
//! assert_eq!(journal[1].status, Some(200));
//! # Ok(())
//! # }
//! ```
//!
//! A shipped scenario of `oauthtest` is a script plus a seeded credential; [`Step`] builds the
//! same scripts by hand, and [`wire::reference_errors`] gives every error Google sends as a
//! ready step.
//!
//! # Security
//! The mock never writes a raw token into its journal or into any `Debug` output: tokens are
//! identified by [`fingerprint`] (the first 12 hex characters of their SHA-256), and the token
//! store itself is keyed by digests.
//!
//! # Layers
//! Modules import one way, top to bottom (`tests/cli/layers.rs` in `oauthtest` fails on a
//! circle): the handle ([`MockGoogle`] in `server`, with its method groups `identity`, `family`,
//! `revocation`); `state` (the lock, the scripts and the journal around each request); `google`,
//! the dispatch, over its handlers `device`, `authorize`, `service_account`, `oidc` (each may use
//! the ones after it); `handler` (the context a handler takes, the reply it gives); the stores
//! `sign_in`, `accounts`, `tokens`, `config`, `signing`, and the journal and scripts; and at the
//! bottom the wire: [`front`] (HTTP), `incoming`, `request`, [`wire`], `tls`, `error`.

mod accounts;
mod authorize;
mod config;
mod device;
mod error;
mod family;
pub mod front;
mod google;
mod handler;
mod identity;
mod incoming;
mod journal;
mod oidc;
mod request;
mod revocation;
mod script;
mod server;
mod service_account;
mod sign_in;
mod signing;
mod state;
mod tls;
mod tokens;
pub mod wire;

pub use accounts::ServiceAccountSpec;
pub use config::{
    ClientRegistration, Consent, MockConfig, SigningKeyPem, DEFAULT_ACCESS_TOKEN_TTL,
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_EMAIL, DEFAULT_JOURNAL_CAPACITY,
    DEFAULT_SUBJECT, MAX_CLOCK_OFFSET, TESTING_APP_REFRESH_TOKEN_TTL,
};
pub use error::MockError;
pub use front::Limits;
pub use identity::ServiceAccountKey;
pub use journal::{
    ClientAuth, Endpoint, JournalEntry, ACTION_DROPPED, ACTION_GOOGLE, ACTION_SCRIPTED,
};
pub use request::{Answer, Request};
pub use script::{Action, Step};
pub use server::{Answered, MockBuilder, MockGoogle};
pub use tls::ThrowawayTls;
pub use tokens::{
    fingerprint, TokenStatus, MAX_LIVE_REFRESH_TOKENS, MAX_TOKENS_PER_GRANT,
    UNUSED_REFRESH_TOKEN_TTL,
};
