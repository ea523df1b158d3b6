//! The leak audit: every mode, in every output format, at trace level, with known secrets
//! planted everywhere a run can meet them, and not one of them in anything a run leaves behind.
//!
//! Planted: the access and refresh tokens and client secret of `support` (in imported
//! credentials, in `.env`, in a source store for `copy`); the current, previous, `copy`-source
//! and production keys (from `.env`), in every form a key could be printed (base64 with and
//! without padding, URL-safe, hex, `Debug` of its bytes, the raw bytes); a database password in
//! the PostgreSQL URL; and the tokens minted during the run: refresh tokens `serve` hands out,
//! and every token found in the store at the end (decrypted through the library), which is where
//! `real` and `force-expire` put the access tokens they got. Every token any mock issues starts
//! with `ya29.a0` or `1//0`; those prefixes are looked for too, so a token minted inside
//! `mock-all` or `worker-sim` that the test never sees is caught all the same.
//!
//! Scanned: stdout and stderr of every run (as bytes), every file the runs left in the working
//! directory (reports, the SQLite file and its WAL, which hold ciphertext only), and every row of
//! every oauthtest table read back with SQL, the history among them.
//!
//! The long version, every format at every log level and every mode on both backends, is
//! `scripts/leak_audit.sh` (the same test with `OAUTHTEST_LEAK_AUDIT_FULL` set).

use crate::support::serve::{admin_post, refresh, str_of, Serve};
use crate::support::*;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use mock_server::wire::{ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX};
use oauthtest::crypto::{EncryptionKey, Keyring};
use oauthtest::store::Store;
use serde_json::json;
use std::path::{Path, PathBuf};

/// The OAuth client `serve` registers for the audit, with the planted secret.
const PLANTED_CLIENT_ID: &str = "planted-client.apps.googleusercontent.com";
/// A database password, planted in the PostgreSQL URL (trust authentication ignores it).
const PLANTED_DB_PASSWORD: &str = "PLANTED-DB-PASSWORD-8d1e";
/// A value that is no key, planted where a key belongs: error messages must not quote it.
const PLANTED_BAD_KEY: &str = "PLANTED-NOT-A-KEY-41f0";
const GMAIL: &str = "https://www.googleapis.com/auth/gmail.readonly";

/// What a mock-issued token starts with: `ya29.a0…` and `1//0…` (see `mock_server::tokens`).
fn minted_prefixes() -> [String; 2] {
    [
        format!("{ACCESS_TOKEN_PREFIX}a0"),
        format!("{REFRESH_TOKEN_PREFIX}0"),
    ]
}

/// The secrets to look for, each under a name that says what it is.
#[derive(Default)]
struct Secrets(Vec<(String, Vec<u8>)>);

impl Secrets {
    fn text(&mut self, name: &str, value: &str) {
        assert!(value.len() >= 12, "{name} is too short to scan for");
        self.0.push((name.to_owned(), value.as_bytes().to_vec()));
    }

    /// A key in every form it could be printed in.
    fn key(&mut self, name: &str, b64: &str) {
        let raw = STANDARD.decode(b64).expect("a key in standard base64");
        for (form, value) in [
            ("base64", STANDARD.encode(&raw)),
            ("base64 unpadded", STANDARD_NO_PAD.encode(&raw)),
            ("base64url", URL_SAFE.encode(&raw)),
            ("base64url unpadded", URL_SAFE_NO_PAD.encode(&raw)),
            ("hex", raw.iter().map(|b| format!("{b:02x}")).collect()),
            ("Debug of its bytes", format!("{raw:?}")),
        ] {
            self.text(&format!("{name} ({form})"), &value);
        }
        self.0.push((format!("{name} (raw bytes)"), raw));
    }

    /// How many secrets, each key counted once whatever its forms.
    fn names(&self) -> usize {
        let mut names: Vec<&str> = self
            .0
            .iter()
            .map(|(n, _)| n.split(" (").next().unwrap_or(n))
            .collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    }

    /// Names of the secrets `haystack` holds.
    fn found_in(&self, haystack: &[u8], with_prefixes: bool) -> Vec<String> {
        let mut found: Vec<String> = self
            .0
            .iter()
            .filter(|(_, s)| contains(haystack, s))
            .map(|(name, _)| name.clone())
            .collect();
        if with_prefixes {
            for prefix in minted_prefixes() {
                if contains(haystack, prefix.as_bytes()) {
                    found.push(format!("a mock-issued token ({prefix}…)"));
                }
            }
        }
        found
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Everything the runs produced, scanned once every secret is known.
#[derive(Default)]
struct Audit {
    runs: usize,
    /// (where, bytes, whether to look for token prefixes too).
    outputs: Vec<(String, Vec<u8>, bool)>,
}

impl Audit {
    fn add(&mut self, place: String, bytes: Vec<u8>) {
        self.outputs.push((place, bytes, true));
    }

    /// Runs oauthtest once and checks it ended as `expect` says: a run that fails early would
    /// prove nothing.
    fn run(
        &mut self,
        mut cmd: std::process::Command,
        args: &[&str],
        stdin: Option<&str>,
        expect: i32,
    ) {
        // Not read by oauthtest today; set so that honouring it one day is audited too.
        cmd.env("RUST_LOG", "trace");
        let r = run_raw(cmd, args, stdin);
        assert_eq!(r.code, expect, "{args:?}\n{}", r.text());
        self.runs += 1;
        let shown = args.join(" ");
        self.add(format!("stdout of {shown}"), r.stdout);
        self.add(format!("stderr of {shown}"), r.stderr);
    }

    /// Every file under `dir` except the inputs, which hold the planted secrets on purpose.
    /// Binary store files are scanned for the named secrets only: three bytes such as `1//` may
    /// occur in them by chance.
    fn add_files(&mut self, dir: &Path, skip: &[&Path]) {
        for entry in std::fs::read_dir(dir).expect("read the work directory") {
            let path = entry.expect("dir entry").path();
            if skip.iter().any(|s| *s == path) {
                continue;
            }
            if path.is_dir() {
                self.add_files(&path, skip);
                continue;
            }
            let bytes = std::fs::read(&path).expect("read a file the runs left");
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let binary = name.contains(".db");
            self.outputs
                .push((format!("file {}", path.display()), bytes, !binary));
        }
    }

    #[track_caller]
    fn assert_clean(&self, secrets: &Secrets) {
        let mut leaks = Vec::new();
        let mut bytes = 0;
        for (place, output, with_prefixes) in &self.outputs {
            bytes += output.len();
            for secret in secrets.found_in(output, *with_prefixes) {
                leaks.push(format!(
                    "{secret} in {place}:\n{}",
                    String::from_utf8_lossy(output)
                ));
            }
        }
        assert!(
            leaks.is_empty(),
            "{} leak(s) in {} runs:\n{}",
            leaks.len(),
            self.runs,
            leaks.join("\n\n")
        );
        let stderr: usize = self
            .outputs
            .iter()
            .filter(|(p, ..)| p.starts_with("stderr"))
            .map(|(_, o, _)| o.len())
            .sum();
        eprintln!(
            "leak audit: {} runs, {} outputs and files ({bytes} bytes, {stderr} of them logs), \
             {} kinds of secret in {} values and forms, 0 occurrences",
            self.runs,
            self.outputs.len(),
            secrets.names(),
            secrets.0.len()
        );
    }
}

/// A format, the flags that ask for trace logging, and a variable that does.
type TraceWay = (
    &'static str,
    &'static [&'static str],
    Option<(&'static str, &'static str)>,
);

/// The three ways to ask for trace logging, and the three formats, paired up so that each
/// format and each way is used by every mode.
const TRACE: [TraceWay; 3] = [
    ("text", &["--log", "trace"], None),
    ("json", &["-vvv"], None),
    ("junit", &[], Some(("OAUTHTEST_LOG", "trace"))),
];

/// Flags that set a log level, and a variable that does.
type LogWay = (
    &'static [&'static str],
    Option<(&'static str, &'static str)>,
);

/// Every way to set a log level (none: the default), for the long version.
const LOG_WAYS: [LogWay; 9] = [
    (&[], None),
    (&["--log", "error"], None),
    (&["--log", "info"], None),
    (&["--log", "debug"], None),
    (&["--log", "trace"], None),
    (&["-v"], None),
    (&["-vv"], None),
    (&["-vvv"], None),
    (&[], Some(("OAUTHTEST_LOG", "trace"))),
];

/// The formats and log levels each invocation runs with: in CI the three of [`TRACE`]; with
/// `OAUTHTEST_LEAK_AUDIT_FULL` set (`scripts/leak_audit.sh`), every format at every level.
fn ways() -> Vec<TraceWay> {
    if std::env::var_os("OAUTHTEST_LEAK_AUDIT_FULL").is_none() {
        return TRACE.to_vec();
    }
    ["text", "json", "junit"]
        .into_iter()
        .flat_map(|format| LOG_WAYS.map(|(flags, env)| (format, flags, env)))
        .collect()
}

/// Which modes a backend runs in CI: on PostgreSQL, only those that touch the store (all of
/// them in the long version).
fn matrix_for(backend: Backend) -> Matrix {
    if backend == Backend::Sqlite || std::env::var_os("OAUTHTEST_LEAK_AUDIT_FULL").is_some() {
        Matrix::Every
    } else {
        Matrix::StoreModes
    }
}

/// One test's world: its directory, store, keys and a `serve` standing in for Google.
struct World {
    db: TestDb,
    url: String,
    key: String,
    old_key: String,
    serve: Serve,
    inputs: PathBuf,
}

impl World {
    /// A command for this store, run in the work directory (where `.env` holds the secrets).
    fn cmd(&self) -> std::process::Command {
        let mut c = self.db.cmd();
        c.env("DATABASE_URL", &self.url);
        c
    }

    fn input(&self, name: &str, contents: &str) -> String {
        let path = self.inputs.join(name);
        std::fs::write(&path, contents).expect("write an input");
        path.display().to_string()
    }

    fn endpoints(&self) -> [String; 6] {
        [
            "--token-url".into(),
            self.serve.url("/token"),
            "--tokeninfo-url".into(),
            self.serve.url("/tokeninfo"),
            "--api-url".into(),
            self.serve.url("/gmail/v1/users/me/profile"),
        ]
    }
}

/// Runs `args` once per format, each with its way of asking for trace logging.
fn each_format(
    audit: &mut Audit,
    world: &World,
    args: &[&str],
    extra_env: &[(&str, &str)],
    expect: i32,
) {
    for (format, flags, env) in ways() {
        let mut cmd = world.cmd();
        cmd.envs(extra_env.iter().copied());
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--format", format]);
        all.extend(flags);
        audit.run(cmd, &all, None, expect);
    }
}

/// The `.env` every run reads: the keys and the client, nothing in the process environment.
fn dotenv(key: &str, old_key: &str, from_key: &str, production_key: &str) -> String {
    format!(
        "OAUTHTEST_ENCRYPTION_KEY={key}\nOAUTHTEST_OLD_ENCRYPTION_KEYS={old_key}\n\
         OAUTHTEST_FROM_ENCRYPTION_KEY={from_key}\n\
         OAUTHTEST_PRODUCTION_ENCRYPTION_KEY={production_key}\n\
         GOOGLE_CLIENT_ID={PLANTED_CLIENT_ID}\nGOOGLE_CLIENT_SECRET={PLANTED_CLIENT_SECRET}\n"
    )
}

/// The store URL with a planted password, when the URL has none (PostgreSQL only).
fn with_password(url: &str) -> String {
    match url.strip_prefix("postgres://") {
        Some(rest) => match rest.split_once('@') {
            Some((user, host)) if !user.contains(':') => {
                format!("postgres://{user}:{PLANTED_DB_PASSWORD}@{host}")
            }
            _ => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Every row of every oauthtest table (credentials, history, migrations), as text, read with
/// SQL: whatever columns a later migration adds are read too.
async fn dump_tables(world: &World) -> Vec<(String, Vec<u8>)> {
    use sqlx::{Column as _, Connection as _, Row as _};
    let mut dumps = Vec::new();
    if world.db.backend == Backend::Postgres {
        let mut conn = sqlx::PgConnection::connect(&world.url).await.unwrap();
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name LIKE 'oauthtest%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for (table,) in tables {
            let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT row_to_json(t)::text FROM {table} t"
            )))
            .fetch_all(&mut conn)
            .await
            .unwrap();
            let text: Vec<String> = rows.into_iter().map(|(r,)| r).collect();
            dumps.push((format!("table {table}"), text.join("\n").into_bytes()));
        }
        let _ = conn.close().await;
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&world.url).await.unwrap();
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'oauthtest%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for (table,) in tables {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            let mut text = Vec::new();
            for row in rows {
                for column in row.columns() {
                    // SQLite gives any value as bytes (text, numbers, the ledger's checksums).
                    let value: Option<Vec<u8>> = row.try_get_unchecked(column.ordinal()).unwrap();
                    text.extend(format!("{}=", column.name()).bytes());
                    text.extend(value.unwrap_or_default());
                    text.push(b' ');
                }
                text.push(b'\n');
            }
            dumps.push((format!("table {table}"), text));
        }
        let _ = conn.close().await;
    }
    let names: Vec<&str> = dumps.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"table oauthtest_refresh_history")
            && names.contains(&"table oauthtest_credentials"),
        "{names:?}"
    );
    let history = &dumps
        .iter()
        .find(|(n, _)| n == "table oauthtest_refresh_history")
        .unwrap()
        .1;
    assert!(
        contains(history, b"scrub") && contains(history, b"refresh"),
        "the history does not record the runs: {}",
        String::from_utf8_lossy(history)
    );
    dumps
}

/// Every token stored at the end, decrypted through the library: the ones `real` and
/// `force-expire` minted are among them.
async fn stored_tokens(world: &World) -> Vec<String> {
    let store = Store::connect(&world.url).await.expect("open the store");
    let ring = Keyring::new(EncryptionKey::from_base64(&world.key).unwrap(), vec![]);
    let mut tokens = Vec::new();
    for row in store.list().await.expect("list") {
        let Ok(secrets) = row.decrypt(&ring) else {
            continue;
        };
        let access = secrets.access_token.as_ref().map(|t| t.expose_secret());
        let refresh = secrets.refresh_token.as_ref().map(|t| t.expose_secret());
        tokens.extend([access, refresh].into_iter().flatten().map(str::to_owned));
    }
    store.close().await;
    tokens
}

/// Which modes a backend runs: on PostgreSQL, only those that touch the store.
#[derive(Clone, Copy, PartialEq)]
enum Matrix {
    Every,
    StoreModes,
}

async fn leak_audit(db: TestDb, matrix: Matrix) {
    let key = new_key(db.path());
    let old_key = new_key(db.path());
    let from_key = new_key(db.path());
    let production_key = new_key(db.path());
    db.write(".env", &dotenv(&key, &old_key, &from_key, &production_key));
    let inputs = db.path().join("inputs");
    std::fs::create_dir(&inputs).unwrap();
    let url = with_password(&db.url);

    let mut secrets = Secrets::default();
    for (name, value) in [
        ("the planted access token", PLANTED_ACCESS),
        ("the planted refresh token", PLANTED_REFRESH),
        ("the planted client secret", PLANTED_CLIENT_SECRET),
        ("the planted non-key", PLANTED_BAD_KEY),
        ("the database password", PLANTED_DB_PASSWORD),
    ] {
        secrets.text(name, value);
    }
    for (name, value) in [
        ("the current key", &key),
        ("the previous key", &old_key),
        ("the copy source's key", &from_key),
        ("the production key", &production_key),
    ] {
        secrets.key(name, value);
    }

    let mut audit = Audit::default();
    let serve = Serve::start_with(
        &["--log", "trace"],
        &[
            ("GOOGLE_CLIENT_ID", PLANTED_CLIENT_ID),
            ("GOOGLE_CLIENT_SECRET", PLANTED_CLIENT_SECRET),
            ("OAUTHTEST_ENCRYPTION_KEY", &key),
        ],
    );
    let (status, minted) = admin_post(
        &serve,
        "refresh-tokens",
        json!({"client_id": PLANTED_CLIENT_ID, "scopes": [GMAIL]}),
    )
    .await;
    assert_eq!(status, 201, "{minted}");
    let live_refresh = str_of(&minted, "refresh_token").to_owned();
    secrets.text("a refresh token serve minted", &live_refresh);
    let world = World {
        db,
        url,
        key,
        old_key,
        serve,
        inputs,
    };

    // import: planted tokens, sealed with what becomes the previous key (rekey moves them on).
    let playground = world.input("playground.json", &playground_json());
    let google_auth = world.input(
        "google-auth.json",
        &format!(
            r#"{{"token":"{PLANTED_ACCESS}","refresh_token":"{live_refresh}",
                "client_id":"{PLANTED_CLIENT_ID}","client_secret":"{PLANTED_CLIENT_SECRET}",
                "scopes":["{GMAIL}"],"expiry":"2020-01-01T00:00:00Z"}}"#
        ),
    );
    let old = [("OAUTHTEST_ENCRYPTION_KEY", world.old_key.as_str())];
    each_format(
        &mut audit,
        &world,
        &["--mode", "import", "--file", &google_auth],
        &old,
        0,
    );
    each_format(
        &mut audit,
        &world,
        &["--mode", "import", "--file", &playground],
        &old,
        0,
    );
    let mut stdin_import = world.cmd();
    stdin_import.envs(old);
    audit.run(
        stdin_import,
        &["--mode", "import", "--file", "-", "-vvv"],
        Some(&playground_json()),
        0,
    );
    // Refused inputs: a malformed file quoting a token, a key that is no key.
    let mut malformed = world.cmd();
    malformed.envs(old);
    audit.run(
        malformed,
        &["--mode", "import", "--file", "-", "-vvv"],
        Some(&format!(
            r#"{{"access_token":"{PLANTED_ACCESS}","refresh_token":7}}"#
        )),
        2,
    );
    let mut bad_key = world.cmd();
    bad_key.env("OAUTHTEST_ENCRYPTION_KEY", PLANTED_BAD_KEY);
    audit.run(
        bad_key,
        &["--mode", "import", "--file", &playground, "-vvv"],
        None,
        2,
    );

    // The one credential serve can refresh is the first; the others hold planted tokens.
    each_format(&mut audit, &world, &["--mode", "list"], &[], 0);
    each_format(
        &mut audit,
        &world,
        &["--mode", "rekey", "--dry-run"],
        &[],
        0,
    );
    each_format(&mut audit, &world, &["--mode", "rekey"], &[], 0);
    let endpoints = world.endpoints();
    let endpoints: Vec<&str> = endpoints.iter().map(String::as_str).collect();
    // 1 refreshes at serve; the first Playground import's planted refresh token gets
    // invalid_grant (exit 1).
    let planted_id = (ways().len() + 1).to_string();
    for (id, dry, expect) in [
        ("1", true, 0),
        (planted_id.as_str(), false, 1),
        ("1", false, 0),
    ] {
        let mut args = vec!["--mode", "real", "--credential-id", id];
        args.extend(&endpoints);
        if dry {
            args.extend(["--dry-run", "--check-token"]);
        }
        each_format(&mut audit, &world, &args, &[], expect);
    }
    for no_refresh in [false, true] {
        let mut args = vec!["--mode", "force-expire", "--credential-id", "1"];
        args.extend(&endpoints);
        if no_refresh {
            args.push("--no-refresh");
        }
        each_format(&mut audit, &world, &args, &[], 0);
    }

    // copy: from a store beside this one, sealed with its own key.
    let source = format!(
        "sqlite://{}",
        world.db.path().join("source-store.db").display()
    );
    let mut seed = world.cmd();
    seed.env("DATABASE_URL", &source)
        .env("OAUTHTEST_ENCRYPTION_KEY", &from_key);
    audit.run(seed, &["--mode", "import", "--file", &playground], None, 0);
    each_format(
        &mut audit,
        &world,
        &[
            "--mode",
            "copy",
            "--credential-id",
            "1",
            "--from-database-url",
            &source,
        ],
        &[],
        0,
    );

    each_format(
        &mut audit,
        &world,
        &[
            "--mode",
            "doctor",
            "--check-endpoint",
            "--token-url",
            &world.serve.url("/token"),
        ],
        &[("OAUTHTEST_ENV", "staging")],
        0,
    );
    each_format(
        &mut audit,
        &world,
        &["--mode", "list", "--credential-id", "1"],
        &[],
        0,
    );
    each_format(
        &mut audit,
        &world,
        &["--mode", "scrub", "--keep", "1"],
        &[],
        0,
    );
    each_format(
        &mut audit,
        &world,
        &["--mode", "scrub", "--keep", "1", "--yes"],
        &[],
        0,
    );

    // The mock modes, with every report file they write.
    let reports = ["report.xml", "report.json", "report.txt"];
    for (report, (format, flags, env)) in reports.iter().cycle().zip(ways()) {
        let mut cmd = world.cmd();
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let path = world.db.path().join(report).display().to_string();
        let mut args = vec!["--mode", "mock-all", "--format", format, "--report", &path];
        args.extend(flags);
        audit.run(cmd, &args, None, 0);
    }
    for scenario in ["rotation", "invalid_grant_mid_run"] {
        let path = world
            .db
            .path()
            .join(format!("{scenario}.html"))
            .display()
            .to_string();
        each_format(
            &mut audit,
            &world,
            &[
                "--mode",
                "worker-sim",
                "--scenario",
                scenario,
                "--jobs",
                "120",
                "--workers",
                "4",
                "--credentials",
                "2",
                "--token-ttl-secs",
                "1",
                "--report",
                &path,
            ],
            &[],
            0,
        );
    }
    if matrix == Matrix::Every {
        for scenario in ["success", "invalid_grant_revoked", "rotation"] {
            each_format(
                &mut audit,
                &world,
                &["--mode", "mock", "--scenario", scenario],
                &[],
                0,
            );
        }
        each_format(&mut audit, &world, &["--mode", "keygen"], &[], 0);
        for (format, flags, env) in ways() {
            let mut env: Vec<(&str, &str)> = env.into_iter().collect();
            env.extend([
                ("GOOGLE_CLIENT_ID", PLANTED_CLIENT_ID),
                ("GOOGLE_CLIENT_SECRET", PLANTED_CLIENT_SECRET),
            ]);
            let mut args = vec!["--format", format];
            args.extend(flags);
            let other = Serve::start_with(&args, &env);
            let (_, minted) = admin_post(
                &other,
                "refresh-tokens",
                json!({"client_id": PLANTED_CLIENT_ID}),
            )
            .await;
            let rt = str_of(&minted, "refresh_token").to_owned();
            let (status, body) =
                refresh(&other, &rt, PLANTED_CLIENT_ID, PLANTED_CLIENT_SECRET).await;
            assert_eq!(status, 200, "{body}");
            secrets.text("a refresh token serve minted", &rt);
            secrets.text(
                "an access token serve issued",
                str_of(&body, "access_token"),
            );
            let r = other.stop("TERM");
            r.assert_code(0);
            audit.runs += 1;
            audit.add(
                format!("stdout of serve --format {format}"),
                r.stdout.into(),
            );
            audit.add(
                format!("stderr of serve --format {format}"),
                r.stderr.into(),
            );
        }
        // An unreachable store whose URL holds a password.
        audit.run(
            world.db.cmd(),
            &[
                "--mode",
                "list",
                "-vvv",
                "--database-url",
                &format!("postgres://postgres:{PLANTED_DB_PASSWORD}@127.0.0.1:9/none"),
            ],
            None,
            2,
        );
    }

    // Controls: the scan finds what is there (the inputs hold the planted secrets, `.env` the
    // keys), and real and force-expire did mint the access token the store holds now.
    let dotenv = std::fs::read(world.db.path().join(".env")).unwrap();
    let in_dotenv = secrets.found_in(&dotenv, true);
    for name in [
        "the planted client secret",
        "the current key (base64)",
        "the previous key (base64)",
        "the copy source's key (base64)",
        "the production key (base64)",
    ] {
        assert!(
            in_dotenv.iter().any(|found| found == name),
            "the scan misses {name} in .env: {in_dotenv:?}"
        );
    }
    let input = std::fs::read(world.inputs.join("google-auth.json")).unwrap();
    assert_eq!(secrets.found_in(&input, true).len(), 3 + 1);
    let stored = stored_tokens(&world).await;
    assert!(
        stored.iter().any(|t| t.starts_with(&minted_prefixes()[0])),
        "no access token minted during the run is stored: {} tokens",
        stored.len()
    );
    for token in stored {
        secrets.text("a token found in the store at the end", &token);
    }
    for (place, bytes) in dump_tables(&world).await {
        audit.add(place, bytes);
    }
    let World { db, serve, .. } = world;
    let served = serve.stop("TERM");
    served.assert_code(0);
    assert!(
        served.stderr.contains("POST /token -> 200"),
        "serve refreshed nothing: the runs did not reach it\n{served}"
    );
    audit.runs += 1;
    audit.add("stdout of the serve Google".into(), served.stdout.into());
    audit.add("stderr of the serve Google".into(), served.stderr.into());
    audit.add_files(
        db.path(),
        &[&db.path().join(".env"), &db.path().join("inputs")],
    );
    let logs = audit
        .outputs
        .iter()
        .filter(|(p, ..)| p.starts_with("stderr"))
        .map(|(_, o, _)| String::from_utf8_lossy(o).into_owned())
        .collect::<String>();
    assert!(
        logs.contains(" TRACE ") && logs.contains(" DEBUG "),
        "trace logging produced no trace lines to scan"
    );
    audit.assert_clean(&secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_from_any_mode_format_or_log_level_on_sqlite() {
    leak_audit(TestDb::sqlite(), matrix_for(Backend::Sqlite)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    oauthtest_no_postgres,
    ignore = "PostgreSQL did not answer when the tests were built (start it, then `touch build.rs`)"
)]
async fn no_secret_leaks_from_the_modes_that_touch_a_postgres_store() {
    if let Some(db) = TestDb::postgres().await {
        leak_audit(db, matrix_for(Backend::Postgres)).await;
    }
}

/// Debug builds only: the binary's `OAUTHTEST_TEST_PANIC` hook does not exist in release builds.
#[cfg(debug_assertions)]
#[test]
fn a_panic_exits_3_naming_its_place_and_never_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path());
    let mut cmd = oauthtest_cmd(dir.path());
    cmd.env(
        "OAUTHTEST_TEST_PANIC",
        format!("{PLANTED_ACCESS} {PLANTED_CLIENT_SECRET} {key}"),
    )
    .env("OAUTHTEST_ENCRYPTION_KEY", &key)
    .env("RUST_BACKTRACE", "1");
    let r = run(cmd, &["--mode", "list", "-vvv"], None);
    r.assert_code(3);
    assert!(
        r.stderr
            .contains("error: internal error: oauthtest panicked at src/main.rs:"),
        "{r}"
    );
    assert!(r.stderr.contains("may hold a secret"), "{r}");
    assert!(r.stdout.is_empty(), "{r}");
    assert!(!r.stderr.contains("test panic holding"), "{r}");
    assert_no_secrets(&format!("{}{}", r.stdout, r.stderr), &[&key]);
}
