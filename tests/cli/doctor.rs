//! `--mode doctor` (one test per finding, on both backends where the store matters) and
//! `scripts/pre_deploy_check.sh` (passes on this clean tree, fails with the right line for each
//! broken thing it checks).

use crate::on_both_backends;
use crate::support::*;
use serde_json::Value;
use std::path::Path;

/// Runs doctor as JSON with `key` (if any) and extra environment.
fn doctor_env(db: &TestDb, key: Option<&str>, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = db.cmd();
    if let Some(key) = key {
        c.env("OAUTHTEST_ENCRYPTION_KEY", key);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let mut all = vec!["--mode", "doctor", "--format", "json"];
    all.extend_from_slice(args);
    run(c, &all, None)
}

fn doctor(db: &TestDb, key: Option<&str>, args: &[&str]) -> Run {
    doctor_env(db, key, &[], args)
}

/// The finding named `check` in a doctor JSON report.
#[track_caller]
fn finding(r: &Run, check: &str) -> Value {
    r.json()["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|f| f["name"] == check)
        .unwrap_or_else(|| panic!("no {check} finding\n{r}"))
        .clone()
}

#[track_caller]
fn assert_finding(r: &Run, check: &str, status: &str, message_has: &str) -> Value {
    let f = finding(r, check);
    assert_eq!(f["status"], status, "{check}: {f}\n{r}");
    let message = f["detail"].as_str().unwrap();
    assert!(
        message.contains(message_has),
        "{check} message lacks {message_has:?}: {message}"
    );
    if status == "fail" || status == "warn" {
        assert!(
            f["fix"].as_str().is_some_and(|s| !s.is_empty()),
            "a {status} finding needs a fix: {f}"
        );
    }
    f
}

/// Imports the planted Playground credential with `key`; returns its id.
fn import(db: &TestDb, key: &str) -> i64 {
    let file = db.write("token.json", &playground_json());
    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", key)
        .env("GOOGLE_CLIENT_SECRET", PLANTED_CLIENT_SECRET);
    let r = run(
        c,
        &[
            "--mode",
            "import",
            "--file",
            file.to_str().unwrap(),
            "--client-id",
            "cid.apps.googleusercontent.com",
            "--format",
            "json",
        ],
        None,
    );
    r.assert_code(0);
    r.json()["id"].as_i64().unwrap()
}

/// The id `--mode keygen` gives a key: doctor's `key` finding names it.
fn key_id(db: &TestDb, key: &str) -> String {
    let r = doctor(db, Some(key), &[]);
    let message = finding(&r, "key")["detail"].as_str().unwrap().to_owned();
    message
        .split_whitespace()
        .nth(2)
        .expect("current key <id>")
        .to_owned()
}

/// Runs one statement on the test store, in each backend's own SQL.
async fn exec(db: &TestDb, sqlite: &'static str, postgres: &'static str) {
    use sqlx::Connection;
    match db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query(sqlite).execute(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query(postgres).execute(&mut c).await.unwrap();
        }
    }
}

on_both_backends!(
    healthy_store_passes_every_check_and_no_key_or_token_is_printed,
    healthy_store_passes_every_check_and_no_key_or_token_is_printed
);
async fn healthy_store_passes_every_check_and_no_key_or_token_is_printed(db: TestDb) {
    let key = new_key(db.path());
    let first = import(&db, &key);
    import(&db, &key);
    let r = doctor(&db, Some(&key), &["-vvv"]);
    r.assert_code(0);
    assert_finding(&r, "key", "pass", "current key");
    assert_finding(&r, "database", "pass", "is reachable");
    assert_finding(&r, "migrations", "pass", "current: 2 of 2 applied");
    assert_finding(&r, "credentials", "pass", "2 of 2 credentials decrypt");
    assert_finding(&r, "token_endpoint", "skip", "--check-endpoint");
    // A warning (no OAUTHTEST_ENV) does not fail the run.
    assert_finding(&r, "environment", "warn", "OAUTHTEST_ENV is not set");
    let v = r.json();
    assert_eq!(v["mode"], "doctor");
    assert_eq!(v["ok"], true);
    assert_eq!(v["counts"]["fail"], 0);
    assert_no_secrets(&format!("{}{}", r.stdout, r.stderr), &[&key]);

    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &key);
    let text = run(c, &["--mode", "doctor", "-vvv"], None);
    text.assert_code(0);
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("OK    migrations      current")),
        "{text}"
    );
    assert!(
        text.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("doctor: 5 ok, 1 warning, 0 failed, 2 skipped"),
        "{text}"
    );
    assert_no_secrets(&format!("{}{}", text.stdout, text.stderr), &[&key]);

    // A scrubbed credential still decrypts; doctor counts it as needing a reconnect.
    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &key);
    let keep = first.to_string();
    run(c, &["--mode", "scrub", "--keep", &keep, "--yes"], None).assert_code(0);
    let r = doctor(&db, Some(&key), &[]);
    r.assert_code(0);
    assert_finding(
        &r,
        "credentials",
        "pass",
        "2 of 2 credentials decrypt with the configured keys; 1 need reconnecting",
    );
}

#[test]
fn missing_key_fails_the_key_check_with_a_keygen_fix() {
    let db = TestDb::sqlite();
    let r = doctor(&db, None, &[]);
    r.assert_code(1);
    let f = assert_finding(&r, "key", "fail", "OAUTHTEST_ENCRYPTION_KEY: is not set");
    assert!(f["fix"].as_str().unwrap().contains("--mode keygen"), "{f}");
    assert_eq!(r.json()["ok"], false);

    // The text form: a FAIL line, its fix on the next line, and the summary.
    let text = run(db.cmd(), &["--mode", "doctor"], None);
    text.assert_code(1);
    let lines: Vec<_> = text.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("FAIL  key "))
        .unwrap_or_else(|| panic!("no FAIL key line\n{text}"));
    assert!(lines[at + 1].trim_start().starts_with("fix: "), "{text}");
}

#[test]
fn malformed_keys_fail_naming_the_setting_and_never_the_value() {
    let db = TestDb::sqlite();
    run(db.cmd(), &["--mode", "init"], None).assert_code(0);
    let bad = "not-a-key-PLANTED-0b1d";
    let r = doctor(&db, Some(bad), &[]);
    r.assert_code(1);
    assert_finding(
        &r,
        "key",
        "fail",
        "OAUTHTEST_ENCRYPTION_KEY: is not valid base64",
    );
    assert_finding(&r, "credentials", "skip", "the key did not load");
    assert_no_secrets(&r.stdout, &[bad]);

    let good = new_key(db.path());
    let r = doctor_env(
        &db,
        Some(&good),
        &[("OAUTHTEST_OLD_ENCRYPTION_KEYS", bad)],
        &[],
    );
    r.assert_code(1);
    let f = assert_finding(&r, "key", "fail", "OAUTHTEST_OLD_ENCRYPTION_KEYS: entry 1");
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains("OAUTHTEST_OLD_ENCRYPTION_KEYS"),
        "{f}"
    );
    assert_no_secrets(&r.stdout, &[bad, &good]);

    let key_file = db.write("key.b64", "c2hvcnQ=");
    let mut c = db.cmd();
    c.args(["--key-file", key_file.to_str().unwrap()]);
    let r = run(c, &["--mode", "doctor", "--format", "json"], None);
    r.assert_code(1);
    assert_finding(&r, "key", "fail", "--key-file");
    assert_finding(&r, "key", "fail", "decodes to 5 bytes");
}

#[test]
fn staging_sharing_the_production_key_fails_however_it_is_given() {
    let db = TestDb::sqlite();
    let key = new_key(db.path());
    let other = new_key(db.path());
    let id = key_id(&db, &key);
    let staging = [("OAUTHTEST_ENV", "staging")];

    // By id: the way the CI templates give it (an id is not a secret).
    let r = doctor(&db, Some(&key), &["--production-key-id", &id]);
    r.assert_code(1);
    let f = assert_finding(
        &r,
        "production_key",
        "fail",
        "the current key is the production key",
    );
    assert!(f["detail"].as_str().unwrap().contains(&id), "{f}");
    assert!(f["fix"].as_str().unwrap().contains("--mode keygen"), "{f}");

    // By the key itself, in the variable or a file: only its id is compared or shown.
    let r = doctor_env(
        &db,
        Some(&key),
        &[("OAUTHTEST_PRODUCTION_ENCRYPTION_KEY", &key)],
        &[],
    );
    r.assert_code(1);
    assert_finding(
        &r,
        "production_key",
        "fail",
        "from OAUTHTEST_PRODUCTION_ENCRYPTION_KEY",
    );
    assert_no_secrets(&format!("{}{}", r.stdout, r.stderr), &[&key]);
    let file = db.write("production.key", &key);
    let r = doctor(
        &db,
        Some(&key),
        &["--production-key-file", file.to_str().unwrap()],
    );
    r.assert_code(1);
    assert_finding(&r, "production_key", "fail", "--production-key-file");

    // The production key kept as a previous key: staging could still decrypt production's rows.
    let r = doctor_env(
        &db,
        Some(&other),
        &[("OAUTHTEST_OLD_ENCRYPTION_KEYS", &key)],
        &["--production-key-id", &id],
    );
    r.assert_code(1);
    assert_finding(
        &r,
        "production_key",
        "fail",
        "OAUTHTEST_OLD_ENCRYPTION_KEYS holds the production key",
    );
    assert_no_secrets(&r.stdout, &[&key, &other]);

    // A different key passes.
    let r = doctor_env(
        &db,
        Some(&other),
        &staging,
        &["--production-key-id", &id.to_uppercase()],
    );
    assert_finding(
        &r,
        "production_key",
        "pass",
        "differ from the production key",
    );
}

#[test]
fn production_key_check_warns_in_staging_when_no_id_is_given_and_rejects_a_malformed_one() {
    let db = TestDb::sqlite();
    let key = new_key(db.path());
    let r = doctor_env(&db, Some(&key), &[("OAUTHTEST_ENV", "staging")], &[]);
    assert_finding(&r, "production_key", "warn", "no production key id given");
    let r = doctor(&db, Some(&key), &[]);
    assert_finding(&r, "production_key", "skip", "no production key id given");
    let r = doctor_env(&db, Some(&key), &[("OAUTHTEST_ENV", "production")], &[]);
    assert_finding(&r, "production_key", "skip", "this is production");

    let r = doctor(&db, Some(&key), &["--production-key-id", &key]);
    r.assert_code(1);
    assert_finding(
        &r,
        "production_key",
        "fail",
        "--production-key-id: must be a key id",
    );
    assert_no_secrets(&r.stdout, &[&key]);
}

#[test]
fn unreachable_database_fails_and_the_checks_that_need_it_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path());
    let missing = dir.path().join("no-such-store.db");
    for (url, fix) in [
        (format!("sqlite://{}", missing.display()), "must exist"),
        (
            "postgres://postgres:PLANTED-PASSWORD@127.0.0.1:1/nothing".to_owned(),
            "server is up",
        ),
        ("mysql://somewhere/db".to_owned(), "sqlite://PATH"),
    ] {
        let mut c = oauthtest_cmd(dir.path());
        c.env("OAUTHTEST_ENCRYPTION_KEY", &key)
            .env("DATABASE_URL", &url);
        let r = run(c, &["--mode", "doctor", "--format", "json"], None);
        r.assert_code(1);
        let f = finding(&r, "database");
        assert_eq!(f["status"], "fail", "{url}: {r}");
        assert!(f["fix"].as_str().unwrap().contains(fix), "{url}: {f}");
        assert_finding(&r, "migrations", "skip", "no database");
        assert_finding(&r, "credentials", "skip", "no database");
        assert_no_secrets(&r.stdout, &["PLANTED-PASSWORD", &key]);
    }
    assert!(!missing.exists(), "doctor must not create a store");
    assert!(!dir.path().join("oauthtest.db").exists());
}

#[test]
fn the_default_store_warns_in_staging_when_database_url_is_not_set() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path());
    let mut c = oauthtest_cmd(dir.path());
    c.env("OAUTHTEST_ENCRYPTION_KEY", &key)
        .env("OAUTHTEST_ENV", "staging");
    // Create the default store first, so only the warning is left.
    run(oauthtest_cmd(dir.path()), &["--mode", "init"], None).assert_code(0);
    let r = run(c, &["--mode", "doctor", "--format", "json"], None);
    r.assert_code(0);
    assert_finding(&r, "database", "warn", "DATABASE_URL is not set");
}

on_both_backends!(
    a_database_without_a_store_fails_migrations_and_doctor_does_not_create_one,
    a_database_without_a_store_fails_migrations_and_doctor_does_not_create_one
);
async fn a_database_without_a_store_fails_migrations_and_doctor_does_not_create_one(db: TestDb) {
    if db.backend == Backend::Sqlite {
        // An empty file is an empty SQLite database.
        let path = db.url.trim_start_matches("sqlite://").to_owned();
        std::fs::write(&path, b"").unwrap();
    }
    let key = new_key(db.path());
    for _ in 0..2 {
        let r = doctor(&db, Some(&key), &[]);
        r.assert_code(1);
        assert_finding(&r, "database", "pass", "is reachable");
        let f = assert_finding(&r, "migrations", "fail", "no oauthtest store");
        assert!(f["fix"].as_str().unwrap().contains("--mode init"), "{f}");
        assert_finding(&r, "credentials", "skip", "no oauthtest store yet");
    }
    // The fix it names works.
    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &key);
    run(c, &["--mode", "init"], None).assert_code(0);
    doctor(&db, Some(&key), &[]).assert_code(0);
}

on_both_backends!(
    migrations_that_are_not_current_fail_and_doctor_never_applies_them,
    migrations_that_are_not_current_fail_and_doctor_never_applies_them
);
async fn migrations_that_are_not_current_fail_and_doctor_never_applies_them(db: TestDb) {
    let key = new_key(db.path());
    import(&db, &key);
    let check = |fragment: &str| {
        let r = doctor(&db, Some(&key), &[]);
        r.assert_code(1);
        assert_finding(&r, "migrations", "fail", fragment)
    };

    // Applied from an edited file.
    exec(
        &db,
        "UPDATE oauthtest_schema_migrations SET checksum = X'00'",
        "UPDATE oauthtest_schema_migrations SET checksum = '\\x00'::bytea",
    )
    .await;
    check("applied from a different file than this binary carries: 20261122000001");

    // Failed part-way.
    exec(
        &db,
        "UPDATE oauthtest_schema_migrations SET success = FALSE",
        "UPDATE oauthtest_schema_migrations SET success = FALSE",
    )
    .await;
    let f = check("migration 20261122000001 failed part-way");
    assert!(f["fix"].as_str().unwrap().contains("delete its row"), "{f}");

    // Not applied (the ledger has lost its row); doctor run twice: it must not apply it.
    exec(
        &db,
        "DELETE FROM oauthtest_schema_migrations",
        "DELETE FROM oauthtest_schema_migrations",
    )
    .await;
    check("pending: 20261122000001");
    let f = check("not current (0 of 2 applied)");
    assert!(f["fix"].as_str().unwrap().contains("--mode init"), "{f}");

    // Applied by a newer oauthtest (this binary does not carry it).
    exec(
        &db,
        "INSERT INTO oauthtest_schema_migrations
            (version, description, success, checksum, execution_time)
         VALUES (29991231000000, 'from a newer oauthtest', TRUE, X'00', 1)",
        "INSERT INTO oauthtest_schema_migrations
            (version, description, success, checksum, execution_time)
         VALUES (29991231000000, 'from a newer oauthtest', TRUE, '\\x00'::bytea, 1)",
    )
    .await;
    let f = check("applied by a newer oauthtest: 29991231000000");
    assert!(f["fix"].as_str().unwrap().contains("newer"), "{f}");
}

on_both_backends!(
    credentials_that_do_not_decrypt_fail_by_id_and_previous_keys_warn,
    credentials_that_do_not_decrypt_fail_by_id_and_previous_keys_warn
);
async fn credentials_that_do_not_decrypt_fail_by_id_and_previous_keys_warn(db: TestDb) {
    let old = new_key(db.path());
    let new = new_key(db.path());
    let first = import(&db, &old);
    let second = import(&db, &old);
    let old_id = key_id(&db, &old);

    // Sealed with a key this run lacks.
    let r = doctor(&db, Some(&new), &[]);
    r.assert_code(1);
    let f = assert_finding(
        &r,
        "credentials",
        "fail",
        &format!(
            "2 of 2 credentials do not decrypt with the configured keys: {first}, {second} \
             (sealed with key {old_id}, which is not configured)"
        ),
    );
    assert!(f["fix"].as_str().unwrap().contains("--mode rekey"), "{f}");

    // The old key kept as a previous key: they decrypt, and rekey is suggested.
    let with_old = [("OAUTHTEST_OLD_ENCRYPTION_KEYS", old.as_str())];
    let r = doctor_env(&db, Some(&new), &with_old, &[]);
    r.assert_code(0);
    let f = assert_finding(
        &r,
        "credentials",
        "warn",
        &format!("2 still sealed with a previous key: {first}, {second}"),
    );
    assert!(f["fix"].as_str().unwrap().contains("--mode rekey"), "{f}");
    assert_no_secrets(&format!("{}{}", r.stdout, r.stderr), &[&old, &new]);

    // An envelope moved onto another row fails authentication, named by the row's id.
    exec(
        &db,
        "UPDATE oauthtest_credentials SET encrypted_data =
            (SELECT encrypted_data FROM oauthtest_credentials WHERE id = 1) WHERE id = 2",
        "UPDATE oauthtest_credentials SET encrypted_data =
            (SELECT encrypted_data FROM oauthtest_credentials WHERE id = 1) WHERE id = 2",
    )
    .await;
    let r = doctor(&db, Some(&old), &[]);
    r.assert_code(1);
    assert_finding(
        &r,
        "credentials",
        "fail",
        &format!("1 of 2 credentials do not decrypt with the configured keys: {second} (failed authentication"),
    );
}

/// A one-shot HTTP server on loopback: answers `status` to one request and hands the request
/// back, so a test can see exactly what was sent.
fn one_shot_http(status: u16) -> (String, std::thread::JoinHandle<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        // Bounded: a run that never connects leaves an empty request, not a hung test.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(_) => return String::new(),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let reply =
            format!("HTTP/1.1 {status} Whatever\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        stream.write_all(reply.as_bytes()).unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    (url, handle)
}

#[test]
fn token_endpoint_check_sends_no_credential_and_reports_what_answered() {
    let db = TestDb::sqlite();
    let key = new_key(db.path());
    let secret = [("GOOGLE_CLIENT_SECRET", PLANTED_CLIENT_SECRET)];

    let (url, server) = one_shot_http(404);
    let r = doctor_env(
        &db,
        Some(&key),
        &secret,
        &["--check-endpoint", "--token-url", &url],
    );
    let request = server.join().unwrap();
    assert_finding(&r, "token_endpoint", "pass", "answered HTTP 404");
    assert!(request.starts_with("GET /token HTTP/1.1\r\n"), "{request}");
    assert!(
        !request.to_ascii_lowercase().contains("authorization"),
        "{request}"
    );
    assert_no_secrets(&request, &[&key]);

    let (url, server) = one_shot_http(503);
    let r = doctor(&db, Some(&key), &["--check-endpoint", "--token-url", &url]);
    server.join().unwrap();
    assert_finding(&r, "token_endpoint", "warn", "answered HTTP 503");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", closed.local_addr().unwrap());
    drop(closed);
    let r = doctor(&db, Some(&key), &["--check-endpoint", "--token-url", &url]);
    r.assert_code(1);
    assert_finding(&r, "token_endpoint", "fail", "cannot be reached");

    let r = doctor(&db, Some(&key), &["--token-url", &url]);
    assert_finding(&r, "token_endpoint", "skip", "pass --check-endpoint");
}

#[test]
fn environment_finding_says_what_the_production_guard_will_do() {
    let db = TestDb::sqlite();
    let key = new_key(db.path());
    let with_env =
        |env: &str, args: &[&str]| doctor_env(&db, Some(&key), &[("OAUTHTEST_ENV", env)], args);
    assert_finding(
        &doctor(&db, Some(&key), &[]),
        "environment",
        "warn",
        "not set",
    );
    assert_finding(
        &with_env("staging", &[]),
        "environment",
        "pass",
        "staging: ",
    );
    // Doctor changes nothing, so production runs it without the override.
    let r = with_env("production", &[]);
    let f = assert_finding(&r, "environment", "pass", "production: the guard refuses");
    for mode in ["import", "rekey", "real", "force-expire", "copy", "scrub"] {
        assert!(f["detail"].as_str().unwrap().contains(mode), "{f}");
    }
    assert_finding(
        &with_env("production", &["--i-know-this-is-production"]),
        "environment",
        "warn",
        "the guard is off",
    );
}

// ---------------------------------------------------------------------------------------------
// scripts/pre_deploy_check.sh

/// The checklist, run by bash from `cwd` with a clean oauthtest environment plus `env`, using
/// the test-built binary (so nothing is built).
fn checklist(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    // One at a time: each runs every scenario, and the machine is small; timing-sensitive
    // scenarios elsewhere in the suite should not pay for it.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pre_deploy_check.sh");
    let mut c = std::process::Command::new("bash");
    c.current_dir(cwd).arg(script);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("OAUTHTEST_")
            || k.starts_with("GOOGLE_")
            || k.starts_with("CARGO")
            || k == "DATABASE_URL"
            || k == "RUST_LOG"
        {
            c.env_remove(k);
        }
    }
    c.env("OAUTHTEST_BIN", env!("CARGO_BIN_EXE_oauthtest"));
    for (k, v) in env {
        c.env(k, v);
    }
    run(c, args, None)
}

/// A staging-like setup: a key and a store holding one credential, in `db`.
fn staging_env(db: &TestDb) -> Vec<(&'static str, String)> {
    let key = new_key(db.path());
    import(db, &key);
    vec![
        ("OAUTHTEST_ENCRYPTION_KEY", key),
        ("DATABASE_URL", db.url.clone()),
        ("OAUTHTEST_ENV", "staging".into()),
    ]
}

fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[track_caller]
fn assert_line(r: &Run, prefix: &str) {
    assert!(
        r.stdout.lines().any(|l| l.starts_with(prefix)),
        "no line starting {prefix:?}\n{r}"
    );
}

/// A git repository in a temp dir holding `files`.
fn temp_repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let git = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(git.success());
    dir
}

#[test]
fn checklist_passes_on_this_clean_tree_with_one_line_per_check() {
    let db = TestDb::sqlite();
    let env = staging_env(&db);
    let report = db.path().join("reports/mock-all.xml");
    let repo = env!("CARGO_MANIFEST_DIR");
    // From an unrelated directory: it works from anywhere.
    let r = checklist(
        db.path(),
        &as_refs(&env),
        &[
            "--skip-tests",
            "--repo",
            repo,
            "--report",
            report.to_str().unwrap(),
            "--credential-id",
            "1",
        ],
    );
    r.assert_code(0);
    for line in [
        "PASS  tool grep",
        "PASS  tool git",
        "SKIP  tests",
        "PASS  mock-all",
        "PASS  migrations",
        "PASS  configuration",
        "PASS  credential",
        "PASS  secrets",
    ] {
        assert_line(&r, line);
    }
    assert!(!r.stdout.lines().any(|l| l.starts_with("FAIL")), "{r}");
    assert_eq!(
        r.stdout.lines().last().unwrap(),
        "pre-deploy: 7 passed, 0 failed, 1 skipped",
        "{r}"
    );
    let xml = std::fs::read_to_string(&report).expect("the JUnit report is written");
    assert!(xml.contains("<testsuite"), "{xml}");
    assert_no_secrets(&format!("{}{}", r.stdout, r.stderr), &[&env[0].1]);
}

#[test]
fn checklist_help_lists_every_option_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let r = checklist(dir.path(), &[], &["--help"]);
    r.assert_code(0);
    for option in [
        "--skip-tests",
        "--report",
        "--scenarios",
        "--credential-id",
        "--check-endpoint",
        "--repo",
        "--secrets-ignore",
        "--help",
    ] {
        assert!(r.stdout.contains(option), "help lacks {option}\n{r}");
    }
    let r = checklist(dir.path(), &[], &["--no-such-option"]);
    r.assert_code(2);
    assert!(r.stderr.contains("--no-such-option"), "{r}");
}

#[test]
fn checklist_fails_with_the_secrets_line_for_each_kind_of_planted_secret_and_never_prints_it() {
    // Built at run time so this source file holds none of them.
    let client_secret = format!("GOCSPX-{}", "Ab3dE_f6-h".repeat(3).get(..28).unwrap());
    let access = format!("ya29.{}", "a0AfB_byC".repeat(8));
    let refresh = format!("1//0{}", "gLx9-Qz_7".repeat(8));
    let private_key = format!("-----BEGIN {}PRIVATE KEY-----\nMIIEv\n", "RSA ");
    let repo = temp_repo(&[
        (
            "src/config.py",
            &format!("CLIENT_SECRET = '{client_secret}'\n"),
        ),
        ("notes/tokens.txt", &format!("ok\n\naccess {access}\n")),
        ("app/settings.json", &format!("{{\"rt\": \"{refresh}\"}}\n")),
        ("deploy/key.pem", &private_key),
        ("target/debug/cached.txt", &format!("{client_secret}\n")),
        (
            "README.md",
            "Google client secrets start with GOCSPX- and tokens with ya29.\n",
        ),
    ]);
    let db = TestDb::sqlite();
    let env = staging_env(&db);
    let scan = || {
        checklist(
            repo.path(),
            &as_refs(&env),
            &[
                "--skip-tests",
                "--report",
                db.path().join("r.xml").to_str().unwrap(),
            ],
        )
    };
    let r = scan();
    r.assert_code(1);
    assert_line(&r, "FAIL  secrets");
    for hit in [
        "src/config.py:1: Google OAuth client secret",
        "notes/tokens.txt:3: Google access token",
        "app/settings.json:1: Google refresh token",
        "deploy/key.pem:1: private key",
    ] {
        assert!(r.stdout.contains(hit), "no {hit:?}\n{r}");
    }
    assert!(
        !r.stdout.contains("cached.txt"),
        "target/ is not scanned\n{r}"
    );
    assert!(
        !r.stdout.contains("README.md"),
        "prefixes alone are no secret\n{r}"
    );
    let all = format!("{}{}", r.stdout, r.stderr);
    for secret in [client_secret.as_str(), &access, &refresh, "MIIEv"] {
        assert!(!all.contains(secret), "secret printed:\n{all}");
    }
    // The other checks still pass: one broken thing, one FAIL line.
    assert_eq!(
        r.stdout.lines().filter(|l| l.starts_with("FAIL")).count(),
        1,
        "{r}"
    );
    assert!(
        r.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("pre-deploy: 5 passed, 1 failed, 2 skipped"),
        "{r}"
    );

    // An ignore file lets known fixtures through (comments and blank lines allowed).
    std::fs::write(
        repo.path().join(".oauthtest-secrets-ignore"),
        "# fixtures\n\nsrc/config.py\nnotes/*\napp/settings.json\ndeploy/*.pem\n",
    )
    .unwrap();
    let r = scan();
    r.assert_code(0);
    assert_line(&r, "PASS  secrets");
}

#[test]
fn checklist_fails_mock_all_for_a_broken_scenario_and_names_it() {
    let db = TestDb::sqlite();
    let env = staging_env(&db);
    let repo = temp_repo(&[("README.md", "nothing secret\n")]);
    let mine = db.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    // A scenario whose expectation is wrong: invalid_grant is not retried.
    std::fs::write(
        mine.join("claims_retry.toml"),
        "[credential]\nrefresh_token = \"revoked\"\n[expect]\noutcome = \"refreshed\"\n\
         token_requests = 3\nstate = \"active\"\napi_call = \"succeeded\"\n",
    )
    .unwrap();
    let report = db.path().join("mock-all.xml");
    let args = [
        "--skip-tests",
        "--repo",
        repo.path().to_str().unwrap(),
        "--scenarios",
        mine.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    let r = checklist(db.path(), &as_refs(&env), &args);
    r.assert_code(1);
    assert_line(&r, "FAIL  mock-all");
    assert!(r.stdout.contains("claims_retry"), "{r}");
    let xml = std::fs::read_to_string(&report).unwrap();
    assert!(
        xml.contains("claims_retry"),
        "the JUnit report names it too"
    );

    // A scenario file that does not parse.
    std::fs::write(mine.join("claims_retry.toml"), "[expect\n").unwrap();
    let r = checklist(db.path(), &as_refs(&env), &args);
    r.assert_code(1);
    assert_line(&r, "FAIL  mock-all");
    assert!(r.stdout.contains("claims_retry.toml"), "{r}");
}

#[test]
fn checklist_fails_configuration_for_a_bad_key_and_migrations_for_an_unreachable_database() {
    let db = TestDb::sqlite();
    let env = staging_env(&db);
    let repo = temp_repo(&[("README.md", "nothing secret\n")]);
    let report = db.path().join("r.xml");
    let args = [
        "--skip-tests",
        "--repo",
        repo.path().to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];

    let mut bad_key = as_refs(&env);
    bad_key[0].1 = "bm90IGEga2V5";
    let r = checklist(db.path(), &bad_key, &args);
    r.assert_code(1);
    assert_line(&r, "FAIL  configuration");
    assert!(r.stdout.contains("key"), "{r}");
    assert_line(&r, "PASS  migrations");
    assert_no_secrets(&r.stdout, &["bm90IGEga2V5"]);

    let mut no_db = as_refs(&env);
    let unreachable = "postgres://postgres@127.0.0.1:1/none";
    no_db[1].1 = unreachable;
    let r = checklist(db.path(), &no_db, &args);
    r.assert_code(1);
    assert_line(&r, "FAIL  migrations");
    assert_line(&r, "FAIL  configuration");

    // With --check-endpoint, an endpoint that does not answer fails configuration.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", closed.local_addr().unwrap());
    drop(closed);
    let mut no_endpoint = as_refs(&env);
    no_endpoint.push(("OAUTHTEST_TOKEN_URL", &url));
    let r = checklist(db.path(), &no_endpoint, &args);
    r.assert_code(0);
    let r = checklist(
        db.path(),
        &no_endpoint,
        &[&args[..], &["--check-endpoint"]].concat(),
    );
    r.assert_code(1);
    assert_line(
        &r,
        "FAIL  configuration: oauthtest --mode doctor found problems: token_endpoint",
    );

    // A credential that cannot be used fails its own line.
    let r = checklist(
        db.path(),
        &as_refs(&env),
        &[&args[..], &["--credential-id", "999"]].concat(),
    );
    r.assert_code(1);
    assert_line(&r, "FAIL  credential 999");
}

#[test]
fn checklist_fails_the_tests_line_when_the_suite_fails_and_names_a_missing_tool() {
    let db = TestDb::sqlite();
    let env = staging_env(&db);
    let repo = temp_repo(&[("README.md", "nothing secret\n")]);
    let fake = tempfile::tempdir().unwrap();
    let cargo = fake.path().join("cargo");
    std::fs::write(
        &cargo,
        "#!/usr/bin/env bash\necho \"fake cargo $*\"\nexit 101\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let report = db.path().join("r.xml");
    let args = [
        "--oauthtest-tests",
        "--repo",
        repo.path().to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    let mut with_fake = as_refs(&env);
    let cargo_path = cargo.to_str().unwrap().to_owned();
    with_fake.push(("CARGO", &cargo_path));
    // By default oauthtest's own suite is not the application's check: skipped, cargo unused.
    let r = checklist(db.path(), &with_fake, &args[1..]);
    r.assert_code(0);
    assert_line(&r, "SKIP  tests");
    assert!(!r.stdout.contains("fake cargo"), "{r}");
    let r = checklist(db.path(), &with_fake, &args);
    r.assert_code(1);
    assert_line(&r, "FAIL  tests");
    assert!(r.stdout.contains("fake cargo test --workspace"), "{r}");

    let mut missing = as_refs(&env);
    missing.push(("CARGO", "/nonexistent/cargo"));
    let r = checklist(db.path(), &missing, &args);
    r.assert_code(1);
    assert_line(&r, "FAIL  tool cargo");
    assert!(r.stdout.contains("https://rustup.rs"), "{r}");
}
