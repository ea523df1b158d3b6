//! The credential store, import, list, keygen and rekey, on both backends.

use crate::on_both_backends;
use crate::support::*;
use oauthtest::crypto::EncryptionKey;
use oauthtest::store::Store;

async fn set_column(db: &TestDb, sql: &'static str, value: &str, id: i64) {
    let store = Store::connect(&db.url).await.unwrap();
    drop(store);
    match db.backend {
        Backend::Sqlite => {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query(sql)
                .bind(value)
                .bind(id)
                .execute(&mut c)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query(sql)
                .bind(value)
                .bind(id)
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
}

fn import(db: &TestDb, key: &str, json: &str) -> Run {
    let file = db.write("token.json", json);
    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", key);
    run(
        c,
        &[
            "--mode",
            "import",
            "--file",
            file.to_str().unwrap(),
            "--client-id",
            "cid.apps",
            "--name",
            "Test Gmail Credential",
            "--user-id",
            "42",
            "--format",
            "json",
        ],
        None,
    )
}

on_both_backends!(
    import_list_decrypt_round_trip,
    import_list_decrypt_round_trip
);
async fn import_list_decrypt_round_trip(db: TestDb) {
    let key = new_key(db.path());
    let imported = import(&db, &key, &playground_json());
    imported.assert_code(0);
    let id = imported.json()["id"].as_i64().expect("id");

    let list = run(db.cmd(), &["--mode", "list", "--format", "json"], None);
    list.assert_code(0);
    let creds = list.json()["credentials"].as_array().unwrap().clone();
    assert_eq!(creds.len(), 1);
    assert_eq!(creds[0]["id"], id);
    assert_eq!(creds[0]["user_id"], 42);
    assert_eq!(creds[0]["type"], "gmailOAuth2");
    assert_eq!(creds[0]["state"], "active");
    assert_eq!(creds[0]["has_refresh_token"], true);
    assert_eq!(creds[0]["expired"], false);
    let expires_in = creds[0]["expires_in_seconds"].as_i64().unwrap();
    assert!((3500..=3599).contains(&expires_in), "{expires_in}");

    let store = Store::connect(&db.url).await.unwrap();
    let row = store.get(id).await.unwrap().unwrap();
    assert!(row.encrypted_data.starts_with("otv2."));
    assert!(!row.encrypted_data.contains("PLANTED"));
    let secrets = row.decrypt(&keyring(&key)).unwrap();
    assert_eq!(
        secrets.refresh_token.unwrap().expose_secret(),
        PLANTED_REFRESH
    );
    assert_eq!(
        secrets.access_token.unwrap().expose_secret(),
        PLANTED_ACCESS
    );
    assert_eq!(secrets.client_id.as_deref(), Some("cid.apps"));
    assert_eq!(store.history(id).await.unwrap().len(), 1);

    let text = run(db.cmd(), &["--mode", "list"], None);
    text.assert_code(0);
    assert!(text.stdout.contains("Test Gmail Credential"), "{text}");
    assert!(text.stdout.contains("expires in 59m"), "{text}");
}

on_both_backends!(authorized_user_from_stdin, authorized_user_from_stdin);
async fn authorized_user_from_stdin(db: TestDb) {
    let key = new_key(db.path());
    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &key);
    let json = format!(
        r#"{{"client_id":"cid.apps","client_secret":"{PLANTED_CLIENT_SECRET}","refresh_token":"{PLANTED_REFRESH}","type":"authorized_user"}}"#
    );
    let r = run(c, &["--mode", "import", "--file", "-"], Some(&json));
    r.assert_code(0);
    assert!(r.stdout.contains("authorized_user file"), "{r}");
    let list = run(db.cmd(), &["--mode", "list", "--format", "json"], None);
    assert_eq!(
        list.json()["credentials"][0]["expires_at"],
        serde_json::Value::Null
    );
}

// Every bad import input: one clear line naming the file or setting, exit 2, nothing written.
on_both_backends!(
    bad_import_inputs_write_nothing,
    bad_import_inputs_write_nothing
);
async fn bad_import_inputs_write_nothing(db: TestDb) {
    let key = new_key(db.path());
    type Case<'a> = (Vec<(&'a str, String)>, String, &'a str);
    let cases: Vec<Case> = vec![
        (vec![], "{ not json".into(), "token.json: is not valid JSON"),
        (
            vec![],
            format!(r#"{{"access_token":"{PLANTED_ACCESS}","expires_in":3599}}"#),
            "token.json: has no refresh_token",
        ),
        (
            vec![],
            r#"{"hello":"world"}"#.into(),
            "token.json: is not a shape",
        ),
        (
            vec![("OAUTHTEST_ENCRYPTION_KEY", "c2hvcnQ=".into())],
            playground_json(),
            "OAUTHTEST_ENCRYPTION_KEY: decodes to 5 bytes",
        ),
        (
            vec![("OAUTHTEST_ENCRYPTION_KEY", "%%%".into())],
            playground_json(),
            "OAUTHTEST_ENCRYPTION_KEY: is not valid base64",
        ),
    ];
    for (env, json, want) in cases {
        let file = db.write("token.json", &json);
        let mut c = db.cmd();
        c.env("OAUTHTEST_ENCRYPTION_KEY", &key);
        for (k, v) in &env {
            c.env(k, v);
        }
        let r = run(
            c,
            &[
                "--mode",
                "import",
                "--file",
                file.file_name().unwrap().to_str().unwrap(),
            ],
            None,
        );
        r.assert_code(2)
            .assert_one_line_error()
            .assert_stderr_has(want);
        assert_no_secrets(&r.stderr, &[&key]);
    }
    // Missing key.
    let file = db.write("token.json", &playground_json());
    let r = run(
        db.cmd(),
        &["--mode", "import", "--file", file.to_str().unwrap()],
        None,
    );
    r.assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has("OAUTHTEST_ENCRYPTION_KEY: is not set");
    // Unreadable file.
    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &key);
    let r = run(c, &["--mode", "import", "--file", "missing.json"], None);
    r.assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has("missing.json: cannot read");

    // No failed import created the store; init does, empty.
    run(db.cmd(), &["--mode", "list"], None)
        .assert_code(2)
        .assert_stderr_has("--mode init");
    run(db.cmd(), &["--mode", "init"], None).assert_code(0);
    let list = run(db.cmd(), &["--mode", "list", "--format", "json"], None);
    list.assert_code(0);
    assert_eq!(
        list.json()["credentials"].as_array().unwrap().len(),
        0,
        "nothing may be written"
    );
}

// Wrong key, tampering, truncation and a ciphertext moved to another row are each detected and
// reported naming the credential, never accepted.
on_both_backends!(
    stored_ciphertext_faults_are_detected,
    stored_ciphertext_faults_are_detected
);
async fn stored_ciphertext_faults_are_detected(db: TestDb) {
    let key = new_key(db.path());
    let a = import(&db, &key, &playground_json()).json()["id"]
        .as_i64()
        .unwrap();
    let b = import(&db, &key, &playground_json()).json()["id"]
        .as_i64()
        .unwrap();
    let c = import(&db, &key, &playground_json()).json()["id"]
        .as_i64()
        .unwrap();
    let store = Store::connect(&db.url).await.unwrap();
    let env_a = store.get(a).await.unwrap().unwrap().encrypted_data;
    let env_c = store.get(c).await.unwrap().unwrap().encrypted_data;
    store.close().await;

    // Row b gets row a's ciphertext; row c is truncated.
    set_column(
        &db,
        "UPDATE oauthtest_credentials SET encrypted_data = $1 WHERE id = $2",
        &env_a,
        b,
    )
    .await;
    set_column(
        &db,
        "UPDATE oauthtest_credentials SET encrypted_data = $1 WHERE id = $2",
        &env_c[..env_c.len() - 4],
        c,
    )
    .await;

    let mut cmd = db.cmd();
    cmd.env("OAUTHTEST_ENCRYPTION_KEY", &key);
    let r = run(
        cmd,
        &["--mode", "rekey", "--dry-run", "--format", "json"],
        None,
    );
    // Done (a dry run), with failures: 1. Exit 2 would claim nothing could be done.
    r.assert_code(1);
    let failed = r.json()["failed"].as_array().unwrap().clone();
    let ids: Vec<i64> = failed.iter().map(|f| f["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![b, c], "{r}");
    for f in &failed {
        let msg = f["error"].as_str().unwrap();
        assert!(msg.contains(&format!("credential {}", f["id"])), "{msg}");
        assert!(
            msg.contains("tampered with, truncated, or copied from another row")
                || msg.contains("is not an oauthtest envelope"),
            "{msg}"
        );
    }

    // A wrong key is named as such, for every row.
    let mut cmd = db.cmd();
    cmd.env("OAUTHTEST_ENCRYPTION_KEY", new_key(db.path()));
    let r = run(cmd, &["--mode", "rekey", "--dry-run"], None);
    r.assert_code(1);
    assert!(
        r.stdout
            .contains(&format!("credential {a}: encrypted with key")),
        "{r}"
    );
    assert!(r.stdout.contains("not among the configured keys"), "{r}");
    assert_no_secrets(&format!("{}{}", r.stdout, r.stderr), &[&key]);

    // The library refuses the same rows.
    let store = Store::connect(&db.url).await.unwrap();
    let ring = keyring(&key);
    assert!(store.get(a).await.unwrap().unwrap().decrypt(&ring).is_ok());
    for id in [b, c] {
        let err = store
            .get(id)
            .await
            .unwrap()
            .unwrap()
            .decrypt(&ring)
            .unwrap_err();
        assert_eq!(oauthtest::Error::from(err).exit_code(), 2);
    }
}

// Rotation: new key current, old key listed as old; rekey re-seals every row; afterwards the
// old key is no longer needed, and a second rekey has nothing to do.
on_both_backends!(key_rotation_and_rekey, key_rotation_and_rekey);
async fn key_rotation_and_rekey(db: TestDb) {
    let old = new_key(db.path());
    let new = new_key(db.path());
    for _ in 0..3 {
        import(&db, &old, &playground_json()).assert_code(0);
    }
    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &new)
        .env("OAUTHTEST_OLD_ENCRYPTION_KEYS", &old);
    let r = run(c, &["--mode", "rekey", "--format", "json"], None);
    r.assert_code(0);
    assert_eq!(r.json()["rekeyed"].as_array().unwrap().len(), 3, "{r}");

    let store = Store::connect(&db.url).await.unwrap();
    let ring_new_only = keyring(&new);
    for row in store.list().await.unwrap() {
        assert_eq!(row.key_id, ring_new_only.current().id());
        let s = row.decrypt(&ring_new_only).unwrap();
        assert_eq!(s.refresh_token.unwrap().expose_secret(), PLANTED_REFRESH);
        assert_eq!(
            store.history(row.id).await.unwrap().last().unwrap().action,
            "rekey"
        );
    }
    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &new);
    let r = run(c, &["--mode", "rekey", "--format", "json"], None);
    r.assert_code(0);
    assert_eq!(r.json()["already_current"].as_array().unwrap().len(), 3);
    assert_eq!(r.json()["rekeyed"].as_array().unwrap().len(), 0);
}

// Reseal is a compare-and-swap: a writer holding a stale version changes nothing.
on_both_backends!(
    reseal_refuses_a_stale_version,
    reseal_refuses_a_stale_version
);
async fn reseal_refuses_a_stale_version(db: TestDb) {
    let key = new_key(db.path());
    let id = import(&db, &key, &playground_json()).json()["id"]
        .as_i64()
        .unwrap();
    let store = Store::connect(&db.url).await.unwrap();
    let ring = keyring(&key);
    let row = store.get(id).await.unwrap().unwrap();
    let secrets = row.decrypt(&ring).unwrap();
    let h = oauthtest::store::HistoryEntry::new("test", "rekey", "ok", None);
    assert!(store.reseal(&row, &secrets, &ring, &h).await.unwrap());
    assert!(
        !store.reseal(&row, &secrets, &ring, &h).await.unwrap(),
        "stale version must lose"
    );
    let now = store.get(id).await.unwrap().unwrap();
    assert_eq!(now.version, row.version + 1);
}

// Migrations are idempotent: connecting again (another process, a newer run) changes nothing,
// and only oauthtest_ tables exist beside the host database's own.
on_both_backends!(
    migrations_are_idempotent_and_prefixed,
    migrations_are_idempotent_and_prefixed
);
async fn migrations_are_idempotent_and_prefixed(db: TestDb) {
    let first = Store::connect(&db.url).await.unwrap();
    first.close().await;
    let (a, b) = tokio::join!(Store::connect(&db.url), Store::connect(&db.url));
    a.unwrap();
    b.unwrap();
    let tables: Vec<String> = match db.backend {
        Backend::Sqlite => {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(&mut c)
            .await
            .unwrap()
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                .fetch_all(&mut c)
                .await
                .unwrap()
        }
    };
    assert!(!tables.is_empty());
    for t in &tables {
        assert!(t.starts_with("oauthtest_"), "table {t} is not prefixed");
    }
}

on_both_backends!(
    unknown_credential_id_is_named,
    unknown_credential_id_is_named
);
async fn unknown_credential_id_is_named(db: TestDb) {
    run(db.cmd(), &["--mode", "init"], None).assert_code(0);
    let r = run(
        db.cmd(),
        &["--mode", "list", "--credential-id", "4242"],
        None,
    );
    r.assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has("credential 4242 not found in ")
        .assert_stderr_has("(0 credentials)");
}

#[test]
fn unreachable_database_is_named_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = oauthtest_cmd(dir.path());
    c.env(
        "DATABASE_URL",
        "postgres://postgres:hunter2secret@127.0.0.1:9/nowhere",
    );
    let r = run(c, &["--mode", "list"], None);
    r.assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has("127.0.0.1:9/nowhere: cannot connect");
    assert!(!r.stderr.contains("hunter2secret"), "password leaked: {r}");
}

#[test]
fn default_store_is_a_sqlite_file_created_by_init_and_never_by_list() {
    let dir = tempfile::tempdir().unwrap();
    run(oauthtest_cmd(dir.path()), &["--mode", "list"], None)
        .assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has("sqlite://oauthtest.db: cannot connect: no such file");
    assert!(!dir.path().join("oauthtest.db").exists());
    let init = run(oauthtest_cmd(dir.path()), &["--mode", "init"], None);
    init.assert_code(0);
    assert!(
        init.stdout.contains("Store ready at sqlite://oauthtest.db"),
        "{init}"
    );
    let r = run(oauthtest_cmd(dir.path()), &["--mode", "list"], None);
    r.assert_code(0);
    assert!(r.stdout.contains("No credentials stored"), "{r}");
    assert!(dir.path().join("oauthtest.db").is_file());
}

#[test]
fn dotenv_fills_unset_variables_but_flags_and_environment_win() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.db");
    let b = dir.path().join("b.db");
    std::fs::write(
        dir.path().join(".env"),
        format!("DATABASE_URL=sqlite://{}\n", a.display()),
    )
    .unwrap();
    run(oauthtest_cmd(dir.path()), &["--mode", "init"], None).assert_code(0);
    assert!(a.is_file(), ".env must apply");
    let mut c = oauthtest_cmd(dir.path());
    c.env("DATABASE_URL", format!("sqlite://{}", b.display()));
    run(c, &["--mode", "init"], None).assert_code(0);
    assert!(b.is_file(), "the environment must win over .env");
    let flag = dir.path().join("c.db");
    let mut c = oauthtest_cmd(dir.path());
    c.env("DATABASE_URL", format!("sqlite://{}", b.display()));
    run(
        c,
        &[
            "--mode",
            "init",
            "--database-url",
            &format!("sqlite://{}", flag.display()),
        ],
        None,
    )
    .assert_code(0);
    assert!(flag.is_file(), "the flag must win over the environment");
}

#[test]
fn production_guard_refuses_writes_unless_overridden() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path());
    std::fs::write(dir.path().join("t.json"), playground_json()).unwrap();
    let mut c = oauthtest_cmd(dir.path());
    c.env("OAUTHTEST_ENV", "production")
        .env("OAUTHTEST_ENCRYPTION_KEY", &key);
    let r = run(c, &["--mode", "import", "--file", "t.json"], None);
    r.assert_code(2)
        .assert_stderr_has("refusing to run --mode import");
    assert!(
        !dir.path().join("oauthtest.db").exists(),
        "nothing may be written"
    );
    let mut c = oauthtest_cmd(dir.path());
    c.env("OAUTHTEST_ENV", "production")
        .env("OAUTHTEST_ENCRYPTION_KEY", &key);
    run(
        c,
        &[
            "--mode",
            "import",
            "--file",
            "t.json",
            "--i-know-this-is-production",
        ],
        None,
    )
    .assert_code(0);
    let mut c = oauthtest_cmd(dir.path());
    c.env("OAUTHTEST_ENV", "production");
    run(c, &["--mode", "list"], None).assert_code(0);
}

#[test]
fn keygen_prints_a_usable_32_byte_key() {
    let dir = tempfile::tempdir().unwrap();
    let a = new_key(dir.path());
    let b = new_key(dir.path());
    assert_ne!(a, b);
    assert!(EncryptionKey::from_base64(&a).is_ok());
    let r = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "keygen", "--format", "json"],
        None,
    );
    let v = r.json();
    assert_eq!(
        v["key_id"].as_str().unwrap(),
        EncryptionKey::from_base64(v["key"].as_str().unwrap())
            .unwrap()
            .id()
    );
}

#[test]
fn usage_errors_exit_2_and_help_lists_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    run(oauthtest_cmd(dir.path()), &["--mode", "import"], None)
        .assert_code(2)
        .assert_stderr_has("--mode import needs --file");
    run(oauthtest_cmd(dir.path()), &["--mode", "nonsense"], None).assert_code(2);
    run(oauthtest_cmd(dir.path()), &[], None).assert_code(2);
    let help = run(oauthtest_cmd(dir.path()), &["--help"], None);
    help.assert_code(0);
    assert!(help.stdout.contains("Exit codes:"), "{help}");
    assert!(help.stdout.contains("--credential-id"), "{help}");
}
