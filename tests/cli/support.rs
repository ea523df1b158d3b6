//! Shared test helpers: a fresh store per test (a temp SQLite file, or a PostgreSQL database
//! named by UUID), the real binary run with a clean environment, planted secrets to scan for, the
//! keyring of a key; and ([`serve`]) a running `--mode serve` with the calls tests make to it.

use oauthtest::crypto::{EncryptionKey, Keyring};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub mod serve;

/// The keyring of one base64 key, as the binary builds it from `OAUTHTEST_ENCRYPTION_KEY`.
pub fn keyring(b64: &str) -> Keyring {
    Keyring::new(EncryptionKey::from_base64(b64).unwrap(), vec![])
}

/// The PostgreSQL server the tests use; override with OAUTHTEST_TEST_POSTGRES_URL.
pub fn postgres_admin_url() -> String {
    std::env::var("OAUTHTEST_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One test's own store and working directory.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        Self {
            backend: Backend::Sqlite,
            url,
            dir,
            pg_name: None,
        }
    }

    /// A fresh PostgreSQL database, or `None` (with a printed reason) when no server answers on a
    /// developer's machine. Under CI (`CI` set) an absent server fails the test instead.
    pub async fn postgres() -> Option<Self> {
        use sqlx::Connection;
        let admin = postgres_admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => {
                if std::env::var_os("CI").is_some() {
                    panic!("PostgreSQL is required in CI but {admin} is unreachable: {e}");
                }
                skipped(&format!(
                    "PostgreSQL test, {admin} is unreachable ({e}); start it with \
                     `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
                ));
                return None;
            }
        };
        let name = format!("oauthtest_t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap_or(admin);
        Some(Self {
            backend: Backend::Postgres,
            url: format!("{base}/{name}"),
            dir: tempfile::tempdir().expect("tempdir"),
            pg_name: Some(name),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file into the test's directory.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).expect("write test file");
        p
    }

    /// A command for the real binary, in the test's directory, with a clean oauthtest environment
    /// pointing at this store.
    pub fn cmd(&self) -> Command {
        let mut c = oauthtest_cmd(self.dir.path());
        c.env("DATABASE_URL", &self.url);
        c
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let admin = postgres_admin_url();
            // Dropped on its own thread: Drop may run inside a runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        use sqlx::Connection;
                        if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .execute(&mut c)
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// Prints `SKIPPED: why` where the person running the tests sees it: on the process's stderr
/// itself, which the harness does not capture (`eprintln!` would be, and shown only on failure).
/// For a dependency that went missing after the build probe said it was there (see build.rs);
/// when the probe saw it missing, the test is reported as ignored instead.
pub fn skipped(why: &str) {
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {why}");
}

/// The real binary, run in `dir`, with every variable oauthtest reads removed.
pub fn oauthtest_cmd(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_oauthtest"));
    c.current_dir(dir);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("OAUTHTEST_")
            || k.starts_with("GOOGLE_")
            || k == "DATABASE_URL"
            || k == "RUST_LOG"
        {
            c.env_remove(k);
        }
    }
    c
}

/// A finished run, with helpers that print everything on failure.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n{self}");
        self
    }

    #[track_caller]
    pub fn assert_stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn assert_one_line_error(&self) -> &Self {
        let lines: Vec<_> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "expected one error line\n{self}");
        assert!(lines[0].starts_with("error: "), "{self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A finished run's output as the bytes it was (the leak audit looks for raw key bytes too).
pub struct RawRun {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl RawRun {
    /// The same run as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Run {
        Run {
            code: self.code,
            stdout: String::from_utf8_lossy(&self.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&self.stderr).into_owned(),
        }
    }
}

/// Runs `cmd` with `args` and optional stdin.
pub fn run(cmd: Command, args: &[&str], stdin: Option<&str>) -> Run {
    run_raw(cmd, args, stdin).text()
}

/// Runs `cmd` with `args` and optional stdin, keeping its output as bytes.
pub fn run_raw(mut cmd: Command, args: &[&str], stdin: Option<&str>) -> RawRun {
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn oauthtest");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait");
    RawRun {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// Secrets planted in test credentials; none may ever appear in any output.
pub const PLANTED_ACCESS: &str = "ya29.PLANTED-ACCESS-7c1f";
pub const PLANTED_REFRESH: &str = "1//PLANTED-REFRESH-93ab";
pub const PLANTED_CLIENT_SECRET: &str = "PLANTED-CLIENT-SECRET-55de";

/// A Playground token response holding the planted tokens.
pub fn playground_json() -> String {
    format!(
        r#"{{"access_token":"{PLANTED_ACCESS}","expires_in":3599,"refresh_token":"{PLANTED_REFRESH}",
            "scope":"https://www.googleapis.com/auth/gmail.readonly","token_type":"Bearer"}}"#
    )
}

/// Fails if `text` contains any planted secret or the given extra secrets.
#[track_caller]
pub fn assert_no_secrets(text: &str, extra: &[&str]) {
    for s in [PLANTED_ACCESS, PLANTED_REFRESH, PLANTED_CLIENT_SECRET]
        .iter()
        .chain(extra)
    {
        assert!(!s.is_empty());
        assert!(!text.contains(s), "secret {s:?} leaked in:\n{text}");
    }
}

/// A fresh base64 key, from the binary itself.
pub fn new_key(dir: &Path) -> String {
    let r = run(oauthtest_cmd(dir), &["--mode", "keygen"], None);
    r.assert_code(0);
    r.stdout.trim().to_owned()
}

/// Generates a test module running `$body(TestDb)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$body($crate::support::TestDb::sqlite()).await
            }
            #[tokio::test]
            #[cfg_attr(oauthtest_no_postgres, ignore = "PostgreSQL did not answer when the tests were built (start it, then `touch build.rs`)")]
            async fn postgres() {
                if let Some(db) = $crate::support::TestDb::postgres().await {
                    super::$body(db).await
                }
            }
        }
    };
}

/// Everything a store holds, to prove a run wrote nothing: every table's rows (all tables, not
/// only oauthtest's), and on SQLite the bytes of the database file.
/// A store that does not exist yet is described as such, so creating one is a change too.
pub async fn store_snapshot(db: &TestDb) -> Vec<(String, Vec<u8>)> {
    use sqlx::{Column as _, Connection as _, Row as _};
    let mut parts = Vec::new();
    match db.backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
            let tables: Vec<(String,)> = sqlx::query_as(
                "SELECT table_schema::text || '.' || table_name::text FROM information_schema.tables \
                 WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
            )
            .fetch_all(&mut conn)
            .await
            .expect("list tables");
            for (table,) in tables {
                let mut rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT row_to_json(t)::text FROM {table} t"
                )))
                .fetch_all(&mut conn)
                .await
                .expect("read table");
                rows.sort();
                let text: Vec<String> = rows.into_iter().map(|(r,)| r).collect();
                parts.push((format!("table {table}"), text.join("\n").into_bytes()));
            }
            let _ = conn.close().await;
        }
        Backend::Sqlite => {
            // The database file's bytes (its write-ahead log is not compared: SQLite itself
            // rewrites it when the last connection closes; what it holds is read through the
            // tables below).
            let file = PathBuf::from(db.url.trim_start_matches("sqlite://"));
            parts.push((
                format!("file {}", file.display()),
                std::fs::read(&file).unwrap_or_else(|_| b"(absent)".to_vec()),
            ));
            if !file.exists() {
                return parts;
            }
            let mut conn = sqlx::SqliteConnection::connect(&format!("{}?mode=ro", db.url))
                .await
                .expect("connect");
            let tables: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")
                    .fetch_all(&mut conn)
                    .await
                    .expect("list tables");
            for (table,) in tables {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM \"{table}\"")))
                    .fetch_all(&mut conn)
                    .await
                    .expect("read table");
                let mut text = Vec::new();
                for row in rows {
                    for column in row.columns() {
                        let value: Option<Vec<u8>> =
                            row.try_get_unchecked(column.ordinal()).unwrap_or(None);
                        text.extend(format!("{}=", column.name()).bytes());
                        text.extend(value.unwrap_or_default());
                        text.push(b' ');
                    }
                    text.push(b'\n');
                }
                parts.push((format!("table {table}"), text));
            }
            let _ = conn.close().await;
        }
    }
    parts
}

/// The names of what differs between two [`store_snapshot`]s.
pub fn snapshot_changes(before: &[(String, Vec<u8>)], after: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut changed: Vec<String> = Vec::new();
    for (name, bytes) in after {
        match before.iter().find(|(n, _)| n == name) {
            Some((_, old)) if old == bytes => {}
            Some(_) => changed.push(format!("{name} changed")),
            None => changed.push(format!("{name} appeared")),
        }
    }
    for (name, _) in before {
        if !after.iter().any(|(n, _)| n == name) {
            changed.push(format!("{name} disappeared"));
        }
    }
    changed
}
