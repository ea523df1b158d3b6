//! Where credentials live: SQLite (the embedded default) or PostgreSQL (staging), through sqlx.
//!
//! Both backends run the same SQL text (positional `$N` parameters work in both) and their own
//! migrations, applied automatically and idempotently on connect. Every table, including sqlx's
//! migration ledger, is prefixed `oauthtest_`, so the store can live inside an existing staging
//! database without touching its tables.
//!
//! A credential's secrets are only ever written as an envelope bound to the row's id (see
//! [`crate::crypto`]): an insert takes the id first and seals the payload in the same transaction,
//! and every update is a compare-and-swap on the row's `version`, so two writers can never
//! silently overwrite each other.

mod row;

pub use row::{CredentialRow, CredentialState, HistoryRow};

use crate::credential::GoogleCredential;
use crate::crypto::Keyring;
use chrono::{DateTime, Utc};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// The migration ledger's table name (sqlx's default `_sqlx_migrations` could clash with the
/// host application's own).
pub const MIGRATIONS_TABLE: &str = "oauthtest_schema_migrations";

/// The default store when no `DATABASE_URL` is given: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://oauthtest.db";

/// Why the store failed. Messages show the database URL with any password removed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no backend we support.
    #[error("DATABASE_URL {url}: unsupported; use sqlite://PATH or postgres://USER@HOST:PORT/DB")]
    UnsupportedUrl {
        /// The URL, password removed.
        url: String,
    },
    /// The database could not be reached or opened.
    #[error("database {url}: cannot connect: {reason}")]
    Unreachable {
        /// The URL, password removed.
        url: String,
        /// The driver's reason.
        reason: String,
    },
    /// Migrations could not be applied.
    #[error("database {url}: migrations failed: {reason}")]
    Migration {
        /// The URL, password removed.
        url: String,
        /// The driver's reason.
        reason: String,
    },
    /// A statement failed on a reachable database.
    #[error("database {url}: {reason}")]
    Query {
        /// The URL, password removed.
        url: String,
        /// The driver's reason.
        reason: String,
    },
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// SQLite, the embedded default.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same statement on whichever backend the store has.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

/// Appends a history line inside the caller's transaction (expanded per backend).
macro_rules! insert_history {
    ($executor:expr, $credential_id:expr, $at:expr, $history:expr) => {
        sqlx::query(
            "INSERT INTO oauthtest_refresh_history
                (credential_id, at, mode, action, outcome, detail)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind($credential_id)
        .bind($at)
        .bind(&$history.mode)
        .bind(&$history.action)
        .bind(&$history.outcome)
        .bind(&$history.detail)
        .execute($executor)
        .await
    };
}

/// The metadata of a new credential row.
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// The owning user's id in the host application.
    pub user_id: i64,
    /// The credential type, e.g. `gmailOAuth2`.
    pub credential_type: String,
    /// A human name.
    pub name: String,
}

/// One line of a credential's history (no secrets: what, by which mode, with what outcome).
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// The mode that made the change.
    pub mode: String,
    /// What was done: `import`, `rekey`, `refresh`, `expire`, `scrub`, `copy`, …
    pub action: String,
    /// How it ended: `ok`, `refreshed`, `needs_reconnect`, …
    pub outcome: String,
    /// A short free-text detail, never a secret.
    pub detail: Option<String>,
}

impl HistoryEntry {
    /// A history line.
    pub fn new(mode: &str, action: &str, outcome: &str, detail: Option<String>) -> Self {
        Self {
            mode: mode.to_owned(),
            action: action.to_owned(),
            outcome: outcome.to_owned(),
            detail,
        }
    }
}

/// The result of a refresh attempt, as written back by [`Store::complete_refresh`].
#[derive(Debug)]
pub struct RefreshWrite<'a> {
    /// New secrets to seal (a successful refresh), or `None` to keep the envelope as it is.
    pub secrets: Option<&'a GoogleCredential>,
    /// The credential's state afterwards.
    pub state: CredentialState,
    /// The outcome code, e.g. `refreshed`, `needs_reconnect`, `retry_later`.
    pub outcome: &'a str,
    /// Whether this was a retryable failure (bumps the failure count) rather than a result.
    pub failed: bool,
    /// No refresh before this instant (unix ms), after repeated failures.
    pub cooldown_until_ms: Option<i64>,
}

/// How a store's applied migrations compare with the ones this binary carries (see
/// [`Store::migration_status`]). Versions are the migration files' numeric prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Whether the ledger table exists; `false` means no oauthtest store was ever created here.
    pub ledger_exists: bool,
    /// The versions this binary carries, in order.
    pub known: Vec<i64>,
    /// Carried and applied, unchanged.
    pub applied: Vec<i64>,
    /// Carried but not applied yet.
    pub pending: Vec<i64>,
    /// Applied but not carried: the store was migrated by a newer oauthtest.
    pub unknown: Vec<i64>,
    /// Applied from a different file than the one carried (edited after it was applied).
    pub modified: Vec<i64>,
    /// A migration that failed part-way and left the ledger dirty.
    pub failed: Option<i64>,
}

impl MigrationStatus {
    /// Whether the store is exactly as this binary's migrations leave it.
    pub fn is_current(&self) -> bool {
        self.ledger_exists
            && self.pending.is_empty()
            && self.unknown.is_empty()
            && self.modified.is_empty()
            && self.failed.is_none()
    }
}

/// A connected, migrated store.
pub struct Store {
    backend: Backend,
    url: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.url)
    }
}

/// `url` with any password replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// For PostgreSQL's "database does not exist" (SQLSTATE 3D000): the database's name and how to
/// create it.
fn missing_database(e: &sqlx::Error, options: &PgConnectOptions) -> Option<String> {
    let db = e.as_database_error()?;
    if db.code().as_deref() != Some("3D000") {
        return None;
    }
    let name = options.get_database().unwrap_or("(the user's name)");
    Some(format!(
        "database \"{name}\" does not exist on that server; create it (`createdb {name}`, or \
         `CREATE DATABASE {name};` in psql), then run `oauthtest --mode init`"
    ))
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

impl Store {
    /// Connects to `url` (`sqlite://PATH`, `sqlite::memory:`, or `postgres://…`), creating a
    /// SQLite file on first use, and applies migrations.
    ///
    /// # Errors
    /// [`StoreError`] naming the URL (password removed) when it is unsupported, unreachable, or
    /// cannot be migrated.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = Self::open(url, false).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects to an existing store only to read it (the source of `--mode copy`, which may
    /// be production): no file is created, no migration runs, and the connection itself is
    /// read-only (SQLite opened read-only; PostgreSQL sessions default to read-only
    /// transactions), so no statement sent through it can change anything.
    ///
    /// # Errors
    /// [`StoreError`] naming the URL (password removed) when it is unsupported, unreachable, or
    /// holds no oauthtest store.
    pub async fn connect_read_only(url: &str) -> Result<Self, StoreError> {
        let store = Self::open(url, true).await?;
        let probe = on_pool!(store, |pool| {
            sqlx::query("SELECT id FROM oauthtest_credentials LIMIT 1")
                .fetch_optional(pool)
                .await
                .map(|_| ())
        });
        if let Err(e) = probe {
            return Err(StoreError::Query {
                url: store.url.clone(),
                reason: format!(
                    "no oauthtest store can be read there ({e}); `oauthtest --mode init` creates \
                     one"
                ),
            });
        }
        Ok(store)
    }

    /// Connects to a store only to inspect it (`--mode doctor`): read-only like
    /// [`Store::connect_read_only`], no file created and no migration applied, but without
    /// requiring the tables to exist, so a database that holds no store yet (or one behind on
    /// migrations) can still be described by [`Store::migration_status`].
    ///
    /// # Errors
    /// [`StoreError`] naming the URL (password removed) when it is unsupported or unreachable
    /// (for SQLite: also when the file does not exist).
    pub async fn connect_without_migrating(url: &str) -> Result<Self, StoreError> {
        Self::open(url, true).await
    }

    async fn open(url: &str, read_only: bool) -> Result<Self, StoreError> {
        let shown = redact_url(url);
        let unreachable = |e: sqlx::Error| StoreError::Unreachable {
            url: shown.clone(),
            reason: e.to_string(),
        };
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut options = PgConnectOptions::from_str(url).map_err(unreachable)?;
            if read_only {
                options = options.options([("default_transaction_read_only", "on")]);
            }
            // One direct connection first: a pool would retry until its timeout and then report
            // only "pool timed out", hiding the real cause (refused, unknown database, auth).
            let probe = tokio::time::timeout(Duration::from_secs(10), options.connect())
                .await
                .map_err(|_| StoreError::Unreachable {
                    url: shown.clone(),
                    reason: "no answer within 10 s".into(),
                })?
                .map_err(|e| match missing_database(&e, &options) {
                    Some(reason) => StoreError::Unreachable {
                        url: shown.clone(),
                        reason,
                    },
                    None => unreachable(e),
                })?;
            let _ = probe.close().await;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(unreachable)?;
            Backend::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(unreachable)?
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30));
            let options = if read_only {
                let file = options.get_filename();
                if file != Path::new(":memory:") && !file.exists() {
                    return Err(StoreError::Unreachable {
                        url: shown,
                        reason: "no such file (opened read-only, so none is created); \
                                 `oauthtest --mode init` creates it"
                            .into(),
                    });
                }
                options.read_only(true)
            } else {
                options
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // WAL with NORMAL sync never corrupts the file; a power cut can lose only the
                    // last commits, which a refresh repeats. FULL would fsync every refresh.
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            };
            // Every SQLite connection is a thread of its own and writes serialize anyway: four
            // measured fastest on two cores (scripts/bench.sh --only worker-sim).
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await
                .map_err(unreachable)?;
            Backend::Sqlite(pool)
        } else {
            return Err(StoreError::UnsupportedUrl { url: shown });
        };
        Ok(Self {
            backend,
            url: shown,
        })
    }

    /// The migrations this binary carries for the store's backend, with the ledger table set.
    fn migrator(&self) -> Migrator {
        let mut migrator = match &self.backend {
            Backend::Sqlite(_) => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres(_) => sqlx::migrate!("migrations/postgres"),
        };
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = self.migrator();
        on_pool!(self, |pool| migrator.run(pool).await).map_err(|e| StoreError::Migration {
            url: self.url.clone(),
            reason: e.to_string(),
        })
    }

    /// How the migrations applied to this store compare with the ones this binary carries,
    /// read from the ledger (`oauthtest_schema_migrations`) without changing anything: works on
    /// a store opened by [`Store::connect_without_migrating`].
    ///
    /// # Errors
    /// [`StoreError::Query`] when the ledger cannot be read.
    pub async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let carried: Vec<_> = self
            .migrator()
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| (m.version, m.checksum.to_vec()))
            .collect();
        let mut status = MigrationStatus {
            known: carried.iter().map(|(v, _)| *v).collect(),
            ..MigrationStatus::default()
        };
        let ledger_tables: Result<i64, sqlx::Error> = match &self.backend {
            Backend::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
                )
                .bind(MIGRATIONS_TABLE)
                .fetch_one(pool)
                .await
            }
            Backend::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM information_schema.tables
                     WHERE table_schema = current_schema() AND table_name = $1",
                )
                .bind(MIGRATIONS_TABLE)
                .fetch_one(pool)
                .await
            }
        };
        if ledger_tables.map_err(|e| self.query_error(e))? == 0 {
            status.pending.clone_from(&status.known);
            return Ok(status);
        }
        status.ledger_exists = true;
        let (failed, applied) = on_pool!(self, |pool| {
            async {
                let mut conn = pool.acquire().await?;
                let failed = conn.dirty_version(MIGRATIONS_TABLE).await?;
                let applied = conn.list_applied_migrations(MIGRATIONS_TABLE).await?;
                Ok::<_, sqlx::migrate::MigrateError>((failed, applied))
            }
            .await
        })
        .map_err(|e| StoreError::Query {
            url: self.url.clone(),
            reason: format!("cannot read {MIGRATIONS_TABLE}: {e}"),
        })?;
        status.failed = failed;
        for applied in &applied {
            if Some(applied.version) == failed {
                continue;
            }
            match carried.iter().find(|(v, _)| *v == applied.version) {
                None => status.unknown.push(applied.version),
                Some((_, checksum)) if *checksum != *applied.checksum => {
                    status.modified.push(applied.version);
                }
                Some(_) => status.applied.push(applied.version),
            }
        }
        status.pending = carried
            .iter()
            .map(|(v, _)| *v)
            .filter(|v| !applied.iter().any(|a| a.version == *v))
            .collect();
        Ok(status)
    }

    /// Which backend this is.
    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// The URL, password removed.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn query_error(&self, e: sqlx::Error) -> StoreError {
        StoreError::Query {
            url: self.url.clone(),
            reason: e.to_string(),
        }
    }

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
                let envelope = keyring.encrypt(id, &payload);
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

    /// Every credential, by id.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn list(&self) -> Result<Vec<CredentialRow>, StoreError> {
        on_pool!(self, |pool| {
            sqlx::query_as(row::select_credential!("ORDER BY id"))
                .fetch_all(pool)
                .await
        })
        .map_err(|e| self.query_error(e))
    }

    /// One credential, or `None` when no row has this id.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn get(&self, id: i64) -> Result<Option<CredentialRow>, StoreError> {
        on_pool!(self, |pool| {
            sqlx::query_as(row::select_credential!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
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
        let envelope = keyring.encrypt(row.id, &secrets.to_payload());
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

    /// Takes the refresh lease on a credential for `owner` until `ttl` from now, if nobody else
    /// holds a live one. Returns whether it was taken.
    ///
    /// The lease is a row lock that cannot outlive its holder: it lapses by itself after `ttl`,
    /// it is released only by its owner, and every write-back is fenced on it (see
    /// [`Store::complete_refresh`]). No connection is held while the lease is held.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn try_acquire_lease(
        &self,
        id: i64,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now_ms = Utc::now().timestamp_millis();
        let until = now_ms + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE oauthtest_credentials SET lease_owner = $1, lease_expires_at_ms = $2
                 WHERE id = $3 AND (lease_owner IS NULL OR lease_expires_at_ms < $4
                                    OR lease_owner = $1)",
            )
            .bind(owner)
            .bind(until)
            .bind(id)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
        })
        .map_err(|e| self.query_error(e))
    }

    /// Takes the lease whoever holds it: only for demonstrating an uncoordinated refresh storm.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn steal_lease(&self, id: i64, owner: &str, ttl: Duration) -> Result<(), StoreError> {
        let until =
            Utc::now().timestamp_millis() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE oauthtest_credentials SET lease_owner = $1, lease_expires_at_ms = $2
                 WHERE id = $3",
            )
            .bind(owner)
            .bind(until)
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(|e| self.query_error(e))
    }

    /// Releases `owner`'s lease on a credential; someone else's lease is left alone.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn release_lease(&self, id: i64, owner: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE oauthtest_credentials SET lease_owner = NULL, lease_expires_at_ms = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(|e| self.query_error(e))
    }

    /// Writes a refresh's result back, fenced on `owner`'s lease, and releases the lease, in one
    /// transaction with its history line. Returns `false` (writing nothing) when the lease was
    /// lost, so a worker whose lease lapsed can never overwrite a newer token.
    ///
    /// # Errors
    /// [`StoreError::Query`]; nothing is written then.
    pub async fn complete_refresh(
        &self,
        id: i64,
        owner: &str,
        result: RefreshWrite<'_>,
        keyring: &Keyring,
        history: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        let at = now();
        let (envelope, expires_at, has_refresh) = match result.secrets {
            Some(s) => (
                Some(keyring.encrypt(id, &s.to_payload())),
                s.expiry,
                Some(s.refresh_token.is_some()),
            ),
            None => (None, None, None),
        };
        let key_id = envelope.as_ref().map(|_| keyring.current().id().to_owned());
        on_pool!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let done = sqlx::query(
                    "UPDATE oauthtest_credentials SET
                        encrypted_data = COALESCE($1, encrypted_data),
                        key_id = COALESCE($2, key_id),
                        expires_at = CASE WHEN $1 IS NULL THEN expires_at ELSE $3 END,
                        has_refresh_token = COALESCE($4, has_refresh_token),
                        state = $5,
                        last_refresh_at = $6,
                        last_refresh_outcome = $7,
                        failure_count = CASE WHEN $8 THEN failure_count + 1 ELSE 0 END,
                        cooldown_until_ms = $9,
                        updated_at = $6,
                        version = version + 1,
                        lease_owner = NULL,
                        lease_expires_at_ms = NULL
                     WHERE id = $10 AND lease_owner = $11",
                )
                .bind(&envelope)
                .bind(&key_id)
                .bind(expires_at)
                .bind(has_refresh)
                .bind(result.state.as_str())
                .bind(at)
                .bind(result.outcome)
                .bind(result.failed)
                .bind(result.cooldown_until_ms)
                .bind(id)
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if done {
                    insert_history!(&mut *tx, id, at, history)?;
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

    /// A credential's history, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn history(&self, credential_id: i64) -> Result<Vec<HistoryRow>, StoreError> {
        on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, credential_id, at, mode, action, outcome, detail
                 FROM oauthtest_refresh_history WHERE credential_id = $1 ORDER BY id",
            )
            .bind(credential_id)
            .fetch_all(pool)
            .await
        })
        .map_err(|e| self.query_error(e))
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}
