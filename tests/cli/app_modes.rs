//! The modes on the application's own store, through the real binary with `--store-config`:
//! `list`, `real --dry-run`, `force-expire` and `real` against a running `oauthtest --mode
//! serve`, on rows written by the applications' real libraries (Python `cryptography`'s Fernet,
//! crypto-js as n8n uses it, Node's AES-256-GCM) and plain `jsonb`, on SQLite and PostgreSQL.
//! After each refresh the application's own library opens the row and finds the new access token
//! and expiry, and every other field as it wrote it. No key, token or client secret of the
//! application's appears in any output.

use crate::app_store::{
    available, column, fastapi_payload, fastapi_row, fastapi_table, fernet_key, gcm_payload,
    id_column, lit, n8n_payload, n8n_table, sql, App, Lib, FASTAPI_CONFIG, GCM_PAYLOAD_MAP,
};
use crate::support::serve::{admin_post, Serve, CLIENT_ID, CLIENT_SECRET};
use crate::support::*;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::process::Command;

/// Where a fixture's expiry sits in its payload, and how it is written.
#[derive(Clone, Copy)]
enum Expiry {
    Rfc3339(&'static str),
    UnixMs(&'static str),
    UnixS(&'static str),
    /// n8n's `expires_in`, seconds from the row's `updatedAt`.
    ExpiresIn(&'static str),
}

impl Expiry {
    fn pointer(self) -> &'static str {
        match self {
            Expiry::Rfc3339(p) | Expiry::UnixMs(p) | Expiry::UnixS(p) | Expiry::ExpiresIn(p) => p,
        }
    }

    /// Seconds from now until the expiry the payload states.
    fn left(self, payload: &Value) -> i64 {
        let v = &payload
            .pointer(self.pointer())
            .cloned()
            .unwrap_or(Value::Null);
        let now = Utc::now().timestamp();
        match self {
            Expiry::Rfc3339(_) => {
                DateTime::parse_from_rfc3339(v.as_str().unwrap())
                    .unwrap()
                    .timestamp()
                    - now
            }
            Expiry::UnixMs(_) => v.as_i64().unwrap() / 1000 - now,
            Expiry::UnixS(_) => v.as_i64().unwrap() - now,
            Expiry::ExpiresIn(_) => v.as_i64().unwrap(),
        }
    }
}

/// An application's store with one Google row: how to read it back and where its fields are.
struct Fixture {
    /// Its library; `None` for plain JSON.
    app: Option<App>,
    config: String,
    id: String,
    /// Selects the stored value of the row.
    data_query: String,
    access: &'static str,
    expiry: Expiry,
    payload: Value,
    /// The application's key variables, and the OAuth client when the row has none.
    env: Vec<(String, String)>,
    /// The application's secrets, none of which may be printed.
    secrets: Vec<String>,
}

impl Fixture {
    async fn stored(&self, db: &TestDb) -> Value {
        let text = column(db, &self.data_query).await.unwrap();
        match &self.app {
            Some(app) => app.open(&text),
            None => serde_json::from_str(&text).unwrap(),
        }
    }
}

async fn mint(serve: &Serve, client: &str, secret: &str, scopes: &[&str]) -> String {
    let (status, minted) = admin_post(
        serve,
        "refresh-tokens",
        json!({"client_id": client, "client_secret": secret, "scopes": scopes}),
    )
    .await;
    assert_eq!(status, 201, "{minted}");
    minted["refresh_token"].as_str().unwrap().to_owned()
}

const GMAIL_RO: &str = "https://www.googleapis.com/auth/gmail.readonly";

async fn fernet_fixture(db: &TestDb, serve: &Serve) -> Option<Fixture> {
    if !available(Lib::Fernet) {
        return None;
    }
    let key = fernet_key();
    let app = App::new(Lib::Fernet, &[("APP_ENCRYPTION_KEY", &key)]);
    let mut payload = fastapi_payload();
    let client = payload["client_id"].as_str().unwrap().to_owned();
    let refresh = mint(serve, &client, PLANTED_CLIENT_SECRET, &[GMAIL_RO, "openid"]).await;
    payload["refresh_token"] = json!(refresh);
    fastapi_table(db).await;
    fastapi_row(db, 7, "gmailOAuth2", "Test Gmail", &app.seal(&payload)).await;
    Some(Fixture {
        app: Some(app),
        config: FASTAPI_CONFIG.to_owned(),
        id: "1".into(),
        data_query: "SELECT encrypted_data FROM credentials WHERE id = 1".into(),
        access: "/access_token",
        expiry: Expiry::Rfc3339("/expiry"),
        payload,
        env: vec![("APP_ENCRYPTION_KEY".into(), key.clone())],
        secrets: vec![key, refresh],
    })
}

const N8N_ID: &str = "Xk2tTQ1BqRw7VJ5z";

async fn n8n_fixture(db: &TestDb, serve: &Serve) -> Option<Fixture> {
    if !available(Lib::CryptoJs) {
        return None;
    }
    let passphrase = "n8n-instance-key-JmB7YgOWl3R1ZQ";
    let app = App::new(Lib::CryptoJs, &[("N8N_ENCRYPTION_KEY", passphrase)]);
    let mut payload = n8n_payload();
    let client = payload["clientId"].as_str().unwrap().to_owned();
    let refresh = mint(
        serve,
        &client,
        PLANTED_CLIENT_SECRET,
        &["https://www.googleapis.com/auth/gmail.modify", "openid"],
    )
    .await;
    payload["oauthTokenData"]["refresh_token"] = json!(refresh);
    n8n_table(db).await;
    sql(
        db,
        &format!(
            "INSERT INTO credentials_entity (id, name, data, type) VALUES ('{N8N_ID}', 'Gmail account', {}, 'gmailOAuth2')",
            lit(&app.seal(&payload))
        ),
    )
    .await;
    Some(Fixture {
        app: Some(app),
        config: "preset = \"n8n\"\n".into(),
        id: N8N_ID.into(),
        data_query: format!("SELECT data FROM credentials_entity WHERE id = '{N8N_ID}'"),
        access: "/oauthTokenData/access_token",
        expiry: Expiry::ExpiresIn("/oauthTokenData/expires_in"),
        payload,
        env: vec![("N8N_ENCRYPTION_KEY".into(), passphrase.into())],
        secrets: vec![passphrase.into(), refresh],
    })
}

async fn gcm_fixture(db: &TestDb, serve: &Serve) -> Option<Fixture> {
    if !available(Lib::NodeGcm) {
        return None;
    }
    let key = "8f".repeat(8) + &"1c".repeat(8) + &"e3".repeat(16);
    let app = App::new(Lib::NodeGcm, &[("APP_GCM_KEY", &key)]);
    let mut payload = gcm_payload();
    let refresh = mint(
        serve,
        CLIENT_ID,
        CLIENT_SECRET,
        &["https://www.googleapis.com/auth/calendar"],
    )
    .await;
    payload["tokens"]["refresh_token"] = json!(refresh);
    sql(
        db,
        &format!(
            "CREATE TABLE oauth_accounts ({}, provider TEXT NOT NULL, secret TEXT NOT NULL)",
            id_column(db)
        ),
    )
    .await;
    sql(
        db,
        &format!(
            "INSERT INTO oauth_accounts (provider, secret) VALUES ('google', {})",
            lit(&app.seal(&payload))
        ),
    )
    .await;
    Some(Fixture {
        app: Some(app),
        config: format!(
            "[store]\ntable = \"oauth_accounts\"\ndata_column = \"secret\"\ncipher = \"aes-256-gcm\"\n\
             key_env = \"APP_GCM_KEY\"\ngcm_order = \"nonce|tag|ciphertext\"\n{GCM_PAYLOAD_MAP}"
        ),
        id: "1".into(),
        data_query: "SELECT secret FROM oauth_accounts WHERE id = 1".into(),
        access: "/tokens/access_token",
        expiry: Expiry::UnixMs("/tokens/expiry_date"),
        payload,
        env: vec![
            ("APP_GCM_KEY".into(), key.clone()),
            ("GOOGLE_CLIENT_ID".into(), CLIENT_ID.into()),
            ("GOOGLE_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
        ],
        secrets: vec![key, refresh, CLIENT_SECRET.into()],
    })
}

async fn jsonb_fixture(db: &TestDb, serve: &Serve) -> Fixture {
    let refresh = mint(serve, CLIENT_ID, CLIENT_SECRET, &[GMAIL_RO]).await;
    sql(db, "CREATE SCHEMA app; CREATE TABLE app.connections (id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL,
             config JSONB NOT NULL, expires_at TIMESTAMPTZ, state TEXT NOT NULL DEFAULT 'ok', updated_at TIMESTAMPTZ)").await;
    let payload = json!({"access_token": PLANTED_ACCESS, "refresh_token": refresh,
                         "expires_at": 1_795_000_000, "scope": GMAIL_RO,
                         "settings": {"label": "inbox", "sync": true}});
    sql(db, &format!(
        "INSERT INTO app.connections (kind, config, expires_at) VALUES ('gmail', CAST({} AS jsonb), to_timestamp(1795000000))",
        lit(&payload.to_string())
    )).await;
    Fixture {
        app: None,
        config: r#"
[store]
table = "app.connections"
data_column = "config"
type_column = "kind"
google_types = ["gmail"]
expiry_column = "expires_at"
updated_at_column = "updated_at"
cipher = "plain"
[store.payload]
access_token = "/access_token"
refresh_token = "/refresh_token"
expiry = "/expires_at"
expiry_format = "unix_s"
scopes = "/scope"
[store.reconnect]
column = "state"
value = "reauth"
"#
        .into(),
        id: "1".into(),
        data_query: "SELECT config FROM app.connections WHERE id = 1".into(),
        access: "/access_token",
        expiry: Expiry::UnixS("/expires_at"),
        payload,
        env: vec![
            ("GOOGLE_CLIENT_ID".into(), CLIENT_ID.into()),
            ("GOOGLE_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
        ],
        secrets: vec![refresh, CLIENT_SECRET.into()],
    }
}

/// The binary on the fixture's store, pointed at `serve` for Google's endpoints.
fn cmd(db: &TestDb, fx: &Fixture, serve: &Serve) -> Command {
    let mut c = db.cmd();
    c.env("OAUTHTEST_TOKEN_URL", serve.url("/token"))
        .env("OAUTHTEST_TOKENINFO_URL", serve.url("/tokeninfo"))
        .env("OAUTHTEST_API_URL", serve.url("/gmail/v1/users/me/profile"));
    for (k, v) in &fx.env {
        c.env(k, v);
    }
    c
}

/// Runs `args` with `--store-config app.toml`, collecting its output for the leak scan.
fn app_run(db: &TestDb, fx: &Fixture, serve: &Serve, args: &[&str], seen: &mut String) -> Run {
    let mut all = vec!["--store-config", "app.toml"];
    all.extend_from_slice(args);
    let r = run(cmd(db, fx, serve), &all, None);
    seen.push_str(&r.stdout);
    seen.push_str(&r.stderr);
    r
}

/// The payload as the application reads it now must be `before` with only the access token and
/// the expiry changed: a new token, an expiry ahead.
async fn assert_refreshed(db: &TestDb, fx: &Fixture, before: &Value) -> String {
    let seen = fx.stored(db).await;
    let token = seen.pointer(fx.access).and_then(Value::as_str).unwrap();
    assert!(
        token.starts_with("ya29.")
            && Some(token) != before.pointer(fx.access).and_then(Value::as_str),
        "a new access token is in the row"
    );
    let left = fx.expiry.left(&seen);
    assert!(
        (3000..=3700).contains(&left),
        "expiry ahead by about an hour: {left} s"
    );
    let mut want = before.clone();
    *want.pointer_mut(fx.access).unwrap() = json!(token);
    *want.pointer_mut(fx.expiry.pointer()).unwrap() =
        seen.pointer(fx.expiry.pointer()).unwrap().clone();
    assert_eq!(
        seen, want,
        "every other field is as the application wrote it"
    );
    token.to_owned()
}

async fn every_mode_works_on_the_applications_own_row(db: TestDb, fx: Fixture, serve: Serve) {
    db.write("app.toml", &fx.config);
    let mut out = String::new();

    let list = app_run(
        &db,
        &fx,
        &serve,
        &["--mode", "list", "--format", "json"],
        &mut out,
    );
    list.assert_code(0);
    let listed = list.json();
    assert_eq!(listed["store"], "application", "{list}");
    assert_eq!(listed["credentials"][0]["id"], json!(fx.id), "{list}");
    assert_eq!(
        listed["credentials"].as_array().unwrap().len(),
        1,
        "only the Google row: {list}"
    );

    let before = store_snapshot(&db).await;
    let dry = app_run(
        &db,
        &fx,
        &serve,
        &[
            "--mode",
            "real",
            "--dry-run",
            "--credential-id",
            &fx.id,
            "--format",
            "json",
        ],
        &mut out,
    );
    dry.assert_code(0);
    assert_eq!(dry.json()["passed"], true, "{dry}");
    assert!(
        snapshot_changes(&before, &store_snapshot(&db).await).is_empty(),
        "a dry run writes nothing"
    );

    let expired = app_run(
        &db,
        &fx,
        &serve,
        &[
            "--mode",
            "force-expire",
            "--no-refresh",
            "--credential-id",
            &fx.id,
        ],
        &mut out,
    );
    expired.assert_code(0);
    let after_expire = fx.stored(&db).await;
    assert!(
        // n8n's expires_in stops at 0, which n8n reads as expired.
        fx.expiry.left(&after_expire) <= 0,
        "left expired for the application's workers"
    );
    let mut want = fx.payload.clone();
    *want.pointer_mut(fx.expiry.pointer()).unwrap() =
        after_expire.pointer(fx.expiry.pointer()).unwrap().clone();
    assert_eq!(after_expire, want, "only the expiry changed");

    let forced = app_run(
        &db,
        &fx,
        &serve,
        &[
            "--mode",
            "force-expire",
            "--credential-id",
            &fx.id,
            "--format",
            "json",
        ],
        &mut out,
    );
    forced.assert_code(0);
    let steps = forced.json()["steps"].clone();
    assert_eq!(steps.as_array().unwrap().len(), 4, "{forced}");
    assert!(
        steps
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "pass"),
        "{forced}"
    );
    let first = assert_refreshed(&db, &fx, &fx.payload).await;

    let real = app_run(
        &db,
        &fx,
        &serve,
        &["--mode", "real", "--credential-id", &fx.id],
        &mut out,
    );
    real.assert_code(0);
    assert!(
        real.stdout.contains("PASS: refreshed and verified"),
        "{real}"
    );
    let mut before_real = fx.payload.clone();
    *before_real.pointer_mut(fx.access).unwrap() = json!(first);
    let second = assert_refreshed(&db, &fx, &before_real).await;
    assert_ne!(first, second);

    let mut secrets: Vec<&str> = fx.secrets.iter().map(String::as_str).collect();
    secrets.extend([first.as_str(), second.as_str()]);
    assert_no_secrets(&out, &secrets);
}

async fn fernet(db: TestDb) {
    let serve = Serve::start(&[]);
    if let Some(fx) = fernet_fixture(&db, &serve).await {
        every_mode_works_on_the_applications_own_row(db, fx, serve).await;
    }
}
crate::on_both_backends!(fernet_rows, fernet);

async fn n8n(db: TestDb) {
    let serve = Serve::start(&[]);
    if let Some(fx) = n8n_fixture(&db, &serve).await {
        every_mode_works_on_the_applications_own_row(db, fx, serve).await;
    }
}
crate::on_both_backends!(n8n_rows, n8n);

async fn gcm(db: TestDb) {
    let serve = Serve::start(&[]);
    if let Some(fx) = gcm_fixture(&db, &serve).await {
        every_mode_works_on_the_applications_own_row(db, fx, serve).await;
    }
}
crate::on_both_backends!(gcm_rows, gcm);

#[tokio::test]
async fn plain_jsonb_rows_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let serve = Serve::start(&[]);
    let fx = jsonb_fixture(&db, &serve).await;
    every_mode_works_on_the_applications_own_row(db, fx, serve).await;
}

/// A Fernet store on SQLite with one row, and a running `serve` that knows its refresh token.
async fn fernet_sqlite() -> Option<(TestDb, Fixture, Serve)> {
    let db = TestDb::sqlite();
    let serve = Serve::start(&[]);
    let fx = fernet_fixture(&db, &serve).await?;
    db.write("app.toml", &fx.config);
    Some((db, fx, serve))
}

/// `real` on the fixture exits 2 naming `wants` on one line, and writes nothing.
async fn refused(db: &TestDb, fx: &Fixture, serve: &Serve, wants: &[&str]) {
    let before = store_snapshot(db).await;
    let mut out = String::new();
    let r = app_run(
        db,
        fx,
        serve,
        &["--mode", "real", "--credential-id", &fx.id],
        &mut out,
    );
    r.assert_code(2).assert_one_line_error();
    for want in wants {
        r.assert_stderr_has(want);
    }
    assert!(
        snapshot_changes(&before, &store_snapshot(db).await).is_empty(),
        "nothing written: {r}"
    );
    let secrets: Vec<&str> = fx.secrets.iter().map(String::as_str).collect();
    assert_no_secrets(&out, &secrets);
}

#[tokio::test]
async fn a_wrong_application_key_is_exit_2_and_writes_nothing() {
    let Some((db, mut fx, serve)) = fernet_sqlite().await else {
        return;
    };
    let other = fernet_key();
    fx.env = vec![("APP_ENCRYPTION_KEY".into(), other.clone())];
    fx.secrets.push(other);
    refused(&db, &fx, &serve, &["credentials row 1"]).await;
}

#[tokio::test]
async fn a_tampered_row_is_exit_2_and_writes_nothing() {
    let Some((db, fx, serve)) = fernet_sqlite().await else {
        return;
    };
    let stored = column(&db, &fx.data_query).await.unwrap();
    let mut bytes = stored.into_bytes();
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    sql(
        &db,
        &format!(
            "UPDATE credentials SET encrypted_data = {} WHERE id = 1",
            lit(&tampered)
        ),
    )
    .await;
    refused(&db, &fx, &serve, &["credentials row 1"]).await;
}

#[tokio::test]
async fn a_pointer_that_names_no_field_is_exit_2_naming_the_key() {
    let Some((db, fx, serve)) = fernet_sqlite().await else {
        return;
    };
    db.write(
        "app.toml",
        &format!(
            "{}[store.payload]\nrefresh_token = \"/oauth/refresh\"\n",
            fx.config
        ),
    );
    refused(
        &db,
        &fx,
        &serve,
        &["store.payload.refresh_token", "/oauth/refresh"],
    )
    .await;
}

#[tokio::test]
async fn a_bad_store_config_is_exit_2_naming_file_and_key_before_anything_is_opened() {
    let db = TestDb::sqlite();
    db.write(
        "app.toml",
        "preset = \"fernet\"\n[store]\ncipher = \"rot13\"\n",
    );
    let r = run(
        db.cmd(),
        &["--store-config", "app.toml", "--mode", "list"],
        None,
    );
    r.assert_code(2).assert_one_line_error();
    r.assert_stderr_has("app.toml")
        .assert_stderr_has("store.cipher");
    assert!(
        !db.path().join("store.db").exists(),
        "no database opened or created"
    );
    // The same file found as ./oauthtest.toml, and through OAUTHTEST_STORE_CONFIG.
    std::fs::rename(db.path().join("app.toml"), db.path().join("oauthtest.toml")).unwrap();
    run(db.cmd(), &["--mode", "list"], None)
        .assert_code(2)
        .assert_stderr_has("oauthtest.toml: store.cipher");
    let elsewhere = tempfile::tempdir().unwrap();
    let mut c = oauthtest_cmd(elsewhere.path());
    c.env("DATABASE_URL", &db.url)
        .env("OAUTHTEST_STORE_CONFIG", db.path().join("oauthtest.toml"));
    run(c, &["--mode", "list"], None)
        .assert_code(2)
        .assert_stderr_has("store.cipher");
    // A mode that takes no store config is not affected by one in the working directory.
    run(db.cmd(), &["--mode", "keygen"], None).assert_code(0);
}

/// The application's own write lands between oauthtest's read and its write: `encrypt_cmd`
/// (the application's utility, here plain JSON) first has the application update the row.
#[tokio::test]
async fn a_row_the_application_changes_during_a_refresh_is_reported_and_not_overwritten() {
    let db = TestDb::sqlite();
    let serve = Serve::start(&[]);
    let refresh = mint(&serve, CLIENT_ID, CLIENT_SECRET, &[GMAIL_RO]).await;
    sql(
        &db,
        "CREATE TABLE tokens (id INTEGER PRIMARY KEY, blob TEXT NOT NULL)",
    )
    .await;
    let payload = json!({"access_token": PLANTED_ACCESS, "refresh_token": refresh,
                         "expiry": "2026-01-01T00:00:00+00:00", "scope": GMAIL_RO});
    sql(
        &db,
        &format!(
            "INSERT INTO tokens (id, blob) VALUES (1, {})",
            lit(&payload.to_string())
        ),
    )
    .await;
    let theirs = r#"{"access_token":"ya29.THE-APPLICATIONS-OWN","refresh_token":"x"}"#;
    let hook = db.write(
        "app_encrypt.py",
        &format!(
            "import sqlite3, sys\nc = sqlite3.connect({:?})\n\
             c.execute(\"UPDATE tokens SET blob = ? WHERE id = 1\", ({theirs:?},))\n\
             c.commit()\nsys.stdout.write(sys.stdin.read())\n",
            db.path().join("store.db").display().to_string()
        ),
    );
    let fx = Fixture {
        app: None,
        config: format!(
            "[store]\ntable = \"tokens\"\ndata_column = \"blob\"\ncipher = \"command\"\n\
             encrypt_cmd = [\"python3\", {:?}]\ndecrypt_cmd = \"cat\"\n\
             [store.payload]\naccess_token = \"/access_token\"\nrefresh_token = \"/refresh_token\"\n\
             expiry = \"/expiry\"\nexpiry_format = \"rfc3339\"\nscopes = \"/scope\"\n",
            hook.display().to_string()
        ),
        id: "1".into(),
        data_query: "SELECT blob FROM tokens WHERE id = 1".into(),
        access: "/access_token",
        expiry: Expiry::Rfc3339("/expiry"),
        payload,
        env: vec![
            ("GOOGLE_CLIENT_ID".into(), CLIENT_ID.into()),
            ("GOOGLE_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
        ],
        secrets: vec![refresh, CLIENT_SECRET.into()],
    };
    db.write("app.toml", &fx.config);
    let mut out = String::new();
    let r = app_run(
        &db,
        &fx,
        &serve,
        &["--mode", "real", "--credential-id", "1"],
        &mut out,
    );
    r.assert_code(2).assert_one_line_error();
    r.assert_stderr_has("tokens row 1 changed since oauthtest read it")
        .assert_stderr_has("nothing was written");
    assert_eq!(
        column(&db, &fx.data_query).await.as_deref(),
        Some(theirs),
        "the application's write stands"
    );
    let secrets: Vec<&str> = fx.secrets.iter().map(String::as_str).collect();
    assert_no_secrets(&out, &secrets);
}

#[tokio::test]
async fn list_without_the_key_says_the_expiry_needs_it_and_doctor_audits_every_row() {
    let Some((db, mut fx, serve)) = fernet_sqlite().await else {
        return;
    };
    let key = fx.env.clone();
    fx.env.clear();
    let mut out = String::new();
    let list = app_run(&db, &fx, &serve, &["--mode", "list"], &mut out);
    list.assert_code(0);
    assert!(list.stdout.contains("needs the key"), "{list}");
    assert!(
        list.stdout.contains("APP_ENCRYPTION_KEY"),
        "names the variable: {list}"
    );

    fx.env = key;
    let ok = app_run(
        &db,
        &fx,
        &serve,
        &["--mode", "doctor", "--format", "json"],
        &mut out,
    );
    ok.assert_code(0);
    assert_eq!(ok.json()["passed"], true, "{ok}");
    // A second row sealed with another key: doctor names it and fails.
    let stranger = App::new(Lib::Fernet, &[("APP_ENCRYPTION_KEY", &fernet_key())]);
    fastapi_row(
        &db,
        9,
        "gmailOAuth2",
        "Stranger",
        &stranger.seal(&fx.payload),
    )
    .await;
    let bad = app_run(&db, &fx, &serve, &["--mode", "doctor"], &mut out);
    bad.assert_code(1);
    assert!(
        bad.stdout.contains("row 2") && bad.stdout.contains("FAIL"),
        "{bad}"
    );
    let secrets: Vec<&str> = fx.secrets.iter().map(String::as_str).collect();
    assert_no_secrets(&out, &secrets);
}

/// A plain-JSON application table on SQLite (no library needed) with one Google row.
async fn plain_sqlite(serve: &Serve) -> (TestDb, Fixture) {
    let db = TestDb::sqlite();
    let refresh = mint(serve, CLIENT_ID, CLIENT_SECRET, &[GMAIL_RO]).await;
    sql(
        &db,
        "CREATE TABLE tokens (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, blob TEXT, state TEXT)",
    )
    .await;
    let payload = json!({"access_token": PLANTED_ACCESS, "refresh_token": refresh,
                         "expiry": "2026-01-01T00:00:00Z", "scope": GMAIL_RO, "keep": [1, "x"]});
    sql(
        &db,
        &format!(
            "INSERT INTO tokens (id, kind, blob) VALUES (1, 'google', {})",
            lit(&payload.to_string())
        ),
    )
    .await;
    let fx = Fixture {
        app: None,
        config: "[store]\ntable = \"tokens\"\ndata_column = \"blob\"\ntype_column = \"kind\"\n\
                 google_types = [\"google\"]\ncipher = \"plain\"\n\
                 [store.payload]\naccess_token = \"/access_token\"\nrefresh_token = \"/refresh_token\"\n\
                 expiry = \"/expiry\"\nexpiry_format = \"rfc3339\"\nscopes = \"/scope\"\n\
                 [store.reconnect]\ncolumn = \"state\"\nvalue = \"reauth\"\n"
            .into(),
        id: "1".into(),
        data_query: "SELECT blob FROM tokens WHERE id = 1".into(),
        access: "/access_token",
        expiry: Expiry::Rfc3339("/expiry"),
        payload,
        env: vec![
            ("GOOGLE_CLIENT_ID".into(), CLIENT_ID.into()),
            ("GOOGLE_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
        ],
        secrets: vec![refresh, CLIENT_SECRET.into()],
    };
    db.write("app.toml", &fx.config);
    db.write("token.json", &playground_json());
    (db, fx)
}

#[tokio::test]
async fn production_runs_nothing_that_writes_to_the_applications_store() {
    let serve = Serve::start(&[]);
    let (db, fx) = plain_sqlite(&serve).await;
    let mut out = String::new();
    for (line, allowed) in [
        ("--mode list", true),
        ("--mode list --credential-id 1", true),
        ("--mode doctor", true),
        ("--mode real --credential-id 1 --dry-run", true),
        ("--mode scrub", true),
        ("--mode real --credential-id 1", false),
        ("--mode force-expire --credential-id 1", false),
        ("--mode force-expire --credential-id 1 --no-refresh", false),
        ("--mode scrub --yes", false),
        ("--mode scrub --yes --keep 1", false),
        ("--mode import --file token.json", false),
        ("--mode worker-sim --credential-id 1 --jobs 4", false),
    ] {
        let args: Vec<&str> = line.split(' ').collect();
        let before = store_snapshot(&db).await;
        let mut c = cmd(&db, &fx, &serve);
        c.env("OAUTHTEST_ENV", "production");
        let mut all = vec!["--store-config", "app.toml"];
        all.extend(&args);
        let r = run(c, &all, None);
        out.push_str(&r.stdout);
        out.push_str(&r.stderr);
        assert!(
            snapshot_changes(&before, &store_snapshot(&db).await).is_empty(),
            "{line} wrote in production\n{r}"
        );
        assert_eq!(
            !r.stderr.contains("refusing to run"),
            allowed,
            "{line}\n{r}"
        );
        if allowed {
            assert_eq!(r.code, 0, "{line}\n{r}");
        }
    }
    // The override lets a write through, and the snapshot sees it.
    let before = store_snapshot(&db).await;
    let mut c = cmd(&db, &fx, &serve);
    c.env("OAUTHTEST_ENV", "production");
    run(
        c,
        &[
            "--store-config",
            "app.toml",
            "--mode",
            "real",
            "--credential-id",
            "1",
            "--i-know-this-is-production",
        ],
        None,
    )
    .assert_code(0);
    assert!(!snapshot_changes(&before, &store_snapshot(&db).await).is_empty());
    let secrets: Vec<&str> = fx.secrets.iter().map(String::as_str).collect();
    assert_no_secrets(&out, &secrets);
}

#[tokio::test]
async fn scrub_and_import_write_the_applications_way() {
    let serve = Serve::start(&[]);
    let (db, fx) = plain_sqlite(&serve).await;
    let mut out = String::new();
    let dry = app_run(&db, &fx, &serve, &["--mode", "scrub"], &mut out);
    dry.assert_code(0);
    assert!(dry.stdout.contains("row 1: would wipe"), "{dry}");
    assert_eq!(
        fx.stored(&db).await,
        fx.payload,
        "a scrub without --yes writes nothing"
    );

    let imported = app_run(
        &db,
        &fx,
        &serve,
        &[
            "--mode",
            "import",
            "--file",
            "token.json",
            "--format",
            "json",
        ],
        &mut out,
    );
    imported.assert_code(0);
    let id = imported.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        column(&db, &format!("SELECT kind FROM tokens WHERE id = {id}"))
            .await
            .as_deref(),
        Some("google"),
        "the new row has the first Google type"
    );
    let listed = app_run(
        &db,
        &fx,
        &serve,
        &["--mode", "list", "--format", "json"],
        &mut out,
    );
    assert_eq!(
        listed.json()["credentials"].as_array().unwrap().len(),
        2,
        "{listed}"
    );

    let wiped = app_run(
        &db,
        &fx,
        &serve,
        &["--mode", "scrub", "--yes", "--keep", &id],
        &mut out,
    );
    wiped.assert_code(0);
    let mut want = fx.payload.clone();
    want["access_token"] = Value::Null;
    want["refresh_token"] = Value::Null;
    want["expiry"] = Value::Null;
    assert_eq!(
        fx.stored(&db).await,
        want,
        "tokens null, every other field kept"
    );
    assert_eq!(
        column(&db, "SELECT state FROM tokens WHERE id = 1")
            .await
            .as_deref(),
        Some("reauth"),
        "marked the application's way"
    );
    assert_eq!(
        column(&db, &format!("SELECT state FROM tokens WHERE id = {id}")).await,
        None,
        "the kept row is left alone"
    );
    let secrets: Vec<&str> = fx.secrets.iter().map(String::as_str).collect();
    assert_no_secrets(
        &out,
        &[
            &secrets[..],
            &[PLANTED_REFRESH, PLANTED_ACCESS, PLANTED_CLIENT_SECRET],
        ]
        .concat(),
    );
}

#[tokio::test]
async fn invalid_grant_marks_the_row_the_applications_way_and_says_the_user_must_reconnect() {
    let serve = Serve::start(&[]);
    let (db, mut fx) = plain_sqlite(&serve).await;
    fx.payload["refresh_token"] = json!("1//REVOKED-OR-NEVER-ISSUED");
    sql(
        &db,
        &format!(
            "UPDATE tokens SET blob = {} WHERE id = 1",
            lit(&fx.payload.to_string())
        ),
    )
    .await;
    let mut out = String::new();
    let r = app_run(
        &db,
        &fx,
        &serve,
        &["--mode", "real", "--credential-id", "1"],
        &mut out,
    );
    r.assert_code(1);
    assert!(r.stdout.contains("The user must reconnect"), "{r}");
    assert!(r.stdout.contains("marked \"must reconnect\""), "{r}");
    assert_eq!(
        column(&db, "SELECT state FROM tokens WHERE id = 1")
            .await
            .as_deref(),
        Some("reauth"),
        "the application's own mark"
    );
    assert_eq!(
        fx.stored(&db).await,
        fx.payload,
        "the payload is left as it was"
    );
    let listed = app_run(
        &db,
        &fx,
        &serve,
        &["--mode", "list", "--format", "json"],
        &mut out,
    );
    assert_eq!(
        listed.json()["credentials"][0]["state"],
        "needs_reconnect",
        "{listed}"
    );
    let dry = app_run(
        &db,
        &fx,
        &serve,
        &["--mode", "real", "--dry-run", "--credential-id", "1"],
        &mut out,
    );
    dry.assert_code(1);
    assert!(dry.stdout.contains("FAIL state"), "{dry}");
    let secrets: Vec<&str> = fx.secrets.iter().map(String::as_str).collect();
    assert_no_secrets(
        &out,
        &[&secrets[..], &["1//REVOKED-OR-NEVER-ISSUED"]].concat(),
    );
}
