//! `mock` / `mock-all --target-cmd` with a store config: each scenario's credential is a
//! temporary row in the application's own table, and `expect.outcome`, `expect.state` and
//! `expect.refresh_token` are judged from that row afterwards.
//!
//! The clients are real programs keeping their credential in a Fernet-sealed `credentials`
//! table: `tests/python/store_client.py` (correct, and with `--bug NAME` each of the mistakes
//! applications ship), and the reference application `examples/refapp` (its `right` and `naive`
//! variants). Each broken client must fail, the report naming the scenario and the expectation
//! it broke; the correct ones pass. Afterwards the table holds exactly the rows it held before,
//! and no key or token appears in any output.

use crate::app_store::{available, fastapi_row, fastapi_table, fernet_key, Lib, FASTAPI_CONFIG};
use crate::on_both_backends;
use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// An application's store with one row of its own, and the command line to judge a client on it.
struct AppDb {
    db: TestDb,
    key: String,
}

impl AppDb {
    async fn new(db: TestDb) -> Option<Self> {
        if !available(Lib::Fernet) {
            return None;
        }
        fastapi_table(&db).await;
        // The application's own row, which nothing may touch.
        fastapi_row(&db, 7, "gmailOAuth2", "Support inbox", "gAAAA-not-ours").await;
        db.write("oauthtest.toml", FASTAPI_CONFIG);
        Some(Self {
            key: fernet_key(),
            db,
        })
    }

    fn cmd(&self) -> Command {
        let mut c = self.db.cmd();
        c.env("APP_ENCRYPTION_KEY", &self.key);
        c
    }

    /// `oauthtest ARGS --target-cmd CLIENT`, in the directory holding oauthtest.toml.
    fn judge(&self, client: &str, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--target-cmd", client, "--format", "json"]);
        let r = run(self.cmd(), &all, None);
        assert_no_secrets(&r.stdout, &[&self.key]);
        assert_no_secrets(&r.stderr, &[&self.key]);
        for text in [&r.stdout, &r.stderr] {
            assert!(
                !text.contains("ya29.") && !text.contains("1//"),
                "a token leaked:\n{text}"
            );
        }
        r
    }

    async fn rows(&self) -> i64 {
        crate::app_store::column(&self.db, "SELECT COUNT(*) FROM credentials")
            .await
            .and_then(|n| n.parse().ok())
            .expect("a row count")
    }
}

fn store_client(bug: Option<&str>) -> String {
    let script = repo("tests/python/store_client.py");
    match bug {
        Some(bug) => format!("python3 {} --bug {bug}", script.display()),
        None => format!("python3 {}", script.display()),
    }
}

/// The failures the report gives scenario `name`.
fn failures(report: &serde_json::Value, name: &str) -> Vec<String> {
    let scenario = report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no scenario {name} in {report}"));
    scenario["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| f.as_str().unwrap_or_default().to_owned())
        .collect()
}

#[track_caller]
fn assert_failure(report: &serde_json::Value, name: &str, needle: &str) {
    let got = failures(report, name);
    assert!(
        got.iter().any(|f| f.contains(needle)),
        "{name}: expected a failure containing {needle:?}, got {got:?}"
    );
}

/// The scenarios a correct client is run on against PostgreSQL (SQLite runs them all).
const SUBSET: &str = "success,rotation,invalid_grant_revoked,valid_token_no_refresh,\
                      malformed_json,shared_refresh_failure,killed_before_write_back,\
                      stale_snapshot_write,shared_deployments,refresh_token_reuse_revokes_family";

async fn a_correct_client_passes_every_scenario_judged_from_its_row(db: TestDb) {
    let Some(app) = AppDb::new(db).await else {
        return;
    };
    let before = app.rows().await;
    let mut args = vec!["--mode", "mock-all"];
    if app.db.backend == Backend::Postgres {
        args.extend(["--scenario", SUBSET]);
    }
    let r = app.judge(&store_client(None), &args);
    let v = r.json();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(v["failed"], 0, "{v}");
    for s in v["scenarios"].as_array().unwrap() {
        let steps = s["steps"].to_string();
        assert!(steps.contains("application row"), "{steps}");
        assert!(!steps.contains("not judged"), "{steps}");
    }
    let outcomes: Vec<(&str, &str)> = v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["outcome"].as_str().unwrap()))
        .collect();
    assert!(
        outcomes.contains(&("rotation", "refreshed")),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("invalid_grant_revoked", "needs_reconnect")),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("malformed_json", "unchanged")),
        "{outcomes:?}"
    );
    assert_eq!(app.rows().await, before, "temporary rows left behind");
}
on_both_backends!(
    correct_client,
    a_correct_client_passes_every_scenario_judged_from_its_row
);

/// Each broken client, the scenarios it is run on, and what the report must say.
const BROKEN: &[(&str, &str, &str)] = &[
    (
        "no-save-rotation",
        "rotation",
        "refresh_token: expected rotated, got kept (the rotated refresh token was not saved)",
    ),
    (
        "no-save-rotation",
        "killed_before_write_back",
        "refresh_token: expected rotated, got kept",
    ),
    (
        "retry-invalid-grant",
        "invalid_grant_revoked",
        "state: expected needs_reconnect, got active",
    ),
    (
        "retry-invalid-grant",
        "invalid_grant_revoked",
        "kept refreshing after invalid_grant",
    ),
    (
        "retry-invalid-grant",
        "stale_snapshot_write",
        "state: expected needs_reconnect, got active",
    ),
    (
        "no-write-back",
        "success",
        "outcome: expected refreshed (a new, working access token stored), got unchanged (the refreshed access token was not written back)",
    ),
    (
        "mark-on-any-failure",
        "shared_refresh_failure",
        "state: expected active, got needs_reconnect",
    ),
    (
        "reuse-old-token",
        "refresh_token_reuse_revokes_family",
        "api_call: expected succeeded",
    ),
    (
        "revoke-on-exit",
        "shared_deployments",
        "other deployments: expected their 2 access token(s) to keep working, but 2 no longer work",
    ),
    (
        "revoke-on-exit",
        "shared_deployments",
        "stored refresh token: expected live at the mock (so the next job can recover), got revoked",
    ),
    (
        "accept-any-200",
        "expires_in_missing",
        "outcome: expected protocol_error (the row's tokens left as they were), got unusable_token_stored",
    ),
    (
        "past-expiry",
        "success",
        "stored expiry: expected in the future",
    ),
    (
        "corrupt-row",
        "success",
        "cannot be read back",
    ),
];

async fn each_broken_client_fails_naming_the_expectation_it_broke(db: TestDb) {
    let Some(app) = AppDb::new(db).await else {
        return;
    };
    let before = app.rows().await;
    let mut bugs: Vec<&str> = BROKEN.iter().map(|(bug, _, _)| *bug).collect();
    bugs.dedup();
    for bug in bugs {
        let cases: Vec<_> = BROKEN.iter().filter(|(b, _, _)| *b == bug).collect();
        let mut names: Vec<&str> = cases.iter().map(|(_, name, _)| *name).collect();
        names.dedup();
        let r = app.judge(
            &store_client(Some(bug)),
            &["--mode", "mock-all", "--scenario", &names.join(",")],
        );
        assert_eq!(r.code, 1, "{bug}: {}\n{}", r.stdout, r.stderr);
        let v = r.json();
        for (_, name, needle) in cases {
            assert_failure(&v, name, needle);
        }
    }
    assert_eq!(app.rows().await, before, "temporary rows left behind");
}
on_both_backends!(
    broken_clients,
    each_broken_client_fails_naming_the_expectation_it_broke
);

#[tokio::test]
async fn a_config_without_a_reconnect_mark_cannot_pass_a_scenario_that_expects_one() {
    let Some(app) = AppDb::new(TestDb::sqlite()).await else {
        return;
    };
    app.db.write("oauthtest.toml", "preset = \"fernet\"\n");
    let r = app.judge(
        &store_client(None),
        &["--mode", "mock", "--scenario", "invalid_grant_revoked"],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_failure(
        &r.json(),
        "invalid_grant_revoked",
        "state: expected needs_reconnect, but the store config has no [store.reconnect]",
    );
}

#[tokio::test]
async fn without_a_store_config_the_storage_expectations_are_said_not_judged() {
    let Some(app) = AppDb::new(TestDb::sqlite()).await else {
        return;
    };
    std::fs::remove_file(app.db.path().join("oauthtest.toml")).unwrap();
    let client = format!(
        "python3 {}",
        repo("tests/python/refresh_client.py").display()
    );
    let r = app.judge(&client, &["--mode", "mock", "--scenario", "rotation"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let steps = r.json()["scenarios"][0]["steps"].to_string();
    assert!(
        steps.contains("not judged: expect.outcome, expect.state and expect.refresh_token"),
        "{steps}"
    );
}

#[tokio::test]
async fn store_config_without_target_cmd_and_production_are_refused() {
    let Some(app) = AppDb::new(TestDb::sqlite()).await else {
        return;
    };
    let r = run(
        app.cmd(),
        &["--mode", "mock-all", "--store-config", "oauthtest.toml"],
        None,
    );
    r.assert_code(2)
        .assert_stderr_has("--store-config with --mode mock-all goes with --target-cmd CMD");
    // A discovered oauthtest.toml does not stop the engine's own run.
    let r = run(
        app.cmd(),
        &["--mode", "mock", "--scenario", "success"],
        None,
    );
    r.assert_code(0);
    let before = app.rows().await;
    let r = run(
        app.cmd(),
        &[
            "--mode",
            "mock-all",
            "--env",
            "production",
            "--target-cmd",
            "true",
        ],
        None,
    );
    r.assert_code(2)
        .assert_stderr_has("temporary rows in the application's own table");
    assert_eq!(app.rows().await, before);
}

/// The writing paths of this round on an application's store (its workers seeded with rows, its
/// workflow triggered after an expiry) and `cleanup --yes` are refused in production like every
/// other write: exit 2, the application's command never run, its table unchanged.
#[tokio::test]
async fn the_application_loop_and_cleanup_are_refused_in_production() {
    let Some(app) = AppDb::new(TestDb::sqlite()).await else {
        return;
    };
    let before = app.rows().await;
    let ran = app.db.path().join("ran");
    let touch = format!("touch '{}'", ran.display());
    for args in [
        vec!["--mode", "celery-sim", "--target-cmd", touch.as_str()],
        vec![
            "--mode",
            "force-expire",
            "--credential-id",
            "7",
            "--trigger-cmd",
            touch.as_str(),
        ],
        vec!["--mode", "cleanup", "--yes"],
    ] {
        let mut all = args.clone();
        all.extend(["--env", "production", "--format", "json"]);
        let r = run(app.cmd(), &all, None);
        r.assert_code(2);
        assert_eq!(
            r.json()["error"]["kind"],
            "production_guard",
            "{args:?}: {r}"
        );
        assert!(!ran.exists(), "{args:?} ran the application's command");
        assert_eq!(app.rows().await, before, "{args:?} changed the table");
    }
}

#[test]
fn an_interrupted_run_removes_its_temporary_rows() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(app) = rt.block_on(AppDb::new(TestDb::sqlite())) else {
        return;
    };
    let before = rt.block_on(app.rows());
    let mut cmd = app.cmd();
    cmd.args(["--mode", "mock-all", "--target-cmd", "sleep 60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("start oauthtest");
    // Every scenario that runs holds a temporary row; wait until some do.
    let mut seen = before;
    for _ in 0..600 {
        seen = rt.block_on(app.rows());
        if seen > before {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(seen > before, "no temporary row appeared");
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert_eq!(
        rt.block_on(app.rows()),
        before,
        "temporary rows left behind"
    );
    let names = rt.block_on(crate::app_store::column(
        &app.db,
        "SELECT group_concat(name) FROM credentials",
    ));
    assert_eq!(names.as_deref(), Some("Support inbox"));
}

/// The reference application's store, created by its own `init-db`, and its refresh command.
struct RefApp {
    app: AppDb,
    before: i64,
}

impl RefApp {
    async fn new(db: TestDb) -> Option<Self> {
        if !available(Lib::Fernet) {
            return None;
        }
        let ready = Command::new("python3")
            .args(["-c", "import google.auth, requests, cryptography"])
            .status()
            .is_ok_and(|s| s.success());
        if !ready {
            assert!(
                std::env::var_os("CI").is_none(),
                "the reference application needs google-auth, requests and cryptography in CI (.ci/run)"
            );
            skipped("the reference application needs google-auth, requests and cryptography");
            return None;
        }
        let init = Command::new("python3")
            .arg(repo("examples/refapp/main.py"))
            .arg("init-db")
            .env("REFAPP_DATABASE_URL", &db.url)
            .output()
            .expect("run init-db");
        assert!(init.status.success(), "{init:?}");
        fastapi_row(&db, 7, "gmailOAuth2", "Support inbox", "gAAAA-not-ours").await;
        let app = AppDb {
            key: fernet_key(),
            db,
        };
        let before = app.rows().await;
        Some(Self { app, before })
    }

    fn judge(&self, variant: &str, scenarios: &str) -> serde_json::Value {
        let client = format!(
            "REFAPP_VARIANT={variant} python3 {} refresh",
            repo("examples/refapp/main.py").display()
        );
        let config = repo("examples/refapp/oauthtest.toml");
        let r = self.app.judge(
            &client,
            &[
                "--mode",
                "mock-all",
                "--store-config",
                config.to_str().unwrap(),
                "--scenario",
                scenarios,
            ],
        );
        assert_eq!(
            r.code,
            if variant == "right" { 0 } else { 1 },
            "{variant}: {}\n{}",
            r.stdout,
            r.stderr
        );
        r.json()
    }
}

async fn the_reference_application_passes_when_right_and_fails_when_naive(db: TestDb) {
    let Some(refapp) = RefApp::new(db).await else {
        return;
    };
    let v = refapp.judge(
        "right",
        "success,rotation,invalid_grant_revoked,api_401_then_refresh,malformed_json,\
         killed_before_write_back,\
         stale_snapshot_write,shared_deployments,shared_refresh_failure",
    );
    assert_eq!(v["failed"], 0, "{v}");
    let v = refapp.judge("naive", "rotation,invalid_grant_revoked,success");
    assert_eq!(v["passed"], 1, "{v}");
    assert_failure(
        &v,
        "rotation",
        "refresh_token: expected rotated, got kept (the rotated refresh token was not saved)",
    );
    assert_failure(
        &v,
        "invalid_grant_revoked",
        "state: expected needs_reconnect, got active (the row is not marked for reconnection)",
    );
    assert_failure(
        &v,
        "invalid_grant_revoked",
        "kept refreshing after invalid_grant: 2 more token request(s)",
    );
    assert_eq!(
        refapp.app.rows().await,
        refapp.before,
        "temporary rows left behind"
    );
}
on_both_backends!(
    reference_application,
    the_reference_application_passes_when_right_and_fails_when_naive
);
