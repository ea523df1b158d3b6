//! worker-sim against a running `serve` (`--token-url`): the invariants judged from serve's own
//! journal, every process that used it included, and a run whose every job fails failing.

use crate::on_both_backends;
use crate::support::serve::{
    admin_get, assert_journal_judged_and_held, http, invariant, mint_authorized_user, refresh,
    Serve,
};
use crate::support::*;
use serde_json::Value;
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

/// `n` credentials minted at `serve`, each with its own client, imported into `db`; returns
/// the key, the ids and the refresh tokens.
async fn seeded(db: &TestDb, serve: &Serve, n: usize) -> (String, Vec<String>, Vec<String>) {
    let key = new_key(db.path());
    let (mut ids, mut tokens) = (Vec::new(), Vec::new());
    for i in 0..n {
        let client = format!("journal-{i}.apps.googleusercontent.com");
        let (token, file) = mint_authorized_user(serve, &client, &format!("journal-{i}")).await;
        let mut c = db.cmd();
        c.env("OAUTHTEST_ENCRYPTION_KEY", &key);
        let r = run(
            c,
            &["--mode", "import", "--file", "-", "--format", "json"],
            Some(&file),
        );
        r.assert_code(0);
        ids.push(r.json()["id"].to_string().trim_matches('"').to_owned());
        tokens.push(token);
    }
    (key, ids, tokens)
}

fn sim_cmd(db: &TestDb, key: &str, serve: &Serve, ids: &[String], extra: &[&str]) -> Command {
    let mut c = db.cmd();
    c.env("OAUTHTEST_ENCRYPTION_KEY", key)
        .args(["--mode", "worker-sim", "--format", "json"])
        .args(["--credential-ids", &ids.join(",")])
        .args(serve.endpoint_args())
        .args(extra);
    c
}

on_both_backends!(
    processes_on_one_serve_are_judged_together_from_its_journal,
    processes_on_one_serve_are_judged_together_from_its_journal
);
async fn processes_on_one_serve_are_judged_together_from_its_journal(db: TestDb) {
    let serve = Serve::start(&[]);
    let (key, ids, _) = seeded(&db, &serve, 3).await;
    // Two machines' worst case: two processes at once on the same expired credentials.
    let spawn = || {
        sim_cmd(
            &db,
            &key,
            &serve,
            &ids,
            &["--workers", "6", "--jobs", "300"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn worker-sim")
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().expect("worker-sim");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_journal_judged_and_held(&v);
    }
    // Between them, one refresh per credential, as serve's journal counts them.
    let (_, journal) = admin_get(&serve, "requests?endpoint=token").await;
    let ok = journal["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == 200)
        .count();
    assert_eq!(ok, 3, "{journal}");
}

on_both_backends!(
    another_process_refreshing_during_the_run_breaks_the_run_and_a_storm_breaks_it_too,
    another_process_refreshing_during_the_run_breaks_the_run_and_a_storm_breaks_it_too
);
async fn another_process_refreshing_during_the_run_breaks_the_run_and_a_storm_breaks_it_too(
    db: TestDb,
) {
    let serve = Serve::start(&[]);
    let (key, ids, tokens) = seeded(&db, &serve, 1).await;
    // A run of some seconds; while it runs, another process (this test) refreshes the same
    // credential twice, as a second deployment without coordination would.
    let child = sim_cmd(
        &db,
        &key,
        &serve,
        &ids,
        &["--workers", "2", "--jobs", "4000"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn worker-sim");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, j) = admin_get(&serve, "requests?endpoint=token").await;
        if j["count"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "worker-sim made no token request"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = "journal-0.apps.googleusercontent.com";
    for _ in 0..2 {
        let (status, body) = refresh(&serve, &tokens[0], client, "journal-0").await;
        assert_eq!(status, 200, "{body}");
    }
    let out = child.wait_with_output().expect("worker-sim");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let one = invariant(&v, "one refresh per credential per expiry");
    assert_eq!(one["held"], false, "{v}");
    assert!(
        one["detail"]
            .as_str()
            .unwrap()
            .contains("2 made while the previous token was still fresh"),
        "{one}"
    );
    assert_ne!(out.status.code(), Some(0), "{v}");

    // A storm of its own: coordination off, every worker refreshes the expired credential.
    // Token answers take 200 ms: every worker reads the expired credential before the first
    // refresh is written back, however loaded the machine, so the storm is certain.
    let db2 = TestDb::sqlite();
    let serve = crate::app_worker_rows::slow_serve(&db2, 200, false);
    let (key, ids, _) = seeded(&db2, &serve, 2).await;
    let r = run(
        sim_cmd(
            &db2,
            &key,
            &serve,
            &ids,
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
    assert_no_secrets(
        &format!("{}{}", r.stdout, r.stderr),
        &["journal-0", "journal-1"],
    );
}

#[tokio::test]
async fn a_run_whose_every_job_fails_fails_and_the_admin_token_is_needed_when_serve_wants_it() {
    let serve = Serve::start(&["--admin-token", "journal-admin-token"]);
    let db = TestDb::sqlite();
    let (key, ids, tokens) = {
        // Minting needs the admin token too.
        let key = new_key(db.path());
        let client = "journal-0.apps.googleusercontent.com";
        let minted: Value = http()
            .post(serve.url("/__admin/refresh-tokens"))
            .bearer_auth("journal-admin-token")
            .json(&serde_json::json!({"client_id": client, "client_secret": "journal-0"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = minted["refresh_token"].as_str().unwrap().to_owned();
        let file = serde_json::json!({"type": "authorized_user", "client_id": client,
            "client_secret": "journal-0", "refresh_token": token})
        .to_string();
        let mut c = db.cmd();
        c.env("OAUTHTEST_ENCRYPTION_KEY", &key);
        let r = run(
            c,
            &["--mode", "import", "--file", "-", "--format", "json"],
            Some(&file),
        );
        r.assert_code(0);
        (key, vec![r.json()["id"].to_string()], vec![token])
    };
    // Without the admin token the journal cannot be read: nothing runs, exit 2.
    let r = run(
        sim_cmd(&db, &key, &serve, &ids, &["--jobs", "4"]),
        &[],
        None,
    );
    r.assert_code(2).assert_stderr_has("admin token");

    // The user revokes access: every job fails, and so does the run.
    let revoked = http()
        .post(serve.url("/revoke"))
        .form(&[("token", tokens[0].as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 200);
    let mut c = sim_cmd(&db, &key, &serve, &ids, &["--jobs", "4", "--workers", "2"]);
    c.env("OAUTHTEST_ADMIN_TOKEN", "journal-admin-token");
    let r = run(c, &[], None);
    r.assert_code(1);
    let v = r.json();
    assert_eq!(v["jobs_failed"], 4, "{r}");
    assert_eq!(invariant(&v, "no job fails")["held"], false, "{r}");
    assert_eq!(
        invariant(&v, "no token request after invalid_grant")["held"],
        true,
        "{r}"
    );
    assert_no_secrets(
        &format!("{}{}", r.stdout, r.stderr),
        &["journal-admin-token", &tokens[0]],
    );
}
