//! The raw file, the presets, and their merge and validation into a [`StoreConfig`].

use super::{
    CipherKind, CommandSpec, ExpiryFormat, GcmEncoding, GcmOrder, KeySource, NewIdPolicy,
    PayloadMap, ReconnectMark, ReconnectWhere, StoreConfig, NATIVE_KEY_VAR, NATIVE_OLD_KEYS_VAR,
};
use crate::app_store::error::AppStoreError;
use crate::app_store::sql::{Ident, TableName};
use crate::app_store::time::TimeFormat;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) preset: Option<String>,
    pub(super) store: Option<RawStore>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) preset: Option<String>,
    table: Option<String>,
    id_column: Option<String>,
    data_column: Option<String>,
    type_column: Option<String>,
    google_types: Option<Vec<String>>,
    name_column: Option<String>,
    user_column: Option<String>,
    updated_at_column: Option<String>,
    updated_at_format: Option<String>,
    created_at_column: Option<String>,
    expiry_column: Option<String>,
    expiry_column_format: Option<String>,
    new_id: Option<String>,
    cipher: Option<String>,
    key_env: Option<String>,
    key_file: Option<String>,
    old_keys_env: Option<String>,
    gcm_nonce_len: Option<i64>,
    gcm_order: Option<String>,
    gcm_encoding: Option<String>,
    iv_column: Option<String>,
    tag_column: Option<String>,
    encrypt_cmd: Option<CommandSpec>,
    decrypt_cmd: Option<CommandSpec>,
    command_timeout_secs: Option<u64>,
    payload: Option<RawPayload>,
    reconnect: Option<RawReconnect>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayload {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expiry: Option<String>,
    expiry_format: Option<String>,
    expires_in: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scopes: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReconnect {
    column: Option<String>,
    pointer: Option<String>,
    value: Option<toml::Value>,
}

/// Takes each field from `$over` when set, else from `$base`.
macro_rules! merge_fields {
    ($over:expr, $base:expr; $($field:ident),+ $(,)?) => {
        $( if $over.$field.is_none() { $over.$field = $base.$field.take(); } )+
    };
}

/// n8n: `credentials_entity`, `data` sealed by crypto-js with `N8N_ENCRYPTION_KEY`.
const PRESET_N8N: &str = r#"
table = "credentials_entity"
id_column = "id"
data_column = "data"
type_column = "type"
google_types = ["gmailOAuth2", "googleOAuth2Api", "googleDriveOAuth2Api", "googleSheetsOAuth2Api",
  "googleCalendarOAuth2Api", "googleDocsOAuth2Api", "googleSlidesOAuth2Api", "googleTasksOAuth2Api",
  "googleContactsOAuth2Api", "googleBigQueryOAuth2Api", "gSuiteAdminOAuth2Api",
  "googleAnalyticsOAuth2", "youTubeOAuth2Api"]
name_column = "name"
updated_at_column = "updatedAt"
created_at_column = "createdAt"
new_id = "uuid"
cipher = "openssl-aes-256-cbc"
key_env = "N8N_ENCRYPTION_KEY"
[payload]
access_token = "/oauthTokenData/access_token"
refresh_token = "/oauthTokenData/refresh_token"
expires_in = "/oauthTokenData/expires_in"
client_id = "/clientId"
client_secret = "/clientSecret"
scopes = "/oauthTokenData/scope"
"#;

/// A FastAPI / Django style `credentials` table sealed with Fernet.
const PRESET_FERNET: &str = r#"
table = "credentials"
id_column = "id"
data_column = "encrypted_data"
type_column = "type"
google_types = ["gmailOAuth2", "googleDriveOAuth2", "googleCalendarOAuth2", "googleSheetsOAuth2",
  "googleOAuth2"]
name_column = "name"
user_column = "user_id"
updated_at_column = "updated_at"
created_at_column = "created_at"
cipher = "fernet"
key_env = "APP_ENCRYPTION_KEY"
[payload]
access_token = "/access_token"
refresh_token = "/refresh_token"
expiry = "/expiry"
expiry_format = "rfc3339"
client_id = "/client_id"
client_secret = "/client_secret"
scopes = "/scopes"
"#;

/// The presets, by name.
pub const PRESETS: &[&str] = &["n8n", "fernet"];

pub(super) fn preset(name: &str) -> Option<&'static str> {
    match name {
        "n8n" => Some(PRESET_N8N),
        "fernet" => Some(PRESET_FERNET),
        _ => None,
    }
}

pub(super) fn merge_store(over: &mut RawStore, base: &mut RawStore) {
    // A key file given replaces the preset's key variable, and the other way round.
    if over.key_file.is_some() {
        base.key_env = None;
    }
    if over.key_env.is_some() {
        base.key_file = None;
    }
    merge_fields!(over, base; table, id_column, data_column, type_column, google_types,
        name_column, user_column, updated_at_column, updated_at_format, created_at_column, expiry_column,
        expiry_column_format, new_id, cipher, key_env, key_file, old_keys_env, gcm_nonce_len,
        gcm_order, gcm_encoding, iv_column, tag_column, encrypt_cmd, decrypt_cmd,
        command_timeout_secs, reconnect);
    match (&mut over.payload, base.payload.take()) {
        (Some(o), Some(mut b)) => {
            // An expiry given replaces the preset's expires_in, and the other way round.
            if o.expiry.is_some() {
                b.expires_in = None;
            }
            if o.expires_in.is_some() {
                b.expiry = None;
                b.expiry_format = None;
            }
            merge_fields!(o, b; access_token, refresh_token, expiry, expiry_format, expires_in,
                client_id, client_secret, scopes);
        }
        (None, b) => over.payload = b,
        (Some(_), None) => {}
    }
}

pub(super) struct Resolver<'a> {
    pub(super) file: &'a str,
}

/// `Some(v)` for a set, non-empty value; an empty string unsets a preset's value.
fn set(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

impl Resolver<'_> {
    fn err(&self, key: &str, problem: impl Into<String>) -> AppStoreError {
        AppStoreError::config(self.file, key, problem)
    }

    fn required(&self, key: &str, v: Option<String>) -> Result<String, AppStoreError> {
        set(v).ok_or_else(|| self.err(key, "is required"))
    }

    fn ident(&self, key: &str, v: Option<String>) -> Result<Option<Ident>, AppStoreError> {
        set(v)
            .map(|s| Ident::new(&s).map_err(|p| self.err(key, p)))
            .transpose()
    }

    fn pointer(&self, key: &str, v: Option<String>) -> Result<Option<String>, AppStoreError> {
        match set(v) {
            Some(p) if !p.starts_with('/') => Err(self.err(
                key,
                format!("{p:?} is not a JSON pointer; write it from the root, like \"/oauthTokenData/access_token\""),
            )),
            other => Ok(other),
        }
    }

    fn choice<T: Copy>(
        &self,
        key: &str,
        v: Option<String>,
        default: T,
        options: &[(&str, T)],
    ) -> Result<T, AppStoreError> {
        let Some(v) = set(v) else { return Ok(default) };
        options
            .iter()
            .find(|(name, _)| *name == v)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<_> = options.iter().map(|(n, _)| *n).collect();
                self.err(
                    key,
                    format!("unknown value {v:?}; use one of {}", names.join(", ")),
                )
            })
    }

    pub(super) fn resolve(
        &self,
        s: RawStore,
        preset: Option<String>,
    ) -> Result<StoreConfig, AppStoreError> {
        let table_text = self.required("store.table", s.table)?;
        let table = TableName::parse(&table_text).map_err(|p| self.err("store.table", p))?;
        let id_column = self
            .ident("store.id_column", s.id_column.or(Some("id".to_owned())))?
            .ok_or_else(|| self.err("store.id_column", "is required"))?;
        let data_column = self
            .ident("store.data_column", s.data_column)?
            .ok_or_else(|| self.err("store.data_column", "is required"))?;
        let type_column = self.ident("store.type_column", s.type_column)?;
        let google_types = s.google_types.unwrap_or_default();
        match (&type_column, google_types.is_empty()) {
            (Some(_), true) => {
                return Err(self.err(
                    "store.google_types",
                    "is required with store.type_column: list the types of Google credentials, like [\"gmailOAuth2\"]",
                ))
            }
            (None, false) => {
                return Err(self.err(
                    "store.type_column",
                    "is required with store.google_types: name the column that holds each row's type",
                ))
            }
            _ => {}
        }
        let cipher_name = self.required("store.cipher", s.cipher)?;
        let cipher = CipherKind::parse(&cipher_name).ok_or_else(|| {
            self.err(
                "store.cipher",
                format!("unknown cipher {cipher_name:?}; use one of native, fernet, aes-256-gcm, openssl-aes-256-cbc, plain, command"),
            )
        })?;
        let key = match (set(s.key_env), set(s.key_file)) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    "store.key_file",
                    "give store.key_env or store.key_file, not both",
                ))
            }
            _ if !cipher.needs_key() => KeySource::None,
            (Some(var), None) => KeySource::Env(var),
            (None, Some(path)) => KeySource::File(PathBuf::from(path)),
            (None, None) if cipher == CipherKind::Native => {
                KeySource::Env(NATIVE_KEY_VAR.to_owned())
            }
            (None, None) => {
                return Err(self.err(
                    "store.key_env",
                    format!(
                    "cipher {} needs a key: name the variable that holds it (or store.key_file)",
                    cipher.as_str()
                ),
                ))
            }
        };
        let old_keys_env = set(s.old_keys_env)
            .or_else(|| (cipher == CipherKind::Native).then(|| NATIVE_OLD_KEYS_VAR.to_owned()));
        let gcm_keys_given = s.gcm_nonce_len.is_some()
            || s.gcm_order.is_some()
            || s.gcm_encoding.is_some()
            || s.iv_column.is_some()
            || s.tag_column.is_some();
        if gcm_keys_given && cipher != CipherKind::Aes256Gcm {
            return Err(self.err(
                "store.cipher",
                format!("gcm_nonce_len, gcm_order, gcm_encoding, iv_column and tag_column apply to cipher aes-256-gcm only, not {}", cipher.as_str()),
            ));
        }
        let gcm_nonce_len = match s.gcm_nonce_len.unwrap_or(12) {
            12 => 12,
            16 => 16,
            n => {
                return Err(self.err(
                    "store.gcm_nonce_len",
                    format!("{n} is not supported; use 12 (the standard) or 16"),
                ))
            }
        };
        let gcm_order = self.choice(
            "store.gcm_order",
            s.gcm_order,
            GcmOrder::NonceCiphertextTag,
            &[
                ("nonce|ciphertext|tag", GcmOrder::NonceCiphertextTag),
                ("nonce|tag|ciphertext", GcmOrder::NonceTagCiphertext),
            ],
        )?;
        let gcm_encoding = self.choice(
            "store.gcm_encoding",
            s.gcm_encoding,
            GcmEncoding::Base64,
            &[
                ("base64", GcmEncoding::Base64),
                ("base64url", GcmEncoding::Base64Url),
                ("hex", GcmEncoding::Hex),
            ],
        )?;
        let (encrypt_cmd, decrypt_cmd) = (s.encrypt_cmd, s.decrypt_cmd);
        if cipher == CipherKind::Command {
            for (key, cmd) in [
                ("store.encrypt_cmd", &encrypt_cmd),
                ("store.decrypt_cmd", &decrypt_cmd),
            ] {
                match cmd {
                    None => return Err(self.err(key, "is required with cipher command")),
                    Some(CommandSpec::Shell(line)) if line.trim().is_empty() => {
                        return Err(self.err(key, "is empty"))
                    }
                    Some(CommandSpec::Argv(argv)) if argv.first().is_none_or(|p| p.is_empty()) => {
                        return Err(self.err(key, "names no program"))
                    }
                    _ => {}
                }
            }
        } else if encrypt_cmd.is_some() || decrypt_cmd.is_some() {
            return Err(self.err(
                "store.cipher",
                format!(
                    "encrypt_cmd and decrypt_cmd apply to cipher command only, not {}",
                    cipher.as_str()
                ),
            ));
        }
        let time_formats = [
            ("sql", TimeFormat::Sql),
            ("rfc3339", TimeFormat::Rfc3339),
            ("unix_s", TimeFormat::UnixS),
            ("unix_ms", TimeFormat::UnixMs),
        ];
        let updated_at_column = self.ident("store.updated_at_column", s.updated_at_column)?;
        let payload = self.payload(s.payload.unwrap_or_default(), updated_at_column.is_some())?;
        let reconnect = s.reconnect.map(|r| self.reconnect(r)).transpose()?;
        Ok(StoreConfig {
            file: self.file.to_owned(),
            preset,
            table,
            id_column,
            data_column,
            type_column,
            google_types,
            name_column: self.ident("store.name_column", s.name_column)?,
            user_column: self.ident("store.user_column", s.user_column)?,
            updated_at_column,
            updated_at_format: self.choice(
                "store.updated_at_format",
                s.updated_at_format,
                TimeFormat::Sql,
                &time_formats,
            )?,
            created_at_column: self.ident("store.created_at_column", s.created_at_column)?,
            expiry_column: self.ident("store.expiry_column", s.expiry_column)?,
            expiry_column_format: self.choice(
                "store.expiry_column_format",
                s.expiry_column_format,
                TimeFormat::Sql,
                &time_formats,
            )?,
            new_id: self.choice(
                "store.new_id",
                s.new_id,
                NewIdPolicy::Database,
                &[
                    ("database", NewIdPolicy::Database),
                    ("uuid", NewIdPolicy::Uuid),
                ],
            )?,
            cipher,
            key,
            old_keys_env,
            gcm_nonce_len,
            gcm_order,
            gcm_encoding,
            iv_column: self.ident("store.iv_column", s.iv_column)?,
            tag_column: self.ident("store.tag_column", s.tag_column)?,
            encrypt_cmd,
            decrypt_cmd,
            command_timeout: Duration::from_secs(s.command_timeout_secs.unwrap_or(30).max(1)),
            payload,
            reconnect,
        })
    }

    fn payload(&self, p: RawPayload, has_updated_at: bool) -> Result<PayloadMap, AppStoreError> {
        let required = |key: &str, v: Option<String>| {
            self.pointer(key, v)?.ok_or_else(|| {
                self.err(
                    key,
                    "is required: the JSON pointer to it in the decrypted payload",
                )
            })
        };
        let expiry = self.pointer("store.payload.expiry", p.expiry)?;
        let expires_in = self.pointer("store.payload.expires_in", p.expires_in)?;
        if expiry.is_some() && expires_in.is_some() {
            return Err(self.err(
                "store.payload.expires_in",
                "give store.payload.expiry or store.payload.expires_in, not both",
            ));
        }
        if expires_in.is_some() && !has_updated_at {
            return Err(self.err(
                "store.payload.expires_in",
                "needs store.updated_at_column: expires_in counts from when the row was written",
            ));
        }
        let expiry_format = match set(p.expiry_format) {
            None if expiry.is_some() => {
                return Err(self.err(
                    "store.payload.expiry_format",
                    "is required with store.payload.expiry: rfc3339, unix_s or unix_ms",
                ))
            }
            None => ExpiryFormat::Rfc3339,
            Some(f) => self.choice(
                "store.payload.expiry_format",
                Some(f),
                ExpiryFormat::Rfc3339,
                &[
                    ("rfc3339", ExpiryFormat::Rfc3339),
                    ("unix_s", ExpiryFormat::UnixS),
                    ("unix_ms", ExpiryFormat::UnixMs),
                ],
            )?,
        };
        Ok(PayloadMap {
            access_token: required("store.payload.access_token", p.access_token)?,
            refresh_token: required("store.payload.refresh_token", p.refresh_token)?,
            expiry,
            expiry_format,
            expires_in,
            client_id: self.pointer("store.payload.client_id", p.client_id)?,
            client_secret: self.pointer("store.payload.client_secret", p.client_secret)?,
            scopes: self.pointer("store.payload.scopes", p.scopes)?,
        })
    }

    fn reconnect(&self, r: RawReconnect) -> Result<ReconnectMark, AppStoreError> {
        let at = match (set(r.column), set(r.pointer)) {
            (Some(c), None) => ReconnectWhere::Column(
                Ident::new(&c).map_err(|p| self.err("store.reconnect.column", p))?,
            ),
            (None, Some(p)) => ReconnectWhere::Pointer(
                self.pointer("store.reconnect.pointer", Some(p))?
                    .unwrap_or_default(),
            ),
            (Some(_), Some(_)) => {
                return Err(self.err("store.reconnect", "give column or pointer, not both"))
            }
            (None, None) => {
                return Err(self.err(
                    "store.reconnect",
                    "needs column or pointer: where the application marks it",
                ))
            }
        };
        let value = r.value.ok_or_else(|| {
            self.err(
                "store.reconnect.value",
                "is required: the value that means \"the user must reconnect\"",
            )
        })?;
        if !matches!(
            value,
            toml::Value::String(_) | toml::Value::Boolean(_) | toml::Value::Integer(_)
        ) {
            return Err(self.err(
                "store.reconnect.value",
                "must be a string, a boolean or an integer",
            ));
        }
        Ok(ReconnectMark { at, value })
    }
}
