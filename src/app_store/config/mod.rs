//! The store config file: where the application keeps its credentials and how.
//!
//! Found as `--store-config FILE`, else `oauthtest.toml` in the working directory, else the file
//! `OAUTHTEST_STORE_CONFIG` names. Parsed strictly (an unknown key is an error, so a typo never
//! silently falls back to a default), merged over a preset (`preset = "n8n"` or `"fernet"`)
//! key by key, and validated: every error names the file and the key. An empty string unsets an
//! optional key a preset sets (`expiry = ""`).

mod resolve;

use super::error::AppStoreError;
use super::payload::ExpiryFormat;
use super::sql::{Ident, TableName};
use super::time::TimeFormat;
use resolve::{merge_store, preset, RawFile, RawStore, Resolver};
use serde::Deserialize;

pub use resolve::PRESETS;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file looked for in the working directory.
pub const CONFIG_FILE_NAME: &str = "oauthtest.toml";
/// The variable naming a config file when neither `--store-config` nor `oauthtest.toml` is given.
pub const CONFIG_ENV: &str = "OAUTHTEST_STORE_CONFIG";

/// The native cipher's key variables when the config names none (the native store's own).
const NATIVE_KEY_VAR: &str = "OAUTHTEST_ENCRYPTION_KEY";
const NATIVE_OLD_KEYS_VAR: &str = "OAUTHTEST_OLD_ENCRYPTION_KEYS";

/// Looks a variable up: the process environment ([`process_env`]) or a test's own map.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, for [`StoreConfig::discover`] and [`super::Cipher::from_config`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// How the application seals its payloads (`store.cipher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherKind {
    /// oauthtest's own `otv1` envelope ([`crate::crypto`]), bound to the row's integer id.
    Native,
    /// Python `cryptography`'s Fernet (MultiFernet with old keys).
    Fernet,
    /// AES-256-GCM with a raw key, layout per `gcm_*`.
    Aes256Gcm,
    /// OpenSSL's `Salted__` AES-256-CBC with an EVP_BytesToKey (MD5) passphrase, base64: crypto-js
    /// `AES.encrypt(text, passphrase)`, n8n.
    OpensslAes256Cbc,
    /// Unencrypted JSON (text, `json` or `jsonb`).
    Plain,
    /// The application's own `encrypt_cmd` / `decrypt_cmd`.
    Command,
}

impl CipherKind {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            CipherKind::Native => "native",
            CipherKind::Fernet => "fernet",
            CipherKind::Aes256Gcm => "aes-256-gcm",
            CipherKind::OpensslAes256Cbc => "openssl-aes-256-cbc",
            CipherKind::Plain => "plain",
            CipherKind::Command => "command",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            CipherKind::Native,
            CipherKind::Fernet,
            CipherKind::Aes256Gcm,
            CipherKind::OpensslAes256Cbc,
            CipherKind::Plain,
            CipherKind::Command,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }

    /// Whether this cipher takes a key (`key_env` / `key_file`).
    pub fn needs_key(self) -> bool {
        !matches!(self, CipherKind::Plain | CipherKind::Command)
    }
}

/// The order of the parts of an AES-256-GCM value (`store.gcm_order`); parts kept in their own
/// columns (`iv_column`, `tag_column`) are left out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcmOrder {
    /// `nonce | ciphertext | tag` (Web Crypto, Go, Python `AESGCM`).
    NonceCiphertextTag,
    /// `nonce | tag | ciphertext` (common with Node's `crypto`).
    NonceTagCiphertext,
}

/// How binary values are written as text (`store.gcm_encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcmEncoding {
    /// Standard base64 with padding.
    Base64,
    /// URL-safe base64 (read with or without padding, written without).
    Base64Url,
    /// Lowercase hex.
    Hex,
}

/// How a new row gets its id on insert (`store.new_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewIdPolicy {
    /// The database assigns it (serial, identity, autoincrement).
    Database,
    /// oauthtest draws a random UUID (text ids without a default, as n8n's).
    Uuid,
}

/// Where the key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An environment variable (`store.key_env`).
    Env(String),
    /// A file holding the key (`store.key_file`), trimmed.
    File(PathBuf),
    /// No key (`plain`, `command`).
    None,
}

/// A command line for `encrypt_cmd` / `decrypt_cmd`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CommandSpec {
    /// A shell line, run with `sh -c`.
    Shell(String),
    /// A program and its arguments, run directly.
    Argv(Vec<String>),
}

/// Where the tokens sit in the decrypted payload (`[store.payload]`): JSON pointers (RFC 6901).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadMap {
    /// The access token (must exist in every row; may be null).
    pub access_token: String,
    /// The refresh token (must exist in every row; may be null).
    pub refresh_token: String,
    /// The access token's expiry, in `expiry_format`.
    pub expiry: Option<String>,
    /// How `expiry` is written.
    pub expiry_format: ExpiryFormat,
    /// Seconds the access token lives from `updated_at_column` (n8n keeps Google's `expires_in`
    /// rather than an instant).
    pub expires_in: Option<String>,
    /// The OAuth client id (optional in rows).
    pub client_id: Option<String>,
    /// The OAuth client secret (optional in rows).
    pub client_secret: Option<String>,
    /// Granted scopes: a space-separated string or an array (optional in rows).
    pub scopes: Option<String>,
}

/// How the application marks a credential "the user must reconnect" (`[store.reconnect]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectMark {
    /// A column or a payload field.
    pub at: ReconnectWhere,
    /// The value that means "reconnect".
    pub value: toml::Value,
}

/// Where the reconnect mark is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconnectWhere {
    /// A column of the table.
    Column(Ident),
    /// A JSON pointer into the payload.
    Pointer(String),
}

/// A validated store config.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The file it was read from, as shown in errors.
    pub file: String,
    /// The preset it starts from, if any.
    pub preset: Option<String>,
    /// The application's table.
    pub table: TableName,
    /// Its primary key.
    pub id_column: Ident,
    /// The column holding the sealed payload.
    pub data_column: Ident,
    /// With `google_types`: which rows are Google credentials.
    pub type_column: Option<Ident>,
    /// The Google credential types (empty when `type_column` is unset).
    pub google_types: Vec<String>,
    /// A human name for the row.
    pub name_column: Option<Ident>,
    /// The owning user.
    pub user_column: Option<Ident>,
    /// Set on every write-back.
    pub updated_at_column: Option<Ident>,
    /// How `updated_at_column` (and `created_at_column`) is written.
    pub updated_at_format: TimeFormat,
    /// Set when `import` inserts a row.
    pub created_at_column: Option<Ident>,
    /// The access token's expiry kept beside the payload (then `list` needs no key).
    pub expiry_column: Option<Ident>,
    /// How `expiry_column` is written.
    pub expiry_column_format: TimeFormat,
    /// How `import` gets a new row's id.
    pub new_id: NewIdPolicy,
    /// The cipher.
    pub cipher: CipherKind,
    /// Where its key is.
    pub key: KeySource,
    /// A variable holding previous keys, comma-separated: they decrypt, never encrypt.
    pub old_keys_env: Option<String>,
    /// AES-256-GCM: nonce length in bytes (12 or 16).
    pub gcm_nonce_len: usize,
    /// AES-256-GCM: the order of the parts.
    pub gcm_order: GcmOrder,
    /// AES-256-GCM: the text encoding of the value (and of `iv_column`, `tag_column`).
    pub gcm_encoding: GcmEncoding,
    /// AES-256-GCM: the nonce in a column of its own.
    pub iv_column: Option<Ident>,
    /// AES-256-GCM: the tag in a column of its own.
    pub tag_column: Option<Ident>,
    /// `command`: seals a payload (stdin) into the stored value (stdout).
    pub encrypt_cmd: Option<CommandSpec>,
    /// `command`: opens a stored value (stdin) into the payload (stdout).
    pub decrypt_cmd: Option<CommandSpec>,
    /// `command`: how long one call may take.
    pub command_timeout: Duration,
    /// Where the tokens are in the payload.
    pub payload: PayloadMap,
    /// How "must reconnect" is marked, if the application marks it.
    pub reconnect: Option<ReconnectMark>,
}

impl StoreConfig {
    /// Finds the config: `explicit` (`--store-config`), else `oauthtest.toml` in `cwd`, else the
    /// file named by `OAUTHTEST_STORE_CONFIG`. `None` when there is none: the native store.
    ///
    /// # Errors
    /// [`AppStoreError::Config`] when a named file is missing or invalid.
    pub fn discover(
        explicit: Option<&Path>,
        cwd: &Path,
        env: EnvLookup<'_>,
    ) -> Result<Option<Self>, AppStoreError> {
        if let Some(path) = explicit {
            return Self::load(path).map(Some);
        }
        let local = cwd.join(CONFIG_FILE_NAME);
        if local.is_file() {
            return Self::load(&local).map(Some);
        }
        match env(CONFIG_ENV).filter(|v| !v.trim().is_empty()) {
            Some(path) => Self::load(Path::new(path.trim())).map(Some),
            None => Ok(None),
        }
    }

    /// Reads and validates a config file.
    ///
    /// # Errors
    /// [`AppStoreError::Config`] naming the file and the key at fault.
    pub fn load(path: &Path) -> Result<Self, AppStoreError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| AppStoreError::config(&file, "(file)", format!("cannot read it: {e}")))?;
        Self::parse(&text, &file)
    }

    /// Parses and validates config text; `file` names it in errors.
    ///
    /// # Errors
    /// [`AppStoreError::Config`] naming the file and the key at fault.
    pub fn parse(text: &str, file: &str) -> Result<Self, AppStoreError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            AppStoreError::config(file, "(file)", format!("{}{at}", e.message()))
        })?;
        let mut store = raw.store.unwrap_or_default();
        let preset_name = match (raw.preset, store.preset.take()) {
            (Some(_), Some(_)) => {
                return Err(AppStoreError::config(
                    file,
                    "preset",
                    "given both at the top and in [store]; keep one",
                ))
            }
            (a, b) => a.or(b),
        };
        if let Some(name) = &preset_name {
            let text = preset(name).ok_or_else(|| {
                AppStoreError::config(
                    file,
                    "preset",
                    format!("unknown preset {name:?}; known: {}", PRESETS.join(", ")),
                )
            })?;
            // The presets are compiled in and covered by tests.
            let mut base: RawStore = toml::from_str(text)
                .map_err(|e| AppStoreError::config(file, "preset", e.to_string()))?;
            merge_store(&mut store, &mut base);
        }
        Resolver { file }.resolve(store, preset_name)
    }

    /// Whether listing rows needs the key: the expiry is only in the payload.
    pub fn list_needs_key(&self) -> bool {
        self.expiry_column.is_none()
            && (self.payload.expiry.is_some() || self.payload.expires_in.is_some())
    }
}

#[cfg(test)]
mod tests;
