//! The application's own credential store: its table, its encryption, its JSON.
//!
//! oauthtest's native store keeps credentials in its own table and envelope. Most users already
//! have credentials elsewhere: the application's `credentials` table, encrypted with the
//! application's own utility (Python `cryptography`'s Fernet, crypto-js as n8n uses it, Node's
//! AES-256-GCM, a KMS behind a command…), in the application's own JSON shape. This module
//! reads and writes those rows the application's way, described by a TOML file
//! ([`StoreConfig`]):
//!
//! - [`StoreConfig`] says where the rows are (table, columns), how they are sealed ([`Cipher`])
//!   and where the tokens sit in the decrypted JSON (JSON pointers), with presets for common
//!   shapes;
//! - [`AppStore`] lists the Google rows, loads one as an [`AppCredential`], and writes a
//!   refresh's result back: only the mapped fields change, everything else in the payload and
//!   every other column stays as the application wrote it, re-encrypted the application's way,
//!   compare-and-swap on what was read.
//!
//! oauthtest never creates, alters or migrates the application's table: it needs SELECT and
//! UPDATE (and INSERT for `import`).
//!
//! A mode uses it in this order:
//!
//! ```text
//! let cfg = StoreConfig::discover(flag, &cwd, &process_env)?;   // None: the native store
//! let store = AppStore::connect(cfg, database_url).await?;      // table and columns checked
//! let rows = store.list().await?;                               // no key needed
//! let cipher = Cipher::from_config(store.config(), &process_env)?;
//! let cred = store.load(&cipher, &RowId::new(id)).await?;       // tokens in cred.secrets
//! let cred = store.write_back(&cipher, &cred, &refreshed, false).await?;
//! ```
//!
//! # Security
//! Keys, tokens and client secrets are held in secret types whose `Debug` is redacted; no
//! error message quotes a key, a payload or a stored value.

mod cipher;
mod config;
mod db;
mod error;
mod lease;
mod payload;
mod sql;
mod store;
mod time;

pub use cipher::Cipher;
pub use config::{
    process_env, CipherKind, CommandSpec, EnvLookup, GcmEncoding, GcmOrder, KeySource, NewIdPolicy,
    PayloadMap, ReconnectMark, ReconnectWhere, StoreConfig, CONFIG_ENV, CONFIG_FILE_NAME, PRESETS,
};
pub use error::AppStoreError;
pub use lease::{AppLease, LEASE_TABLE};
pub use payload::ExpiryFormat;
pub use sql::{Ident, TableName};
pub use store::{AppCredential, AppRow, AppStore, NewAppCredential, ScrubResult};
pub use time::TimeFormat;

use std::fmt;

/// A row's id as the application stores it: an integer or a string (n8n's ids are strings),
/// always handled as its text form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RowId(String);

impl RowId {
    /// A row id from its text form (as given on the command line).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id's text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an integer, when it is one (the native envelope binds integer ids only).
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<i64> for RowId {
    fn from(id: i64) -> Self {
        Self(id.to_string())
    }
}
