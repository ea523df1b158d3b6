//! Writing credentials: inserts and compare-and-swap replacements, each sealed for the version it
//! leaves the row at, in one transaction with its history line.

use super::{now, Backend, HistoryEntry, NewCredential, Store, StoreError};
use crate::credential::GoogleCredential;
use crate::crypto::{Binding, Keyring};
use crate::store::{CredentialRow, CredentialState};

impl Store {
    /// Stores a new credential, encrypted with the keyring's current key and bound to its row,
    /// and records `history` for it; all in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Query`]; nothing is written then.
    pub async fn insert(
        &self,
        new: &NewCredential,
        secrets: &GoogleCredential,
        keyring: &Keyring,
        history: &HistoryEntry,
    ) -> Result<i64, StoreError> {
        self.insert_with_state(new, secrets, CredentialState::Active, keyring, history)
            .await
    }

    /// [`Store::insert`], in `state` (a copy keeps its source's state).
    ///
    /// # Errors
    /// [`StoreError::Query`]; nothing is written then.
    pub async fn insert_with_state(
        &self,
        new: &NewCredential,
        secrets: &GoogleCredential,
        state: CredentialState,
        keyring: &Keyring,
        history: &HistoryEntry,
    ) -> Result<i64, StoreError> {
        let at = now();
        let payload = secrets.to_payload();
        // A new row is at version 1; the envelope is bound to it once the id is known.
        let store_id = self.binding(0, 1)?.store_id;
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO oauthtest_credentials
                        (user_id, type, name, encrypted_data, created_at, updated_at, expires_at,
                         state, has_refresh_token, key_id)
                     VALUES ($1, $2, $3, '', $4, $4, $5, $6, $7, $8)
                     RETURNING id",
                )
                .bind(new.user_id)
                .bind(&new.credential_type)
                .bind(&new.name)
                .bind(at)
                .bind(secrets.expiry)
                .bind(state.as_str())
                .bind(secrets.refresh_token.is_some())
                .bind(keyring.current().id())
                .fetch_one(&mut *tx)
                .await?;
                let binding = Binding {
                    store_id,
                    credential_id: id,
                    version: 1,
                };
                let envelope = keyring.seal(&binding, &payload);
                sqlx::query("UPDATE oauthtest_credentials SET encrypted_data = $1 WHERE id = $2")
                    .bind(&envelope)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                insert_history!(&mut *tx, id, at, history)?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(id)
            }
            .await
        })
        .map_err(|e| self.query_error(e))
    }

    /// Replaces a credential's envelope with one sealed by the keyring's current key (rekey),
    /// keeping its state, if the row is still at `row.version`. Unlike [`Store::rewrite`] it
    /// leaves a refresh lease alone: a refresh in flight may still write its newer token back.
    /// Returns whether it was replaced.
    ///
    /// # Errors
    /// [`StoreError::Query`]; nothing is written then.
    pub async fn reseal(
        &self,
        row: &CredentialRow,
        secrets: &GoogleCredential,
        keyring: &Keyring,
        history: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        self.replace_secrets(row, secrets, row.state(), keyring, history, false)
            .await
    }

    /// Replaces a credential's secrets and state (force-expire, scrub), if the row is still at
    /// `row.version`: the envelope is sealed anew with the keyring's current key, and the
    /// columns kept beside it (`expires_at`, `has_refresh_token`) follow the new secrets. Any
    /// refresh lease is cleared, so a refresh already in flight is fenced out (its write-back
    /// finds the lease gone and discards its result) and cannot put back what was replaced. One
    /// transaction with its history line. Returns whether it was replaced; `false` means
    /// another writer changed the row since it was read, and nothing was written.
    ///
    /// # Errors
    /// [`StoreError::Query`]; nothing is written then.
    pub async fn rewrite(
        &self,
        row: &CredentialRow,
        secrets: &GoogleCredential,
        state: CredentialState,
        keyring: &Keyring,
        history: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        self.replace_secrets(row, secrets, state, keyring, history, true)
            .await
    }

    /// [`Store::rewrite`] and [`Store::reseal`]: `fence_out_refresh` clears any refresh lease.
    async fn replace_secrets(
        &self,
        row: &CredentialRow,
        secrets: &GoogleCredential,
        state: CredentialState,
        keyring: &Keyring,
        history: &HistoryEntry,
        fence_out_refresh: bool,
    ) -> Result<bool, StoreError> {
        // The update leaves the row at the next version: the envelope is bound to that one.
        let envelope = keyring.seal(
            &self.binding(row.id, row.version + 1)?,
            &secrets.to_payload(),
        );
        let at = now();
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let done = sqlx::query(if fence_out_refresh {
                    "UPDATE oauthtest_credentials
                     SET encrypted_data = $1, key_id = $2, expires_at = $3,
                         has_refresh_token = $4, state = $5, updated_at = $6,
                         version = version + 1, lease_owner = NULL, lease_expires_at_ms = NULL
                     WHERE id = $7 AND version = $8"
                } else {
                    "UPDATE oauthtest_credentials
                     SET encrypted_data = $1, key_id = $2, expires_at = $3,
                         has_refresh_token = $4, state = $5, updated_at = $6,
                         version = version + 1
                     WHERE id = $7 AND version = $8"
                })
                .bind(&envelope)
                .bind(keyring.current().id())
                .bind(secrets.expiry)
                .bind(secrets.refresh_token.is_some())
                .bind(state.as_str())
                .bind(at)
                .bind(row.id)
                .bind(row.version)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if done {
                    insert_history!(&mut *tx, row.id, at, history)?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(done)
            }
            .await
        })
        .map_err(|e| self.query_error(e))
    }

    /// Deletes credentials (throwaway rows of a mock run) and their history.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn delete(&self, ids: &[i64]) -> Result<(), StoreError> {
        for id in ids {
            on_pool!(self, |pool| {
                async {
                    let mut tx = pool.begin().await?;
                    sqlx::query("DELETE FROM oauthtest_refresh_history WHERE credential_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM oauthtest_credentials WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await
                }
                .await
            })
            .map_err(|e| self.query_error(e))?;
        }
        Ok(())
    }
}
