//! [`AppStore`]: list, load, write back, insert and scrub the application's credential rows.
//!
//! Every write is one `UPDATE … WHERE id = … AND data IS <what was read> [AND updated_at IS …]
//! RETURNING …`: a compare-and-swap on the stored value (and `updated_at_column`), so a row the
//! application changed meanwhile is never overwritten ([`AppStoreError::ChangedMeanwhile`]).
//! Before anything is written the new value is decrypted again with the same cipher and must
//! give back the payload: a broken `encrypt_cmd` or key can never leave an unreadable row.

mod write;

use super::cipher::{Cipher, Sealed};
use super::config::{ReconnectWhere, StoreConfig};
use super::db::Db;
use super::error::AppStoreError;
use super::payload::{self, FieldError, Payload};
use super::sql::Ident;
use super::RowId;
use crate::credential::{json_error_position, GoogleCredential};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::fmt;

/// The application's credential table, connected.
pub struct AppStore {
    pub(in crate::app_store) cfg: StoreConfig,
    pub(in crate::app_store) db: Db,
}

impl fmt::Debug for AppStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppStore({} table {})", self.db.url, self.cfg.table)
    }
}

/// One row as listed: what the columns say, no key needed. `Debug` shows the stored value's
/// length only.
#[derive(Clone)]
pub struct AppRow {
    /// The row's id.
    pub id: RowId,
    /// `type_column`.
    pub credential_type: Option<String>,
    /// `name_column`.
    pub name: Option<String>,
    /// `user_column`.
    pub user_id: Option<String>,
    /// `updated_at_column`, parsed.
    pub updated_at: Option<DateTime<Utc>>,
    /// `expiry_column`, parsed: the access token's expiry without decrypting.
    pub expiry: Option<DateTime<Utc>>,
    /// Whether `[store.reconnect] column` marks it; `None` when the mark is in the payload (or
    /// not configured).
    pub reconnect_marked: Option<bool>,
    sealed: Option<Sealed>,
    updated_at_raw: Option<String>,
}

impl fmt::Debug for AppRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppRow")
            .field("id", &self.id)
            .field("type", &self.credential_type)
            .field("name", &self.name)
            .field("user_id", &self.user_id)
            .field("updated_at", &self.updated_at)
            .field("expiry", &self.expiry)
            .field("stored_bytes", &self.sealed.as_ref().map(|s| s.data.len()))
            .finish_non_exhaustive()
    }
}

impl AppRow {
    /// A number that changes whenever the row's stored value (or `updated_at_column`) does: what
    /// a compare-and-swap compares, as one figure (the application keeps no version).
    pub fn fingerprint(&self) -> i64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.sealed
            .as_ref()
            .map(|s| (&s.data, &s.iv, &s.tag))
            .hash(&mut h);
        self.updated_at_raw.hash(&mut h);
        h.finish().cast_signed()
    }

    /// Whether the stored value is empty (NULL or an empty string): nothing to decrypt.
    pub fn is_empty(&self) -> bool {
        self.sealed
            .as_ref()
            .is_none_or(|s| s.data.trim().is_empty())
    }
}

/// A row decrypted and mapped. `Debug` is redacted (the tokens are secret types; the payload
/// is never shown).
#[derive(Debug)]
pub struct AppCredential {
    /// The row it came from.
    pub row: AppRow,
    /// The mapped tokens, expiry, client and scopes.
    pub secrets: GoogleCredential,
    /// Whether the row is marked "must reconnect" (column or payload).
    pub needs_reconnect: bool,
    /// Optional mapped fields this row lacks, as `store.payload.KEY (POINTER)`.
    pub missing_fields: Vec<String>,
    payload: Payload,
}

/// A copy of a credential (it holds secret types and is not `Clone` itself).
fn copy_credential(c: &GoogleCredential) -> GoogleCredential {
    GoogleCredential {
        access_token: c.access_token.clone(),
        refresh_token: c.refresh_token.clone(),
        expiry: c.expiry,
        scopes: c.scopes.clone(),
        token_type: c.token_type.clone(),
        client_id: c.client_id.clone(),
        client_secret: c.client_secret.clone(),
        id_token: c.id_token.clone(),
    }
}

impl Clone for AppCredential {
    fn clone(&self) -> Self {
        Self {
            row: self.row.clone(),
            secrets: copy_credential(&self.secrets),
            needs_reconnect: self.needs_reconnect,
            missing_fields: self.missing_fields.clone(),
            payload: self.payload.clone(),
        }
    }
}

/// The columns of a row `import` inserts.
#[derive(Debug, Clone, Default)]
pub struct NewAppCredential {
    /// `type_column` (required when the table has one; must be one of `google_types`).
    pub credential_type: Option<String>,
    /// `name_column`.
    pub name: Option<String>,
    /// `user_column`.
    pub user_id: Option<String>,
}

/// What [`AppStore::scrub`] did to a row.
#[derive(Debug)]
pub enum ScrubResult {
    /// The payload decrypted: its tokens and expiry are now null, everything else kept.
    TokensCleared(AppCredential),
    /// The payload could not be read (another environment's key, not JSON): it was replaced
    /// by the mapped fields, all null, sealed with this store's key. `reason` says why.
    Replaced {
        /// The row as written.
        row: AppRow,
        /// Why the old payload could not be read (no secret).
        reason: String,
    },
}

// The fixed positions of the selected columns.
const ID: usize = 0;
const DATA: usize = 1;
const IV: usize = 2;
const TAG: usize = 3;
const TYPE: usize = 4;
const NAME: usize = 5;
const USER: usize = 6;
const UPDATED: usize = 7;
const EXPIRY: usize = 8;
const RECONNECT: usize = 9;

/// The text a reconnect mark's value is compared and written as.
fn mark_text(value: &toml::Value, postgres: bool) -> String {
    match value {
        toml::Value::Boolean(b) if postgres => b.to_string(),
        toml::Value::Boolean(b) => if *b { "1" } else { "0" }.to_owned(),
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn mark_matches(value: &toml::Value, text: &str) -> bool {
    match value {
        toml::Value::Boolean(b) => {
            let t = text.trim().to_ascii_lowercase();
            (*b && ["1", "true", "t"].contains(&t.as_str()))
                || (!*b && ["0", "false", "f"].contains(&t.as_str()))
        }
        toml::Value::String(s) => s == text,
        other => other.to_string() == text.trim(),
    }
}

fn mark_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Integer(i) => Value::from(*i),
        other => Value::String(other.as_str().unwrap_or_default().to_owned()),
    }
}

impl AppStore {
    /// Connects to the application's database at `url` and checks that the table and every
    /// configured column exist. Nothing is created or migrated.
    ///
    /// # Errors
    /// [`AppStoreError::Database`] when unreachable; [`AppStoreError::Config`] naming the key
    /// when the table or a column is missing.
    pub async fn connect(cfg: StoreConfig, url: &str) -> Result<Self, AppStoreError> {
        let db = Db::connect(&cfg, url, false).await?;
        Ok(Self { cfg, db })
    }

    /// [`AppStore::connect`] for reading only (the source of `copy`, `doctor`): SQLite opened
    /// read-only, PostgreSQL sessions read-only, so no statement can change anything.
    ///
    /// # Errors
    /// As [`AppStore::connect`].
    pub async fn connect_read_only(cfg: StoreConfig, url: &str) -> Result<Self, AppStoreError> {
        let db = Db::connect(&cfg, url, true).await?;
        Ok(Self { cfg, db })
    }

    /// The config it works by.
    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// The database URL, password removed.
    pub fn url(&self) -> &str {
        &self.db.url
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.db.close().await;
    }

    fn table(&self) -> String {
        self.cfg.table.to_string()
    }

    fn reconnect_column(&self) -> Option<&Ident> {
        match &self.cfg.reconnect {
            Some(super::config::ReconnectMark {
                at: ReconnectWhere::Column(c),
                ..
            }) => Some(c),
            _ => None,
        }
    }

    fn select_list(&self) -> String {
        let c = &self.cfg;
        let read = |col: Option<&Ident>| {
            col.map_or_else(|| "CAST(NULL AS TEXT)".to_owned(), |c| self.db.read_expr(c))
        };
        [
            read(Some(&c.id_column)),
            read(Some(&c.data_column)),
            read(c.iv_column.as_ref()),
            read(c.tag_column.as_ref()),
            read(c.type_column.as_ref()),
            read(c.name_column.as_ref()),
            read(c.user_column.as_ref()),
            read(c.updated_at_column.as_ref()),
            read(c.expiry_column.as_ref()),
            read(self.reconnect_column()),
        ]
        .join(", ")
    }

    fn row(&self, mut r: Vec<Option<String>>) -> AppRow {
        r.resize(RECONNECT + 1, None);
        let take = |r: &mut Vec<Option<String>>, i: usize| r[i].take();
        let data = take(&mut r, DATA);
        let updated_at_raw = take(&mut r, UPDATED);
        let reconnect = take(&mut r, RECONNECT);
        AppRow {
            id: RowId::new(take(&mut r, ID).unwrap_or_default()),
            credential_type: take(&mut r, TYPE),
            name: take(&mut r, NAME),
            user_id: take(&mut r, USER),
            updated_at: updated_at_raw
                .as_deref()
                .and_then(|t| self.cfg.updated_at_format.parse(t)),
            expiry: take(&mut r, EXPIRY).and_then(|t| self.cfg.expiry_column_format.parse(&t)),
            reconnect_marked: self
                .cfg
                .reconnect
                .as_ref()
                .filter(|_| self.reconnect_column().is_some())
                .map(|m| {
                    reconnect
                        .as_deref()
                        .is_some_and(|t| mark_matches(&m.value, t))
                }),
            sealed: data.map(|data| Sealed {
                data,
                iv: take(&mut r, IV),
                tag: take(&mut r, TAG),
            }),
            updated_at_raw,
        }
    }

    /// Every Google credential row (per `type_column` / `google_types`), by id. Needs no key.
    ///
    /// # Errors
    /// [`AppStoreError::Database`].
    pub async fn list(&self) -> Result<Vec<AppRow>, AppStoreError> {
        let mut sql = format!(
            "SELECT {} FROM {}",
            self.select_list(),
            self.cfg.table.quoted()
        );
        let mut params = Vec::new();
        if let Some(t) = &self.cfg.type_column {
            let slots: Vec<_> = (1..=self.cfg.google_types.len())
                .map(|n| format!("${n}"))
                .collect();
            sql.push_str(&format!(
                " WHERE {} IN ({})",
                self.db.read_expr(t),
                slots.join(", ")
            ));
            params.extend(self.cfg.google_types.iter().cloned().map(Some));
        }
        sql.push_str(&format!(" ORDER BY {}", self.cfg.id_column.quoted()));
        let rows = self.db.fetch(sql, &params).await?;
        Ok(rows.into_iter().map(|r| self.row(r)).collect())
    }

    /// One row by id, checked to be a Google credential.
    ///
    /// # Errors
    /// [`AppStoreError::NotFound`], [`AppStoreError::NotGoogle`], [`AppStoreError::Database`].
    pub async fn get(&self, id: &RowId) -> Result<AppRow, AppStoreError> {
        let row = self
            .find(id)
            .await?
            .ok_or_else(|| AppStoreError::NotFound {
                table: self.table(),
                id_column: self.cfg.id_column.to_string(),
                row: id.to_string(),
            })?;
        if self.cfg.type_column.is_some() {
            let found = row.credential_type.clone().unwrap_or_default();
            if !self.cfg.google_types.contains(&found) {
                return Err(AppStoreError::NotGoogle {
                    table: self.table(),
                    row: id.to_string(),
                    found,
                });
            }
        }
        Ok(row)
    }

    async fn find(&self, id: &RowId) -> Result<Option<AppRow>, AppStoreError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = $1",
            self.select_list(),
            self.cfg.table.quoted(),
            self.db.read_expr(&self.cfg.id_column)
        );
        let rows = self.db.fetch(sql, &[Some(id.to_string())]).await?;
        Ok(rows.into_iter().next().map(|r| self.row(r)))
    }

    fn payload_error(&self, row: &RowId, e: FieldError) -> AppStoreError {
        AppStoreError::Payload {
            table: self.table(),
            row: row.to_string(),
            field: e.field,
            problem: e.problem,
        }
    }

    /// Decrypts and maps a listed row.
    ///
    /// # Errors
    /// [`AppStoreError::Decrypt`] (wrong key, tampered, cut, moved where the format binds the
    /// row), [`AppStoreError::Payload`] (not JSON, a pointer naming no field, a wrong type, an
    /// expiry that does not parse), [`AppStoreError::Command`].
    pub async fn open(&self, cipher: &Cipher, row: AppRow) -> Result<AppCredential, AppStoreError> {
        let sealed = row
            .sealed
            .as_ref()
            .filter(|s| !s.data.trim().is_empty())
            .ok_or_else(|| AppStoreError::Decrypt {
                table: self.table(),
                row: row.id.to_string(),
                problem: format!(
                    "{} is empty: there is nothing to decrypt",
                    self.cfg.data_column
                ),
            })?;
        let plaintext = cipher.decrypt(&row.id, sealed).await?;
        let value: Value =
            serde_json::from_slice(&plaintext).map_err(|e| AppStoreError::Payload {
                table: self.table(),
                row: row.id.to_string(),
                field: "payload".to_owned(),
                problem: format!(
                    "the decrypted payload is not JSON ({}); is store.cipher right?",
                    json_error_position(&e)
                ),
            })?;
        self.mapped(row, Payload(value))
    }

    fn mapped(&self, row: AppRow, payload: Payload) -> Result<AppCredential, AppStoreError> {
        let m = payload::read(&self.cfg.payload, &payload, row.updated_at)
            .map_err(|e| self.payload_error(&row.id, e))?;
        let needs_reconnect = match &self.cfg.reconnect {
            Some(mark) => match &mark.at {
                ReconnectWhere::Column(_) => row.reconnect_marked.unwrap_or(false),
                ReconnectWhere::Pointer(p) => payload.0.pointer(p) == Some(&mark_json(&mark.value)),
            },
            None => false,
        };
        Ok(AppCredential {
            row,
            secrets: m.secrets,
            needs_reconnect,
            missing_fields: m.missing,
            payload,
        })
    }

    /// Every Google row, each decrypted and mapped (`doctor`): the credential (whose
    /// `missing_fields` name optional mapped fields the row lacks), or why the row does not
    /// decrypt or map. Writes nothing.
    ///
    /// # Errors
    /// [`AppStoreError::Database`] when the rows cannot be listed; a row's own failure is in its
    /// entry.
    pub async fn audit(
        &self,
        cipher: &Cipher,
    ) -> Result<Vec<(RowId, Result<AppCredential, AppStoreError>)>, AppStoreError> {
        let mut out = Vec::new();
        for row in self.list().await? {
            let id = row.id.clone();
            out.push((id, self.open(cipher, row).await));
        }
        Ok(out)
    }

    /// [`AppStore::get`] then [`AppStore::open`].
    ///
    /// # Errors
    /// As those.
    pub async fn load(&self, cipher: &Cipher, id: &RowId) -> Result<AppCredential, AppStoreError> {
        let row = self.get(id).await?;
        self.open(cipher, row).await
    }
}
