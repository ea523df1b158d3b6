//! What the engine needs of a store: load a row, take and release its refresh lease, write a
//! refresh's result back fenced on that lease. [`Native`] is oauthtest's own store (the lease
//! and the version in the row, one transaction per write-back); the application's store is
//! [`super::app_rows::AppRows`] (the lease in oauthtest's own table, compare-and-swap writes).

use super::EngineError;
use crate::credential::GoogleCredential;
use crate::crypto::Keyring;
use crate::store::{CredentialRow, CredentialState, HistoryEntry, RefreshWrite, Store};
use chrono::{DateTime, Utc};
use std::fmt::{Debug, Display};
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

/// What the engine decides by, read from a loaded row (no secret).
#[derive(Debug, Clone)]
pub struct RowView {
    /// The user must reconnect: no token request is made for it.
    pub needs_reconnect: bool,
    /// When the stored access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Changes with every write of the row, so a refresh by another worker is recognised.
    pub version: i64,
    /// Who holds the refresh lease, if anyone.
    pub lease_owner: Option<String>,
    /// When that lease lapses (unix ms).
    pub lease_expires_at_ms: Option<i64>,
    /// The last refresh's outcome code, when the store keeps one.
    pub last_outcome: Option<String>,
}

/// A credential store the refresh engine works over.
///
/// Every write-back is fenced on the lease: [`RefreshStore::complete_refresh`] writes nothing
/// and returns `false` when `owner` no longer holds it (or the row changed under it), so a
/// worker whose lease lapsed never overwrites a newer token.
pub trait RefreshStore: Send + Sync + 'static {
    /// A row's id.
    type Id: Clone + Eq + Hash + Display + Debug + Send + Sync + 'static;
    /// A loaded row.
    type Row: Send + Sync;

    /// The row `id`.
    ///
    /// # Errors
    /// [`EngineError::Credential`] when it is gone or cannot be read.
    fn load(&self, id: &Self::Id) -> impl Future<Output = Result<Self::Row, EngineError>> + Send;

    /// What the engine decides by.
    fn view(&self, row: &Self::Row) -> RowView;

    /// The row's tokens and client.
    ///
    /// # Errors
    /// [`EngineError::Credential`] when they cannot be decrypted.
    fn secrets(&self, row: &Self::Row) -> Result<GoogleCredential, EngineError>;

    /// Takes the lease for `owner` until `ttl` from now, unless someone else holds a live one.
    fn try_acquire_lease(
        &self,
        id: &Self::Id,
        owner: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, EngineError>> + Send;

    /// Takes over the lease `dead` holds (a compare-and-swap on the holder).
    fn take_over_lease(
        &self,
        id: &Self::Id,
        dead: &str,
        owner: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, EngineError>> + Send;

    /// Takes the lease whoever holds it (only the refresh-storm demonstration).
    fn steal_lease(
        &self,
        id: &Self::Id,
        owner: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Releases `owner`'s lease; someone else's is left alone.
    fn release_lease(
        &self,
        id: &Self::Id,
        owner: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Writes a refresh's result into the row `row` was read as, fenced on `owner`'s lease,
    /// and releases the lease. Returns whether it was written.
    fn complete_refresh(
        &self,
        id: &Self::Id,
        row: &Self::Row,
        owner: &str,
        write: RefreshWrite<'_>,
        history: &HistoryEntry,
    ) -> impl Future<Output = Result<bool, EngineError>> + Send;
}

/// oauthtest's own store and its keys.
pub struct Native {
    /// The store.
    pub store: Arc<Store>,
    /// Its keys.
    pub keyring: Arc<Keyring>,
}

impl RefreshStore for Native {
    type Id = i64;
    type Row = CredentialRow;

    async fn load(&self, id: &i64) -> Result<CredentialRow, EngineError> {
        match self.store.get(*id).await? {
            Some(row) => Ok(row),
            None => Err(EngineError::Credential(
                crate::error::not_found(&self.store, *id).await,
            )),
        }
    }

    fn view(&self, row: &CredentialRow) -> RowView {
        RowView {
            needs_reconnect: row.state() == CredentialState::NeedsReconnect,
            expires_at: row.expires_at,
            version: row.version,
            lease_owner: row.lease_owner.clone(),
            lease_expires_at_ms: row.lease_expires_at_ms,
            last_outcome: row.last_refresh_outcome.clone(),
        }
    }

    fn secrets(&self, row: &CredentialRow) -> Result<GoogleCredential, EngineError> {
        Ok(row.decrypt(&self.keyring)?)
    }

    async fn try_acquire_lease(
        &self,
        id: &i64,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, EngineError> {
        Ok(self.store.try_acquire_lease(*id, owner, ttl).await?)
    }

    async fn take_over_lease(
        &self,
        id: &i64,
        dead: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, EngineError> {
        Ok(self.store.take_over_lease(*id, dead, owner, ttl).await?)
    }

    async fn steal_lease(&self, id: &i64, owner: &str, ttl: Duration) -> Result<(), EngineError> {
        Ok(self.store.steal_lease(*id, owner, ttl).await?)
    }

    async fn release_lease(&self, id: &i64, owner: &str) -> Result<(), EngineError> {
        Ok(self.store.release_lease(*id, owner).await?)
    }

    async fn complete_refresh(
        &self,
        id: &i64,
        _row: &CredentialRow,
        owner: &str,
        write: RefreshWrite<'_>,
        history: &HistoryEntry,
    ) -> Result<bool, EngineError> {
        Ok(self
            .store
            .complete_refresh(*id, owner, write, &self.keyring, history)
            .await?)
    }
}
