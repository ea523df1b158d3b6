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
mod url;

pub use row::{BadRow, CredentialRow, CredentialState, DecryptError, HistoryRow};
pub use url::{redact_url, UrlSecrets};

use crate::crypto::Binding;
use chrono::{DateTime, Utc};
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
    /// A credential row holds a value that cannot be read (see [`BadRow`]).
    #[error("database {url}: {row}")]
    BadRow {
        /// The URL, password removed.
        url: String,
        /// Which row, and what is wrong with it.
        row: BadRow,
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

mod lease;
mod migrations;
mod write;

pub use lease::{LeaseOwner, Liveness, RefreshWrite};
pub use migrations::MigrationStatus;

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

/// Every credential row, read ([`Store::list_all`]).
#[derive(Debug, Default)]
pub struct Listing {
    /// The rows that read, by id.
    pub rows: Vec<CredentialRow>,
    /// The rows that cannot be read, by id.
    pub bad: Vec<BadRow>,
}

/// A connected, migrated store.
pub struct Store {
    backend: Backend,
    url: String,
    secrets: UrlSecrets,
    /// `oauthtest_store.store_id`; `None` only on a store opened without migrating whose
    /// migrations predate it.
    store_id: Option<String>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.url)
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

pub(super) fn now() -> DateTime<Utc> {
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
        let mut store = Self::open(url, false).await?;
        store.migrate().await?;
        store.store_id = store.read_store_id().await;
        if store.store_id.is_none() {
            return Err(StoreError::Migration {
                url: store.url.clone(),
                reason: "oauthtest_store holds no store id".into(),
            });
        }
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
        let mut store = Self::open(url, true).await?;
        store.store_id = store.read_store_id().await;
        let probe = on_pool!(store, |pool| {
            sqlx::query("SELECT id FROM oauthtest_credentials LIMIT 1")
                .fetch_optional(pool)
                .await
                .map(|_| ())
        });
        if let Err(e) = probe {
            return Err(StoreError::Query {
                url: store.url.clone(),
                reason: store.secrets.scrub(&format!(
                    "no oauthtest store can be read there ({e}); `oauthtest --mode init` creates \
                     one"
                )),
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
        let mut store = Self::open(url, true).await?;
        store.store_id = store.read_store_id().await;
        Ok(store)
    }

    /// The store's id, or `None` when `oauthtest_store` does not exist (yet).
    async fn read_store_id(&self) -> Option<String> {
        on_pool!(self, |pool| {
            sqlx::query_scalar::<_, String>(
                "SELECT store_id FROM oauthtest_store WHERE singleton = 1",
            )
            .fetch_optional(pool)
            .await
        })
        .ok()
        .flatten()
    }

    /// The store's id (every envelope is bound to it), when it has one.
    pub fn store_id(&self) -> Option<&str> {
        self.store_id.as_deref()
    }

    /// The binding for an envelope written to row `credential_id` at `version`.
    pub(super) fn binding(
        &self,
        credential_id: i64,
        version: i64,
    ) -> Result<Binding<'_>, StoreError> {
        let store_id = self.store_id.as_deref().ok_or_else(|| StoreError::Query {
            url: self.url.clone(),
            reason: "this store has no id (oauthtest_store): open it read-write once to apply \
                     its migrations"
                .into(),
        })?;
        Ok(Binding {
            store_id,
            credential_id,
            version,
        })
    }

    async fn open(url: &str, read_only: bool) -> Result<Self, StoreError> {
        let shown = redact_url(url);
        let secrets = UrlSecrets::of(url);
        let unreachable = |e: sqlx::Error| StoreError::Unreachable {
            url: shown.clone(),
            reason: secrets.scrub(&e.to_string()),
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
            secrets,
            store_id: None,
        })
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

    pub(super) fn query_error(&self, e: sqlx::Error) -> StoreError {
        StoreError::Query {
            url: self.url.clone(),
            reason: self.secrets.scrub(&e.to_string()),
        }
    }

    /// Every credential, by id; the first row that cannot be read is an error naming it. Modes
    /// that can go on past a bad row use [`Store::list_all`].
    ///
    /// # Errors
    /// [`StoreError::Query`]; [`StoreError::BadRow`].
    pub async fn list(&self) -> Result<Vec<CredentialRow>, StoreError> {
        let listing = self.list_all().await?;
        match listing.bad.into_iter().next() {
            Some(row) => Err(StoreError::BadRow {
                url: self.url.clone(),
                row,
            }),
            None => Ok(listing.rows),
        }
    }

    /// Every credential, by id, with the rows that cannot be read set apart (each named by id
    /// with what is wrong), so one bad row does not hide the rest.
    ///
    /// # Errors
    /// [`StoreError::Query`] when the table cannot be read at all.
    pub async fn list_all(&self) -> Result<Listing, StoreError> {
        let read = on_pool!(self, |pool| {
            sqlx::query(row::select_credential!("ORDER BY id"))
                .fetch_all(pool)
                .await
                .map(|rows| rows.iter().map(row::read_credential).collect::<Vec<_>>())
        })
        .map_err(|e| self.query_error(e))?;
        let mut listing = Listing::default();
        for row in read {
            match row {
                Ok(mut row) => {
                    row.store_id.clone_from(&self.store_id);
                    listing.rows.push(row);
                }
                Err(bad) => listing.bad.push(bad),
            }
        }
        Ok(listing)
    }

    /// One credential, or `None` when no row has this id. Other rows are not read, so a bad row
    /// elsewhere never stops work on this one.
    ///
    /// # Errors
    /// [`StoreError::Query`]; [`StoreError::BadRow`] when this row cannot be read.
    pub async fn get(&self, id: i64) -> Result<Option<CredentialRow>, StoreError> {
        let read = on_pool!(self, |pool| {
            sqlx::query(row::select_credential!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map(|row| row.as_ref().map(row::read_credential))
        })
        .map_err(|e| self.query_error(e))?;
        let mut row = read.transpose().map_err(|row| StoreError::BadRow {
            url: self.url.clone(),
            row,
        })?;
        if let Some(row) = row.as_mut() {
            row.store_id.clone_from(&self.store_id);
        }
        Ok(row)
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

    /// The credentials (still in the store) with a history line of `mode` whose detail starts
    /// with `prefix`, in one query: how `copy` finds earlier copies of the same source row.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn credentials_with_history(
        &self,
        mode: &str,
        prefix: &str,
    ) -> Result<Vec<i64>, StoreError> {
        on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT DISTINCT h.credential_id FROM oauthtest_refresh_history h
                 JOIN oauthtest_credentials c ON c.id = h.credential_id
                 WHERE h.mode = $1 AND substr(h.detail, 1, $2) = $3
                 ORDER BY h.credential_id",
            )
            .bind(mode)
            .bind(i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX))
            .bind(prefix)
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
