//! The application store adapter against stores written the way applications write them: Fernet
//! rows by Python `cryptography`, n8n rows by crypto-js, AES-256-GCM rows by Node's `crypto`,
//! plain `jsonb` on PostgreSQL. After every write-back the application's own library opens the
//! row and must find the new token and expiry, and every other field unchanged.
//!
//! The libraries run as the helper scripts in `tests/app_store/`. Under CI they must be installed
//! (`python3 -m pip install cryptography`, `npm ci --prefix tests/app_store`); elsewhere a test
//! without them prints `SKIPPED:` and passes.

use crate::support::{
    assert_no_secrets, Backend, TestDb, PLANTED_ACCESS, PLANTED_CLIENT_SECRET, PLANTED_REFRESH,
};
use chrono::{DateTime, Duration, Utc};
use oauthtest::app_store::{
    AppCredential, AppStore, AppStoreError, Cipher, NewAppCredential, RowId, ScrubResult,
    StoreConfig,
};
use oauthtest::credential::GoogleCredential;
use oauthtest::secret::{AccessToken, ClientSecret, RefreshToken};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;

const NEW_ACCESS: &str = "ya29.NEW-ACCESS-FROM-REFRESH-41b7";

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/app_store")
}

/// An application's encryption library, run through its helper script.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Lib {
    Fernet,
    CryptoJs,
    NodeGcm,
}

/// Whether `lib` can run here; off CI a missing library skips the test with a visible line,
/// under CI it fails it.
pub(crate) fn available(lib: Lib) -> bool {
    let (ok, install) = match lib {
        Lib::Fernet => (
            Command::new("python3")
                .args(["-c", "import cryptography.fernet"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "python3 -m pip install cryptography",
        ),
        Lib::CryptoJs => (
            fixtures().join("node_modules/crypto-js").is_dir()
                && Command::new("node").arg("--version").output().is_ok(),
            "npm ci --prefix tests/app_store",
        ),
        Lib::NodeGcm => (
            Command::new("node").arg("--version").output().is_ok(),
            "install Node.js",
        ),
    };
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{lib:?} is required in CI: {install}"
        );
        eprintln!("SKIPPED: application-store test needs {lib:?} ({install})");
    }
    ok
}

/// The application: its library and the environment holding its keys.
pub(crate) struct App {
    lib: Lib,
    env: HashMap<String, String>,
}

impl App {
    pub(crate) fn new(lib: Lib, env: &[(&str, &str)]) -> Self {
        Self {
            lib,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    pub(crate) fn run(&self, op: &str, input: &str) -> Result<String, i32> {
        let (program, script) = match self.lib {
            Lib::Fernet => ("python3", "fernet_app.py"),
            Lib::CryptoJs => ("node", "cryptojs_app.js"),
            Lib::NodeGcm => ("node", "gcm_app.js"),
        };
        let mut child = Command::new(program)
            .arg(fixtures().join(script))
            .arg(op)
            .envs(&self.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the application's library");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(String::from_utf8(out.stdout).unwrap())
        } else {
            Err(out.status.code().unwrap_or(-1))
        }
    }

    pub(crate) fn seal(&self, payload: &Value) -> String {
        self.run("encrypt", &payload.to_string())
            .expect("the application encrypts")
    }

    pub(crate) fn open(&self, stored: &str) -> Value {
        let text = self
            .run("decrypt", stored)
            .expect("the application decrypts what oauthtest wrote");
        serde_json::from_str(&text).unwrap()
    }

    fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |name| self.env.get(name).cloned()
    }
}

pub(crate) fn fernet_key() -> String {
    App::new(Lib::Fernet, &[])
        .run("keygen", "")
        .unwrap()
        .trim()
        .to_owned()
}

/// Runs statements on the application's database (creating the SQLite file, as the
/// application's own migrations would).
pub(crate) async fn sql(db: &TestDb, statement: &str) {
    match db.backend {
        Backend::Sqlite => {
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url)
                .unwrap()
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

/// One row's columns as text.
pub(crate) async fn column(db: &TestDb, query: &str) -> Option<String> {
    let q = format!("SELECT CAST(({query}) AS TEXT)");
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            let v = sqlx::query_scalar(sqlx::AssertSqlSafe(q))
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            v
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let v = sqlx::query_scalar(sqlx::AssertSqlSafe(q))
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            v
        }
    }
}

/// SQL text quoting for the fixtures' own inserts (values are ours, not user input).
pub(crate) fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn config(db: &TestDb, text: &str) -> StoreConfig {
    let path = db.write("oauthtest.toml", text);
    StoreConfig::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// `old` with a refresh's result: a new access token and expiry.
fn refreshed(old: &GoogleCredential, expiry: DateTime<Utc>) -> GoogleCredential {
    GoogleCredential {
        access_token: Some(AccessToken::from(NEW_ACCESS)),
        refresh_token: old.refresh_token.clone(),
        expiry: Some(expiry),
        scopes: old.scopes.clone(),
        token_type: old.token_type.clone(),
        client_id: old.client_id.clone(),
        client_secret: old.client_secret.clone(),
        id_token: None,
    }
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn exposed<T: ExposeSecret<str>>(s: &Option<T>) -> Option<&str> {
    s.as_ref().map(ExposeSecret::expose_secret)
}

pub(crate) fn id_column(db: &TestDb) -> &'static str {
    match db.backend {
        Backend::Sqlite => "id INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "id SERIAL PRIMARY KEY",
    }
}

/// The FastAPI application's table, as the staging guide shows it, plus a status column.
pub(crate) async fn fastapi_table(db: &TestDb) {
    sql(
        db,
        &format!(
            "CREATE TABLE credentials ({}, user_id INTEGER NOT NULL, type VARCHAR(64) NOT NULL,
             name VARCHAR(255) NOT NULL, encrypted_data TEXT, status VARCHAR(32) NOT NULL DEFAULT 'active',
             created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL)",
            id_column(db)
        ),
    )
    .await;
}

pub(crate) async fn fastapi_row(db: &TestDb, user: i64, kind: &str, name: &str, sealed: &str) {
    sql(
        db,
        &format!(
            "INSERT INTO credentials (user_id, type, name, encrypted_data, created_at, updated_at)
             VALUES ({user}, {}, {}, {}, '2026-11-01 09:00:00', '2026-11-01 09:00:00')",
            lit(kind),
            lit(name),
            lit(sealed)
        ),
    )
    .await;
}

pub(crate) fn fastapi_payload() -> Value {
    json!({
        "access_token": PLANTED_ACCESS,
        "refresh_token": PLANTED_REFRESH,
        "expiry": "2026-11-01T10:00:00+00:00",
        "client_id": "1234-app.apps.googleusercontent.com",
        "client_secret": PLANTED_CLIENT_SECRET,
        "scopes": ["https://www.googleapis.com/auth/gmail.readonly", "openid"],
        "token_uri": "https://oauth2.googleapis.com/token",
        "account": {"email": "test@example.com", "labels": [1, "two", null]}
    })
}

pub(crate) const FASTAPI_CONFIG: &str = r#"
preset = "fernet"
[store]
old_keys_env = "APP_OLD_KEYS"
[store.reconnect]
column = "status"
value = "needs_reconnect"
"#;

async fn fernet_rows_written_by_python_are_refreshed_the_applications_way(db: TestDb) {
    if !available(Lib::Fernet) {
        return;
    }
    let (old_key, key) = (fernet_key(), fernet_key());
    // The rows were written before a key rotation; oauthtest holds the new key and the old one.
    let before_rotation = App::new(Lib::Fernet, &[("APP_ENCRYPTION_KEY", &old_key)]);
    let app = App::new(
        Lib::Fernet,
        &[("APP_ENCRYPTION_KEY", &key), ("APP_OLD_KEYS", &old_key)],
    );
    fastapi_table(&db).await;
    let payload = fastapi_payload();
    fastapi_row(
        &db,
        7,
        "gmailOAuth2",
        "Test Gmail",
        &before_rotation.seal(&payload),
    )
    .await;
    fastapi_row(
        &db,
        7,
        "slackOAuth2",
        "Not Google",
        &app.seal(&json!({"x": 1})),
    )
    .await;
    fastapi_row(&db, 8, "googleDriveOAuth2", "Drive", &app.seal(&payload)).await;
    let untouched = column(&db, "SELECT encrypted_data FROM credentials WHERE id = 3").await;

    let store = AppStore::connect(config(&db, FASTAPI_CONFIG), &db.url)
        .await
        .unwrap();
    let listed: Vec<_> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(listed, ["1", "3"], "only the Google rows are listed");
    let cipher = Cipher::from_config(store.config(), &app.lookup()).unwrap();
    let cred = store.load(&cipher, &RowId::from(1)).await.unwrap();
    assert_eq!(exposed(&cred.secrets.access_token), Some(PLANTED_ACCESS));
    assert_eq!(exposed(&cred.secrets.refresh_token), Some(PLANTED_REFRESH));
    assert_eq!(
        exposed(&cred.secrets.client_secret),
        Some(PLANTED_CLIENT_SECRET)
    );
    assert_eq!(cred.secrets.expiry, Some(at("2026-11-01T10:00:00Z")));
    assert_eq!(cred.secrets.scopes.len(), 2);
    assert_eq!(cred.row.user_id.as_deref(), Some("7"));
    assert!(!cred.needs_reconnect);
    assert_no_secrets(&format!("{cred:?} {cipher:?} {store:?}"), &[&key, &old_key]);

    let new_expiry = at("2031-05-06T07:08:09Z");
    let written = store
        .write_back(&cipher, &cred, &refreshed(&cred.secrets, new_expiry), false)
        .await
        .unwrap();
    assert_eq!(exposed(&written.secrets.access_token), Some(NEW_ACCESS));

    // The application, which by now has only its new key, reads what oauthtest wrote.
    let after_rotation = App::new(Lib::Fernet, &[("APP_ENCRYPTION_KEY", &key)]);
    let stored = column(&db, "SELECT encrypted_data FROM credentials WHERE id = 1")
        .await
        .unwrap();
    let mut want = payload.clone();
    want["access_token"] = json!(NEW_ACCESS);
    want["expiry"] = json!("2031-05-06T07:08:09+00:00");
    assert_eq!(after_rotation.open(&stored), want);
    assert_eq!(
        column(&db, "SELECT user_id || '|' || type || '|' || name || '|' || status FROM credentials WHERE id = 1").await.as_deref(),
        Some("7|gmailOAuth2|Test Gmail|active")
    );
    let created = column(&db, "SELECT created_at FROM credentials WHERE id = 1")
        .await
        .unwrap();
    assert!(created.starts_with("2026-11-01 09:00:00"), "{created}");
    let updated = column(&db, "SELECT updated_at FROM credentials WHERE id = 1")
        .await
        .unwrap();
    assert!(
        !updated.starts_with("2026-11-01"),
        "updated_at was set: {updated}"
    );
    assert_eq!(
        column(&db, "SELECT encrypted_data FROM credentials WHERE id = 3").await,
        untouched,
        "another row is left alone"
    );

    // A second write from the returned row works: it is the row as now stored.
    let again = store
        .write_back(
            &cipher,
            &written,
            &refreshed(&written.secrets, new_expiry + Duration::hours(1)),
            false,
        )
        .await
        .unwrap();
    assert_eq!(again.secrets.expiry, Some(new_expiry + Duration::hours(1)));
}
crate::on_both_backends!(
    fernet_python,
    fernet_rows_written_by_python_are_refreshed_the_applications_way
);

pub(crate) async fn n8n_table(db: &TestDb) {
    sql(
        db,
        &match db.backend {
            Backend::Sqlite => {
                "CREATE TABLE \"credentials_entity\" (\"id\" varchar(36) PRIMARY KEY NOT NULL,
            \"name\" varchar(128) NOT NULL, \"data\" text NOT NULL, \"type\" varchar(128) NOT NULL,
            \"createdAt\" datetime(3) NOT NULL DEFAULT (STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
            \"updatedAt\" datetime(3) NOT NULL DEFAULT (STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
            \"isManaged\" boolean NOT NULL DEFAULT 0)"
                    .to_owned()
            }
            Backend::Postgres => "CREATE TABLE credentials_entity (id varchar(36) PRIMARY KEY,
            name varchar(128) NOT NULL, data text NOT NULL, type varchar(128) NOT NULL,
            \"createdAt\" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
            \"updatedAt\" timestamp(3) with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
            \"isManaged\" boolean NOT NULL DEFAULT false)"
                .to_owned(),
        },
    )
    .await;
}

pub(crate) fn n8n_payload() -> Value {
    json!({
        "clientId": "1234-n8n.apps.googleusercontent.com",
        "clientSecret": PLANTED_CLIENT_SECRET,
        "sendAdditionalBodyProperties": false,
        "additionalBodyProperties": "",
        "oauthTokenData": {
            "access_token": PLANTED_ACCESS,
            "expires_in": 3599,
            "refresh_token": PLANTED_REFRESH,
            "scope": "https://www.googleapis.com/auth/gmail.modify openid",
            "token_type": "Bearer",
            "id_token": "eyJhbGciOiJSUzI1NiJ9.e30.sig",
            "callbackQueryString": {}
        }
    })
}

async fn n8n_rows_written_by_crypto_js_are_refreshed_the_way_n8n_reads_them(db: TestDb) {
    if !available(Lib::CryptoJs) {
        return;
    }
    let passphrase = "n8n-instance-key-JmB7YgOWl3R1ZQ";
    let app = App::new(Lib::CryptoJs, &[("N8N_ENCRYPTION_KEY", passphrase)]);
    n8n_table(&db).await;
    let payload = n8n_payload();
    sql(&db, &format!(
        "INSERT INTO credentials_entity (id, name, data, type, \"createdAt\", \"updatedAt\") VALUES
         ('Xk2tTQ1BqRw7VJ5z', 'Gmail account', {}, 'gmailOAuth2', '2026-11-30 10:00:00.000', '2026-11-30 10:00:00.000'),
         ('aaaaBBBBccccDDDD', 'Slack', {}, 'slackOAuth2Api', '2026-11-30 10:00:00.000', '2026-11-30 10:00:00.000')",
        lit(&app.seal(&payload)), lit(&app.seal(&json!({"accessToken": "x"})))
    )).await;

    let store = AppStore::connect(config(&db, "preset = \"n8n\"\n"), &db.url)
        .await
        .unwrap();
    let rows = store.list().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id.as_str(), "Xk2tTQ1BqRw7VJ5z");
    assert_eq!(rows[0].name.as_deref(), Some("Gmail account"));
    let cipher = Cipher::from_config(store.config(), &app.lookup()).unwrap();
    let cred = store
        .load(&cipher, &RowId::new("Xk2tTQ1BqRw7VJ5z"))
        .await
        .unwrap();
    assert_eq!(exposed(&cred.secrets.refresh_token), Some(PLANTED_REFRESH));
    assert_eq!(
        cred.secrets.client_id.as_deref(),
        Some("1234-n8n.apps.googleusercontent.com")
    );
    // n8n keeps Google's expires_in; the expiry counts from updatedAt.
    assert_eq!(cred.secrets.expiry, Some(at("2026-11-30T10:59:59Z")));
    assert_eq!(cred.secrets.scopes.len(), 2);

    let new_expiry = Utc::now() + Duration::seconds(3600);
    store
        .write_back(&cipher, &cred, &refreshed(&cred.secrets, new_expiry), false)
        .await
        .unwrap();
    let stored = column(
        &db,
        "SELECT data FROM credentials_entity WHERE id = 'Xk2tTQ1BqRw7VJ5z'",
    )
    .await
    .unwrap();
    let seen = app.open(&stored);
    let expires_in = seen["oauthTokenData"]["expires_in"].as_i64().unwrap();
    assert!(
        (3590..=3600).contains(&expires_in),
        "expires_in {expires_in}"
    );
    let mut want = payload.clone();
    want["oauthTokenData"]["access_token"] = json!(NEW_ACCESS);
    want["oauthTokenData"]["expires_in"] = json!(expires_in);
    assert_eq!(
        seen, want,
        "n8n finds the new token and every other field as it wrote it"
    );
    let reread = store
        .load(&cipher, &RowId::new("Xk2tTQ1BqRw7VJ5z"))
        .await
        .unwrap();
    let drift = (reread.secrets.expiry.unwrap() - new_expiry)
        .num_seconds()
        .abs();
    assert!(drift <= 2, "expiry read back within 2 s, off by {drift}");
    assert_eq!(
        column(
            &db,
            "SELECT data FROM credentials_entity WHERE id = 'aaaaBBBBccccDDDD'"
        )
        .await
        .map(|d| app.open(&d)),
        Some(json!({"accessToken": "x"}))
    );
}
crate::on_both_backends!(
    n8n_crypto_js,
    n8n_rows_written_by_crypto_js_are_refreshed_the_way_n8n_reads_them
);

pub(crate) fn gcm_payload() -> Value {
    json!({
        "tokens": {
            "access_token": PLANTED_ACCESS,
            "refresh_token": PLANTED_REFRESH,
            "expiry_date": 1_795_000_000_000_i64,
            "scope": "https://www.googleapis.com/auth/calendar",
            "token_type": "Bearer"
        },
        "email": "test@example.com"
    })
}

pub(crate) const GCM_PAYLOAD_MAP: &str = r#"
[store.payload]
access_token = "/tokens/access_token"
refresh_token = "/tokens/refresh_token"
expiry = "/tokens/expiry_date"
expiry_format = "unix_ms"
scopes = "/tokens/scope"
"#;

async fn gcm_rows_written_by_node_crypto_are_refreshed_in_both_layouts(db: TestDb) {
    if !available(Lib::NodeGcm) {
        return;
    }
    let key = "8f".repeat(8) + &"1c".repeat(8) + &"e3".repeat(16);
    let joined = App::new(Lib::NodeGcm, &[("APP_GCM_KEY", &key)]);
    let split = App::new(
        Lib::NodeGcm,
        &[("APP_GCM_KEY", &key), ("APP_GCM_LAYOUT", "split")],
    );
    sql(&db, &format!(
        "CREATE TABLE oauth_accounts ({}, provider TEXT NOT NULL, secret TEXT NOT NULL, iv TEXT, auth_tag TEXT)",
        id_column(&db)
    )).await;
    let payload = gcm_payload();
    let sealed_split: Value = serde_json::from_str(&split.seal(&payload)).unwrap();
    sql(&db, &format!(
        "INSERT INTO oauth_accounts (provider, secret, iv, auth_tag) VALUES ('google', {}, NULL, NULL), ('google', {}, {}, {})",
        lit(&joined.seal(&payload)),
        lit(sealed_split["data"].as_str().unwrap()),
        lit(sealed_split["iv"].as_str().unwrap()),
        lit(sealed_split["tag"].as_str().unwrap()),
    )).await;
    let common = "[store]\ntable = \"oauth_accounts\"\ndata_column = \"secret\"\ncipher = \"aes-256-gcm\"\nkey_env = \"APP_GCM_KEY\"\n";
    for (id, layout, app) in [
        (1, "gcm_order = \"nonce|tag|ciphertext\"\n", &joined),
        (2, "iv_column = \"iv\"\ntag_column = \"auth_tag\"\n", &split),
    ] {
        let cfg = config(&db, &format!("{common}{layout}{GCM_PAYLOAD_MAP}"));
        let store = AppStore::connect(cfg, &db.url).await.unwrap();
        let cipher = Cipher::from_config(store.config(), &app.lookup()).unwrap();
        let cred = store.load(&cipher, &RowId::from(id)).await.unwrap();
        assert_eq!(cred.secrets.expiry, Some(at("2026-11-18T11:06:40Z")));
        let new_expiry = at("2031-01-02T03:04:05Z");
        store
            .write_back(&cipher, &cred, &refreshed(&cred.secrets, new_expiry), false)
            .await
            .unwrap();
        let stored = match id {
            1 => column(&db, "SELECT secret FROM oauth_accounts WHERE id = 1")
                .await
                .unwrap(),
            _ => json!({
                "data": column(&db, "SELECT secret FROM oauth_accounts WHERE id = 2").await,
                "iv": column(&db, "SELECT iv FROM oauth_accounts WHERE id = 2").await,
                "tag": column(&db, "SELECT auth_tag FROM oauth_accounts WHERE id = 2").await,
            })
            .to_string(),
        };
        let mut want = payload.clone();
        want["tokens"]["access_token"] = json!(NEW_ACCESS);
        want["tokens"]["expiry_date"] = json!(new_expiry.timestamp_millis());
        assert_eq!(app.open(&stored), want, "row {id}");
    }
}
crate::on_both_backends!(
    gcm_node,
    gcm_rows_written_by_node_crypto_are_refreshed_in_both_layouts
);

#[tokio::test]
async fn plain_jsonb_rows_on_postgres_are_refreshed_and_listed_without_a_key() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    sql(&db, "CREATE SCHEMA app; CREATE TABLE app.connections (id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL,
              config JSONB NOT NULL, expires_at TIMESTAMPTZ, state TEXT NOT NULL DEFAULT 'ok', updated_at TIMESTAMPTZ)").await;
    let payload = json!({"access_token": PLANTED_ACCESS, "refresh_token": PLANTED_REFRESH,
                         "expires_at": 1_795_000_000, "settings": {"label": "inbox", "sync": true}});
    sql(&db, &format!(
        "INSERT INTO app.connections (kind, config, expires_at) VALUES ('gmail', CAST({} AS jsonb), to_timestamp(1795000000))",
        lit(&payload.to_string())
    )).await;
    let cfg = config(
        &db,
        r#"
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
[store.reconnect]
column = "state"
value = "reauth"
"#,
    );
    assert!(!cfg.list_needs_key());
    let store = AppStore::connect(cfg, &db.url).await.unwrap();
    let rows = store.list().await.unwrap();
    assert_eq!(
        rows[0].expiry,
        Some(at("2026-11-18T11:06:40Z")),
        "expiry from its column, no key"
    );
    assert_eq!(rows[0].reconnect_marked, Some(false));
    let cipher = Cipher::from_config(store.config(), &|_: &str| None).unwrap();
    let cred = store.open(&cipher, rows[0].clone()).await.unwrap();
    let new_expiry = at("2031-01-02T03:04:05Z");
    store
        .write_back(&cipher, &cred, &refreshed(&cred.secrets, new_expiry), false)
        .await
        .unwrap();
    let stored: Value = serde_json::from_str(
        &column(&db, "SELECT config FROM app.connections")
            .await
            .unwrap(),
    )
    .unwrap();
    let mut want = payload.clone();
    want["access_token"] = json!(NEW_ACCESS);
    want["expires_at"] = json!(new_expiry.timestamp());
    assert_eq!(stored, want);
    assert_eq!(
        column(&db, "SELECT config->'settings'->>'label' || ' ' || jsonb_typeof(config) FROM app.connections").await.as_deref(),
        Some("inbox object"),
        "still jsonb, queryable by the application"
    );
    assert_eq!(
        store.list().await.unwrap()[0].expiry,
        Some(new_expiry),
        "expiry column follows"
    );
    let scrubbed = store
        .scrub(&cipher, &store.list().await.unwrap()[0])
        .await
        .unwrap();
    assert!(matches!(scrubbed, ScrubResult::TokensCleared(ref c) if c.needs_reconnect));
    assert_eq!(
        column(
            &db,
            "SELECT state || ' ' || (expires_at IS NULL) FROM app.connections"
        )
        .await
        .as_deref(),
        Some("reauth true")
    );
}

/// A FastAPI store on SQLite with one Fernet row, for the failing cases.
pub(crate) async fn fernet_store(extra: &str) -> Option<(TestDb, App, AppStore, Cipher)> {
    if !available(Lib::Fernet) {
        return None;
    }
    let db = TestDb::sqlite();
    let key = fernet_key();
    let app = App::new(Lib::Fernet, &[("APP_ENCRYPTION_KEY", &key)]);
    fastapi_table(&db).await;
    fastapi_row(
        &db,
        7,
        "gmailOAuth2",
        "Test Gmail",
        &app.seal(&fastapi_payload()),
    )
    .await;
    fastapi_row(
        &db,
        8,
        "gmailOAuth2",
        "Other",
        &app.seal(&json!({"access_token": null, "refresh_token": "1//other", "expiry": null})),
    )
    .await;
    let store = AppStore::connect(config(&db, &format!("{FASTAPI_CONFIG}{extra}")), &db.url)
        .await
        .unwrap();
    let cipher = Cipher::from_config(store.config(), &app.lookup()).unwrap();
    Some((db, app, store, cipher))
}

#[track_caller]
fn assert_clean(e: &AppStoreError, wants: &[&str]) -> String {
    let text = e.to_string();
    for want in wants {
        assert!(text.contains(want), "{want:?} not in: {text}");
    }
    assert_no_secrets(&text, &[]);
    assert_eq!(e.exit_code(), 2);
    text
}

async fn load_err(store: &AppStore, cipher: &Cipher, id: i64) -> AppStoreError {
    store.load(cipher, &RowId::from(id)).await.unwrap_err()
}

#[tokio::test]
async fn a_wrong_key_is_named_never_shown() {
    let Some((_db, _app, store, _)) = fernet_store("").await else {
        return;
    };
    let other = fernet_key();
    let wrong = Cipher::from_config(store.config(), &|n: &str| {
        (n == "APP_ENCRYPTION_KEY").then(|| other.clone())
    })
    .unwrap();
    let text = assert_clean(
        &load_err(&store, &wrong, 1).await,
        &["credentials row 1", "does not decrypt"],
    );
    assert!(!text.contains(&other));
    let e = Cipher::from_config(store.config(), &|_: &str| None).unwrap_err();
    assert_clean(
        &e,
        &["oauthtest.toml: store.key_env: APP_ENCRYPTION_KEY is not set"],
    );
    let e = Cipher::from_config(store.config(), &|n: &str| {
        (n == "APP_ENCRYPTION_KEY").then(|| "PLANTED-not-a-fernet-key".to_owned())
    })
    .unwrap_err();
    let text = assert_clean(&e, &["store.key_env", "not a Fernet key"]);
    assert!(!text.contains("PLANTED-not-a-fernet-key"));
}

#[tokio::test]
async fn tampered_or_cut_values_are_refused_in_every_authenticated_format() {
    let Some((db, app, store, cipher)) = fernet_store("").await else {
        return;
    };
    let stored = column(&db, "SELECT encrypted_data FROM credentials WHERE id = 1")
        .await
        .unwrap();
    let mut bytes = stored.into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    sql(
        &db,
        &format!(
            "UPDATE credentials SET encrypted_data = {} WHERE id = 1",
            lit(std::str::from_utf8(&bytes).unwrap())
        ),
    )
    .await;
    assert_clean(
        &load_err(&store, &cipher, 1).await,
        &["credentials row 1", "HMAC"],
    );
    assert!(
        app.run("decrypt", std::str::from_utf8(&bytes).unwrap())
            .is_err(),
        "the application refuses it too"
    );
    sql(
        &db,
        &format!(
            "UPDATE credentials SET encrypted_data = {} WHERE id = 1",
            lit(std::str::from_utf8(&bytes[..40]).unwrap())
        ),
    )
    .await;
    assert_clean(&load_err(&store, &cipher, 1).await, &["credentials row 1"]);
    sql(
        &db,
        "UPDATE credentials SET encrypted_data = NULL WHERE id = 1",
    )
    .await;
    assert_clean(
        &load_err(&store, &cipher, 1).await,
        &["encrypted_data is empty"],
    );
}

#[tokio::test]
async fn a_value_moved_to_another_row_is_caught_only_where_the_format_binds_the_row() {
    // Fernet does not bind a row: a moved value is a valid value of the application.
    if let Some((db, _app, store, cipher)) = fernet_store("").await {
        sql(&db, "UPDATE credentials SET encrypted_data = (SELECT encrypted_data FROM credentials WHERE id = 1) WHERE id = 2").await;
        let moved = store.load(&cipher, &RowId::from(2)).await.unwrap();
        assert_eq!(
            exposed(&moved.secrets.refresh_token),
            Some(PLANTED_REFRESH),
            "Fernet cannot tell"
        );
    }
    // The native envelope binds the id: the same move fails authentication.
    let db = TestDb::sqlite();
    sql(
        &db,
        "CREATE TABLE oauthtest_like (id INTEGER PRIMARY KEY, encrypted_data TEXT)",
    )
    .await;
    let key = oauthtest::crypto::EncryptionKey::generate();
    let key_b64 = key.to_base64().expose_secret().to_owned();
    let ring = oauthtest::crypto::Keyring::new(key, vec![]);
    let envelope = ring.encrypt(
        1,
        json!({"access_token": PLANTED_ACCESS, "refresh_token": PLANTED_REFRESH})
            .to_string()
            .as_bytes(),
    );
    sql(
        &db,
        &format!(
            "INSERT INTO oauthtest_like VALUES (1, {0}), (2, {0})",
            lit(&envelope)
        ),
    )
    .await;
    let store = AppStore::connect(config(&db, "[store]\ntable = \"oauthtest_like\"\ndata_column = \"encrypted_data\"\ncipher = \"native\"\n[store.payload]\naccess_token = \"/access_token\"\nrefresh_token = \"/refresh_token\"\n"), &db.url).await.unwrap();
    let cipher = Cipher::from_config(store.config(), &|n: &str| {
        (n == "OAUTHTEST_ENCRYPTION_KEY").then(|| key_b64.clone())
    })
    .unwrap();
    assert!(store.load(&cipher, &RowId::from(1)).await.is_ok());
    assert_clean(
        &load_err(&store, &cipher, 2).await,
        &["oauthtest_like row 2", "copied from another row"],
    );
}

#[tokio::test]
async fn payloads_that_do_not_fit_the_mapping_are_named_by_row_and_field() {
    let Some((db, app, store, cipher)) = fernet_store("").await else {
        return;
    };
    let set = |payload: Value| {
        let sealed = app.seal(&payload);
        let db = &db;
        async move {
            sql(
                db,
                &format!(
                    "UPDATE credentials SET encrypted_data = {} WHERE id = 2",
                    lit(&sealed)
                ),
            )
            .await
        }
    };
    set(json!({"access_token": PLANTED_ACCESS, "refreshToken": PLANTED_REFRESH, "expiry": null}))
        .await;
    assert_clean(
        &load_err(&store, &cipher, 2).await,
        &[
            "credentials row 2",
            "store.payload.refresh_token (/refresh_token)",
            "names no field",
        ],
    );
    set(json!({"access_token": PLANTED_ACCESS, "refresh_token": PLANTED_REFRESH, "expiry": "PLANTED next tuesday"})).await;
    let text = assert_clean(
        &load_err(&store, &cipher, 2).await,
        &["store.payload.expiry (/expiry)", "does not parse"],
    );
    assert!(!text.contains("tuesday"));
    set(json!(format!("just a string {PLANTED_ACCESS}"))).await;
    assert_clean(&load_err(&store, &cipher, 2).await, &["not a JSON object"]);
    // Not JSON at all: a plain store holding text.
    let plain = TestDb::sqlite();
    sql(
        &plain,
        "CREATE TABLE creds (id INTEGER PRIMARY KEY, data TEXT)",
    )
    .await;
    sql(
        &plain,
        &format!(
            "INSERT INTO creds VALUES (1, {})",
            lit(&format!("token={PLANTED_ACCESS}"))
        ),
    )
    .await;
    let store = AppStore::connect(config(&plain, "[store]\ntable = \"creds\"\ndata_column = \"data\"\ncipher = \"plain\"\n[store.payload]\naccess_token = \"/a\"\nrefresh_token = \"/r\"\n"), &plain.url).await.unwrap();
    let cipher = Cipher::from_config(store.config(), &|_: &str| None).unwrap();
    assert_clean(
        &load_err(&store, &cipher, 1).await,
        &["creds row 1", "not JSON (syntax error at line 1"],
    );
}

#[tokio::test]
async fn bad_configuration_is_named_by_file_and_key() {
    let db = TestDb::sqlite();
    fastapi_table(&db).await;
    let path = db.write(
        "bad.toml",
        "preset = \"fernet\"\n[store]\ncipher = \"rot13\"\n",
    );
    let e = StoreConfig::load(&path).unwrap_err();
    assert_clean(
        &e,
        &[&format!(
            "{}: store.cipher: unknown cipher \"rot13\"",
            path.display()
        )],
    );
    let e = AppStore::connect(
        config(
            &db,
            "preset = \"fernet\"\n[store]\nname_column = \"title\"\n",
        ),
        &db.url,
    )
    .await
    .unwrap_err();
    assert_clean(
        &e,
        &[
            "oauthtest.toml: store.name_column: table credentials has no column \"title\"",
            "encrypted_data",
        ],
    );
    let e = AppStore::connect(config(&db, "preset = \"n8n\"\n"), &db.url)
        .await
        .unwrap_err();
    assert_clean(&e, &["store.table", "has no table credentials_entity"]);
    let e = AppStore::connect(
        config(&db, "preset = \"fernet\"\n"),
        "sqlite:///nonexistent/app.db",
    )
    .await
    .unwrap_err();
    assert_clean(&e, &["no such file"]);
}

#[tokio::test]
async fn a_row_the_application_changed_meanwhile_is_not_overwritten() {
    let Some((db, app, store, cipher)) = fernet_store("").await else {
        return;
    };
    let cred = store.load(&cipher, &RowId::from(1)).await.unwrap();
    // The application's worker refreshes the same row in between.
    let mut theirs = fastapi_payload();
    theirs["access_token"] = json!("ya29.THE-APPLICATIONS-OWN-REFRESH");
    let their_value = app.seal(&theirs);
    sql(
        &db,
        &format!(
            "UPDATE credentials SET encrypted_data = {} WHERE id = 1",
            lit(&their_value)
        ),
    )
    .await;
    let e = store
        .write_back(&cipher, &cred, &refreshed(&cred.secrets, Utc::now()), false)
        .await
        .unwrap_err();
    assert!(e.is_changed_meanwhile(), "{e}");
    assert_clean(
        &e,
        &[
            "credentials row 1 changed since oauthtest read it",
            "nothing was written",
        ],
    );
    assert_eq!(
        column(&db, "SELECT encrypted_data FROM credentials WHERE id = 1")
            .await
            .as_deref(),
        Some(their_value.as_str())
    );
    // Only updated_at changed (the application touched the row): still a conflict.
    let cred = store.load(&cipher, &RowId::from(1)).await.unwrap();
    sql(
        &db,
        "UPDATE credentials SET updated_at = '2026-11-02 00:00:00' WHERE id = 1",
    )
    .await;
    let e = store
        .write_back(&cipher, &cred, &refreshed(&cred.secrets, Utc::now()), false)
        .await
        .unwrap_err();
    assert!(e.is_changed_meanwhile(), "{e}");
    // A row deleted meanwhile is reported as gone.
    sql(&db, "DELETE FROM credentials WHERE id = 1").await;
    let e = store
        .write_back(&cipher, &cred, &refreshed(&cred.secrets, Utc::now()), false)
        .await
        .unwrap_err();
    assert_clean(&e, &["no row with id = 1"]);
}

#[tokio::test]
async fn the_applications_own_command_seals_and_opens_and_its_failures_write_nothing() {
    let Some((db, app, _, _)) = fernet_store("").await else {
        return;
    };
    let key_file = db.write("app.key", &app.env["APP_ENCRYPTION_KEY"]);
    let script = fixtures().join("fernet_app.py");
    let cmd = |op: &str| {
        format!(
            "APP_ENCRYPTION_KEY=$(cat '{}') python3 '{}' {op}",
            key_file.display(),
            script.display()
        )
    };
    let with = |encrypt: &str, decrypt: &str| {
        format!("preset = \"fernet\"\n[store]\ncipher = \"command\"\nencrypt_cmd = {encrypt:?}\ndecrypt_cmd = {decrypt:?}\n[store.reconnect]\ncolumn = \"status\"\nvalue = \"needs_reconnect\"\n")
    };
    let store = AppStore::connect(
        config(&db, &with(&cmd("encrypt"), &cmd("decrypt"))),
        &db.url,
    )
    .await
    .unwrap();
    let cipher = Cipher::from_config(store.config(), &|_: &str| None).unwrap();
    let cred = store.load(&cipher, &RowId::from(1)).await.unwrap();
    store
        .write_back(
            &cipher,
            &cred,
            &refreshed(&cred.secrets, at("2031-05-06T07:08:09Z")),
            true,
        )
        .await
        .unwrap();
    let stored = column(&db, "SELECT encrypted_data FROM credentials WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(app.open(&stored)["access_token"], json!(NEW_ACCESS));
    assert_eq!(
        column(&db, "SELECT status FROM credentials WHERE id = 1")
            .await
            .as_deref(),
        Some("needs_reconnect")
    );

    let failing = AppStore::connect(
        config(
            &db,
            &with(&cmd("encrypt"), "echo PLANTED-NOISE >&2; exit 4"),
        ),
        &db.url,
    )
    .await
    .unwrap();
    let failing_cipher = Cipher::from_config(failing.config(), &|_: &str| None).unwrap();
    let e = failing
        .load(&failing_cipher, &RowId::from(1))
        .await
        .unwrap_err();
    let text = assert_clean(
        &e,
        &["credentials row 1: store.decrypt_cmd: exited with status 4"],
    );
    assert!(!text.contains("PLANTED-NOISE"), "its stderr is not shown");
    // An encrypt_cmd whose output does not open again: refused before anything is written.
    let broken = AppStore::connect(
        config(
            &db,
            &with("cat >/dev/null; echo not-a-token", &cmd("decrypt")),
        ),
        &db.url,
    )
    .await
    .unwrap();
    let cred = store.load(&cipher, &RowId::from(1)).await.unwrap();
    let broken_cipher = Cipher::from_config(broken.config(), &|_: &str| None).unwrap();
    let e = broken
        .write_back(
            &broken_cipher,
            &cred,
            &refreshed(&cred.secrets, Utc::now()),
            false,
        )
        .await
        .unwrap_err();
    assert_clean(&e, &["credentials row 1"]);
    assert_eq!(
        column(&db, "SELECT encrypted_data FROM credentials WHERE id = 1").await,
        Some(stored)
    );
}

#[tokio::test]
async fn scrub_wipes_tokens_the_applications_way_and_replaces_what_it_cannot_open() {
    let Some((db, app, store, cipher)) = fernet_store("").await else {
        return;
    };
    let row = store.get(&RowId::from(1)).await.unwrap();
    let cleared = store.scrub(&cipher, &row).await.unwrap();
    let ScrubResult::TokensCleared(cred) = cleared else {
        panic!("{cleared:?}")
    };
    assert!(cred.needs_reconnect && cred.secrets.refresh_token.is_none());
    let mut want = fastapi_payload();
    for f in ["access_token", "refresh_token", "expiry"] {
        want[f] = Value::Null;
    }
    let stored = column(&db, "SELECT encrypted_data FROM credentials WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(app.open(&stored), want);
    assert_eq!(
        column(&db, "SELECT status FROM credentials WHERE id = 1")
            .await
            .as_deref(),
        Some("needs_reconnect")
    );
    // A row sealed with production's key: this environment cannot open it, so it is replaced.
    let production = App::new(Lib::Fernet, &[("APP_ENCRYPTION_KEY", &fernet_key())]);
    sql(
        &db,
        &format!(
            "UPDATE credentials SET encrypted_data = {} WHERE id = 2",
            lit(&production.seal(&fastapi_payload()))
        ),
    )
    .await;
    let row = store.get(&RowId::from(2)).await.unwrap();
    let replaced = store.scrub(&cipher, &row).await.unwrap();
    assert!(
        matches!(&replaced, ScrubResult::Replaced { reason, .. } if reason.contains("does not decrypt")),
        "{replaced:?}"
    );
    let stored = column(&db, "SELECT encrypted_data FROM credentials WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(
        app.open(&stored),
        json!({"access_token": null, "refresh_token": null, "expiry": null})
    );
}

#[tokio::test]
async fn import_inserts_a_row_the_application_reads() {
    let Some((db, app, store, cipher)) = fernet_store("").await else {
        return;
    };
    let secrets = GoogleCredential {
        access_token: Some(AccessToken::from(PLANTED_ACCESS)),
        refresh_token: Some(RefreshToken::from(PLANTED_REFRESH)),
        expiry: Some(at("2031-05-06T07:08:09Z")),
        scopes: vec!["openid".into(), "email".into()],
        token_type: "Bearer".into(),
        client_id: Some("cid.apps.googleusercontent.com".into()),
        client_secret: Some(ClientSecret::from(PLANTED_CLIENT_SECRET)),
        id_token: None,
    };
    let new = NewAppCredential {
        credential_type: Some("gmailOAuth2".into()),
        name: Some("Imported".into()),
        user_id: Some("9".into()),
    };
    let cred: AppCredential = store.insert(&cipher, &new, &secrets).await.unwrap();
    assert_eq!(cred.row.id.as_str(), "3");
    let stored = column(&db, "SELECT encrypted_data FROM credentials WHERE id = 3")
        .await
        .unwrap();
    assert_eq!(
        app.open(&stored),
        json!({"access_token": PLANTED_ACCESS, "refresh_token": PLANTED_REFRESH, "expiry": "2031-05-06T07:08:09Z",
               "client_id": "cid.apps.googleusercontent.com", "client_secret": PLANTED_CLIENT_SECRET, "scopes": "openid email"})
    );
    let e = store
        .insert(
            &cipher,
            &NewAppCredential {
                credential_type: Some("slack".into()),
                ..new
            },
            &secrets,
        )
        .await
        .unwrap_err();
    assert_clean(&e, &["store.google_types"]);
}

#[test]
fn every_toml_example_in_the_app_store_doc_is_a_valid_config() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/app-store.md"))
            .unwrap();
    let mut checked = 0;
    for (i, block) in doc.split("```toml\n").skip(1).enumerate() {
        let text = block.split("```").next().unwrap();
        // A fragment is shown as an addition to a preset.
        let full = if text.contains("preset") {
            text.to_owned()
        } else {
            format!("preset = \"n8n\"\n{text}")
        };
        if let Err(e) =
            StoreConfig::parse(&full, &format!("docs/app-store.md toml block {}", i + 1))
        {
            panic!("{e}\n{text}");
        }
        checked += 1;
    }
    assert!(checked >= 6, "{checked} blocks");
}

#[tokio::test]
async fn crypto_js_and_node_gcm_values_that_were_changed_or_sealed_with_another_key_are_refused() {
    // n8n: crypto-js, OpenSSL format (no MAC: the padding and the JSON catch it).
    if available(Lib::CryptoJs) {
        let db = TestDb::sqlite();
        n8n_table(&db).await;
        let app = App::new(Lib::CryptoJs, &[("N8N_ENCRYPTION_KEY", "right passphrase")]);
        let other = App::new(Lib::CryptoJs, &[("N8N_ENCRYPTION_KEY", "another instance")]);
        let good = app.seal(&n8n_payload());
        let mut raw = good.clone().into_bytes();
        let i = raw.len() - 30;
        raw[i] = if raw[i] == b'A' { b'B' } else { b'A' };
        for (id, value) in [
            ("good", good.clone()),
            ("other", other.seal(&n8n_payload())),
            ("tampered", String::from_utf8(raw).unwrap()),
            ("cut", good[..good.len() - 8].to_owned()),
        ] {
            sql(&db, &format!("INSERT INTO credentials_entity (id, name, data, type) VALUES ({}, 'x', {}, 'gmailOAuth2')", lit(id), lit(&value))).await;
        }
        let store = AppStore::connect(config(&db, "preset = \"n8n\"\n"), &db.url)
            .await
            .unwrap();
        let cipher = Cipher::from_config(store.config(), &app.lookup()).unwrap();
        assert!(store.load(&cipher, &RowId::new("good")).await.is_ok());
        for id in ["other", "tampered", "cut"] {
            let e = store.load(&cipher, &RowId::new(id)).await.unwrap_err();
            assert_clean(&e, &[&format!("credentials_entity row {id}")]);
        }
        let audit = store.audit(&cipher).await.unwrap();
        let ok: Vec<_> = audit
            .iter()
            .map(|(id, r)| (id.as_str(), r.is_ok()))
            .collect();
        assert_eq!(
            ok,
            [
                ("cut", false),
                ("good", true),
                ("other", false),
                ("tampered", false)
            ]
        );
    }
    // Node's AES-256-GCM: the tag catches every change.
    if available(Lib::NodeGcm) {
        let db = TestDb::sqlite();
        sql(
            &db,
            "CREATE TABLE oauth_accounts (id INTEGER PRIMARY KEY, secret TEXT NOT NULL)",
        )
        .await;
        let key = "5a".repeat(32);
        let app = App::new(Lib::NodeGcm, &[("APP_GCM_KEY", &key)]);
        let other = App::new(Lib::NodeGcm, &[("APP_GCM_KEY", &"a5".repeat(32))]);
        let good = app.seal(&gcm_payload());
        let mut raw = base64_decode(&good);
        let last = raw.len() - 1;
        raw[last] ^= 0x01;
        for (id, value) in [
            (1, good.clone()),
            (2, other.seal(&gcm_payload())),
            (3, base64_encode(&raw)),
        ] {
            sql(
                &db,
                &format!("INSERT INTO oauth_accounts VALUES ({id}, {})", lit(&value)),
            )
            .await;
        }
        let cfg = format!("[store]\ntable = \"oauth_accounts\"\ndata_column = \"secret\"\ncipher = \"aes-256-gcm\"\nkey_env = \"APP_GCM_KEY\"\ngcm_order = \"nonce|tag|ciphertext\"\n{GCM_PAYLOAD_MAP}");
        let store = AppStore::connect(config(&db, &cfg), &db.url).await.unwrap();
        let cipher = Cipher::from_config(store.config(), &app.lookup()).unwrap();
        assert!(store.load(&cipher, &RowId::from(1)).await.is_ok());
        for id in [2, 3] {
            assert_clean(
                &load_err(&store, &cipher, id).await,
                &[
                    &format!("oauth_accounts row {id}"),
                    "AES-256-GCM authentication failed",
                ],
            );
        }
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test]
async fn a_reconnect_mark_in_the_payload_and_an_expiry_column_work_on_sqlite() {
    let db = TestDb::sqlite();
    sql(&db, "CREATE TABLE tokens (id INTEGER PRIMARY KEY, provider TEXT, body TEXT NOT NULL, expires_at INTEGER)").await;
    let payload = json!({"at": PLANTED_ACCESS, "rt": PLANTED_REFRESH, "meta": {"reauth": false, "note": "kept"}});
    sql(
        &db,
        &format!(
            "INSERT INTO tokens VALUES (1, 'google', {}, 1795000000)",
            lit(&payload.to_string())
        ),
    )
    .await;
    let store = AppStore::connect(
        config(
            &db,
            r#"
[store]
table = "tokens"
data_column = "body"
type_column = "provider"
google_types = ["google"]
expiry_column = "expires_at"
expiry_column_format = "unix_s"
cipher = "plain"
[store.payload]
access_token = "/at"
refresh_token = "/rt"
[store.reconnect]
pointer = "/meta/reauth"
value = true
"#,
        ),
        &db.url,
    )
    .await
    .unwrap();
    assert!(!store.config().list_needs_key());
    let rows = store.list().await.unwrap();
    assert_eq!(rows[0].expiry, Some(at("2026-11-18T11:06:40Z")));
    assert_eq!(
        rows[0].reconnect_marked, None,
        "a payload mark needs the payload"
    );
    let cipher = Cipher::from_config(store.config(), &|_: &str| None).unwrap();
    let cred = store.open(&cipher, rows[0].clone()).await.unwrap();
    assert!(!cred.needs_reconnect);
    let mut dead = refreshed(&cred.secrets, at("2020-01-01T00:00:00Z"));
    dead.access_token = None;
    let marked = store.write_back(&cipher, &cred, &dead, true).await.unwrap();
    assert!(marked.needs_reconnect);
    let stored: Value =
        serde_json::from_str(&column(&db, "SELECT body FROM tokens").await.unwrap()).unwrap();
    assert_eq!(
        stored,
        json!({"at": null, "rt": PLANTED_REFRESH, "meta": {"reauth": true, "note": "kept"}})
    );
    assert_eq!(
        column(&db, "SELECT expires_at FROM tokens")
            .await
            .as_deref(),
        Some("1577836800")
    );
    assert!(
        store
            .load(&cipher, &RowId::from(1))
            .await
            .unwrap()
            .needs_reconnect
    );
}

#[tokio::test]
async fn copy_brings_the_whole_payload_from_production_sealed_with_stagings_key() {
    if !available(Lib::Fernet) {
        return;
    }
    let (prod_db, staging_db) = (TestDb::sqlite(), TestDb::sqlite());
    let prod = App::new(Lib::Fernet, &[("APP_ENCRYPTION_KEY", &fernet_key())]);
    let staging = App::new(Lib::Fernet, &[("APP_ENCRYPTION_KEY", &fernet_key())]);
    fastapi_table(&prod_db).await;
    fastapi_table(&staging_db).await;
    let sealed = prod.seal(&fastapi_payload());
    fastapi_row(&prod_db, 7, "gmailOAuth2", "My test account", &sealed).await;
    let source = AppStore::connect_read_only(config(&prod_db, FASTAPI_CONFIG), &prod_db.url)
        .await
        .unwrap();
    let source_cipher = Cipher::from_config(source.config(), &prod.lookup()).unwrap();
    let target = AppStore::connect(config(&staging_db, FASTAPI_CONFIG), &staging_db.url)
        .await
        .unwrap();
    let target_cipher = Cipher::from_config(target.config(), &staging.lookup()).unwrap();
    assert_ne!(source_cipher.key_id(), target_cipher.key_id());
    let from = source.load(&source_cipher, &RowId::from(1)).await.unwrap();
    let new = NewAppCredential {
        credential_type: from.row.credential_type.clone(),
        name: from.row.name.clone(),
        user_id: Some("1".into()),
    };
    let copied = target
        .insert_copy(&target_cipher, &from, &new)
        .await
        .unwrap();
    let stored = column(
        &staging_db,
        &format!(
            "SELECT encrypted_data FROM credentials WHERE id = {}",
            copied.row.id
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        staging.open(&stored),
        fastapi_payload(),
        "every field, readable with staging's key"
    );
    assert!(
        prod.run("decrypt", &stored).is_err(),
        "not with production's"
    );
    assert_eq!(
        column(
            &prod_db,
            "SELECT encrypted_data FROM credentials WHERE id = 1"
        )
        .await,
        Some(sealed)
    );
    // The source is read-only: a write through it fails and changes nothing.
    let e = source
        .write_back(
            &source_cipher,
            &from,
            &refreshed(&from.secrets, Utc::now()),
            false,
        )
        .await
        .unwrap_err();
    assert_clean(&e, &["database"]);
}

#[tokio::test]
async fn fernet_tokens_in_a_bytea_column_and_a_key_file_work_on_postgres() {
    if !available(Lib::Fernet) {
        return;
    }
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let key = fernet_key();
    let app = App::new(Lib::Fernet, &[("APP_ENCRYPTION_KEY", &key)]);
    let key_file = db.write("app.key", &format!("{key}\n"));
    sql(&db, "CREATE TABLE credentials (id SERIAL PRIMARY KEY, user_id INT, type TEXT, name TEXT, encrypted_data BYTEA,
              created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ)").await;
    sql(&db, &format!("INSERT INTO credentials (user_id, type, name, encrypted_data) VALUES (1, 'gmailOAuth2', 'n', convert_to({}, 'UTF8'))",
                      lit(&app.seal(&fastapi_payload())))).await;
    let cfg = format!(
        "preset = \"fernet\"\n[store]\nkey_file = {:?}\n",
        key_file.display().to_string()
    );
    let store = AppStore::connect(config(&db, &cfg), &db.url).await.unwrap();
    let cipher = Cipher::from_config(store.config(), &|_: &str| None).unwrap();
    let cred = store.load(&cipher, &RowId::from(1)).await.unwrap();
    store
        .write_back(
            &cipher,
            &cred,
            &refreshed(&cred.secrets, at("2031-05-06T07:08:09Z")),
            false,
        )
        .await
        .unwrap();
    let stored = column(
        &db,
        "SELECT convert_from(encrypted_data, 'UTF8') FROM credentials",
    )
    .await
    .unwrap();
    assert_eq!(app.open(&stored)["access_token"], json!(NEW_ACCESS));
    let missing = format!(
        "preset = \"fernet\"\n[store]\nkey_file = \"{}/nope.key\"\n",
        db.path().display()
    );
    let e = Cipher::from_config(&config(&db, &missing), &|_: &str| None).unwrap_err();
    assert_clean(&e, &["store.key_file: cannot read", "nope.key"]);
}

async fn two_writers_racing_on_one_row_leave_exactly_one_write(db: TestDb) {
    sql(
        &db,
        &format!(
            "CREATE TABLE creds ({}, data TEXT NOT NULL, updated_at TEXT)",
            id_column(&db)
        ),
    )
    .await;
    let payload = json!({"a": PLANTED_ACCESS, "r": PLANTED_REFRESH, "e": null});
    sql(
        &db,
        &format!(
            "INSERT INTO creds (data) VALUES ({})",
            lit(&payload.to_string())
        ),
    )
    .await;
    let cfg = config(&db, "[store]\ntable = \"creds\"\ndata_column = \"data\"\nupdated_at_column = \"updated_at\"\ncipher = \"plain\"\n[store.payload]\naccess_token = \"/a\"\nrefresh_token = \"/r\"\nexpiry = \"/e\"\nexpiry_format = \"unix_ms\"\n");
    let store = AppStore::connect(cfg, &db.url).await.unwrap();
    let cipher = Cipher::from_config(store.config(), &|_: &str| None).unwrap();
    let cred = store.load(&cipher, &RowId::from(1)).await.unwrap();
    let (a, b) = (
        refreshed(&cred.secrets, at("2031-01-01T00:00:00Z")),
        refreshed(&cred.secrets, at("2032-01-01T00:00:00Z")),
    );
    let (ra, rb) = tokio::join!(
        store.write_back(&cipher, &cred, &a, false),
        store.write_back(&cipher, &cred, &b, false)
    );
    let results = [ra, rb];
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert!(loser.is_changed_meanwhile(), "{loser}");
    let winner = results.iter().find_map(|r| r.as_ref().ok()).unwrap();
    let stored: Value =
        serde_json::from_str(&column(&db, "SELECT data FROM creds").await.unwrap()).unwrap();
    assert_eq!(
        stored["e"],
        json!(winner.secrets.expiry.unwrap().timestamp_millis()),
        "the stored row is the winner's"
    );
}
crate::on_both_backends!(
    racing_writers,
    two_writers_racing_on_one_row_leave_exactly_one_write
);

#[tokio::test]
async fn a_command_that_hangs_is_stopped_and_named() {
    let db = TestDb::sqlite();
    sql(
        &db,
        "CREATE TABLE creds (id INTEGER PRIMARY KEY, data TEXT NOT NULL)",
    )
    .await;
    sql(&db, "INSERT INTO creds VALUES (1, 'sealed')").await;
    let store = AppStore::connect(config(&db, "[store]\ntable = \"creds\"\ndata_column = \"data\"\ncipher = \"command\"\nencrypt_cmd = [\"cat\"]\ndecrypt_cmd = \"exec sleep 30\"\ncommand_timeout_secs = 1\n[store.payload]\naccess_token = \"/a\"\nrefresh_token = \"/r\"\n"), &db.url).await.unwrap();
    let cipher = Cipher::from_config(store.config(), &|_: &str| None).unwrap();
    assert_clean(
        &load_err(&store, &cipher, 1).await,
        &["creds row 1: store.decrypt_cmd: did not finish within 1 s"],
    );
}
