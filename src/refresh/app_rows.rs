//! The engine over the application's own rows (`worker-sim --credential-id` with a store
//! config): the same single flight, lease and fenced write-back as on oauthtest's store, done
//! the application's way.
//!
//! - The lease lives in oauthtest's own table (`oauthtest_app_leases`), never in the
//!   application's row.
//! - A write-back is [`AppStore::write_back`]: only the mapped fields change, re-encrypted with
//!   the application's cipher, compare-and-swap on what was read. When the application changed
//!   the row meanwhile, it is re-read: if its tokens are still the ones this refresh started
//!   from (the application changed another field), the result is written over the row as it is
//!   now; otherwise someone else refreshed, and nothing is overwritten.
//! - `invalid_grant` marks the row as `[store.reconnect]` says; the mark is also kept in this
//!   process, so without a configured mark no further token request is made here either.
//! - The application keeps no refresh history; oauthtest writes none into its database.

use super::backend::{RefreshStore, RowView};
use super::EngineError;
use crate::app_store::{AppCredential, AppLease, AppStore, AppStoreError, Cipher, RowId};
use crate::credential::GoogleCredential;
use crate::error::Error;
use crate::store::{CredentialState, HistoryEntry, RefreshWrite};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// How many times a write-back is re-applied over a row the application keeps changing.
const WRITE_ATTEMPTS: usize = 8;

/// The application's store and its cipher, as the engine's store.
pub struct AppRows {
    store: AppStore,
    cipher: Cipher,
    dead: Mutex<HashSet<RowId>>,
}

/// An application row as loaded: decrypted and mapped, with its lease.
pub struct AppRowState {
    cred: AppCredential,
    lease: Option<AppLease>,
}

fn credential_error(e: AppStoreError) -> EngineError {
    EngineError::Credential(Error::from(e))
}

/// Whether two credentials hold the same tokens (compared in place: no copy of a token).
fn same_tokens(a: &GoogleCredential, b: &GoogleCredential) -> bool {
    fn access(c: &GoogleCredential) -> Option<&str> {
        c.access_token.as_ref().map(|t| t.expose_secret())
    }
    fn refresh(c: &GoogleCredential) -> Option<&str> {
        c.refresh_token.as_ref().map(|t| t.expose_secret())
    }
    access(a) == access(b) && refresh(a) == refresh(b)
}

impl AppRows {
    /// The engine's store over `store`'s rows, sealed with `cipher`. Creates oauthtest's lease
    /// table in the application's database if it is absent.
    ///
    /// # Errors
    /// [`AppStoreError::Database`] when the lease table cannot be created.
    pub async fn new(store: AppStore, cipher: Cipher) -> Result<Self, AppStoreError> {
        store.ensure_lease_table().await?;
        Ok(Self {
            store,
            cipher,
            dead: Mutex::new(HashSet::new()),
        })
    }

    /// The application's store.
    pub fn store(&self) -> &AppStore {
        &self.store
    }

    fn is_dead(&self, id: &RowId) -> bool {
        self.dead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    async fn release(&self, id: &RowId, owner: &str) -> Result<(), EngineError> {
        self.store
            .release_lease(id, owner)
            .await
            .map_err(credential_error)
    }

    /// Writes `new` over the row, re-reading it when the application changed it meanwhile.
    /// Returns whether it was written.
    async fn write(
        &self,
        id: &RowId,
        read: &AppCredential,
        new: &GoogleCredential,
        mark: bool,
    ) -> Result<bool, AppStoreError> {
        let mut row = read.clone();
        for _ in 0..WRITE_ATTEMPTS {
            match self.store.write_back(&self.cipher, &row, new, mark).await {
                Ok(_) => return Ok(true),
                Err(AppStoreError::ChangedMeanwhile { .. }) => {
                    let now = self.store.load(&self.cipher, id).await?;
                    if !same_tokens(&now.secrets, &read.secrets) {
                        tracing::warn!(
                            credential = %id,
                            "the row's tokens changed during the refresh (another writer \
                             refreshed it): its tokens are kept, this result is not written"
                        );
                        return Ok(false);
                    }
                    row = now;
                }
                Err(e) => return Err(e),
            }
        }
        Err(AppStoreError::ChangedMeanwhile {
            table: self.store.config().table.to_string(),
            row: id.to_string(),
        })
    }
}

impl RefreshStore for AppRows {
    type Id = RowId;
    type Row = AppRowState;

    async fn load(&self, id: &RowId) -> Result<AppRowState, EngineError> {
        let cred = self
            .store
            .load(&self.cipher, id)
            .await
            .map_err(credential_error)?;
        let lease = self.store.lease(id).await.map_err(credential_error)?;
        Ok(AppRowState { cred, lease })
    }

    fn view(&self, row: &AppRowState) -> RowView {
        let dead = self.is_dead(&row.cred.row.id);
        RowView {
            needs_reconnect: row.cred.needs_reconnect || dead,
            expires_at: row.cred.secrets.expiry.or(row.cred.row.expiry),
            version: row.cred.row.fingerprint(),
            lease_owner: row.lease.as_ref().map(|l| l.owner.clone()),
            lease_expires_at_ms: row.lease.as_ref().map(|l| l.expires_at_ms),
            last_outcome: dead.then(|| crate::exchange::code::NEEDS_RECONNECT.to_owned()),
        }
    }

    fn secrets(&self, row: &AppRowState) -> Result<GoogleCredential, EngineError> {
        Ok(row.cred.secrets.clone())
    }

    async fn try_acquire_lease(
        &self,
        id: &RowId,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, EngineError> {
        self.store
            .try_lease(id, owner, ttl, false)
            .await
            .map_err(credential_error)
    }

    async fn take_over_lease(
        &self,
        id: &RowId,
        dead: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, EngineError> {
        self.store
            .take_over_lease(id, dead, owner, ttl)
            .await
            .map_err(credential_error)
    }

    async fn steal_lease(&self, id: &RowId, owner: &str, ttl: Duration) -> Result<(), EngineError> {
        self.store
            .try_lease(id, owner, ttl, true)
            .await
            .map(|_| ())
            .map_err(credential_error)
    }

    async fn release_lease(&self, id: &RowId, owner: &str) -> Result<(), EngineError> {
        self.release(id, owner).await
    }

    async fn complete_refresh(
        &self,
        id: &RowId,
        row: &AppRowState,
        owner: &str,
        write: RefreshWrite<'_>,
        history: &HistoryEntry,
    ) -> Result<bool, EngineError> {
        tracing::debug!(credential = %id, outcome = %history.outcome, "refresh finished");
        let held = self
            .store
            .holds_lease(id, owner)
            .await
            .map_err(credential_error)?;
        if !held {
            return Ok(false);
        }
        let mark = write.state == CredentialState::NeedsReconnect;
        if mark {
            self.dead
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.clone());
        }
        // A failed refresh changes nothing in the application's row; a dead refresh token is
        // marked only where the application has a mark.
        let needs_write = !write.failed && (!mark || self.store.config().reconnect.is_some());
        let written = match write.secrets {
            Some(new) if needs_write => self.write(id, &row.cred, new, mark).await,
            _ => Ok(true),
        };
        self.release(id, owner).await?;
        written.map_err(credential_error)
    }
}
