//! `celery-sim --target-cmd`: the reference application's real Celery workers (Redis broker) on
//! credentials oauthtest seeds into the application's own Fernet table, SQLite and PostgreSQL.
//! The right variant keeps every invariant; the naive one breaks the one it breaks, named.

use crate::app_store::fernet_key;
use crate::on_both_backends;
use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn refapp() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/refapp")
}

/// Whether Celery, its Redis client, google-auth and Redis itself are here; off CI a missing
/// one skips the test with a visible line, under CI it fails it.
fn celery_available() -> bool {
    let python = crate::probe::python_imports("celery, redis, google.auth, cryptography");
    let redis = std::net::TcpStream::connect("127.0.0.1:6379").is_ok();
    if python && redis {
        return true;
    }
    let what = if python {
        "Redis at 127.0.0.1:6379 (redis-server --daemonize yes)"
    } else {
        "python3 -m pip install 'celery[redis]' google-auth cryptography"
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "celery-sim --target-cmd tests need {what} in CI"
    );
    skipped(&format!("celery-sim --target-cmd test needs {what}"));
    false
}

/// The application's own store: its table created by its own code, its config beside it.
struct AppDb {
    db: TestDb,
    key: String,
}

fn python(app: &AppDb, args: &[&str]) -> Command {
    let mut c = Command::new("python3");
    c.current_dir(app.db.path())
        .env("PYTHONPATH", refapp())
        .env("DATABASE_URL", &app.db.url)
        .env("APP_ENCRYPTION_KEY", &app.key)
        .args(["-m", "refapp"])
        .args(args)
        .stdin(Stdio::null());
    c
}

fn app_db(db: TestDb) -> AppDb {
    let app = AppDb {
        key: fernet_key(),
        db,
    };
    let out = python(&app, &["init-db"]).output().expect("python3");
    assert!(
        out.status.success(),
        "init-db: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::copy(
        refapp().join("oauthtest.toml"),
        app.db.path().join("oauthtest.toml"),
    )
    .expect("copy the application's store config");
    app
}

/// How the workers are started.
#[derive(Clone, Copy)]
enum Pool {
    /// `--target-cmd` runs once and starts its own pool (`run-jobs`).
    Own,
    /// `--target-cmd` is the worker, run --concurrency times; `--enqueue-cmd` sends the jobs.
    Copies,
}

/// A run's shape, beyond the variant and the scenario.
#[derive(Clone, Copy)]
struct Shape {
    pool: Pool,
    jobs: u32,
    credentials: u32,
    /// The jobs go in this many rounds, each once every row's token has expired again
    /// (`--rounds` of the application's enqueue): the run meets that many expiries however
    /// fast or slow the machine is, and no round can overlap the next one's expiry by luck.
    rounds: u32,
    /// The token endpoint answers this much later (0: at once): with 300 ms, workers that do
    /// not coordinate all read the expired row before the first refresh is written back,
    /// however loaded the machine.
    token_delay_ms: u32,
}

/// Tokens live 4 s (refreshed 1 s before they expire, `OAUTHTEST_REFRESH_MARGIN_MS`): a right
/// worker's token cannot expire between the check and the API call even on a loaded machine,
/// which 1-2 s tokens did (a job's API call answered 401). The expiries a run must meet come
/// from its rounds, not from its length.
const TOKEN_TTL_SECS: &str = "4";

fn shape(pool: Pool, jobs: u32, rounds: u32) -> Shape {
    Shape {
        pool,
        jobs,
        credentials: 3,
        rounds,
        token_delay_ms: 0,
    }
}

fn sim(app: &AppDb, variant: &str, scenario: &str, shape: Shape) -> Run {
    let mut c = app.db.cmd();
    c.env("PYTHONPATH", refapp())
        .env("APP_ENCRYPTION_KEY", &app.key)
        .env("REFAPP_VARIANT", variant);
    let (jobs, credentials) = (shape.jobs.to_string(), shape.credentials.to_string());
    let mut args = vec![
        "--mode",
        "celery-sim",
        "--store-config",
        "oauthtest.toml",
        "--scenario",
        scenario,
        "--concurrency",
        "4",
        "--jobs",
        &jobs,
        "--credentials",
        &credentials,
        "--token-ttl-secs",
        TOKEN_TTL_SECS,
        "--target-timeout",
        "120",
        "--format",
        "json",
    ];
    let slow = if shape.token_delay_ms > 0 {
        let relay =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/slow_token_endpoint.py");
        format!("python3 '{}' {} ", relay.display(), shape.token_delay_ms)
    } else {
        String::new()
    };
    let rounds = shape.rounds;
    let (target, enqueue);
    match shape.pool {
        Pool::Own => {
            target = format!(
                "{slow}python3 -m refapp run-jobs --credential-ids \"$OAUTHTEST_CREDENTIAL_IDS\" --jobs \"$OAUTHTEST_JOBS\" --rounds {rounds}"
            );
            args.extend(["--target-cmd", &target]);
        }
        Pool::Copies => {
            target = "python3 -m refapp worker --concurrency \"$OAUTHTEST_WORKERS\" --queue \"$OAUTHTEST_RUN_ID\"".to_owned();
            // The jobs carry the endpoints the enqueuing command was given.
            enqueue = format!(
                "{slow}python3 -m refapp enqueue --queue \"$OAUTHTEST_RUN_ID\" --credential-ids \"$OAUTHTEST_CREDENTIAL_IDS\" --jobs \"$OAUTHTEST_JOBS\" --rounds {rounds}"
            );
            args.extend(["--target-cmd", &target, "--enqueue-cmd", &enqueue]);
        }
    }
    let r = run(c, &args, None);
    assert_no_secrets(&format!("{}{}", r.stdout, r.stderr), &[&app.key]);
    r
}

fn broken(v: &Value) -> Vec<String> {
    v["invariants"]
        .as_array()
        .expect("invariants")
        .iter()
        .filter(|i| i["held"] == false)
        .map(|i| i["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The run's temporary rows are gone: the application's table is as it was.
async fn no_rows_left(app: &AppDb) {
    let left = crate::app_store::column(&app.db, "SELECT CAST(COUNT(*) AS TEXT) FROM credentials")
        .await
        .unwrap();
    assert_eq!(left, "0", "temporary rows left in the application's table");
}

on_both_backends!(
    the_right_workers_keep_every_invariant_and_the_naive_ones_storm,
    the_right_workers_keep_every_invariant_and_the_naive_ones_storm
);
async fn the_right_workers_keep_every_invariant_and_the_naive_ones_storm(db: TestDb) {
    if !celery_available() {
        return;
    }
    let app = app_db(db);
    for pool in [Pool::Copies, Pool::Own] {
        // Two rounds: each begins with the 3 tokens expired.
        let r = sim(&app, "right", "success", shape(pool, 120, 2));
        r.assert_code(0);
        let v = r.json();
        assert!(broken(&v).is_empty(), "{r}");
        assert_eq!(v["jobs_succeeded"], 120, "{r}");
        assert_eq!(v["refreshes_per_expiry"], 1.0, "{r}");
        assert!(v["token_requests"].as_u64().unwrap() >= 6, "{r}");
        no_rows_left(&app).await;
    }
    // No lock, no re-read: every worker that finds the token expired refreshes it. One
    // credential: every thread's job is on it; slow token answers: every thread reads the
    // expired row before the first refresh is written back, so the storm is certain.
    let naive = Shape {
        credentials: 1,
        token_delay_ms: 300,
        ..shape(Pool::Own, 120, 1)
    };
    let r = sim(&app, "naive", "success", naive);
    r.assert_code(1);
    let v = r.json();
    assert!(
        broken(&v).contains(&"one refresh per credential per expiry".to_owned()),
        "{r}"
    );
    no_rows_left(&app).await;
}

on_both_backends!(
    rotation_the_naive_workers_lose_the_rotated_token,
    rotation_the_naive_workers_lose_the_rotated_token
);
async fn rotation_the_naive_workers_lose_the_rotated_token(db: TestDb) {
    if !celery_available() {
        return;
    }
    let app = app_db(db);
    // Three rounds: each right worker's refresh presents the refresh token the previous
    // round's rotation left in the row.
    let r = sim(&app, "right", "rotation", shape(Pool::Own, 120, 3));
    r.assert_code(0);
    assert!(broken(&r.json()).is_empty(), "{r}");
    // Every job refreshes, under the lock, and writes back what the rotation returned: nothing
    // is lost and no superseded token is presented, and each refresh presents the token the one
    // before issued. The journal follows each credential through its rotations, so the refreshes
    // made while its token was fresh are still its duplicates.
    let r = sim(&app, "eager", "rotation", shape(Pool::Own, 30, 1));
    r.assert_code(1);
    let v = r.json();
    assert_eq!(broken(&v), ["one refresh per credential per expiry"], "{r}");
    assert_eq!(v["jobs_succeeded"], 30, "{r}");
    assert_eq!(v["token_requests"], 30, "{r}");
    assert!(v["refreshes_per_expiry"].as_f64().unwrap() > 1.0, "{r}");
    // Two rounds: the second presents the refresh token the first's rotation superseded.
    let r = sim(&app, "naive", "rotation", shape(Pool::Own, 120, 2));
    r.assert_code(1);
    let b = broken(&r.json());
    for name in [
        "no request presents a superseded refresh token",
        "no token lost: stored tokens are the live ones",
    ] {
        assert!(b.contains(&name.to_owned()), "{name} not broken: {r}");
    }
    no_rows_left(&app).await;
}

#[tokio::test]
async fn invalid_grant_mid_run_the_right_workers_mark_reconnect_and_the_naive_retry() {
    if !celery_available() {
        return;
    }
    let app = app_db(TestDb::sqlite());
    // Four rounds of 30 jobs: the revocation comes after the 60th API call, and the fourth
    // round (if not the third) refreshes after it.
    let revoked_mid_run = shape(Pool::Own, 120, 4);
    let r = sim(&app, "right", "invalid_grant_mid_run", revoked_mid_run);
    r.assert_code(0);
    let v = r.json();
    assert!(broken(&v).is_empty(), "{r}");
    assert!(
        v["failures_by_outcome"]["needs_reconnect"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "no job met the revocation: {r}"
    );
    let r = sim(&app, "naive", "invalid_grant_mid_run", revoked_mid_run);
    r.assert_code(1);
    let b = broken(&r.json());
    for name in [
        "no token request after invalid_grant",
        "invalid_grant marks the row for reconnect, and only then",
    ] {
        assert!(b.contains(&name.to_owned()), "{name} not broken: {r}");
    }
    no_rows_left(&app).await;
}

#[test]
fn target_cmd_needs_the_applications_store_and_refuses_what_it_cannot_honour() {
    let db = TestDb::sqlite();
    run(
        db.cmd(),
        &["--mode", "worker-sim", "--target-cmd", "true"],
        None,
    )
    .assert_code(2)
    .assert_stderr_has("--store-config");
    db.write("oauthtest.toml", "preset = \"fernet\"\n");
    for (flag, value) in [("--processes", "2"), ("--credential-ids", "1")] {
        run(
            db.cmd(),
            &["--mode", "worker-sim", "--target-cmd", "true", flag, value],
            None,
        )
        .assert_code(2)
        .assert_stderr_has(flag);
    }
}

on_both_backends!(
    an_interrupted_run_removes_its_rows_and_stops_the_applications_commands,
    an_interrupted_run_removes_its_rows_and_stops_the_applications_commands
);
async fn an_interrupted_run_removes_its_rows_and_stops_the_applications_commands(db: TestDb) {
    if !crate::app_store::available(crate::app_store::Lib::Fernet) {
        return;
    }
    let app = app_db(db);
    let mut c = app.db.cmd();
    c.env("APP_ENCRYPTION_KEY", &app.key)
        .args(["--mode", "celery-sim", "--store-config", "oauthtest.toml"])
        .args(["--credentials", "3", "--concurrency", "2"])
        .args([
            "--target-cmd",
            "echo $$ > \"worker-$OAUTHTEST_WORKER_INDEX.pid\"; exec sleep 60",
        ])
        .args(["--enqueue-cmd", "exec sleep 60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn celery-sim");
    let pid_file = app.db.path().join("worker-1.pid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !pid_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the workers never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let seeded =
        crate::app_store::column(&app.db, "SELECT CAST(COUNT(*) AS TEXT) FROM credentials")
            .await
            .unwrap();
    assert_eq!(seeded, "3");
    let _ = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("celery-sim");
    assert_eq!(status.code(), Some(143), "{status}");
    no_rows_left(&app).await;
    for i in 0..2 {
        let pid = std::fs::read_to_string(app.db.path().join(format!("worker-{i}.pid"))).unwrap();
        let alive = Command::new("kill")
            .args(["-0", pid.trim()])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(!alive, "worker {i} (pid {}) outlived the run", pid.trim());
    }
}
