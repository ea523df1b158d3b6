//! The connection to the application's database and the SQL sent over it.
//!
//! Every value goes through text: columns are read as `CAST(col AS TEXT)` (PostgreSQL `bytea`
//! as UTF-8 text) and written as text parameters cast to the column's own type on PostgreSQL
//! (`jsonb`, `timestamptz`, an enum…), as given on SQLite. So one code path serves integer and
//! string ids, `text`, `json` and `jsonb` payloads, and whatever timestamp type the application
//! chose. Names are quoted identifiers (see [`super::sql`]); values are always parameters.

use super::config::StoreConfig;
use super::error::AppStoreError;
use super::sql::Ident;
use crate::store::redact_url;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool, Row, SqlitePool};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs a statement with text parameters on either backend and reads every column as text.
macro_rules! fetch_text {
    ($pool:expr, $sql:expr, $params:expr) => {{
        let mut q = sqlx::query(sqlx::AssertSqlSafe($sql));
        for p in $params {
            q = q.bind(p.clone());
        }
        q.fetch_all($pool).await.and_then(|rows| {
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.try_get::<Option<String>, _>(i))
                        .collect()
                })
                .collect::<Result<Vec<Vec<Option<String>>>, sqlx::Error>>()
        })
    }};
}

/// A connection pool with the table's column types.
pub(crate) struct Db {
    pub(crate) pool: Pool,
    pub(crate) url: String,
    /// Column name → SQL type, as the database reports it.
    pub(crate) columns: HashMap<String, String>,
}

impl Db {
    pub(crate) fn postgres(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    pub(crate) fn error(&self, e: &sqlx::Error) -> AppStoreError {
        AppStoreError::Database {
            url: self.url.clone(),
            reason: e.to_string(),
        }
    }

    /// Connects and reads the table's columns, checking that every column the config names
    /// exists. `read_only` opens SQLite read-only and makes PostgreSQL sessions read-only.
    pub(crate) async fn connect(
        cfg: &StoreConfig,
        url: &str,
        read_only: bool,
    ) -> Result<Self, AppStoreError> {
        let shown = redact_url(url);
        let unreachable = |e: sqlx::Error| AppStoreError::Database {
            url: shown.clone(),
            reason: format!("cannot connect: {e}"),
        };
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut options = PgConnectOptions::from_str(url).map_err(unreachable)?;
            if read_only {
                options = options.options([("default_transaction_read_only", "on")]);
            }
            // One direct connection first: a pool would retry until its timeout and report only
            // "pool timed out", hiding the real cause (refused, unknown database, auth).
            let probe = tokio::time::timeout(Duration::from_secs(10), options.connect())
                .await
                .map_err(|_| AppStoreError::Database {
                    url: shown.clone(),
                    reason: "cannot connect: no answer within 10 s".into(),
                })?
                .map_err(unreachable)?;
            let _ = probe.close().await;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(unreachable)?;
            Pool::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(unreachable)?
                .busy_timeout(Duration::from_secs(30));
            let file = options.get_filename();
            if file != Path::new(":memory:") && !file.exists() {
                return Err(AppStoreError::Database {
                    url: shown,
                    reason: "no such file: the application's database must exist (oauthtest never creates it)".into(),
                });
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.read_only(read_only))
                .await
                .map_err(unreachable)?;
            Pool::Sqlite(pool)
        } else {
            return Err(AppStoreError::Database {
                url: shown,
                reason: "unsupported URL; use sqlite://PATH or postgres://USER@HOST:PORT/DB".into(),
            });
        };
        let mut db = Self {
            pool,
            url: shown,
            columns: HashMap::new(),
        };
        db.columns = db.read_columns(cfg).await?;
        db.check_columns(cfg)?;
        Ok(db)
    }

    async fn read_columns(
        &self,
        cfg: &StoreConfig,
    ) -> Result<HashMap<String, String>, AppStoreError> {
        let rows = match &self.pool {
            Pool::Sqlite(pool) => {
                if cfg.table.schema.is_some() {
                    return Err(AppStoreError::config(
                        &cfg.file,
                        "store.table",
                        "schema-qualified names (schema.table) are for PostgreSQL; on SQLite name the table alone",
                    ));
                }
                fetch_text!(
                    pool,
                    "SELECT name, type FROM pragma_table_info($1)".to_owned(),
                    [Some(cfg.table.name.as_str().to_owned())]
                )
            }
            Pool::Postgres(pool) => fetch_text!(
                pool,
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum"
                    .to_owned(),
                [Some(cfg.table.quoted())]
            ),
        }
        .map_err(|e| self.error(&e))?;
        if rows.is_empty() {
            return Err(AppStoreError::config(
                &cfg.file,
                "store.table",
                format!(
                    "database {} has no table {} (oauthtest never creates the application's table)",
                    self.url, cfg.table
                ),
            ));
        }
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let mut r = r.into_iter();
                Some((r.next()??, r.next().flatten().unwrap_or_default()))
            })
            .collect())
    }

    fn check_columns(&self, cfg: &StoreConfig) -> Result<(), AppStoreError> {
        let mut named: Vec<(&str, &Ident)> = vec![
            ("store.id_column", &cfg.id_column),
            ("store.data_column", &cfg.data_column),
        ];
        for (key, col) in [
            ("store.type_column", &cfg.type_column),
            ("store.name_column", &cfg.name_column),
            ("store.user_column", &cfg.user_column),
            ("store.updated_at_column", &cfg.updated_at_column),
            ("store.created_at_column", &cfg.created_at_column),
            ("store.expiry_column", &cfg.expiry_column),
            ("store.iv_column", &cfg.iv_column),
            ("store.tag_column", &cfg.tag_column),
        ] {
            if let Some(c) = col {
                named.push((key, c));
            }
        }
        if let Some(super::config::ReconnectMark {
            at: super::config::ReconnectWhere::Column(c),
            ..
        }) = &cfg.reconnect
        {
            named.push(("store.reconnect.column", c));
        }
        for (key, col) in named {
            if !self.columns.contains_key(col.as_str()) {
                let mut have: Vec<_> = self.columns.keys().map(String::as_str).collect();
                have.sort_unstable();
                return Err(AppStoreError::config(
                    &cfg.file,
                    key,
                    format!(
                        "table {} has no column {:?} (it has: {})",
                        cfg.table,
                        col.as_str(),
                        have.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn is_bytea(&self, col: &Ident) -> bool {
        self.postgres() && self.columns.get(col.as_str()).is_some_and(|t| t == "bytea")
    }

    /// The expression that reads `col` as text.
    pub(crate) fn read_expr(&self, col: &Ident) -> String {
        if self.is_bytea(col) {
            format!("convert_from({}, 'UTF8')", col.quoted())
        } else {
            format!("CAST({} AS TEXT)", col.quoted())
        }
    }

    /// The expression that writes text parameter `$n` into `col`.
    pub(crate) fn write_expr(&self, col: &Ident, n: usize) -> String {
        match self.columns.get(col.as_str()) {
            _ if self.is_bytea(col) => format!("convert_to(${n}, 'UTF8')"),
            Some(t) if self.postgres() => format!("CAST(${n} AS {t})"),
            _ => format!("${n}"),
        }
    }

    /// Null-safe equality of `col` (as text) with parameter `$n`.
    pub(crate) fn same_expr(&self, col: &Ident, n: usize) -> String {
        let op = if self.postgres() {
            "IS NOT DISTINCT FROM"
        } else {
            "IS"
        };
        format!("{} {op} ${n}", self.read_expr(col))
    }

    /// Runs `sql` with text parameters and returns every row as text.
    pub(crate) async fn fetch(
        &self,
        sql: String,
        params: &[Option<String>],
    ) -> Result<Vec<Vec<Option<String>>>, AppStoreError> {
        let result = match &self.pool {
            Pool::Sqlite(pool) => fetch_text!(pool, sql, params),
            Pool::Postgres(pool) => fetch_text!(pool, sql, params),
        };
        result.map_err(|e| self.error(&e))
    }

    pub(crate) async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}
