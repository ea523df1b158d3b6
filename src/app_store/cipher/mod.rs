//! The application's ciphers, each interoperable with the library the application really uses.
//!
//! | cipher | library it matches | binds the row | detects tampering |
//! |---|---|---|---|
//! | `native` | oauthtest's `otv1` ([`crate::crypto`]) | yes (the id is authenticated) | yes |
//! | `fernet` | Python `cryptography` Fernet / MultiFernet | no | yes (HMAC-SHA256) |
//! | `aes-256-gcm` | Node `crypto`, Web Crypto, Python `AESGCM` | no (no associated data) | yes (GCM tag) |
//! | `openssl-aes-256-cbc` | crypto-js `AES.encrypt(text, passphrase)`, n8n, `openssl enc` | no | only mostly: no MAC; a change almost always breaks the padding or the JSON |
//! | `plain` | none (JSON as is) | no | no |
//! | `command` | whatever `encrypt_cmd` / `decrypt_cmd` run (`OAUTHTEST_ROW_ID` is set for them) | if the command does | if the command does |
//!
//! A value moved from another row decrypts under every format that does not bind the row: it is
//! a valid value of the application, just in the wrong place, and only `native` (or a command
//! that binds the id) can tell.
//!
//! # Security
//! Keys and passphrases live in zeroizing buffers; `Debug` shows the cipher and the key's id.

mod command;
mod gcm;
mod openssl;

use super::config::{CipherKind, EnvLookup, KeySource, StoreConfig};
use super::error::AppStoreError;
use super::RowId;
use crate::crypto::{EncryptionKey, Keyring};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// A stored value: the data column, and the nonce and tag columns when the application keeps
/// them apart.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Sealed {
    pub(crate) data: String,
    pub(crate) iv: Option<String>,
    pub(crate) tag: Option<String>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed([{} bytes])", self.data.len())
    }
}

enum Inner {
    Native(Keyring),
    Fernet(fernet::MultiFernet),
    Openssl(Vec<Zeroizing<String>>),
    Gcm(gcm::Gcm),
    Plain,
    Command(command::Commands),
}

/// The application's cipher with its keys loaded: opens and seals payloads the application's
/// way. Built from a config by [`Cipher::from_config`].
pub struct Cipher {
    kind: CipherKind,
    table: String,
    key_id: Option<String>,
    old_keys: usize,
    inner: Inner,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher")
            .field("kind", &self.kind.as_str())
            .field("key_id", &self.key_id)
            .field("old_keys", &self.old_keys)
            .finish_non_exhaustive()
    }
}

/// A key's public id: 16 hex digits of a domain-separated SHA-256 (never the key).
fn key_id(key: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"oauthtest application key id v1\0");
    h.update(key);
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Keys {
    file: String,
    current: Zeroizing<String>,
    current_key: (&'static str, String),
    old: Vec<Zeroizing<String>>,
    old_key: (&'static str, String),
}

impl Keys {
    fn load(cfg: &StoreConfig, env: EnvLookup<'_>) -> Result<Self, AppStoreError> {
        let err = |key: &str, problem: String| AppStoreError::Key {
            file: cfg.file.clone(),
            key: key.to_owned(),
            problem,
        };
        let cipher = cfg.cipher.as_str();
        let (current, current_key) = match &cfg.key {
            KeySource::Env(var) => (
                env(var)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| Zeroizing::new(v.trim().to_owned()))
                    .ok_or_else(|| err("store.key_env", format!("{var} is not set: it must hold the application's key (cipher {cipher})")))?,
                ("store.key_env", var.clone()),
            ),
            KeySource::File(path) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    err("store.key_file", format!("cannot read {}: {e}", path.display()))
                })?);
                if text.trim().is_empty() {
                    return Err(err("store.key_file", format!("{} is empty", path.display())));
                }
                (
                    Zeroizing::new(text.trim().to_owned()),
                    ("store.key_file", format!("the key in {}", path.display())),
                )
            }
            KeySource::None => (Zeroizing::new(String::new()), ("store.key_env", String::new())),
        };
        let (old, old_key) = match &cfg.old_keys_env {
            Some(var) => (
                env(var)
                    .map(|v| {
                        v.split(',')
                            .map(str::trim)
                            .filter(|k| !k.is_empty())
                            .map(|k| Zeroizing::new(k.to_owned()))
                            .collect()
                    })
                    .unwrap_or_default(),
                ("store.old_keys_env", format!("a key in {var}")),
            ),
            None => (Vec::new(), ("store.old_keys_env", String::new())),
        };
        Ok(Self {
            file: cfg.file.clone(),
            current,
            current_key,
            old,
            old_key,
        })
    }

    fn malformed(&self, which: &(&'static str, String), problem: &str) -> AppStoreError {
        AppStoreError::Key {
            file: self.file.clone(),
            key: which.0.to_owned(),
            problem: format!("{} {problem}", which.1),
        }
    }
}

impl Cipher {
    /// Loads the keys the config names (`key_env` or `key_file`, and `old_keys_env`) and checks
    /// them. `plain` and `command` need none.
    ///
    /// # Errors
    /// [`AppStoreError::Key`] naming the config key and the variable or file (never the key)
    /// when a key is missing or malformed.
    pub fn from_config(cfg: &StoreConfig, env: EnvLookup<'_>) -> Result<Self, AppStoreError> {
        let keys = Keys::load(cfg, env)?;
        let old_count = keys.old.len();
        let mut key_id_of = None;
        let inner = match cfg.cipher {
            CipherKind::Plain => Inner::Plain,
            CipherKind::Command => Inner::Command(command::Commands::from_config(cfg)),
            CipherKind::Native => {
                let parse = |k: &str, which: &(&'static str, String)| {
                    EncryptionKey::from_base64(k).map_err(|e| keys.malformed(which, &e.to_string()))
                };
                let current = parse(&keys.current, &keys.current_key)?;
                let old = keys
                    .old
                    .iter()
                    .map(|k| parse(k, &keys.old_key))
                    .collect::<Result<_, _>>()?;
                key_id_of = Some(current.id().to_owned());
                Inner::Native(Keyring::new(current, old))
            }
            CipherKind::Fernet => {
                let parse = |k: &str, which: &(&'static str, String)| {
                    fernet::Fernet::new(k).ok_or_else(|| {
                        keys.malformed(which, "is not a Fernet key (32 bytes in URL-safe base64, as Fernet.generate_key() prints)")
                    })
                };
                let mut all = vec![parse(&keys.current, &keys.current_key)?];
                for k in &keys.old {
                    all.push(parse(k, &keys.old_key)?);
                }
                Inner::Fernet(fernet::MultiFernet::new(all))
            }
            CipherKind::OpensslAes256Cbc => {
                let mut all = vec![keys.current.clone()];
                all.extend(keys.old.iter().cloned());
                Inner::Openssl(all)
            }
            CipherKind::Aes256Gcm => {
                let parse = |k: &str, which: &(&'static str, String)| {
                    gcm::parse_key(k).map_err(|p| keys.malformed(which, p))
                };
                let mut all = vec![parse(&keys.current, &keys.current_key)?];
                for k in &keys.old {
                    all.push(parse(k, &keys.old_key)?);
                }
                Inner::Gcm(gcm::Gcm::new(cfg, all))
            }
        };
        let key_id = key_id_of.or_else(|| {
            cfg.cipher
                .needs_key()
                .then(|| key_id(keys.current.as_bytes()))
        });
        Ok(Self {
            kind: cfg.cipher,
            table: cfg.table.to_string(),
            key_id,
            old_keys: old_count,
            inner,
        })
    }

    /// Which cipher this is.
    pub fn kind(&self) -> CipherKind {
        self.kind
    }

    /// The current key's public id (16 hex digits; for `native`, the `otv1` key id), or `None`
    /// for ciphers without a key. Safe to print.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// How many previous keys are configured.
    pub fn old_key_count(&self) -> usize {
        self.old_keys
    }

    fn decrypt_error(&self, row: &RowId, problem: impl Into<String>) -> AppStoreError {
        AppStoreError::Decrypt {
            table: self.table.clone(),
            row: row.to_string(),
            problem: problem.into(),
        }
    }

    /// Opens a stored value into the payload's bytes.
    pub(crate) async fn decrypt(
        &self,
        row: &RowId,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, AppStoreError> {
        let keys = if self.old_keys == 0 {
            "the key"
        } else {
            "the key or any old key"
        };
        match &self.inner {
            Inner::Plain => Ok(Zeroizing::new(sealed.data.as_bytes().to_vec())),
            Inner::Native(ring) => {
                let id = row.as_i64().ok_or_else(|| self.decrypt_error(row, "the native envelope binds integer ids only"))?;
                ring.decrypt(id, &sealed.data).map_err(|e| self.decrypt_error(row, e.to_string()))
            }
            Inner::Fernet(f) => f.decrypt(sealed.data.trim()).map(Zeroizing::new).map_err(|_| {
                self.decrypt_error(row, format!("the Fernet token does not decrypt with {keys}: a wrong key, or the value was changed or cut (Fernet's HMAC failed)"))
            }),
            Inner::Openssl(passphrases) => passphrases
                .iter()
                .find_map(|p| openssl::decrypt(p, &sealed.data).ok())
                .ok_or_else(|| match openssl::decrypt(&passphrases[0], &sealed.data) {
                    Err(openssl::OpensslError::Malformed(why)) => self.decrypt_error(row, why),
                    _ => self.decrypt_error(row, format!("the OpenSSL Salted__ value does not decrypt with {keys}: a wrong passphrase, or the value was changed or cut")),
                }),
            Inner::Gcm(g) => g.decrypt(sealed).map_err(|why| self.decrypt_error(row, why.message(keys))),
            Inner::Command(c) => c.decrypt(&self.table, row, &sealed.data).await,
        }
    }

    /// Seals payload bytes the application's way, for the row `row` (fresh salt, IV or nonce on
    /// every call).
    pub(crate) async fn encrypt(
        &self,
        row: &RowId,
        plaintext: &[u8],
    ) -> Result<Sealed, AppStoreError> {
        let data = |data: String| Sealed {
            data,
            iv: None,
            tag: None,
        };
        match &self.inner {
            Inner::Plain => String::from_utf8(plaintext.to_vec())
                .map(data)
                .map_err(|_| self.decrypt_error(row, "the payload is not UTF-8")),
            Inner::Native(ring) => {
                let id = row.as_i64().ok_or_else(|| {
                    self.decrypt_error(row, "the native envelope binds integer ids only")
                })?;
                Ok(data(ring.encrypt(id, plaintext)))
            }
            Inner::Fernet(f) => Ok(data(f.encrypt(plaintext))),
            Inner::Openssl(passphrases) => Ok(data(openssl::encrypt(&passphrases[0], plaintext))),
            Inner::Gcm(g) => Ok(g.encrypt(plaintext)),
            Inner::Command(c) => c.encrypt(&self.table, row, plaintext).await.map(data),
        }
    }
}
