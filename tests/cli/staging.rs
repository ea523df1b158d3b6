//! The staging modes (`real`, `force-expire`, `copy`, `scrub`) end to end: the real binary,
//! pointed at a mock Google started inside the test (`--token-url`, `--tokeninfo-url`,
//! `--api-url`), on SQLite and PostgreSQL.

use crate::on_both_backends;
use crate::support::*;
use chrono::{TimeDelta, Utc};
use mock_server::{
    fingerprint, wire, ClientRegistration, Endpoint, MockConfig, MockGoogle, Step, TokenStatus,
    DEFAULT_CLIENT_ID,
};
use oauthtest::credential::GoogleCredential;
use oauthtest::crypto::{EncryptionKey, Keyring};
use oauthtest::secret::{AccessToken, ClientSecret, RefreshToken};
use oauthtest::store::{
    CredentialRow, CredentialState, HistoryEntry, HistoryRow, NewCredential, RefreshWrite, Store,
};
use std::time::Duration;

const GMAIL_READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";
const CALENDAR_READONLY: &str = "https://www.googleapis.com/auth/calendar.readonly";

/// Every column of a row, to compare before and after.
fn columns(row: &CredentialRow) -> String {
    format!(
        "{} {} {:?} {} {} {} {} {:?} {:?} {} {:?} {:?}",
        row.encrypted_data,
        row.version,
        row.expires_at,
        row.updated_at,
        row.state,
        row.has_refresh_token,
        row.key_id,
        row.last_refresh_at,
        row.last_refresh_outcome,
        row.failure_count,
        row.cooldown_until_ms,
        row.lease_owner,
    )
}

/// A test's store and key, and a mock Google whose one registered client has the planted
/// client secret.
struct Staging {
    db: TestDb,
    key: String,
    mock: MockGoogle,
}

/// The access token a seeded credential starts with.
#[derive(Clone, Copy)]
enum Access {
    /// Issued by the mock, live for an hour; the stored expiry says so too.
    Valid,
    /// Issued by the mock, already dead; the stored expiry is a minute ago.
    Expired,
}

/// What a seeded credential holds (the raw tokens stay in the test).
struct Seeded {
    id: i64,
    access: String,
    refresh: String,
}

impl Staging {
    async fn new(db: TestDb) -> Self {
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
        Self { db, key, mock }
    }

    async fn store(&self) -> Store {
        Store::connect(&self.db.url).await.unwrap()
    }

    /// Stores a credential whose refresh token the mock issued for `granted` scopes, while the
    /// payload claims `stored` scopes.
    async fn seed_with(&self, access: Access, granted: &[&str], stored: &[&str]) -> Seeded {
        let granted: Vec<String> = granted.iter().map(|s| s.to_string()).collect();
        let refresh = self.mock.issue_refresh_token(DEFAULT_CLIENT_ID, &granted);
        let (ttl, expiry) = match access {
            Access::Valid => (Duration::from_secs(3600), TimeDelta::hours(1)),
            Access::Expired => (Duration::ZERO, TimeDelta::minutes(-1)),
        };
        let access = self
            .mock
            .issue_access_token(DEFAULT_CLIENT_ID, &granted, ttl);
        let secrets = GoogleCredential {
            access_token: Some(AccessToken::from(access.clone())),
            refresh_token: Some(RefreshToken::from(refresh.clone())),
            expiry: Some(Utc::now() + expiry),
            scopes: stored.iter().map(|s| s.to_string()).collect(),
            token_type: "Bearer".into(),
            client_id: Some(DEFAULT_CLIENT_ID.into()),
            client_secret: Some(ClientSecret::from(PLANTED_CLIENT_SECRET)),
            id_token: None,
        };
        let id = insert(
            &self.store().await,
            &keyring(&self.key),
            &secrets,
            "Staging Gmail",
        )
        .await;
        Seeded {
            id,
            access,
            refresh,
        }
    }

    async fn seed(&self, access: Access) -> Seeded {
        self.seed_with(access, &[GMAIL_READONLY], &[GMAIL_READONLY])
            .await
    }

    async fn row(&self, id: i64) -> CredentialRow {
        self.store().await.get(id).await.unwrap().unwrap()
    }

    async fn history(&self, id: i64) -> Vec<HistoryRow> {
        self.store().await.history(id).await.unwrap()
    }

    async fn secrets(&self, id: i64) -> GoogleCredential {
        self.row(id).await.decrypt(&keyring(&self.key)).unwrap()
    }

    /// The binary, with this test's key and the mock's endpoints.
    fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.db.cmd();
        c.env("OAUTHTEST_ENCRYPTION_KEY", &self.key);
        for (k, v) in env {
            c.env(k, v);
        }
        // Through the environment, which every mode may inherit: a flag a mode does not take
        // would be refused.
        c.env("OAUTHTEST_TOKEN_URL", self.mock.token_url())
            .env("OAUTHTEST_TOKENINFO_URL", self.mock.tokeninfo_url())
            .env("OAUTHTEST_API_URL", self.mock.api_url());
        run(c, args, None)
    }

    fn endpoints_hit(&self) -> Vec<Endpoint> {
        self.mock.journal().iter().map(|e| e.endpoint).collect()
    }
}

async fn insert(store: &Store, ring: &Keyring, secrets: &GoogleCredential, name: &str) -> i64 {
    try_insert(store, ring, secrets, name).await.unwrap()
}

async fn try_insert(
    store: &Store,
    ring: &Keyring,
    secrets: &GoogleCredential,
    name: &str,
) -> Result<i64, oauthtest::store::StoreError> {
    store
        .insert(
            &NewCredential {
                user_id: 42,
                credential_type: "gmailOAuth2".into(),
                name: name.into(),
            },
            secrets,
            ring,
            &HistoryEntry::new("test", "seed", "ok", None),
        )
        .await
}

/// A credential holding the planted tokens (never sent anywhere).
fn planted(client_id: Option<&str>) -> GoogleCredential {
    GoogleCredential {
        access_token: Some(AccessToken::from(PLANTED_ACCESS)),
        refresh_token: Some(RefreshToken::from(PLANTED_REFRESH)),
        expiry: Some(Utc::now() + TimeDelta::minutes(30)),
        scopes: vec![GMAIL_READONLY.into()],
        token_type: "Bearer".into(),
        client_id: client_id.map(str::to_owned),
        client_secret: Some(ClientSecret::from(PLANTED_CLIENT_SECRET)),
        id_token: None,
    }
}

fn check<'a>(report: &'a serde_json::Value, list: &str, name: &str) -> &'a serde_json::Value {
    report[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {report}"))
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {report}"))
}

fn fp_of(token: &str) -> serde_json::Value {
    fingerprint(token).into()
}

// ---- real --dry-run ----------------------------------------------------------------------

on_both_backends!(
    real_dry_run_changes_nothing_and_sends_no_token_request,
    real_dry_run_changes_nothing_and_sends_no_token_request
);
async fn real_dry_run_changes_nothing_and_sends_no_token_request(db: TestDb) {
    let s = Staging::new(db).await;
    let expired = s.seed(Access::Expired).await;
    let valid = s.seed(Access::Valid).await;
    let before = columns(&s.row(expired.id).await);
    let history_before = s.history(expired.id).await.len();
    let id = expired.id.to_string();

    let r = s.run(&[
        "--mode",
        "real",
        "--credential-id",
        &id,
        "--dry-run",
        "--format",
        "json",
    ]);
    r.assert_code(0);
    let v = r.json();
    assert_eq!(v["mode"], "real");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["passed"], true, "{r}");
    assert_eq!(v["before"]["expired"], true);
    assert_eq!(v["before"]["state"], "active");
    assert_eq!(v["before"]["client"], "stored");
    assert_eq!(v["before"]["client_secret_present"], true);
    assert_eq!(
        v["before"]["refresh_token_fingerprint"],
        fp_of(&expired.refresh)
    );
    assert_eq!(
        v["before"]["access_token_fingerprint"],
        fp_of(&expired.access)
    );
    assert!(v["after"].is_null(), "{r}");
    let would = v["would"].as_str().unwrap();
    assert!(would.contains(&s.mock.token_url()), "{would}");
    assert!(would.contains("Gmail profile"), "{would}");
    assert_eq!(check(&v, "checks", "refresh token")["status"], "pass");
    assert_eq!(check(&v, "checks", "client")["status"], "pass");
    assert!(
        s.mock.journal().is_empty(),
        "a dry run must send nothing: {:?}",
        s.mock.journal()
    );

    // Text form, for people.
    let text = s.run(&["--mode", "real", "--credential-id", &id, "--dry-run"]);
    text.assert_code(0);
    assert!(text.stdout.contains("real (dry run): credential"), "{text}");
    assert!(
        text.stdout.contains("a real run would: refresh at"),
        "{text}"
    );
    assert!(text.stdout.contains("expired 1m ago"), "{text}");

    // --check-token: one read-only tokeninfo call, still no token request.
    let r = s.run(&[
        "--mode",
        "real",
        "--credential-id",
        &id,
        "--dry-run",
        "--check-token",
        "--format",
        "json",
    ]);
    r.assert_code(0);
    let tokeninfo = check(&r.json(), "checks", "tokeninfo").clone();
    assert_eq!(tokeninfo["status"], "note", "{r}");
    assert!(
        tokeninfo["detail"]
            .as_str()
            .unwrap()
            .contains("a real run would refresh it"),
        "{r}"
    );
    let r = s.run(&[
        "--mode",
        "real",
        "--credential-id",
        &valid.id.to_string(),
        "--dry-run",
        "--check-token",
        "--format",
        "json",
    ]);
    r.assert_code(0);
    let tokeninfo = check(&r.json(), "checks", "tokeninfo").clone();
    assert_eq!(tokeninfo["status"], "pass", "{r}");
    assert!(
        tokeninfo["detail"]
            .as_str()
            .unwrap()
            .contains("audience is our client; scopes unchanged"),
        "{r}"
    );
    assert_eq!(
        s.endpoints_hit(),
        vec![Endpoint::TokenInfo, Endpoint::TokenInfo]
    );
    assert_eq!(s.mock.token_request_count(), 0);

    assert_eq!(columns(&s.row(expired.id).await), before, "the row changed");
    assert_eq!(s.history(expired.id).await.len(), history_before);
}

on_both_backends!(
    real_dry_run_on_a_database_without_a_store_creates_nothing,
    real_dry_run_on_a_database_without_a_store_creates_nothing
);
async fn real_dry_run_on_a_database_without_a_store_creates_nothing(db: TestDb) {
    let key = new_key(db.path());
    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &key);
    run(
        c,
        &["--mode", "real", "--credential-id", "1", "--dry-run"],
        None,
    )
    .assert_code(2)
    .assert_one_line_error()
    .assert_stderr_has(match db.backend {
        Backend::Sqlite => "no such file (opened read-only, so none is created)",
        Backend::Postgres => "no oauthtest store can be read there",
    });

    // Neither a file nor a table appeared: a dry run only looks.
    match db.backend {
        Backend::Sqlite => {
            let path = db.url.trim_start_matches("sqlite://");
            assert!(
                !std::path::Path::new(path).exists(),
                "a dry run created {path}"
            );
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            let tables: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'oauthtest%'",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert_eq!(tables, 0, "a dry run created oauthtest tables");
        }
    }
}

#[tokio::test]
async fn real_dry_run_exits_1_when_the_credential_cannot_be_used() {
    let s = Staging::new(TestDb::sqlite()).await;
    let store = s.store().await;
    let ring = keyring(&s.key);
    let mut no_refresh = planted(Some(DEFAULT_CLIENT_ID));
    no_refresh.refresh_token = None;
    let no_refresh = insert(&store, &ring, &no_refresh, "no refresh token").await;
    let no_client = insert(&store, &ring, &planted(None), "no client").await;

    let r = s.run(&[
        "--mode",
        "real",
        "--credential-id",
        &no_refresh.to_string(),
        "--dry-run",
    ]);
    r.assert_code(1);
    assert!(r.stdout.contains("FAIL refresh token"), "{r}");
    assert!(r.stdout.contains("ACTION: The user must reconnect"), "{r}");
    assert!(r.stdout.contains("a real run would: nothing"), "{r}");

    let r = s.run(&[
        "--mode",
        "real",
        "--credential-id",
        &no_client.to_string(),
        "--dry-run",
        "--format",
        "json",
    ]);
    r.assert_code(1);
    let client = check(&r.json(), "checks", "client").clone();
    assert_eq!(client["status"], "fail");
    assert!(
        client["detail"]
            .as_str()
            .unwrap()
            .contains("GOOGLE_CLIENT_ID"),
        "{r}"
    );
    // The configured client makes it usable.
    let r = s.run_env(
        &[
            "--mode",
            "real",
            "--credential-id",
            &no_client.to_string(),
            "--dry-run",
        ],
        &[("GOOGLE_CLIENT_ID", DEFAULT_CLIENT_ID)],
    );
    r.assert_code(0);
    assert!(r.stdout.contains("from GOOGLE_CLIENT_ID"), "{r}");
    assert!(s.mock.journal().is_empty());

    // Usage and input errors: one line, exit 2.
    s.run(&["--mode", "real"])
        .assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has("--mode real needs --credential-id");
    s.run(&["--mode", "real", "--credential-id", "999", "--dry-run"])
        .assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has("credential 999 not found");
    run(
        s.db.cmd(),
        &[
            "--mode",
            "real",
            "--credential-id",
            "1",
            "--token-url",
            "not a url",
        ],
        None,
    )
    .assert_code(2)
    .assert_one_line_error()
    .assert_stderr_has("--token-url: is not an absolute URL");
}

// ---- real ------------------------------------------------------------------------------

on_both_backends!(
    real_refresh_updates_the_row_and_keeps_the_refresh_token,
    real_refresh_updates_the_row_and_keeps_the_refresh_token
);
async fn real_refresh_updates_the_row_and_keeps_the_refresh_token(db: TestDb) {
    let s = Staging::new(db).await;
    let seeded = s.seed(Access::Expired).await;
    let before = s.row(seeded.id).await;
    let id = seeded.id.to_string();

    let r = s.run(&["--mode", "real", "--credential-id", &id, "--format", "json"]);
    r.assert_code(0);
    let v = r.json();
    assert_eq!(v["passed"], true, "{r}");
    for name in ["refresh", "stored", "tokeninfo", "gmail profile"] {
        assert_eq!(check(&v, "checks", name)["status"], "pass", "{name}: {r}");
    }

    let after = s.row(seeded.id).await;
    let stored = after.decrypt(&keyring(&s.key)).unwrap();
    let new_access = stored.access_token.unwrap().expose_secret().to_owned();
    assert_ne!(new_access, seeded.access);
    assert_eq!(s.mock.access_token_status(&new_access), TokenStatus::Live);
    assert_eq!(
        stored.refresh_token.unwrap().expose_secret(),
        seeded.refresh,
        "Google does not rotate: the refresh token must be kept"
    );
    assert_eq!(after.version, before.version + 1);
    assert_eq!(after.state, "active");
    assert!(after.expires_at.unwrap() > Utc::now() + TimeDelta::minutes(50));
    assert_eq!(after.last_refresh_outcome.as_deref(), Some("refreshed"));

    // The report shows fingerprints of the old and new tokens, never the tokens.
    assert_eq!(
        v["before"]["access_token_fingerprint"],
        fp_of(&seeded.access)
    );
    assert_eq!(v["after"]["access_token_fingerprint"], fp_of(&new_access));
    assert_eq!(
        v["after"]["refresh_token_fingerprint"],
        fp_of(&seeded.refresh)
    );
    assert_eq!(v["after"]["version"], after.version);

    // Exactly what a worker sends: one refresh, one tokeninfo, one Gmail read.
    assert_eq!(
        s.endpoints_hit(),
        vec![Endpoint::Token, Endpoint::TokenInfo, Endpoint::Api]
    );

    // The change is in the history, which `list` shows for the credential.
    let last = s.history(seeded.id).await.pop().unwrap();
    assert_eq!(
        (
            last.mode.as_str(),
            last.action.as_str(),
            last.outcome.as_str()
        ),
        ("real", "refresh", "refreshed")
    );
    let list = run(
        s.db.cmd(),
        &["--mode", "list", "--credential-id", &id],
        None,
    );
    list.assert_code(0);
    assert!(
        list.stdout
            .lines()
            .any(|l| l.contains("real") && l.contains("refresh") && l.contains("refreshed")),
        "{list}"
    );

    let text = s.run(&["--mode", "real", "--credential-id", &id]);
    text.assert_code(0);
    assert!(text.stdout.contains("PASS refresh"), "{text}");
    assert!(
        text.stdout.contains("PASS: refreshed and verified"),
        "{text}"
    );
}

on_both_backends!(
    real_invalid_grant_marks_needs_reconnect_and_says_the_user_must_reconnect,
    real_invalid_grant_marks_needs_reconnect_and_says_the_user_must_reconnect
);
async fn real_invalid_grant_marks_needs_reconnect_and_says_the_user_must_reconnect(db: TestDb) {
    let s = Staging::new(db).await;
    let seeded = s.seed(Access::Expired).await;
    assert!(s.mock.revoke(&seeded.refresh));
    let id = seeded.id.to_string();

    let r = s.run(&["--mode", "real", "--credential-id", &id]);
    r.assert_code(1);
    assert!(r.stdout.contains("FAIL refresh"), "{r}");
    assert!(r.stdout.contains("invalid_grant"), "{r}");
    assert!(
        r.stdout.contains("ACTION: The user must reconnect"),
        "the report must say in plain words that the user must reconnect\n{r}"
    );
    let row = s.row(seeded.id).await;
    assert_eq!(row.state, "needs_reconnect");
    let last = s.history(seeded.id).await.pop().unwrap();
    assert_eq!(
        (last.mode.as_str(), last.outcome.as_str()),
        ("real", "needs_reconnect")
    );
    assert_eq!(s.mock.token_request_count(), 1);

    // Marked: the next run says so at once, with no token request.
    let again = s.run(&["--mode", "real", "--credential-id", &id, "--format", "json"]);
    again.assert_code(1);
    assert!(
        again.json()["action"]
            .as_str()
            .unwrap()
            .starts_with("The user must reconnect"),
        "{again}"
    );
    assert_eq!(s.mock.token_request_count(), 1, "needs_reconnect is final");
}

#[tokio::test]
async fn real_fails_its_tokeninfo_check_when_google_grants_other_scopes_than_stored() {
    let s = Staging::new(TestDb::sqlite()).await;
    let seeded = s
        .seed_with(
            Access::Expired,
            &[GMAIL_READONLY],
            &[GMAIL_READONLY, CALENDAR_READONLY],
        )
        .await;
    let r = s.run(&[
        "--mode",
        "real",
        "--credential-id",
        &seeded.id.to_string(),
        "--format",
        "json",
    ]);
    r.assert_code(1);
    let v = r.json();
    assert_eq!(check(&v, "checks", "refresh")["status"], "pass", "{r}");
    let tokeninfo = check(&v, "checks", "tokeninfo");
    assert_eq!(tokeninfo["status"], "fail", "{r}");
    assert!(
        tokeninfo["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("scopes changed (missing: {CALENDAR_READONLY}")),
        "{r}"
    );
}

// ---- force-expire --------------------------------------------------------------------------

on_both_backends!(
    force_expire_passes_its_four_steps,
    force_expire_passes_its_four_steps
);
async fn force_expire_passes_its_four_steps(db: TestDb) {
    let s = Staging::new(db).await;
    let seeded = s.seed(Access::Valid).await;
    let r = s.run(&[
        "--mode",
        "force-expire",
        "--credential-id",
        &seeded.id.to_string(),
        "--format",
        "json",
    ]);
    r.assert_code(0);
    let v = r.json();
    let steps: Vec<(String, String)> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            "1 valid credential",
            "2 expire",
            "3 refresh as a worker",
            "4 new token works"
        ]
        .map(|n| (n.to_owned(), "pass".to_owned())),
        "{r}"
    );
    let stored = s.secrets(seeded.id).await;
    let new_access = stored.access_token.unwrap().expose_secret().to_owned();
    assert_ne!(
        new_access, seeded.access,
        "a valid token must have been replaced"
    );
    assert_eq!(s.mock.access_token_status(&new_access), TokenStatus::Live);
    assert_eq!(
        stored.refresh_token.unwrap().expose_secret(),
        seeded.refresh
    );
    assert!(s.row(seeded.id).await.expires_at.unwrap() > Utc::now() + TimeDelta::minutes(50));
    assert_eq!(
        s.endpoints_hit(),
        vec![Endpoint::Token, Endpoint::TokenInfo, Endpoint::Api]
    );
    let history: Vec<(String, String, String)> = s
        .history(seeded.id)
        .await
        .into_iter()
        .skip(1)
        .map(|h| (h.mode, h.action, h.outcome))
        .collect();
    assert_eq!(
        history,
        [
            ("force-expire", "expire", "ok"),
            ("force-expire", "refresh", "refreshed")
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
}

#[tokio::test]
async fn force_expire_fails_step_4_when_the_api_rejects_the_new_token() {
    let s = Staging::new(TestDb::sqlite()).await;
    let seeded = s.seed(Access::Valid).await;
    s.mock.set_api_script(vec![
        Step::respond(401, wire::API_UNAUTHENTICATED_BODY),
        Step::respond(401, wire::API_UNAUTHENTICATED_BODY),
    ]);
    let r = s.run(&[
        "--mode",
        "force-expire",
        "--credential-id",
        &seeded.id.to_string(),
    ]);
    r.assert_code(1);
    for passed in [
        "PASS 1 valid credential",
        "PASS 2 expire",
        "PASS 3 refresh as a worker",
    ] {
        assert!(r.stdout.contains(passed), "{passed}\n{r}");
    }
    let step4 = r
        .stdout
        .lines()
        .find(|l| l.contains("4 new token works"))
        .unwrap_or_else(|| panic!("no step 4\n{r}"));
    assert!(step4.contains("FAIL"), "{r}");
    assert!(step4.contains("HTTP 401"), "{r}");
    assert!(r.stdout.contains("FAIL: 3 of 4 steps passed"), "{r}");
}

on_both_backends!(
    force_expire_with_no_refresh_only_expires_the_credential,
    force_expire_with_no_refresh_only_expires_the_credential
);
async fn force_expire_with_no_refresh_only_expires_the_credential(db: TestDb) {
    let s = Staging::new(db).await;
    let seeded = s.seed(Access::Valid).await;
    let r = s.run(&[
        "--mode",
        "force-expire",
        "--credential-id",
        &seeded.id.to_string(),
        "--no-refresh",
        "--format",
        "json",
    ]);
    r.assert_code(0);
    let v = r.json();
    assert_eq!(check(&v, "steps", "2 expire")["status"], "pass");
    assert_eq!(
        check(&v, "steps", "3 refresh as a worker")["status"],
        "skip"
    );
    assert_eq!(check(&v, "steps", "4 new token works")["status"], "skip");
    assert_eq!(v["after"]["expired"], true, "{r}");

    let row = s.row(seeded.id).await;
    assert!(row.expires_at.unwrap() < Utc::now());
    let stored = row.decrypt(&keyring(&s.key)).unwrap();
    assert!(
        stored.expiry.unwrap() < Utc::now(),
        "the payload's expiry must agree with the column"
    );
    assert_eq!(stored.access_token.unwrap().expose_secret(), seeded.access);
    assert!(s.mock.journal().is_empty(), "--no-refresh sends nothing");
    let last = s.history(seeded.id).await.pop().unwrap();
    assert_eq!(
        (last.mode.as_str(), last.action.as_str()),
        ("force-expire", "expire")
    );
}

// ---- copy ---------------------------------------------------------------------------------

async fn another_store_like(db: &TestDb) -> TestDb {
    match db.backend {
        Backend::Sqlite => TestDb::sqlite(),
        Backend::Postgres => TestDb::postgres()
            .await
            .expect("postgres answered a moment ago"),
    }
}

on_both_backends!(
    copy_reencrypts_one_credential_with_this_stores_key,
    copy_reencrypts_one_credential_with_this_stores_key
);
async fn copy_reencrypts_one_credential_with_this_stores_key(source: TestDb) {
    let source_key = new_key(source.path());
    let source_store = Store::connect(&source.url).await.unwrap();
    let source_ring = keyring(&source_key);
    let _other = insert(
        &source_store,
        &source_ring,
        &planted(Some("cid")),
        "someone else",
    )
    .await;
    let mine = insert(
        &source_store,
        &source_ring,
        &planted(Some("cid")),
        "my test account",
    )
    .await;
    let source_before = columns(&source_store.get(mine).await.unwrap().unwrap());
    source_store.close().await;

    let dest = another_store_like(&source).await;
    let dest_key = new_key(dest.path());
    let mut c = dest.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &dest_key)
        .env("OAUTHTEST_FROM_ENCRYPTION_KEY", &source_key);
    let r = run(
        c,
        &[
            "--mode",
            "copy",
            "--credential-id",
            &mine.to_string(),
            "--from-database-url",
            &source.url,
            "--format",
            "json",
        ],
        None,
    );
    r.assert_code(0);
    let v = r.json();
    let new_id = v["id"].as_i64().unwrap();
    assert_eq!(v["source_id"], mine);
    assert_eq!(v["name"], "my test account");

    let dest_store = Store::connect(&dest.url).await.unwrap();
    let rows = dest_store.list().await.unwrap();
    assert_eq!(rows.len(), 1, "exactly one credential copied");
    let copy = &rows[0];
    assert_eq!(copy.id, new_id);
    assert_eq!((copy.user_id, copy.name.as_str()), (42, "my test account"));
    let dest_ring = keyring(&dest_key);
    assert_eq!(copy.key_id, dest_ring.current().id());
    assert!(copy.encrypted_data.contains(dest_ring.current().id()));
    let secrets = copy.decrypt(&dest_ring).unwrap();
    assert_eq!(
        secrets.refresh_token.unwrap().expose_secret(),
        PLANTED_REFRESH
    );
    assert_eq!(
        secrets.access_token.unwrap().expose_secret(),
        PLANTED_ACCESS
    );
    assert_eq!(secrets.client_id.as_deref(), Some("cid"));
    assert!(
        copy.decrypt(&source_ring).is_err(),
        "the copy must be sealed with this store's key, not the source's"
    );
    let history = dest_store.history(new_id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].mode.as_str(), history[0].action.as_str()),
        ("copy", "copy")
    );

    // The source is only read, through a connection that cannot write.
    let read_only = Store::connect_read_only(&source.url).await.unwrap();
    assert!(
        try_insert(&read_only, &source_ring, &planted(None), "x")
            .await
            .is_err(),
        "a write through the source connection must fail"
    );
    read_only.close().await;
    let source_store = Store::connect(&source.url).await.unwrap();
    assert_eq!(
        columns(&source_store.get(mine).await.unwrap().unwrap()),
        source_before
    );
    assert_eq!(source_store.history(mine).await.unwrap().len(), 1);

    // Copied again: a second row, and the report says so.
    assert_eq!(v["copied_before"], serde_json::json!([]));
    let mut c = dest.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &dest_key)
        .env("OAUTHTEST_FROM_ENCRYPTION_KEY", &source_key);
    let again = run(
        c,
        &[
            "--mode",
            "copy",
            "--credential-id",
            &mine.to_string(),
            "--from-database-url",
            &source.url,
        ],
        None,
    );
    again.assert_code(0);
    assert!(
        again.stdout.contains(&format!(
            "was copied here before (credential {new_id}); this copy is a second row"
        )),
        "{again}"
    );
}

#[tokio::test]
async fn copy_refuses_bulk_and_bad_input_and_writes_nothing() {
    let source = TestDb::sqlite();
    let source_key = new_key(source.path());
    let store = Store::connect(&source.url).await.unwrap();
    let id = insert(&store, &keyring(&source_key), &planted(Some("cid")), "mine").await;
    store.close().await;
    let dest = TestDb::sqlite();
    let dest_key = new_key(dest.path());
    let id = id.to_string();
    let copy = |env: &[(&str, &str)], args: &[&str]| {
        let mut c = dest.cmd();
        c.env("OAUTHTEST_ENCRYPTION_KEY", &dest_key);
        for (k, v) in env {
            c.env(k, v);
        }
        let mut all = vec!["--mode", "copy", "--from-database-url", source.url.as_str()];
        all.extend(args);
        run(c, &all, None)
    };
    let with_key = [("OAUTHTEST_FROM_ENCRYPTION_KEY", source_key.as_str())];

    copy(&with_key, &[])
        .assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has("copies exactly one credential")
        .assert_stderr_has("refused");
    let two = copy(&with_key, &["--credential-id", &id, "--credential-id", "2"]);
    two.assert_code(2);
    assert!(two.stderr.contains("--credential-id"), "{two}");
    copy(&with_key, &["--credential-id", "77"])
        .assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has("credential 77 not found");
    copy(&[], &["--credential-id", &id])
        .assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has("OAUTHTEST_FROM_ENCRYPTION_KEY: is not set");
    let wrong = new_key(dest.path());
    copy(
        &[("OAUTHTEST_FROM_ENCRYPTION_KEY", &wrong)],
        &["--credential-id", &id],
    )
    .assert_code(2)
    .assert_one_line_error()
    .assert_stderr_has("OAUTHTEST_FROM_ENCRYPTION_KEY / --from-key-file: credential");
    let mut c = dest.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &dest_key);
    run(c, &["--mode", "copy", "--credential-id", &id], None)
        .assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has("--mode copy needs --from-database-url");
    let mut c = dest.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &dest_key)
        .env("OAUTHTEST_FROM_ENCRYPTION_KEY", &dest_key);
    run(
        c,
        &[
            "--mode",
            "copy",
            "--credential-id",
            &id,
            "--from-database-url",
            &dest.url,
        ],
        None,
    )
    .assert_code(2)
    .assert_one_line_error()
    .assert_stderr_has("is this store");
    let missing = dest.path().join("production.db");
    let mut c = dest.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &dest_key)
        .env("OAUTHTEST_FROM_ENCRYPTION_KEY", &source_key);
    run(
        c,
        &[
            "--mode",
            "copy",
            "--credential-id",
            &id,
            "--from-database-url",
            &format!("sqlite://{}", missing.display()),
        ],
        None,
    )
    .assert_code(2)
    .assert_one_line_error()
    .assert_stderr_has("production.db");
    assert!(!missing.exists(), "copy must never create its source");
    assert!(
        !dest.path().join("store.db").exists(),
        "a refused copy must not even create the destination store"
    );

    // --from-key-file works as the variable does.
    let key_file = dest.write("source.key", &source_key);
    copy(
        &[],
        &[
            "--credential-id",
            &id,
            "--from-key-file",
            key_file.to_str().unwrap(),
        ],
    )
    .assert_code(0);
    let rows = Store::connect(&dest.url)
        .await
        .unwrap()
        .list()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}

// ---- scrub --------------------------------------------------------------------------------

on_both_backends!(
    scrub_shows_its_plan_then_wipes_every_credential_but_the_kept_ones,
    scrub_shows_its_plan_then_wipes_every_credential_but_the_kept_ones
);
async fn scrub_shows_its_plan_then_wipes_every_credential_but_the_kept_ones(db: TestDb) {
    let key = new_key(db.path());
    let ring = keyring(&key);
    let store = Store::connect(&db.url).await.unwrap();
    let a = insert(&store, &ring, &planted(Some("cid")), "user a").await;
    let keep = insert(&store, &ring, &planted(Some("cid")), "our test account").await;
    let b = insert(&store, &ring, &planted(Some("cid")), "user b").await;
    // A row sealed with production's key, which staging does not have.
    let production = Keyring::new(EncryptionKey::generate(), vec![]);
    let foreign = insert(&store, &production, &planted(Some("cid")), "user c").await;
    let ids = [a, keep, b, foreign];
    let mut before = Vec::new();
    for id in ids {
        before.push(columns(&store.get(id).await.unwrap().unwrap()));
    }
    let scrub = |args: &[&str]| {
        let mut c = db.cmd();
        c.env("OAUTHTEST_ENCRYPTION_KEY", &key);
        let mut all = vec!["--mode", "scrub"];
        all.extend(args);
        run(c, &all, None)
    };
    let keep_s = keep.to_string();

    // Without --yes: the plan only.
    let preview = scrub(&["--keep", &keep_s]);
    preview.assert_code(0);
    assert!(
        preview.stdout.contains("scrub (preview, nothing changed)"),
        "{preview}"
    );
    for id in [a, b, foreign] {
        assert!(
            preview.stdout.contains(&format!("would scrub {id} ")),
            "{id}\n{preview}"
        );
    }
    assert!(
        preview.stdout.contains(&format!("keep {keep}")),
        "{preview}"
    );
    assert!(preview.stdout.contains("unreadable payload"), "{preview}");
    assert!(preview.stdout.contains("Run again with --yes"), "{preview}");
    // --yes with --dry-run is a contradiction, refused before anything is opened.
    scrub(&["--keep", &keep_s, "--yes", "--dry-run"])
        .assert_code(2)
        .assert_stderr_has("--yes and --dry-run contradict each other");
    for (id, cols) in ids.iter().zip(&before) {
        assert_eq!(
            &columns(&store.get(*id).await.unwrap().unwrap()),
            cols,
            "row {id}"
        );
    }

    // An unknown --keep id stops everything.
    scrub(&["--keep", &format!("{keep},999"), "--yes"])
        .assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has("--keep 999: no credential has this id");
    for (id, cols) in ids.iter().zip(&before) {
        assert_eq!(
            &columns(&store.get(*id).await.unwrap().unwrap()),
            cols,
            "row {id}"
        );
    }

    // With --yes.
    let done = scrub(&["--keep", &keep_s, "--yes", "--format", "json"]);
    done.assert_code(0);
    let v = done.json();
    assert_eq!(v["applied"], true);
    let scrubbed: Vec<i64> = v["scrubbed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(scrubbed, vec![a, b, foreign]);
    assert_eq!(v["kept"], serde_json::json!([keep]));

    for id in [a, b, foreign] {
        let row = store.get(id).await.unwrap().unwrap();
        assert_eq!(row.state, "needs_reconnect", "row {id}");
        assert!(!row.has_refresh_token, "row {id}");
        assert_eq!(row.expires_at, None, "row {id}");
        assert_eq!(row.key_id, ring.current().id(), "row {id}");
        let left = row.decrypt(&ring).unwrap();
        assert!(
            left.access_token.is_none() && left.refresh_token.is_none(),
            "row {id}"
        );
        assert!(left.id_token.is_none(), "row {id}");
        let last = store.history(id).await.unwrap().pop().unwrap();
        assert_eq!(
            (
                last.mode.as_str(),
                last.action.as_str(),
                last.outcome.as_str()
            ),
            ("scrub", "scrub", "needs_reconnect")
        );
    }
    assert_eq!(
        store
            .get(a)
            .await
            .unwrap()
            .unwrap()
            .decrypt(&ring)
            .unwrap()
            .client_id
            .as_deref(),
        Some("cid"),
        "the client stays, so the row still says what it was for"
    );
    assert!(
        store
            .get(foreign)
            .await
            .unwrap()
            .unwrap()
            .decrypt(&production)
            .is_err(),
        "production's envelope must be gone"
    );
    assert_eq!(
        columns(&store.get(keep).await.unwrap().unwrap()),
        before[1],
        "the kept row must be untouched"
    );

    // A second run finds nothing to do.
    let again = scrub(&["--keep", &keep_s, "--yes", "--format", "json"]);
    again.assert_code(0);
    let v = again.json();
    assert_eq!(v["scrubbed"], serde_json::json!([]));
    assert_eq!(v["already_clean"], serde_json::json!([a, b, foreign]));

    // A scrubbed credential cannot be used, and says why.
    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &key);
    let r = run(
        c,
        &[
            "--mode",
            "real",
            "--credential-id",
            &a.to_string(),
            "--dry-run",
        ],
        None,
    );
    r.assert_code(1);
    assert!(r.stdout.contains("the user must reconnect"), "{r}");
}

// A scrub (any rewrite) is a compare-and-swap on the version, and it fences out a refresh that
// was already in flight: that worker's write-back finds its lease gone and cannot put the
// wiped tokens back.
on_both_backends!(
    scrub_fences_out_a_refresh_in_flight_and_never_overwrites_a_newer_row,
    scrub_fences_out_a_refresh_in_flight_and_never_overwrites_a_newer_row
);
async fn scrub_fences_out_a_refresh_in_flight_and_never_overwrites_a_newer_row(db: TestDb) {
    let key = new_key(db.path());
    let ring = keyring(&key);
    let store = Store::connect(&db.url).await.unwrap();
    let id = insert(&store, &ring, &planted(Some("cid")), "user a").await;
    let stale = store.get(id).await.unwrap().unwrap();
    assert!(store
        .try_acquire_lease(id, "worker-1", Duration::from_secs(60))
        .await
        .unwrap());

    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", &key);
    run(c, &["--mode", "scrub", "--yes"], None).assert_code(0);

    let fresh = planted(Some("cid"));
    let written = store
        .complete_refresh(
            id,
            "worker-1",
            RefreshWrite {
                secrets: Some(&fresh),
                state: CredentialState::Active,
                outcome: "refreshed",
                failed: false,
                cooldown_until_ms: None,
            },
            &ring,
            &HistoryEntry::new("worker", "refresh", "refreshed", None),
        )
        .await
        .unwrap();
    assert!(
        !written,
        "the in-flight refresh must lose its lease to the scrub"
    );
    let row = store.get(id).await.unwrap().unwrap();
    assert_eq!(row.state, "needs_reconnect");
    assert!(row.decrypt(&ring).unwrap().refresh_token.is_none());

    // A writer holding the row as it was before the scrub changes nothing.
    let version = row.version;
    let h = HistoryEntry::new("test", "expire", "ok", None);
    assert!(!store
        .rewrite(&stale, &fresh, CredentialState::Active, &ring, &h)
        .await
        .unwrap());
    let row = store.get(id).await.unwrap().unwrap();
    assert_eq!(
        (row.version, row.state.as_str()),
        (version, "needs_reconnect")
    );
}

// ---- safety -------------------------------------------------------------------------------

#[tokio::test]
async fn production_guard_holds_for_every_mode_that_changes_credentials() {
    let s = Staging::new(TestDb::sqlite()).await;
    let seeded = s.seed(Access::Valid).await;
    let before = columns(&s.row(seeded.id).await);
    let id = seeded.id.to_string();
    let other = TestDb::sqlite();
    let writing: Vec<Vec<&str>> = vec![
        vec!["--mode", "real", "--credential-id", &id],
        vec!["--mode", "force-expire", "--credential-id", &id],
        vec![
            "--mode",
            "force-expire",
            "--credential-id",
            &id,
            "--no-refresh",
        ],
        vec![
            "--mode",
            "copy",
            "--credential-id",
            &id,
            "--from-database-url",
            &other.url,
        ],
        vec!["--mode", "scrub", "--yes"],
    ];
    // Read-only previews are allowed in production: they change nothing.
    for args in [
        vec!["--mode", "real", "--credential-id", &id, "--dry-run"],
        vec!["--mode", "scrub"],
    ] {
        let r = s.run_env(&args, &[("OAUTHTEST_ENV", "production")]);
        assert!(
            !r.stderr.contains("refusing to run"),
            "preview refused in production:\n{r}"
        );
        assert_ne!(r.code, 2, "{r}");
    }
    for args in &writing {
        let mode = args[1];
        let by_env = s.run_env(args, &[("OAUTHTEST_ENV", "production")]);
        by_env
            .assert_code(2)
            .assert_one_line_error()
            .assert_stderr_has(&format!("refusing to run --mode {mode}"))
            .assert_stderr_has("--i-know-this-is-production");
        let mut by_flag = args.clone();
        by_flag.extend(["--env", "prod"]);
        s.run(&by_flag)
            .assert_code(2)
            .assert_stderr_has(&format!("refusing to run --mode {mode}"));
    }
    assert_eq!(
        columns(&s.row(seeded.id).await),
        before,
        "nothing may change"
    );
    assert!(s.mock.journal().is_empty(), "nothing may be sent");
    assert!(!other.path().join("store.db").exists());

    // Read-only modes still run, and the loud override lets a writing mode through.
    s.run_env(&["--mode", "list"], &[("OAUTHTEST_ENV", "production")])
        .assert_code(0);
    s.run_env(
        &[
            "--mode",
            "force-expire",
            "--credential-id",
            &id,
            "--no-refresh",
            "--i-know-this-is-production",
        ],
        &[("OAUTHTEST_ENV", "production")],
    )
    .assert_code(0);
    assert!(s.row(seeded.id).await.expires_at.unwrap() < Utc::now());
}
