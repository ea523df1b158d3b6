//! `--mode doctor`: is this installation fit to run? Configuration and store, checked without
//! changing anything, each problem with its fix.
//!
//! A pipeline runs doctor before it trusts anything else (`scripts/pre_deploy_check.sh` does):
//! a missing or malformed key, a staging store that shares the production key, an unreachable
//! database, migrations that are not current, credentials that no longer decrypt, an endpoint
//! that cannot be reached, a production guard that is off. Each is a [`Check`] (the one check
//! type of every judging mode) with a status and, for a problem, its fix, so one run says
//! everything that is wrong rather than stopping at the first.
//!
//! # Security
//! Doctor never writes: the store is opened read-only and never migrated
//! ([`Store::connect_without_migrating`]), and the endpoint check is a plain request that sends
//! no credential. Keys are shown by id only, credentials by id and count only.

pub mod app;

use crate::check::{Check, Status};
use crate::cli::{Environment, Mode};
use crate::crypto::Keyring;
use crate::error::{Error, Result};
use crate::report::{join_numbers, Report};
use crate::settings::{Settings, OLD_KEYS_VAR};
use crate::store::{redact_url, BackendKind, MigrationStatus, Store, StoreError, MIGRATIONS_TABLE};
use crate::task::DoctorArgs;
use clap::ValueEnum;
use std::io::{self, Write};
use std::time::{Duration, Instant};

mod credentials;
mod temporary;

use credentials::check_credentials;

/// How long the endpoint check waits for an answer.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(5);

/// How doctor's text output tags a status: as `check::Status::label`, but a pass reads `OK`
/// (scripts read doctor's lines by these tags).
fn label(status: Status) -> &'static str {
    match status {
        Status::Pass => "OK",
        other => other.label(),
    }
}

/// Everything doctor found, in check order: `key`, `production_key`, `database`, `migrations`,
/// `credentials`, `temporary_rows` (one per run), `token_endpoint`, `environment`.
#[derive(Debug)]
pub struct DoctorReport {
    checks: Vec<Check>,
}

impl DoctorReport {
    fn count(&self, status: Status) -> usize {
        Check::count(&self.checks, status)
    }
}

/// Runs every check. Problems are failed checks, not errors: the report always comes back.
///
/// # Errors
/// None today; the signature is every mode's.
pub async fn run(settings: &Settings, args: &DoctorArgs) -> Result<DoctorReport> {
    let mut checks = Vec::new();
    let (key, keyring) = check_key(settings);
    checks.push(key);
    checks.push(check_production_key(settings, keyring.as_ref()));
    let (database, store) = check_database(settings).await;
    checks.push(database);
    let status = match &store {
        Some(store) => Some(store.migration_status().await),
        None => None,
    };
    checks.push(check_migrations(status.as_ref()));
    checks.push(check_credentials(store.as_ref(), status.as_ref(), keyring.as_ref()).await);
    checks.extend(temporary::check_temporary_rows(store.as_ref(), status.as_ref()).await);
    checks.push(check_endpoint(settings, args.check_endpoint).await);
    checks.push(check_environment(settings, args.production_override));
    if let Some(store) = store {
        store.close().await;
    }
    Ok(DoctorReport { checks })
}

/// The current key loads (and the previous ones, if any).
fn check_key(settings: &Settings) -> (Check, Option<Keyring>) {
    match settings.keyring() {
        Ok(keyring) => {
            let previous: Vec<_> = keyring.previous().iter().map(|k| k.id()).collect();
            let previous = match previous.len() {
                0 => "no previous keys".to_owned(),
                _ => format!("previous keys {}", previous.join(", ")),
            };
            let message = format!(
                "current key {} (from {}); {previous}",
                keyring.current().id(),
                settings.key_source()
            );
            (Check::new("key", Status::Pass, message), Some(keyring))
        }
        Err(e) => {
            let fix = match &e {
                Error::Config { setting, .. } if setting == OLD_KEYS_VAR => format!(
                    "fix or remove that entry: {OLD_KEYS_VAR} holds previous keys, \
                     comma-separated, each in base64"
                ),
                _ => "generate a key with `oauthtest --mode keygen` and set \
                      OAUTHTEST_ENCRYPTION_KEY (or pass --key-file); credentials already stored \
                      need the key that sealed them"
                    .to_owned(),
            };
            (
                Check::new("key", Status::Fail, e.to_string()).with_fix(fix),
                None,
            )
        }
    }
}

/// Staging's keys are not production's.
fn check_production_key(settings: &Settings, keyring: Option<&Keyring>) -> Check {
    const CHECK: &str = "production_key";
    let production = match settings.production_key_id() {
        Ok(p) => p,
        Err(e) => {
            return Check::new(CHECK, Status::Fail, e.to_string()).with_fix(
                "give the production key's id with --production-key-id or \
                 OAUTHTEST_PRODUCTION_KEY_ID (16 hex digits; doctor run in production prints it)",
            )
        }
    };
    if settings.environment == Some(Environment::Production) {
        return Check::new(
            CHECK,
            Status::Skip,
            "this is production (--env / OAUTHTEST_ENV): there is no production key to keep apart",
        );
    }
    let Some(production) = production else {
        let message = "not checked: no production key id given (--production-key-id or \
                       OAUTHTEST_PRODUCTION_KEY_ID)";
        return if settings.environment == Some(Environment::Staging) {
            Check::new(CHECK, Status::Warn, message).with_fix(
                "set OAUTHTEST_PRODUCTION_KEY_ID to the production key's id (not a secret), so \
                 every run proves staging does not share production's key",
            )
        } else {
            Check::new(CHECK, Status::Skip, message)
        };
    };
    let Some(keyring) = keyring else {
        return Check::new(CHECK, Status::Skip, "not checked: the key did not load");
    };
    if keyring.current().id() == production.id {
        return Check::new(
            CHECK,
            Status::Fail,
            format!(
                "the current key is the production key (key id {}, from {}): staging must never \
                 share production secrets",
                production.id, production.source
            ),
        )
        .with_fix(
            "generate a key of this store's own with `oauthtest --mode keygen` and make it \
             OAUTHTEST_ENCRYPTION_KEY; re-seal your test credentials with `oauthtest --mode rekey` \
             (the production key in OAUTHTEST_OLD_ENCRYPTION_KEYS for that one run), and wipe \
             anything that came from production with `oauthtest --mode scrub`",
        );
    }
    if keyring.previous().iter().any(|k| k.id() == production.id) {
        return Check::new(
            CHECK,
            Status::Fail,
            format!(
                "{OLD_KEYS_VAR} holds the production key (key id {}, from {}): this store can \
                 decrypt production secrets",
                production.id, production.source
            ),
        )
        .with_fix(format!(
            "remove the production key from {OLD_KEYS_VAR}; wipe credentials sealed with it with \
             `oauthtest --mode scrub`"
        ));
    }
    Check::new(
        CHECK,
        Status::Pass,
        format!(
            "this store's keys differ from the production key {} (from {})",
            production.id, production.source
        ),
    )
}

/// The store answers (opened read-only, never migrated).
async fn check_database(settings: &Settings) -> (Check, Option<Store>) {
    const CHECK: &str = "database";
    let shown = redact_url(&settings.database_url);
    match Store::connect_without_migrating(&settings.database_url).await {
        Ok(store) => {
            let defaulted = !settings.database_url_explicit;
            let backend = match store.kind() {
                BackendKind::Sqlite => "SQLite",
                BackendKind::Postgres => "PostgreSQL",
            };
            let mut message = format!("{shown} is reachable ({backend})");
            if defaulted {
                message.push_str("; it is the default, DATABASE_URL is not set");
            }
            let finding = if defaulted
                && matches!(
                    settings.environment,
                    Some(Environment::Staging | Environment::Production)
                ) {
                Check::new(CHECK, Status::Warn, message)
                    .with_fix("set DATABASE_URL (or --database-url) to this environment's store")
            } else {
                Check::new(CHECK, Status::Pass, message)
            };
            (finding, Some(store))
        }
        Err(e) => {
            let fix = match &e {
                StoreError::UnsupportedUrl { .. } => {
                    "use sqlite://PATH or postgres://USER@HOST:PORT/DB"
                }
                _ if shown.starts_with("sqlite:") => {
                    "check the path: the file must exist and be readable (`oauthtest --mode \
                     init` creates it)"
                }
                _ => {
                    "check that the server is up and that the URL's user, host, port and \
                     database are right (postgres://USER@HOST:PORT/DB)"
                }
            };
            (
                Check::new(CHECK, Status::Fail, e.to_string()).with_fix(fix),
                None,
            )
        }
    }
}

/// The store's applied migrations are exactly the ones this binary carries.
fn check_migrations(status: Option<&Result<MigrationStatus, StoreError>>) -> Check {
    const CHECK: &str = "migrations";
    let status = match status {
        None => return Check::new(CHECK, Status::Skip, "not checked: no database"),
        Some(Err(e)) => {
            return Check::new(CHECK, Status::Fail, e.to_string()).with_fix(format!(
                "check that the database user may read {MIGRATIONS_TABLE}"
            ))
        }
        Some(Ok(status)) => status,
    };
    if status.is_current() {
        return Check::new(
            CHECK,
            Status::Pass,
            format!(
                "current: {} of {} applied (latest {})",
                status.applied.len(),
                status.known.len(),
                status
                    .known
                    .last()
                    .map_or_else(|| "none".into(), i64::to_string)
            ),
        );
    }
    if !status.ledger_exists {
        return Check::new(
            CHECK,
            Status::Fail,
            format!("no oauthtest store in this database yet (no {MIGRATIONS_TABLE} table)"),
        )
        .with_fix(
            "create it: `oauthtest --mode init` applies the migrations (and changes no \
             credential)",
        );
    }
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    if let Some(v) = status.failed {
        problems.push(format!("migration {v} failed part-way"));
        fixes.push(format!(
            "repair what migration {v} left half-done by hand, then delete its row from \
             {MIGRATIONS_TABLE} so it runs again"
        ));
    }
    if !status.modified.is_empty() {
        problems.push(format!(
            "applied from a different file than this binary carries: {}",
            join_numbers(&status.modified)
        ));
        fixes.push(
            "a migration file was edited after it was applied: restore it (add a new \
             migration instead)"
                .to_owned(),
        );
    }
    if !status.unknown.is_empty() {
        problems.push(format!(
            "applied by a newer oauthtest: {}",
            join_numbers(&status.unknown)
        ));
        fixes.push("use the oauthtest version that migrated this store (or newer)".to_owned());
    }
    if !status.pending.is_empty() {
        problems.push(format!("pending: {}", join_numbers(&status.pending)));
        fixes.push(
            "apply them: `oauthtest --mode init` does (and changes no credential)".to_owned(),
        );
    }
    Check::new(
        CHECK,
        Status::Fail,
        format!(
            "not current ({} of {} applied): {}",
            status.applied.len(),
            status.known.len(),
            problems.join("; ")
        ),
    )
    .with_fix(fixes.join("; "))
}

/// The token endpoint answers an HTTP request (no credential in it).
async fn check_endpoint(settings: &Settings, asked: bool) -> Check {
    const CHECK: &str = "token_endpoint";
    let shown = redact_url(settings.token_url.as_str());
    if !asked {
        return Check::new(
            CHECK,
            Status::Skip,
            format!("not checked (pass --check-endpoint to try {shown})"),
        );
    }
    let http = match settings.http_client() {
        Ok(http) => http,
        Err(e) => return Check::new(CHECK, Status::Fail, e.to_string()),
    };
    let started = Instant::now();
    let answer = http
        .get(settings.token_url.clone())
        .timeout(ENDPOINT_TIMEOUT)
        .send()
        .await;
    let ms = started.elapsed().as_millis();
    match answer {
        Ok(response) if response.status().is_server_error() => Check::new(
            CHECK,
            Status::Warn,
            format!(
                "{shown} answered HTTP {} in {ms} ms: reachable, but failing",
                response.status().as_u16()
            ),
        )
        .with_fix("check the endpoint's health; refreshes will be retried, then fail"),
        Ok(response) => Check::new(
            CHECK,
            Status::Pass,
            format!(
                "{shown} answered HTTP {} in {ms} ms (a plain GET, no credential sent)",
                response.status().as_u16()
            ),
        ),
        Err(e) => {
            let e = e.without_url();
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                reason.push_str(": ");
                reason.push_str(&cause.to_string());
                source = cause.source();
            }
            Check::new(
                CHECK,
                Status::Fail,
                format!("{shown} cannot be reached: {reason}"),
            )
            .with_fix(
                "check network access to it (DNS, proxy, firewall), or point --token-url / \
                 OAUTHTEST_TOKEN_URL at the right endpoint",
            )
        }
    }
}

/// What the production guard will do in this environment.
fn check_environment(settings: &Settings, production_override: bool) -> Check {
    const CHECK: &str = "environment";
    let guarded: Vec<_> = Mode::value_variants()
        .iter()
        .filter(|m| m.writes_credentials())
        .map(|m| m.name())
        .collect();
    let guarded = guarded.join(", ");
    let Some(env) = settings.environment else {
        return Check::new(
            CHECK,
            Status::Warn,
            format!(
                "OAUTHTEST_ENV is not set: the production guard cannot tell production from \
                 anything else, so the modes that change credentials ({guarded}) run anywhere"
            ),
        )
        .with_fix("set OAUTHTEST_ENV (or --env) to development, test, staging or production");
    };
    let name = env
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned());
    match env {
        Environment::Production if production_override => Check::new(
            CHECK,
            Status::Warn,
            format!(
                "production, with --i-know-this-is-production: the guard is off, so {guarded} \
                 would run"
            ),
        )
        .with_fix("drop --i-know-this-is-production once the maintenance is done"),
        Environment::Production => Check::new(
            CHECK,
            Status::Pass,
            format!(
                "production: the guard refuses the modes that change credentials ({guarded}); \
                 previews and read-only modes run"
            ),
        ),
        _ => Check::new(
            CHECK,
            Status::Pass,
            format!(
                "{name}: the modes that change credentials run (the guard stops them only in \
                 production)"
            ),
        ),
    }
}

impl Report for DoctorReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        for c in &self.checks {
            writeln!(out, "{:<5} {:<15} {}", label(c.status), c.name, c.detail)?;
            if let Some(fix) = &c.fix {
                writeln!(out, "{:<22}fix: {fix}", "")?;
            }
        }
        let warnings = self.count(Status::Warn);
        writeln!(
            out,
            "doctor: {} ok, {warnings} warning{}, {} failed, {} skipped",
            self.count(Status::Pass),
            if warnings == 1 { "" } else { "s" },
            self.count(Status::Fail),
            self.count(Status::Skip)
        )
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": "doctor",
            "ok": Check::all_passed(&self.checks),
            "counts": {
                "pass": self.count(Status::Pass),
                "warn": self.count(Status::Warn),
                "fail": self.count(Status::Fail),
                "skip": self.count(Status::Skip),
            },
            "checks": self.checks,
        })
    }

    fn exit_code(&self) -> u8 {
        Check::exit_code(&self.checks)
    }
}
