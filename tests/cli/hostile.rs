//! What a hostile run found (issue 18), each pinned by a test: passwords in odd database URLs,
//! rows nobody wrote through oauthtest (bad types, infinite timestamps, NULLs), envelopes put
//! back or copied between stores, a lease left by a killed process, rekey's exit code after a
//! partial success, and imports that used to be accepted silently.

use crate::on_both_backends;
use crate::support::*;
use chrono::{TimeDelta, Utc};
use mock_server::{ClientRegistration, MockConfig, MockGoogle, DEFAULT_CLIENT_ID};
use oauthtest::credential::GoogleCredential;
use oauthtest::crypto::EncryptionKey;
use oauthtest::secret::{AccessToken, ClientSecret, RefreshToken};
use oauthtest::store::{HistoryEntry, LeaseOwner, NewCredential, Store};
use std::time::Duration;

const GMAIL_READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";

/// A credential holding the planted tokens, for `client`.
fn planted(client: &str, refresh: &str, expires_in: TimeDelta) -> GoogleCredential {
    GoogleCredential {
        access_token: Some(AccessToken::from(PLANTED_ACCESS)),
        refresh_token: Some(RefreshToken::from(refresh.to_owned())),
        expiry: Some(Utc::now() + expires_in),
        scopes: vec![GMAIL_READONLY.into()],
        token_type: "Bearer".into(),
        client_id: Some(client.into()),
        client_secret: Some(ClientSecret::from(PLANTED_CLIENT_SECRET)),
        id_token: None,
    }
}

async fn insert(db: &TestDb, key: &str, secrets: &GoogleCredential) -> i64 {
    let store = Store::connect(&db.url).await.unwrap();
    let id = store
        .insert(
            &NewCredential {
                user_id: 42,
                credential_type: "gmailOAuth2".into(),
                name: "hostile".into(),
            },
            secrets,
            &keyring(key),
            &HistoryEntry::new("test", "seed", "ok", None),
        )
        .await
        .unwrap();
    store.close().await;
    id
}

/// Runs raw SQL on the test's store, one statement per backend.
async fn exec(db: &TestDb, sqlite: &str, postgres: &str) {
    use sqlx::Connection;
    match db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sqlite.to_owned()))
                .execute(&mut c)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(postgres.to_owned()))
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
}

fn with_key(db: &TestDb, key: &str, args: &[&str]) -> Run {
    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", key);
    run(c, args, None)
}

fn finding<'a>(doctor: &'a serde_json::Value, check: &str) -> &'a serde_json::Value {
    doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == check)
        .unwrap_or_else(|| panic!("no {check} finding in {doctor}"))
}

// Item 2 ----------------------------------------------------------------------------------------

#[test]
fn a_database_password_is_never_printed_whatever_the_url_shape() {
    const PW: &str = "PLANTED-DB-PASSWORD-4e1a";
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path());
    let token = dir.path().join("token.json");
    std::fs::write(&token, playground_json()).unwrap();
    let token = token.to_str().unwrap();
    let urls = [
        format!("postgres://u:{PW}@127.0.0.1:notaport/db"),
        format!("postgres://u:{PW}@[::1/db"),
        format!("postgres://u@127.0.0.1:1/db?sslmode=disable&password={PW}"),
        format!("postgres://u:{PW}@127.0.0.1:1/db"),
        format!("sqlite://user:{PW}@host/x.db"),
    ];
    let modes: [&[&str]; 11] = [
        &["--mode", "list"],
        &["--mode", "doctor"],
        &["--mode", "doctor", "--format", "json"],
        &["--mode", "import", "--file", token, "--client-id", "c"],
        &["--mode", "rekey"],
        &["--mode", "real", "--credential-id", "1"],
        &["--mode", "force-expire", "--credential-id", "1"],
        &["--mode", "scrub", "--yes"],
        &["--mode", "list", "--format", "json", "-vvv"],
        &["--mode", "worker-sim", "--jobs", "4", "--credentials", "1"],
        &["--mode", "mock", "--scenario", "success"],
    ];
    let mut runs = 0;
    for url in &urls {
        for args in modes {
            let mut c = oauthtest_cmd(dir.path());
            c.env("DATABASE_URL", url)
                .env("OAUTHTEST_ENCRYPTION_KEY", &key);
            let r = run(c, args, None);
            assert!(
                !r.stdout.contains(PW) && !r.stderr.contains(PW),
                "{args:?} with {url}:\n{r}"
            );
            assert_ne!(r.code, 0, "{args:?} with {url} cannot have worked:\n{r}");
            runs += 1;
        }
        // The copy source is shown too.
        let mut c = oauthtest_cmd(dir.path());
        c.env("OAUTHTEST_ENCRYPTION_KEY", &key)
            .env("OAUTHTEST_FROM_ENCRYPTION_KEY", &key);
        let r = run(
            c,
            &[
                "--mode",
                "copy",
                "--from-database-url",
                url,
                "--credential-id",
                "1",
            ],
            None,
        );
        assert!(
            !r.stdout.contains(PW) && !r.stderr.contains(PW),
            "copy from {url}:\n{r}"
        );
        runs += 1;
    }
    assert_eq!(runs, urls.len() * (modes.len() + 1));
}

// Items 4 and 5 -------------------------------------------------------------------------------

/// Three good credentials; the test then breaks some of them behind oauthtest's back.
async fn three(db: &TestDb) -> (String, [i64; 3]) {
    let key = new_key(db.path());
    let mut ids = [0; 3];
    for id in &mut ids {
        *id = insert(
            db,
            &key,
            &planted("c", PLANTED_REFRESH, TimeDelta::hours(1)),
        )
        .await;
    }
    (key, ids)
}

/// `list`, `doctor`, `rekey` and a one-credential mode with rows `bad` broken and `good` intact.
fn bad_rows_are_named_and_the_rest_goes_on(db: &TestDb, key: &str, bad: &[(i64, &str)], good: i64) {
    let list = run(db.cmd(), &["--mode", "list", "--format", "json"], None);
    list.assert_code(0);
    let v = list.json();
    let listed: Vec<i64> = v["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, vec![good], "{list}");
    let unreadable = v["unreadable"].as_array().unwrap();
    assert_eq!(unreadable.len(), bad.len(), "{list}");
    for ((id, column), u) in bad.iter().zip(unreadable) {
        assert_eq!(u["id"], *id, "{list}");
        assert!(u["problem"].as_str().unwrap().contains(column), "{list}");
    }
    let text = run(db.cmd(), &["--mode", "list"], None);
    text.assert_code(0);
    for (id, _) in bad {
        assert!(
            text.stdout
                .contains(&format!("UNREADABLE credential {id}: ")),
            "{text}"
        );
    }

    let doctor = with_key(db, key, &["--mode", "doctor", "--format", "json"]);
    doctor.assert_code(1);
    let f = finding(&doctor.json(), "credentials").clone();
    assert_eq!(f["status"], "fail", "{doctor}");
    let message = f["detail"].as_str().unwrap();
    assert!(message.contains("cannot be read"), "{message}");
    for (id, column) in bad {
        assert!(message.contains(&format!("{id} ({column}")), "{message}");
    }

    // A mode working on the good credential is not stopped by the others.
    with_key(
        db,
        key,
        &["--mode", "list", "--credential-id", &good.to_string()],
    )
    .assert_code(0);
    // One naming a bad row says which row and what is wrong with it (exit 2, not a panic).
    let (id, column) = bad[0];
    let r = with_key(
        db,
        key,
        &["--mode", "list", "--credential-id", &id.to_string()],
    );
    r.assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has(&format!("credential {id}: row cannot be read: {column}"));
    // rekey re-seals what it can and says the rest failed.
    let rekey = with_key(db, key, &["--mode", "rekey", "--format", "json"]);
    rekey.assert_code(1);
    let failed: Vec<i64> = rekey.json()["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect();
    assert_eq!(failed, bad.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    for output in [&list, &text, &doctor, &rekey] {
        assert_no_secrets(&format!("{}{}", output.stdout, output.stderr), &[]);
    }
}

#[tokio::test]
async fn sqlite_rows_of_the_wrong_type_are_named_and_do_not_stop_the_store() {
    let db = TestDb::sqlite();
    let (key, [a, b, c]) = three(&db).await;
    let good = insert(
        &db,
        &key,
        &planted("c", PLANTED_REFRESH, TimeDelta::hours(1)),
    )
    .await;
    exec(
        &db,
        &format!(
            "UPDATE oauthtest_credentials SET user_id = 'abc' WHERE id = {a};
             UPDATE oauthtest_credentials SET expires_at = 'not-a-date' WHERE id = {b};
             UPDATE oauthtest_credentials SET encrypted_data = X'00ff' WHERE id = {c};"
        ),
        "",
    )
    .await;
    bad_rows_are_named_and_the_rest_goes_on(
        &db,
        &key,
        &[(a, "user_id"), (b, "expires_at"), (c, "encrypted_data")],
        good,
    );
}

#[tokio::test]
async fn postgres_infinite_timestamps_and_nulls_are_named_and_never_panic() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (key, [a, b, c]) = three(&db).await;
    let d = insert(
        &db,
        &key,
        &planted("c", PLANTED_REFRESH, TimeDelta::hours(1)),
    )
    .await;
    let e = insert(
        &db,
        &key,
        &planted("c", PLANTED_REFRESH, TimeDelta::hours(1)),
    )
    .await;
    let good = insert(
        &db,
        &key,
        &planted("c", PLANTED_REFRESH, TimeDelta::hours(1)),
    )
    .await;
    exec(
        &db,
        "",
        &format!(
            "UPDATE oauthtest_credentials SET expires_at = 'infinity' WHERE id = {a};
             UPDATE oauthtest_credentials SET last_refresh_at = '-infinity' WHERE id = {b};
             UPDATE oauthtest_credentials SET created_at = '294000-01-01 00:00:00+00' WHERE id = {c};
             ALTER TABLE oauthtest_credentials ALTER COLUMN name DROP NOT NULL;
             UPDATE oauthtest_credentials SET name = NULL WHERE id = {d};
             ALTER TABLE oauthtest_credentials ALTER COLUMN encrypted_data DROP NOT NULL;
             UPDATE oauthtest_credentials SET encrypted_data = NULL WHERE id = {e};"
        ),
    )
    .await;
    bad_rows_are_named_and_the_rest_goes_on(
        &db,
        &key,
        &[
            (a, "expires_at is outside the representable range"),
            (b, "last_refresh_at is outside the representable range"),
            (c, "created_at is outside the representable range"),
            (d, "name is NULL"),
            (e, "encrypted_data is NULL"),
        ],
        good,
    );
}

// Item 10 -------------------------------------------------------------------------------------

async fn envelope_of(db: &TestDb, id: i64) -> (String, i64) {
    let store = Store::connect(&db.url).await.unwrap();
    let row = store.get(id).await.unwrap().unwrap();
    store.close().await;
    (row.encrypted_data, row.version)
}

on_both_backends!(
    an_older_envelope_put_back_or_one_from_another_store_is_refused,
    an_older_envelope_put_back_or_one_from_another_store_is_refused
);
async fn an_older_envelope_put_back_or_one_from_another_store_is_refused(db: TestDb) {
    let old_key = new_key(db.path());
    let id = insert(
        &db,
        &old_key,
        &planted("c", PLANTED_REFRESH, TimeDelta::hours(1)),
    )
    .await;
    let (before, version) = envelope_of(&db, id).await;
    assert!(before.starts_with("otv2."), "{before}");

    // A write (rekey to a new key) moves the row on; then the old envelope is put back, with
    // the key_id column to match, as a restore from an old backup would.
    let key = new_key(db.path());
    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &key)
        .env("OAUTHTEST_OLD_ENCRYPTION_KEYS", &old_key);
    run(c, &["--mode", "rekey"], None).assert_code(0);
    assert_eq!(envelope_of(&db, id).await.1, version + 1);
    let old_id = EncryptionKey::from_base64(&old_key)
        .unwrap()
        .id()
        .to_owned();
    exec(
        &db,
        &format!(
            "UPDATE oauthtest_credentials SET encrypted_data = '{before}', key_id = '{old_id}' \
             WHERE id = {id}"
        ),
        &format!(
            "UPDATE oauthtest_credentials SET encrypted_data = '{before}', key_id = '{old_id}' \
             WHERE id = {id}"
        ),
    )
    .await;
    let doctor = |db: &TestDb| {
        let mut c = db.cmd();
        c.env("OAUTHTEST_ENCRYPTION_KEY", &key)
            .env("OAUTHTEST_OLD_ENCRYPTION_KEYS", &old_key);
        run(c, &["--mode", "doctor", "--format", "json"], None)
    };
    let r = doctor(&db);
    r.assert_code(1);
    let f = finding(&r.json(), "credentials").clone();
    assert!(
        f["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("{id} (failed authentication")),
        "{r}"
    );

    // The same row id in another store, sealed with the same key, does not open here.
    let other = match db.backend {
        Backend::Sqlite => TestDb::sqlite(),
        Backend::Postgres => TestDb::postgres().await.unwrap(),
    };
    let other_id = insert(
        &other,
        &key,
        &planted("c", PLANTED_REFRESH, TimeDelta::hours(1)),
    )
    .await;
    assert_eq!(other_id, id);
    let (theirs, their_version) = envelope_of(&other, other_id).await;
    let set = format!(
        "UPDATE oauthtest_credentials SET encrypted_data = '{theirs}', version = {their_version}, \
         key_id = (SELECT key_id FROM oauthtest_credentials WHERE id = {id}) WHERE id = {id}"
    );
    exec(&db, &set, &set).await;
    let r = doctor(&db);
    r.assert_code(1);
    assert!(
        finding(&r.json(), "credentials")["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("{id} (failed authentication")),
        "{r}"
    );
}

on_both_backends!(
    doctor_compares_key_id_and_has_refresh_token_with_the_envelope,
    doctor_compares_key_id_and_has_refresh_token_with_the_envelope
);
async fn doctor_compares_key_id_and_has_refresh_token_with_the_envelope(db: TestDb) {
    let key = new_key(db.path());
    let a = insert(
        &db,
        &key,
        &planted("c", PLANTED_REFRESH, TimeDelta::hours(1)),
    )
    .await;
    let b = insert(
        &db,
        &key,
        &planted("c", PLANTED_REFRESH, TimeDelta::hours(1)),
    )
    .await;
    with_key(&db, &key, &["--mode", "doctor"]).assert_code(0);
    exec(
        &db,
        &format!(
            "UPDATE oauthtest_credentials SET key_id = '0011223344556677' WHERE id = {a};
             UPDATE oauthtest_credentials SET has_refresh_token = 0 WHERE id = {b};"
        ),
        &format!(
            "UPDATE oauthtest_credentials SET key_id = '0011223344556677' WHERE id = {a};
             UPDATE oauthtest_credentials SET has_refresh_token = FALSE WHERE id = {b};"
        ),
    )
    .await;
    let r = with_key(&db, &key, &["--mode", "doctor", "--format", "json"]);
    r.assert_code(1);
    let message = finding(&r.json(), "credentials")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("2 disagree with their envelope"),
        "{message}"
    );
    assert!(
        message.contains(&format!("{a} (key_id column says 0011223344556677")),
        "{message}"
    );
    assert!(
        message.contains(&format!("{b} (has_refresh_token column says false")),
        "{message}"
    );
}

on_both_backends!(
    envelopes_sealed_before_store_binding_are_still_read_and_rekey_binds_them,
    envelopes_sealed_before_store_binding_are_still_read_and_rekey_binds_them
);
async fn envelopes_sealed_before_store_binding_are_still_read_and_rekey_binds_them(db: TestDb) {
    let key = new_key(db.path());
    let id = insert(
        &db,
        &key,
        &planted("c", PLANTED_REFRESH, TimeDelta::hours(1)),
    )
    .await;
    let payload = planted("c", PLANTED_REFRESH, TimeDelta::hours(1)).to_payload();
    let legacy = keyring(&key).encrypt(id, &payload);
    assert!(legacy.starts_with("otv1."));
    let set =
        format!("UPDATE oauthtest_credentials SET encrypted_data = '{legacy}' WHERE id = {id}");
    exec(&db, &set, &set).await;

    let r = with_key(&db, &key, &["--mode", "doctor", "--format", "json"]);
    r.assert_code(0);
    let f = finding(&r.json(), "credentials").clone();
    assert_eq!(f["status"], "warn", "{r}");
    assert!(
        f["detail"].as_str().unwrap().contains(&format!(
            "1 sealed before store binding (otv1, a rollback would not be detected): {id}"
        )),
        "{r}"
    );
    with_key(&db, &key, &["--mode", "rekey"]).assert_code(0);
    let (after, _) = envelope_of(&db, id).await;
    assert!(after.starts_with("otv2."), "{after}");
    let r = with_key(&db, &key, &["--mode", "doctor", "--format", "json"]);
    r.assert_code(0);
    assert_eq!(finding(&r.json(), "credentials")["status"], "pass", "{r}");
}

// Item 11 -------------------------------------------------------------------------------------

on_both_backends!(
    rekey_that_re_seals_some_rows_and_fails_others_exits_1,
    rekey_that_re_seals_some_rows_and_fails_others_exits_1
);
async fn rekey_that_re_seals_some_rows_and_fails_others_exits_1(db: TestDb) {
    let old_key = new_key(db.path());
    let good = insert(
        &db,
        &old_key,
        &planted("c", PLANTED_REFRESH, TimeDelta::hours(1)),
    )
    .await;
    let tampered = insert(
        &db,
        &old_key,
        &planted("c", PLANTED_REFRESH, TimeDelta::hours(1)),
    )
    .await;
    let (envelope, _) = envelope_of(&db, tampered).await;
    let flipped = format!("{}A", &envelope[..envelope.len() - 1]);
    let flipped = if flipped == envelope {
        format!("{}B", &envelope[..envelope.len() - 1])
    } else {
        flipped
    };
    let set = format!(
        "UPDATE oauthtest_credentials SET encrypted_data = '{flipped}' WHERE id = {tampered}"
    );
    exec(&db, &set, &set).await;
    let key = new_key(db.path());
    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &key)
        .env("OAUTHTEST_OLD_ENCRYPTION_KEYS", &old_key);
    let r = run(c, &["--mode", "rekey", "--format", "json"], None);
    r.assert_code(1);
    let v = r.json();
    assert_eq!(v["rekeyed"], serde_json::json!([good]), "{r}");
    assert_eq!(v["failed"][0]["id"], tampered, "{r}");
    assert_eq!(
        envelope_of(&db, good).await.1,
        2,
        "the good row was re-sealed"
    );
}

// Item 13 -------------------------------------------------------------------------------------

#[tokio::test]
async fn import_refuses_hostile_files_naming_the_field_and_writes_nothing() {
    let db = TestDb::sqlite();
    let key = new_key(db.path());
    let ok = db.write("ok.json", &playground_json());
    let r = with_key(
        &db,
        &key,
        &[
            "--mode",
            "import",
            "--file",
            ok.to_str().unwrap(),
            "--client-id",
            "c",
        ],
    );
    r.assert_code(0);
    let cases = [
        (
            format!(
                r#"{{"access_token":"{PLANTED_ACCESS}","expires_in":3599,"refresh_token":"1//PLANTED\u0000x"}}"#
            ),
            "field refresh_token holds a control character",
        ),
        (
            format!(
                r#"{{"access_token":"{PLANTED_ACCESS}\r\nX-Evil: 1","expires_in":3599,"refresh_token":"{PLANTED_REFRESH}"}}"#
            ),
            "field access_token holds a control character",
        ),
        (
            format!(
                r#"{{"access_token":"","expires_in":3599,"refresh_token":"{PLANTED_REFRESH}"}}"#
            ),
            "field access_token is empty",
        ),
        (
            format!(
                r#"{{"type":"service_account","client_id":"c","refresh_token":"{PLANTED_REFRESH}"}}"#
            ),
            "field type is service_account",
        ),
        (
            format!(
                r#"{{"access_token":"{PLANTED_ACCESS}","refresh_token":"{PLANTED_REFRESH}","refresh_token":"1//other"}}"#
            ),
            "gives field refresh_token more than once",
        ),
        (
            format!(
                r#"{{"type":"authorized_user","client_id":"c","client_secert":"{PLANTED_CLIENT_SECRET}","refresh_token":"{PLANTED_REFRESH}"}}"#
            ),
            "did you mean client_secret?",
        ),
    ];
    for (i, (json, want)) in cases.iter().enumerate() {
        let file = db.write(&format!("bad{i}.json"), json);
        let r = with_key(
            &db,
            &key,
            &[
                "--mode",
                "import",
                "--file",
                file.to_str().unwrap(),
                "--client-id",
                "c",
            ],
        );
        r.assert_code(2)
            .assert_one_line_error()
            .assert_stderr_has(want);
        assert_no_secrets(&format!("{}{}", r.stdout, r.stderr), &[]);
    }
    let list = run(db.cmd(), &["--mode", "list", "--format", "json"], None);
    assert_eq!(
        list.json()["credentials"].as_array().unwrap().len(),
        1,
        "{list}"
    );
}

// Item 7 --------------------------------------------------------------------------------------

/// A store with one expired credential the mock can refresh, and a lease planted on it.
async fn leased(db: &TestDb, owner: &str, lapses_in: Duration) -> (String, i64, MockGoogle) {
    let key = new_key(db.path());
    let mock = MockGoogle::start_with(MockConfig {
        clients: vec![ClientRegistration::new(
            DEFAULT_CLIENT_ID,
            PLANTED_CLIENT_SECRET,
        )],
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let refresh = mock.issue_refresh_token(DEFAULT_CLIENT_ID, &[GMAIL_READONLY.to_owned()]);
    let id = insert(
        db,
        &key,
        &planted(DEFAULT_CLIENT_ID, &refresh, TimeDelta::minutes(-1)),
    )
    .await;
    let until = Utc::now().timestamp_millis() + i64::try_from(lapses_in.as_millis()).unwrap();
    let set = format!(
        "UPDATE oauthtest_credentials SET lease_owner = '{owner}', lease_expires_at_ms = {until} \
         WHERE id = {id}"
    );
    exec(db, &set, &set).await;
    (key, id, mock)
}

fn real(db: &TestDb, key: &str, id: i64, mock: &MockGoogle) -> Run {
    let (token, tokeninfo, api) = (mock.token_url(), mock.tokeninfo_url(), mock.api_url());
    with_key(
        db,
        key,
        &[
            "--mode",
            "real",
            "--credential-id",
            &id.to_string(),
            "--token-url",
            &token,
            "--tokeninfo-url",
            &tokeninfo,
            "--api-url",
            &api,
        ],
    )
}

/// A pid no process has: one that ran and was reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

on_both_backends!(
    a_lease_left_by_a_killed_process_on_this_host_is_taken_over_at_once,
    a_lease_left_by_a_killed_process_on_this_host_is_taken_over_at_once
);
async fn a_lease_left_by_a_killed_process_on_this_host_is_taken_over_at_once(db: TestDb) {
    let mut owner = LeaseOwner::this_process();
    owner.pid = dead_pid();
    // An hour left on it: without the takeover, real would wait out its own deadline and fail.
    let (key, id, mock) = leased(&db, &owner.to_string(), Duration::from_secs(3600)).await;
    let r = real(&db, &key, id, &mock);
    r.assert_code(0);
    r.assert_stderr_has(&format!(
        "took over the refresh lease held by {owner}: pid {} is not running on this host",
        owner.pid
    ));
}

on_both_backends!(
    a_lease_held_by_a_live_process_is_waited_for_saying_whose_and_how_long,
    a_lease_held_by_a_live_process_is_waited_for_saying_whose_and_how_long
);
async fn a_lease_held_by_a_live_process_is_waited_for_saying_whose_and_how_long(db: TestDb) {
    // This test process is alive; its lease lapses in a few seconds.
    let owner = LeaseOwner::this_process();
    let (key, id, mock) = leased(&db, &owner.to_string(), Duration::from_secs(6)).await;
    let r = real(&db, &key, id, &mock);
    r.assert_code(0);
    r.assert_stderr_has(&format!(
        "waiting for the refresh lease held by {owner} (pid {} is running on this host): it \
         lapses in",
        owner.pid
    ));
    r.assert_stderr_has("giving up in");
}

// Item 3 --------------------------------------------------------------------------------------

#[tokio::test]
async fn a_job_whose_new_tokens_run_out_in_flight_refreshes_again_and_a_failure_says_why() {
    use mock_server::{wire, Step};
    use oauthtest::google_api::ApiEndpoints;
    use oauthtest::worker_sim::{engine_for, Behaviour, SimConfig};
    use std::sync::Arc;

    let db = TestDb::sqlite();
    let key = new_key(db.path());
    let mock = MockGoogle::start_with(MockConfig {
        clients: vec![ClientRegistration::new(
            DEFAULT_CLIENT_ID,
            PLANTED_CLIENT_SECRET,
        )],
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let refresh = mock.issue_refresh_token(DEFAULT_CLIENT_ID, &[GMAIL_READONLY.to_owned()]);
    let id = insert(
        &db,
        &key,
        &planted(DEFAULT_CLIENT_ID, &refresh, TimeDelta::minutes(-1)),
    )
    .await;
    let config = SimConfig {
        workers: 1,
        jobs: 1,
        credentials: 1,
        token_ttl: Duration::from_secs(3600),
        behaviour: Behaviour::Success,
        processes: 1,
        database_url: Some(db.url.clone()),
        progress: false,
        coordinate: true,
        request_timeout: Duration::from_secs(5),
    };
    let engine = engine_for(
        Arc::new(Store::connect(&db.url).await.unwrap()),
        Arc::new(keyring(&key)),
        &mock.token_url(),
        ApiEndpoints {
            profile_url: mock.api_url(),
            tokeninfo_url: mock.tokeninfo_url(),
        },
        &config,
    )
    .unwrap();
    let refused = || Step::respond(401, wire::API_UNAUTHENTICATED_BODY);

    // The API refuses the first two tokens it is shown, as it does when each ran out on the way
    // (a loaded machine, a short-lived token): the job refreshes each time and gets through.
    mock.set_api_script(vec![refused(), refused()]);
    let job = engine.run_job(id).await;
    assert!(job.succeeded(), "{:?}", job.why);
    assert_eq!(job.refreshes, 3, "the expiry, then one refresh per 401");
    assert!(job.why.is_none());

    // Refused four times in a row: the job fails, and says why, attempt by attempt.
    mock.set_api_script(vec![refused(), refused(), refused(), refused()]);
    let job = engine.run_job(id).await;
    assert!(!job.succeeded());
    let why = job.why.expect("a failed job says why");
    assert_eq!(why.matches("the API answered 401").count(), 4, "{why}");
    assert!(why.contains("of its life left"), "{why}");
    assert_no_secrets(&why, &[&refresh]);
}
