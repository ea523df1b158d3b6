//! The rows the store returns, as sqlx reads them from either backend.

use crate::credential::GoogleCredential;
use crate::crypto::Keyring;
use crate::error::Error;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;

/// A credential query: the columns [`CredentialRow`] reads, then `$tail` (a literal, so the SQL
/// stays a static string).
macro_rules! select_credential {
    ($tail:literal) => {
        concat!(
            "SELECT id, user_id, type, name, encrypted_data, created_at, updated_at, expires_at, \
             state, has_refresh_token, key_id, version, last_refresh_at, last_refresh_outcome, \
             failure_count, cooldown_until_ms, lease_owner, lease_expires_at_ms \
             FROM oauthtest_credentials ",
            $tail
        )
    };
}
pub(crate) use select_credential;

/// Whether a credential can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialState {
    /// Usable: refreshes are attempted when the access token expires.
    Active,
    /// The refresh token is dead (`invalid_grant` or scrubbed): the user must reconnect; no
    /// refresh is ever attempted again.
    NeedsReconnect,
}

impl CredentialState {
    /// The value stored in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialState::Active => "active",
            CredentialState::NeedsReconnect => "needs_reconnect",
        }
    }
}

/// One row of `oauthtest_credentials`. `encrypted_data` is the sealed envelope; nothing here is
/// a secret in the clear, and `Debug` shows the envelope's length only.
#[derive(Clone, sqlx::FromRow)]
pub struct CredentialRow {
    /// Row id; the envelope is bound to it.
    pub id: i64,
    /// The owning user's id.
    pub user_id: i64,
    /// Credential type, e.g. `gmailOAuth2`.
    #[sqlx(rename = "type")]
    pub credential_type: String,
    /// Human name.
    pub name: String,
    /// The sealed envelope (see [`crate::crypto`]).
    pub encrypted_data: String,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
    /// When the stored access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// `active` or `needs_reconnect`.
    pub state: String,
    /// Whether the payload holds a refresh token.
    pub has_refresh_token: bool,
    /// The id of the key that sealed the envelope.
    pub key_id: String,
    /// Bumped on every write; updates compare-and-swap on it.
    pub version: i64,
    /// When a refresh last completed (any outcome).
    pub last_refresh_at: Option<DateTime<Utc>>,
    /// That refresh's outcome code.
    pub last_refresh_outcome: Option<String>,
    /// Consecutive retryable failures.
    pub failure_count: i64,
    /// No refresh before this instant (unix ms), after repeated failures.
    pub cooldown_until_ms: Option<i64>,
    /// Who holds the refresh lease.
    pub lease_owner: Option<String>,
    /// When that lease lapses (unix ms).
    pub lease_expires_at_ms: Option<i64>,
}

impl fmt::Debug for CredentialRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialRow")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("type", &self.credential_type)
            .field("name", &self.name)
            .field(
                "encrypted_data",
                &format_args!("[{} bytes]", self.encrypted_data.len()),
            )
            .field("expires_at", &self.expires_at)
            .field("state", &self.state)
            .field("key_id", &self.key_id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl CredentialRow {
    /// The row's state; an unknown value (which the schema's CHECK forbids) reads as
    /// needs-reconnect, the state in which nothing is attempted.
    pub fn state(&self) -> CredentialState {
        match self.state.as_str() {
            "active" => CredentialState::Active,
            _ => CredentialState::NeedsReconnect,
        }
    }

    /// Decrypts and parses the row's payload.
    ///
    /// # Errors
    /// [`Error::Decrypt`] (wrong key, tampering, moved from another row) or [`Error::Payload`],
    /// both naming this credential.
    pub fn decrypt(&self, keyring: &Keyring) -> Result<GoogleCredential, Error> {
        let plaintext = keyring
            .decrypt(self.id, &self.encrypted_data)
            .map_err(|source| Error::Decrypt {
                id: self.id,
                source,
            })?;
        GoogleCredential::from_payload(&plaintext).map_err(|problem| Error::Payload {
            id: self.id,
            problem,
        })
    }
}

/// One line of `oauthtest_refresh_history`.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct HistoryRow {
    /// Line id.
    pub id: i64,
    /// The credential it is about.
    pub credential_id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// By which mode.
    pub mode: String,
    /// What was done.
    pub action: String,
    /// How it ended.
    pub outcome: String,
    /// Detail, never a secret.
    pub detail: Option<String>,
}
