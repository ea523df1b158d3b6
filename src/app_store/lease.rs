//! Refresh leases on the application's rows, in oauthtest's own table.
//!
//! The application's table is never altered, so a lease cannot live in its row as it does in
//! `oauthtest_credentials`. It lives in `oauthtest_app_leases` (table name, row id, holder,
//! lapse time), created in the application's database only if absent, by the one mode that
//! takes leases there (`worker-sim --credential-id` on an application store). Like the native
//! lease it holds no connection and lapses by itself.

use super::store::AppStore;
use super::{AppStoreError, RowId};
use chrono::Utc;
use std::time::Duration;

/// oauthtest's own lease table in the application's database.
pub const LEASE_TABLE: &str = "oauthtest_app_leases";

/// Who holds a row's lease and until when (unix ms).
#[derive(Debug, Clone)]
pub struct AppLease {
    /// The holder (host, pid, run: never a secret).
    pub owner: String,
    /// When it lapses.
    pub expires_at_ms: i64,
}

fn until(ttl: Duration) -> String {
    (Utc::now().timestamp_millis() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2))
        .to_string()
}

impl AppStore {
    /// Creates `oauthtest_app_leases` unless it exists. The application's own table is not
    /// touched.
    ///
    /// # Errors
    /// [`AppStoreError::Database`] (no CREATE privilege, a read-only database).
    pub async fn ensure_lease_table(&self) -> Result<(), AppStoreError> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {LEASE_TABLE} (table_name TEXT NOT NULL, \
             row_id TEXT NOT NULL, owner TEXT NOT NULL, expires_at_ms BIGINT NOT NULL, \
             PRIMARY KEY (table_name, row_id))"
        );
        self.db.fetch(sql, &[]).await.map(|_| ())
    }

    fn key(&self, id: &RowId) -> [Option<String>; 2] {
        [Some(self.cfg.table.to_string()), Some(id.to_string())]
    }

    /// Whether a statement returned a row.
    async fn one(&self, sql: String, params: &[Option<String>]) -> Result<bool, AppStoreError> {
        Ok(!self.db.fetch(sql, params).await?.is_empty())
    }

    /// Takes row `id`'s lease for `owner` until `ttl` from now, unless someone else holds a live
    /// one (`force`: whoever holds it). Returns whether it was taken.
    ///
    /// # Errors
    /// [`AppStoreError::Database`].
    pub async fn try_lease(
        &self,
        id: &RowId,
        owner: &str,
        ttl: Duration,
        force: bool,
    ) -> Result<bool, AppStoreError> {
        let guard = if force {
            ""
        } else {
            " WHERE l.expires_at_ms < CAST($5 AS BIGINT) OR l.owner = excluded.owner"
        };
        let sql = format!(
            "INSERT INTO {LEASE_TABLE} AS l (table_name, row_id, owner, expires_at_ms) \
             VALUES ($1, $2, $3, CAST($4 AS BIGINT)) ON CONFLICT (table_name, row_id) DO UPDATE \
             SET owner = excluded.owner, expires_at_ms = excluded.expires_at_ms{guard} \
             RETURNING owner"
        );
        let [table, row] = self.key(id);
        let mut params = vec![table, row, Some(owner.to_owned()), Some(until(ttl))];
        if !force {
            params.push(Some(Utc::now().timestamp_millis().to_string()));
        }
        self.one(sql, &params).await
    }

    /// Takes over the lease `dead` holds (only that holder's) for `owner`.
    ///
    /// # Errors
    /// [`AppStoreError::Database`].
    pub async fn take_over_lease(
        &self,
        id: &RowId,
        dead: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, AppStoreError> {
        let sql = format!(
            "UPDATE {LEASE_TABLE} SET owner = $3, expires_at_ms = CAST($4 AS BIGINT) \
             WHERE table_name = $1 AND row_id = $2 AND owner = $5 RETURNING owner"
        );
        let [table, row] = self.key(id);
        let params = [
            table,
            row,
            Some(owner.to_owned()),
            Some(until(ttl)),
            Some(dead.to_owned()),
        ];
        self.one(sql, &params).await
    }

    /// Releases `owner`'s lease on row `id`; someone else's is left alone.
    ///
    /// # Errors
    /// [`AppStoreError::Database`].
    pub async fn release_lease(&self, id: &RowId, owner: &str) -> Result<(), AppStoreError> {
        let sql = format!(
            "DELETE FROM {LEASE_TABLE} WHERE table_name = $1 AND row_id = $2 AND owner = $3 \
             RETURNING owner"
        );
        let [table, row] = self.key(id);
        self.one(sql, &[table, row, Some(owner.to_owned())])
            .await
            .map(|_| ())
    }

    /// Who holds row `id`'s lease, if anyone (lapsed or not).
    ///
    /// # Errors
    /// [`AppStoreError::Database`].
    pub async fn lease(&self, id: &RowId) -> Result<Option<AppLease>, AppStoreError> {
        let sql = format!(
            "SELECT owner, CAST(expires_at_ms AS TEXT) FROM {LEASE_TABLE} \
             WHERE table_name = $1 AND row_id = $2"
        );
        let [table, row] = self.key(id);
        let rows = self.db.fetch(sql, &[table, row]).await?;
        Ok(rows.into_iter().next().and_then(|mut r| {
            r.resize(2, None);
            Some(AppLease {
                owner: r[0].take()?,
                expires_at_ms: r[1].take()?.parse().ok()?,
            })
        }))
    }

    /// Whether `owner` holds a live lease on row `id`.
    ///
    /// # Errors
    /// [`AppStoreError::Database`].
    pub async fn holds_lease(&self, id: &RowId, owner: &str) -> Result<bool, AppStoreError> {
        let now = Utc::now().timestamp_millis();
        Ok(self
            .lease(id)
            .await?
            .is_some_and(|l| l.owner == owner && l.expires_at_ms >= now))
    }
}
