//! `worker-sim --credential-id` on the application's own store: oauthtest's simulated workers on
//! the application's existing Fernet rows (written by Python `cryptography`), against a running
//! `serve`, on SQLite and PostgreSQL. With coordination, one token request per row per expiry in
//! serve's journal, and afterwards the application's own library reads the live tokens with
//! every other field unchanged; without it, the refresh storm is caught; `invalid_grant` marks
//! the row the application's way and fails fast.

use crate::app_store::{
    available, column, fastapi_payload, fastapi_row, fastapi_table, fernet_key, App, Lib,
    FASTAPI_CONFIG,
};
use crate::on_both_backends;
use crate::support::serve::{
    admin_get, admin_post, assert_journal_judged_and_held, invariant, refresh, Serve,
};
use crate::support::*;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::process::Command;

const GMAIL_RO: &str = "https://www.googleapis.com/auth/gmail.readonly";

/// The application's store: Fernet rows 1 and 2 holding refresh tokens minted at `serve` (or
/// the ones given), row 3 not a Google credential.
struct Rows {
    app: App,
    key: String,
    payloads: Vec<Value>,
}

async fn rows(db: &TestDb, serve: &Serve, tokens: Option<&[&str]>) -> Option<Rows> {
    if !available(Lib::Fernet) {
        return None;
    }
    let key = fernet_key();
    let app = App::new(Lib::Fernet, &[("APP_ENCRYPTION_KEY", &key)]);
    fastapi_table(db).await;
    let mut payloads = Vec::new();
    for n in 0..2 {
        let mut payload = fastapi_payload();
        // Minting registers the application's OAuth client at serve.
        let client = payload["client_id"].as_str().unwrap().to_owned();
        let (status, minted) = admin_post(
            serve,
            "refresh-tokens",
            json!({"client_id": client, "client_secret": PLANTED_CLIENT_SECRET,
                   "scopes": [GMAIL_RO, "openid"]}),
        )
        .await;
        assert_eq!(status, 201, "{minted}");
        let token = match tokens {
            Some(t) => t[n].to_owned(),
            None => minted["refresh_token"].as_str().unwrap().to_owned(),
        };
        payload["refresh_token"] = json!(token);
        payload["account"]["email"] = json!(format!("user{n}@example.com"));
        fastapi_row(
            db,
            7 + n as i64,
            "gmailOAuth2",
            "Gmail",
            &app.seal(&payload),
        )
        .await;
        payloads.push(payload);
    }
    fastapi_row(
        db,
        9,
        "slackOAuth2",
        "Not Google",
        &app.seal(&json!({"x": 1})),
    )
    .await;
    db.write("app.toml", FASTAPI_CONFIG);
    Some(Rows { app, key, payloads })
}

/// serve answering every token request as Google does, after `delay_ms`: long enough that every
/// worker reads the expired row before the first refresh is written back, so that without
/// coordination they all refresh it, however fast a database connection opens.
pub(crate) fn slow_serve(dir: &TestDb, delay_ms: u32, rotate: bool) -> Serve {
    let scenarios = dir.path().join("serve-scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::write(
        scenarios.join("slow_token_endpoint.toml"),
        format!(
            "description = \"Google's answers, each after {delay_ms} ms.\"\n\
             [mock]\nrotate_refresh_tokens = {rotate}\n\
             [[token]]\naction = \"google\"\ndelay_ms = {delay_ms}\nrepeat = 1000\n\
             [expect]\noutcome = \"refreshed\"\ntoken_requests = 1\nstate = \"active\"\n\
             api_call = \"succeeded\"\n"
        ),
    )
    .unwrap();
    Serve::start(&[
        "--scenarios",
        scenarios.to_str().unwrap(),
        "--scenario",
        "slow_token_endpoint",
    ])
}

fn sim(db: &TestDb, rows: &Rows, serve: &Serve, ids: &str, extra: &[&str]) -> Command {
    let mut c = db.cmd();
    c.env("APP_ENCRYPTION_KEY", &rows.key)
        .args(["--mode", "worker-sim", "--store-config", "app.toml"])
        .args(["--credential-ids", ids, "--format", "json"])
        .args(serve.endpoint_args())
        .args(extra);
    c
}

async fn stored(db: &TestDb, rows: &Rows, id: i64) -> Value {
    let sealed = column(
        db,
        &format!("SELECT encrypted_data FROM credentials WHERE id = {id}"),
    )
    .await
    .unwrap();
    rows.app.open(&sealed)
}

/// serve's token requests: (all, the ones answered 200).
async fn token_requests(serve: &Serve) -> (usize, usize) {
    let (_, journal) = admin_get(serve, "requests?endpoint=token").await;
    let all = journal["requests"].as_array().unwrap();
    (all.len(), all.iter().filter(|e| e["status"] == 200).count())
}

on_both_backends!(
    oauthtest_workers_refresh_each_application_row_once_and_the_application_reads_the_live_tokens,
    coordinated_run
);
async fn coordinated_run(db: TestDb) {
    // Rotation: a refresh token that is not written back is lost, and the journal would show
    // the superseded one presented again. Slow answers: the workers really wait on each other.
    let serve = slow_serve(&db, 200, true);
    let Some(rows) = rows(&db, &serve, None).await else {
        return;
    };
    let untouched = column(&db, "SELECT encrypted_data FROM credentials WHERE id = 3").await;
    let r = run(
        sim(
            &db,
            &rows,
            &serve,
            "1,2",
            &["--workers", "8", "--jobs", "200"],
        ),
        &[],
        None,
    );
    r.assert_code(0);
    let v = r.json();
    assert_journal_judged_and_held(&v);
    assert_eq!(v["jobs_succeeded"], 200, "{v}");
    assert_eq!(token_requests(&serve).await, (2, 2), "one per row: {v}");

    let mut new_tokens = Vec::new();
    for (n, before) in rows.payloads.iter().enumerate() {
        let now = stored(&db, &rows, n as i64 + 1).await;
        let access = now["access_token"].as_str().unwrap();
        let refresh_token = now["refresh_token"].as_str().unwrap();
        assert!(access.starts_with("ya29."), "a new access token");
        assert_ne!(now["refresh_token"], before["refresh_token"], "rotated");
        let expiry = DateTime::parse_from_rfc3339(now["expiry"].as_str().unwrap()).unwrap();
        let left = (expiry.with_timezone(&Utc) - Utc::now()).num_seconds();
        assert!((3000..=3700).contains(&left), "an hour ahead: {left} s");
        let mut want = before.clone();
        for field in ["access_token", "refresh_token", "expiry"] {
            want[field] = now[field].clone();
        }
        assert_eq!(now, want, "every other field as the application wrote it");
        // The stored refresh token is the live one: serve still takes it.
        let client = before["client_id"].as_str().unwrap();
        let (status, body) = refresh(&serve, refresh_token, client, PLANTED_CLIENT_SECRET).await;
        assert_eq!(status, 200, "{body}");
        new_tokens.extend([access.to_owned(), refresh_token.to_owned()]);
    }
    assert_eq!(
        column(&db, "SELECT user_id || '|' || type || '|' || name || '|' || status FROM credentials WHERE id = 2").await.as_deref(),
        Some("8|gmailOAuth2|Gmail|active"),
        "the other columns are left alone"
    );
    assert_eq!(
        column(&db, "SELECT encrypted_data FROM credentials WHERE id = 3").await,
        untouched,
        "a row not named is left alone"
    );
    assert_eq!(
        column(&db, "SELECT COUNT(*) FROM oauthtest_app_leases")
            .await
            .as_deref(),
        Some("0"),
        "every lease released, in oauthtest's own table"
    );
    let printed = format!("{}{}", r.stdout, r.stderr);
    let secrets: Vec<&str> = rows
        .payloads
        .iter()
        .map(|p| p["refresh_token"].as_str().unwrap())
        .chain(new_tokens.iter().map(String::as_str))
        .chain([rows.key.as_str()])
        .collect();
    assert_no_secrets(&printed, &secrets);
}

on_both_backends!(a_refresh_storm_on_the_applications_rows_is_caught, storm);
async fn storm(db: TestDb) {
    let serve = slow_serve(&db, 200, false);
    let Some(rows) = rows(&db, &serve, None).await else {
        return;
    };
    let r = run(
        sim(
            &db,
            &rows,
            &serve,
            "1,2",
            &["--workers", "8", "--jobs", "64"],
        ),
        &["--unsafe-no-refresh-coordination"],
        None,
    );
    r.assert_code(1);
    assert_eq!(
        invariant(&r.json(), "one refresh per credential per expiry")["held"],
        false,
        "{r}"
    );
    assert!(token_requests(&serve).await.1 > 2, "{r}");
    assert_no_secrets(&format!("{}{}", r.stdout, r.stderr), &[&rows.key]);
}

on_both_backends!(
    invalid_grant_marks_the_applications_row_for_reconnect_and_fails_fast,
    invalid_grant
);
async fn invalid_grant(db: TestDb) {
    let serve = Serve::start(&[]);
    let dead = [
        "1//REVOKED-OR-NEVER-ISSUED-1",
        "1//REVOKED-OR-NEVER-ISSUED-2",
    ];
    let Some(rows) = rows(&db, &serve, Some(&dead)).await else {
        return;
    };
    let r = run(
        sim(&db, &rows, &serve, "1", &["--workers", "4", "--jobs", "40"]),
        &[],
        None,
    );
    r.assert_code(1);
    let v = r.json();
    assert_eq!(invariant(&v, "no job fails")["held"], false, "{v}");
    assert_eq!(
        invariant(&v, "no token request after invalid_grant")["held"],
        true,
        "{v}"
    );
    assert_eq!(v["failures_by_outcome"]["needs_reconnect"], 40, "{v}");
    assert_eq!(
        token_requests(&serve).await.0,
        1,
        "one request, then none: {v}"
    );
    assert_eq!(
        column(&db, "SELECT status FROM credentials WHERE id = 1")
            .await
            .as_deref(),
        Some("needs_reconnect"),
        "the application's own mark"
    );
    assert_eq!(
        stored(&db, &rows, 1).await,
        rows.payloads[0],
        "the payload is left as it was"
    );
    // Marked, the row makes no token request at all the next time.
    let again = run(
        sim(&db, &rows, &serve, "1", &["--workers", "2", "--jobs", "10"]),
        &[],
        None,
    );
    again.assert_code(1);
    assert_eq!(token_requests(&serve).await.0, 1, "{again}");
    assert_no_secrets(
        &format!("{}{}{}{}", r.stdout, r.stderr, again.stdout, again.stderr),
        &[&rows.key, dead[0]],
    );
}

#[tokio::test]
async fn a_bad_application_row_id_is_exit_2_naming_it_and_nothing_is_written() {
    let serve = Serve::start(&[]);
    let db = TestDb::sqlite();
    let Some(rows) = rows(&db, &serve, None).await else {
        return;
    };
    let before = store_snapshot(&db).await;
    for (ids, named) in [("1,99", "99"), ("3", "3")] {
        let r = run(sim(&db, &rows, &serve, ids, &[]), &[], None);
        r.assert_code(2).assert_stderr_has(named);
        assert_no_secrets(&format!("{}{}", r.stdout, r.stderr), &[&rows.key]);
    }
    assert!(
        snapshot_changes(&before, &store_snapshot(&db).await).is_empty(),
        "nothing written, no table created"
    );
    assert_eq!(token_requests(&serve).await.0, 0);
    // Without --token-url there is nothing to run against.
    let mut c = db.cmd();
    c.env("APP_ENCRYPTION_KEY", &rows.key);
    let r = run(
        c,
        &[
            "--mode",
            "worker-sim",
            "--store-config",
            "app.toml",
            "--credential-id",
            "1",
        ],
        None,
    );
    r.assert_code(2).assert_stderr_has("--token-url");
}

/// The engine's write-back on the application's row, step by step through the library: a row
/// the application changed meanwhile is re-read, never overwritten blindly.
#[tokio::test]
async fn a_write_back_keeps_what_the_application_changed_meanwhile_and_never_its_newer_tokens() {
    use oauthtest::app_store::RowId;
    use oauthtest::refresh::{AppRows, RefreshStore};
    use oauthtest::secret::AccessToken;
    use oauthtest::store::{CredentialState, HistoryEntry, RefreshWrite};
    use std::time::Duration;

    let Some((db, app, store, cipher)) = crate::app_store::fernet_store("").await else {
        return;
    };
    let rows = AppRows::new(store, cipher).await.unwrap();
    let (id, owner, ttl) = (RowId::from(1), "worker-a", Duration::from_secs(30));
    let history = HistoryEntry::new("worker-sim", "refresh", "refreshed", None);
    let stored = || async {
        let sealed = column(&db, "SELECT encrypted_data FROM credentials WHERE id = 1")
            .await
            .unwrap();
        app.open(&sealed)
    };
    let application_writes = |payload: Value| {
        let sealed = app.seal(&payload);
        let db = &db;
        async move {
            crate::app_store::sql(
                db,
                &format!(
                    "UPDATE credentials SET encrypted_data = {} WHERE id = 1",
                    crate::app_store::lit(&sealed)
                ),
            )
            .await;
        }
    };
    let ours = |read: &_, token: &str| {
        let mut new = rows.secrets(read).unwrap();
        new.access_token = Some(AccessToken::from(token));
        new.expiry = Some(Utc::now() + chrono::Duration::hours(1));
        new
    };
    let write = |new| RefreshWrite {
        secrets: Some(new),
        state: CredentialState::Active,
        outcome: "refreshed",
        failed: false,
        cooldown_until_ms: None,
    };

    // The application renames the account during the refresh: the result is written over the
    // row as it is now, the rename kept.
    let read = rows.load(&id).await.unwrap();
    assert!(rows.try_acquire_lease(&id, owner, ttl).await.unwrap());
    assert!(!rows.try_acquire_lease(&id, "worker-b", ttl).await.unwrap());
    let mut theirs = stored().await;
    theirs["account"]["email"] = json!("renamed@example.com");
    application_writes(theirs).await;
    let new = ours(&read, "ya29.OURS-1");
    assert!(rows
        .complete_refresh(&id, &read, owner, write(&new), &history)
        .await
        .unwrap());
    let now = stored().await;
    assert_eq!(now["access_token"], "ya29.OURS-1");
    assert_eq!(now["account"]["email"], "renamed@example.com");
    assert!(
        rows.try_acquire_lease(&id, "worker-b", ttl).await.unwrap(),
        "released"
    );
    rows.release_lease(&id, "worker-b").await.unwrap();

    // The application refreshed the row itself meanwhile: its tokens stay, ours is discarded.
    let read = rows.load(&id).await.unwrap();
    assert!(rows.try_acquire_lease(&id, owner, ttl).await.unwrap());
    let mut theirs = stored().await;
    theirs["access_token"] = json!("ya29.THE-APPLICATIONS-OWN");
    application_writes(theirs.clone()).await;
    let new = ours(&read, "ya29.OURS-2");
    assert!(!rows
        .complete_refresh(&id, &read, owner, write(&new), &history)
        .await
        .unwrap());
    assert_eq!(stored().await, theirs);

    // A worker that no longer holds the lease writes nothing.
    let read = rows.load(&id).await.unwrap();
    let new = ours(&read, "ya29.OURS-3");
    assert!(!rows
        .complete_refresh(&id, &read, owner, write(&new), &history)
        .await
        .unwrap());
    assert_eq!(stored().await, theirs);
}
