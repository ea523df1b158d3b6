//! Migrations: applied on connect, and compared with the ones this binary carries (doctor).

use super::{Backend, Store, StoreError, MIGRATIONS_TABLE};
use sqlx::migrate::{Migrate, Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr as _};

/// The migration files, by backend, embedded by `build.rs` (`migrations/sqlite`,
/// `migrations/postgres`): `(version, the name after "VERSION_", contents)` in order.
mod carried {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// sqlx's migrations from embedded files, read as `sqlx::migrate!` and sqlx's directory source
/// read them: `VERSION_DESCRIPTION.sql`, underscores in the description read as spaces, the
/// checksum over the file's exact contents, `-- no-transaction` as the first line opting out of
/// the transaction. Stores migrated by earlier builds (which used the macro) stay current.
fn migrations(files: &[(i64, &str, &'static str)]) -> Vec<Migration> {
    files
        .iter()
        .map(|&(version, rest, sql)| {
            let kind = MigrationType::from_filename(rest);
            let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
            Migration::new(
                version,
                description.into(),
                kind,
                AssertSqlSafe(sql).into_sql_str(),
                sql.starts_with("-- no-transaction"),
            )
        })
        .collect()
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

impl Store {
    /// The migrations this binary carries for the store's backend, with the ledger table set.
    fn migrator(&self) -> Migrator {
        let mut migrator = Migrator::with_migrations(migrations(match &self.backend {
            Backend::Sqlite(_) => carried::SQLITE,
            Backend::Postgres(_) => carried::POSTGRES,
        }));
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator
    }

    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = self.migrator();
        on_pool!(self, |pool| migrator.run(pool).await).map_err(|e| StoreError::Migration {
            url: self.url.clone(),
            reason: self.secrets.scrub(&e.to_string()),
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
            reason: self
                .secrets
                .scrub(&format!("cannot read {MIGRATIONS_TABLE}: {e}")),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha384};

    /// The ledger of a store migrated by an earlier build (made with `sqlx::migrate!`) holds
    /// each file's SHA-384 and its description: the embedded migrations must give the same, or
    /// every existing store would read as "modified".
    #[test]
    fn embedded_migrations_match_what_sqlx_migrate_recorded() {
        for files in [carried::SQLITE, carried::POSTGRES] {
            let built = migrations(files);
            assert_eq!(built.len(), files.len());
            assert!(files.len() >= 2, "both migration folders are embedded");
            for (migration, (version, rest, sql)) in built.iter().zip(files) {
                assert_eq!(migration.version, *version);
                assert_eq!(
                    &*migration.checksum,
                    Sha384::digest(sql.as_bytes()).as_slice()
                );
                assert_eq!(migration.migration_type, MigrationType::Simple);
                assert_eq!(
                    migration.description,
                    rest.trim_end_matches(".sql").replace('_', " ")
                );
                assert!(!migration.no_tx);
            }
        }
        assert_eq!(migrations(carried::SQLITE)[0].description, "credentials");
    }
}
