//! The writes: write-back, scrub and insert, each a single compare-and-swap statement.

use super::{
    copy_credential, mark_json, mark_text, AppCredential, AppRow, AppStore, NewAppCredential,
    ScrubResult,
};
use crate::app_store::cipher::{Cipher, Sealed};
use crate::app_store::config::{CipherKind, NewIdPolicy, ReconnectWhere};
use crate::app_store::error::AppStoreError;
use crate::app_store::payload::{self, Payload};
use crate::app_store::sql::Ident;
use crate::app_store::RowId;
use crate::credential::GoogleCredential;
use chrono::{DateTime, Utc};
use serde_json::Value;
use zeroize::Zeroizing;

impl AppStore {
    /// Seals `payload` and checks that it opens again to the same JSON.
    async fn seal(
        &self,
        cipher: &Cipher,
        id: &RowId,
        payload: &Payload,
    ) -> Result<Sealed, AppStoreError> {
        let plaintext = Zeroizing::new(serde_json::to_vec(&payload.0).unwrap_or_default());
        let sealed = cipher.encrypt(id, &plaintext).await?;
        let back = cipher.decrypt(id, &sealed).await?;
        if serde_json::from_slice::<Value>(&back).ok().as_ref() != Some(&payload.0) {
            return Err(AppStoreError::Decrypt {
                table: self.table(),
                row: id.to_string(),
                problem: format!("the value {} sealed does not decrypt back to the same payload; nothing was written", cipher.kind().as_str()),
            });
        }
        Ok(sealed)
    }

    /// Writes `new` back into the row `cred` was loaded from: only the mapped fields whose
    /// values changed are set in the payload (every other field and column unchanged), it is
    /// re-encrypted with `cipher`, `updated_at_column` and `expiry_column` are set, and with
    /// `mark_reconnect` the reconnect mark too. Compare-and-swap on what was read. Returns the
    /// row as written (load-equivalent, for a further write).
    ///
    /// # Errors
    /// [`AppStoreError::ChangedMeanwhile`] when the row changed since it was read (nothing
    /// written), [`AppStoreError::NotFound`] when it is gone, [`AppStoreError::Payload`] when a
    /// pointer cannot be set, [`AppStoreError::Database`], [`AppStoreError::Command`].
    pub async fn write_back(
        &self,
        cipher: &Cipher,
        cred: &AppCredential,
        new: &GoogleCredential,
        mark_reconnect: bool,
    ) -> Result<AppCredential, AppStoreError> {
        let now = Utc::now();
        let mut payload = cred.payload.clone();
        payload::apply(&self.cfg.payload, &mut payload, &cred.secrets, new, now)
            .map_err(|e| self.payload_error(&cred.row.id, e))?;
        self.mark_in_payload(&mut payload, mark_reconnect, &cred.row.id)?;
        let row = self
            .update(cipher, &cred.row, &payload, now, new.expiry, mark_reconnect)
            .await?;
        self.mapped(row, payload)
    }

    fn mark_in_payload(
        &self,
        payload: &mut Payload,
        mark: bool,
        id: &RowId,
    ) -> Result<(), AppStoreError> {
        if let (true, Some(m)) = (mark, &self.cfg.reconnect) {
            if let ReconnectWhere::Pointer(p) = &m.at {
                payload::set(&mut payload.0, p, mark_json(&m.value)).map_err(|problem| {
                    AppStoreError::Payload {
                        table: self.table(),
                        row: id.to_string(),
                        field: format!("store.reconnect.pointer ({p})"),
                        problem,
                    }
                })?;
            }
        }
        Ok(())
    }

    async fn update(
        &self,
        cipher: &Cipher,
        old: &AppRow,
        payload: &Payload,
        now: DateTime<Utc>,
        expiry: Option<DateTime<Utc>>,
        mark_reconnect: bool,
    ) -> Result<AppRow, AppStoreError> {
        let sealed = self.seal(cipher, &old.id, payload).await?;
        let c = &self.cfg;
        let pg = self.db.postgres();
        let mut sets: Vec<(&Ident, Option<String>)> =
            vec![(&c.data_column, Some(sealed.data.clone()))];
        if let Some(col) = &c.iv_column {
            sets.push((col, sealed.iv.clone()));
        }
        if let Some(col) = &c.tag_column {
            sets.push((col, sealed.tag.clone()));
        }
        if let Some(col) = &c.updated_at_column {
            sets.push((col, Some(c.updated_at_format.format(now, pg))));
        }
        if let Some(col) = &c.expiry_column {
            sets.push((col, expiry.map(|at| c.expiry_column_format.format(at, pg))));
        }
        if let (true, Some(col), Some(m)) = (mark_reconnect, self.reconnect_column(), &c.reconnect)
        {
            sets.push((col, Some(mark_text(&m.value, pg))));
        }
        let mut params: Vec<Option<String>> = Vec::new();
        let mut assignments = Vec::new();
        for (col, value) in sets {
            params.push(value);
            assignments.push(format!(
                "{} = {}",
                col.quoted(),
                self.db.write_expr(col, params.len())
            ));
        }
        params.push(Some(old.id.to_string()));
        let mut conditions = vec![format!(
            "{} = ${}",
            self.db.read_expr(&c.id_column),
            params.len()
        )];
        let previous = old.sealed.clone();
        let mut guard = |col: &Ident, value: Option<String>, params: &mut Vec<Option<String>>| {
            params.push(value);
            conditions.push(self.db.same_expr(col, params.len()));
        };
        guard(
            &c.data_column,
            previous.as_ref().map(|s| s.data.clone()),
            &mut params,
        );
        if let Some(col) = &c.iv_column {
            guard(
                col,
                previous.as_ref().and_then(|s| s.iv.clone()),
                &mut params,
            );
        }
        if let Some(col) = &c.tag_column {
            guard(
                col,
                previous.as_ref().and_then(|s| s.tag.clone()),
                &mut params,
            );
        }
        if let Some(col) = &c.updated_at_column {
            guard(col, old.updated_at_raw.clone(), &mut params);
        }
        let sql = format!(
            "UPDATE {} SET {} WHERE {} RETURNING {}",
            c.table.quoted(),
            assignments.join(", "),
            conditions.join(" AND "),
            self.select_list()
        );
        match self.db.fetch(sql, &params).await?.into_iter().next() {
            Some(r) => Ok(self.row(r)),
            None if self.find(&old.id).await?.is_some() => Err(AppStoreError::ChangedMeanwhile {
                table: self.table(),
                row: old.id.to_string(),
            }),
            None => Err(AppStoreError::NotFound {
                table: self.table(),
                id_column: c.id_column.to_string(),
                row: old.id.to_string(),
            }),
        }
    }

    /// Wipes a row's tokens the application's way and marks it "must reconnect": a payload that
    /// decrypts keeps every field but the tokens and expiry (set to null); one that does not
    /// (sealed with another environment's key) is replaced by the mapped fields, all null.
    /// Compare-and-swap like [`AppStore::write_back`].
    ///
    /// # Errors
    /// As [`AppStore::write_back`].
    pub async fn scrub(&self, cipher: &Cipher, row: &AppRow) -> Result<ScrubResult, AppStoreError> {
        match self.open(cipher, row.clone()).await {
            Ok(cred) => {
                let mut new = copy_credential(&cred.secrets);
                new.access_token = None;
                new.refresh_token = None;
                new.expiry = None;
                self.write_back(cipher, &cred, &new, true)
                    .await
                    .map(ScrubResult::TokensCleared)
            }
            Err(e @ (AppStoreError::Decrypt { .. } | AppStoreError::Payload { .. })) => {
                let mut payload = payload::skeleton(&self.cfg.payload);
                self.mark_in_payload(&mut payload, true, &row.id)?;
                let written = self
                    .update(cipher, row, &payload, Utc::now(), None, true)
                    .await?;
                Ok(ScrubResult::Replaced {
                    row: written,
                    reason: e.to_string(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Inserts a new row in the application's format (`import`): the payload holds the mapped
    /// fields only, sealed with `cipher`; `type_column`, `name_column`, `user_column`,
    /// `created_at_column`, `updated_at_column` and `expiry_column` are set; the id is the
    /// database's or a new UUID (`store.new_id`).
    ///
    /// # Errors
    /// [`AppStoreError::Unsupported`] when the table's shape does not allow it (a type outside
    /// `google_types`, the native envelope with database-assigned ids), and
    /// [`AppStoreError::Database`] when the insert fails (a NOT NULL column without a default).
    pub async fn insert(
        &self,
        cipher: &Cipher,
        new: &NewAppCredential,
        secrets: &GoogleCredential,
    ) -> Result<AppCredential, AppStoreError> {
        self.insert_marked(cipher, new, secrets, false).await
    }

    /// [`AppStore::insert`], with the row marked "must reconnect" when `needs_reconnect` (a
    /// copy of a credential whose refresh token is dead).
    ///
    /// # Errors
    /// As [`AppStore::insert`].
    pub async fn insert_marked(
        &self,
        cipher: &Cipher,
        new: &NewAppCredential,
        secrets: &GoogleCredential,
        needs_reconnect: bool,
    ) -> Result<AppCredential, AppStoreError> {
        let c = &self.cfg;
        let mut payload = payload::skeleton(&c.payload);
        payload::apply(
            &c.payload,
            &mut payload,
            &empty_credential(),
            secrets,
            Utc::now(),
        )
        .map_err(|e| self.payload_error(&RowId::new("(new)"), e))?;
        self.insert_payload(cipher, new, payload, secrets.expiry, needs_reconnect)
            .await
    }

    /// Inserts a copy of `from` (read from another store, usually production's, with its own
    /// cipher) sealed with this store's `cipher` (`copy`): the whole payload comes along, every
    /// field as the application wrote it, with this store's mapping applied over it; a row
    /// marked "must reconnect" stays marked. `new` gives the columns (type, name, user).
    ///
    /// # Errors
    /// As [`AppStore::insert`].
    pub async fn insert_copy(
        &self,
        cipher: &Cipher,
        from: &AppCredential,
        new: &NewAppCredential,
    ) -> Result<AppCredential, AppStoreError> {
        let c = &self.cfg;
        let mut payload = from.payload.clone();
        let here = payload::read(&c.payload, &payload, from.row.updated_at)
            .map(|m| m.secrets)
            .unwrap_or_else(|_| empty_credential());
        payload::apply(&c.payload, &mut payload, &here, &from.secrets, Utc::now())
            .map_err(|e| self.payload_error(&RowId::new("(new)"), e))?;
        self.insert_payload(
            cipher,
            new,
            payload,
            from.secrets.expiry,
            from.needs_reconnect,
        )
        .await
    }

    async fn insert_payload(
        &self,
        cipher: &Cipher,
        new: &NewAppCredential,
        mut payload: Payload,
        expiry: Option<DateTime<Utc>>,
        mark_reconnect: bool,
    ) -> Result<AppCredential, AppStoreError> {
        let c = &self.cfg;
        let unsupported = |problem: String| AppStoreError::Unsupported {
            table: self.table(),
            problem,
        };
        if c.type_column.is_some()
            && !new
                .credential_type
                .as_ref()
                .is_some_and(|t| c.google_types.contains(t))
        {
            return Err(unsupported(format!(
                "a new row needs a type among store.google_types ({}), or it would not be seen as a Google credential",
                c.google_types.join(", ")
            )));
        }
        let id = match c.new_id {
            NewIdPolicy::Uuid => Some(RowId::new(uuid::Uuid::new_v4().to_string())),
            NewIdPolicy::Database if c.cipher == CipherKind::Native => {
                return Err(unsupported("the native envelope binds the row id, which the database assigns only on insert; import into oauthtest's own store instead".into()))
            }
            NewIdPolicy::Database => None,
        };
        let now = Utc::now();
        self.mark_in_payload(&mut payload, mark_reconnect, &RowId::new("(new)"))?;
        let seal_id = id.clone().unwrap_or_else(|| RowId::new(""));
        let sealed = self.seal(cipher, &seal_id, &payload).await?;
        let pg = self.db.postgres();
        let stamp = Some(c.updated_at_format.format(now, pg));
        let mut values: Vec<(&Ident, Option<String>)> = vec![(&c.data_column, Some(sealed.data))];
        let optional = [
            (c.iv_column.as_ref(), sealed.iv),
            (c.tag_column.as_ref(), sealed.tag),
            (c.type_column.as_ref(), new.credential_type.clone()),
            (c.name_column.as_ref(), new.name.clone()),
            (c.user_column.as_ref(), new.user_id.clone()),
            (c.created_at_column.as_ref(), stamp.clone()),
            (c.updated_at_column.as_ref(), stamp),
            (
                c.expiry_column.as_ref(),
                expiry.map(|at| c.expiry_column_format.format(at, pg)),
            ),
        ];
        values.extend(
            optional
                .into_iter()
                .filter_map(|(col, v)| col.map(|col| (col, v))),
        );
        if let Some(id) = &id {
            values.push((&c.id_column, Some(id.to_string())));
        }
        if let (true, Some(col), Some(m)) = (mark_reconnect, self.reconnect_column(), &c.reconnect)
        {
            values.push((col, Some(mark_text(&m.value, pg))));
        }
        let columns: Vec<_> = values.iter().map(|(col, _)| col.quoted()).collect();
        let slots: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, (col, _))| self.db.write_expr(col, i + 1))
            .collect();
        let params: Vec<_> = values.into_iter().map(|(_, v)| v).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) RETURNING {}",
            c.table.quoted(),
            columns.join(", "),
            slots.join(", "),
            self.select_list()
        );
        let row = self
            .db
            .fetch(sql, &params)
            .await?
            .into_iter()
            .next()
            .map(|r| self.row(r))
            .ok_or_else(|| unsupported("the insert returned no row".into()))?;
        self.mapped(row, payload)
    }
}

impl AppStore {
    /// Deletes rows by id: only the temporary rows oauthtest inserted itself (`mock` and
    /// `mock-all --target-cmd` seed one per scenario), never one of the application's own.
    /// Returns how many were deleted.
    ///
    /// # Errors
    /// [`AppStoreError::Database`].
    pub async fn delete(&self, ids: &[RowId]) -> Result<usize, AppStoreError> {
        let c = &self.cfg;
        let mut deleted = 0;
        for id in ids {
            let sql = format!(
                "DELETE FROM {} WHERE {} = $1 RETURNING {}",
                c.table.quoted(),
                self.db.read_expr(&c.id_column),
                self.db.read_expr(&c.id_column)
            );
            deleted += self.db.fetch(sql, &[Some(id.to_string())]).await?.len();
        }
        Ok(deleted)
    }
}

/// A credential with nothing in it: what a new row's mapped fields are compared against.
fn empty_credential() -> GoogleCredential {
    GoogleCredential {
        access_token: None,
        refresh_token: None,
        expiry: None,
        scopes: Vec::new(),
        token_type: String::new(),
        client_id: None,
        client_secret: None,
        id_token: None,
    }
}
