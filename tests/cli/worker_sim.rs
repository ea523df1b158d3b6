//! worker-sim: the invariants, judged from the mock's journal, on SQLite and PostgreSQL, in one
//! process and several.

use crate::on_both_backends;
use crate::support::*;

fn sim(db: &TestDb, scenario: &str, processes: u32, extra: &[&str]) -> Run {
    let processes = processes.to_string();
    let mut args = vec![
        "--mode",
        "worker-sim",
        "--scenario",
        scenario,
        "--workers",
        "16",
        "--jobs",
        "2500",
        "--credentials",
        "4",
        "--token-ttl-secs",
        "1",
        "--processes",
        &processes,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    run(db.cmd(), &args, None)
}

#[track_caller]
fn assert_invariants_held(r: &Run) -> serde_json::Value {
    r.assert_code(0);
    let v = r.json();
    for i in v["invariants"].as_array().expect("invariants") {
        assert_eq!(i["held"], true, "invariant broken: {i}\n{r}");
    }
    assert_eq!(v["refreshes_per_expiry"], 1.0, "{r}");
    assert_eq!(v["jobs"], 2500, "{r}");
    v
}

async fn success_single_and_multi_process(db: TestDb) {
    for processes in [1, 3] {
        let v = assert_invariants_held(&sim(&db, "success", processes, &[]));
        assert_eq!(v["jobs_failed"], 0);
        assert_eq!(v["jobs_succeeded"], 2500);
        assert!(v["token_requests"].as_u64().unwrap() >= 4, "{v}");
        for key in [
            "jobs_per_second",
            "latency_ms",
            "token_requests",
            "jobs_succeeded",
        ] {
            assert!(v.get(key).is_some(), "json lacks {key}");
        }
    }
    // Temporary rows in a given store are removed afterwards.
    let list = run(db.cmd(), &["--mode", "list", "--format", "json"], None);
    assert_eq!(
        list.json()["credentials"].as_array().unwrap().len(),
        0,
        "{list}"
    );
}
on_both_backends!(
    success_single_and_multi_process,
    success_single_and_multi_process
);

async fn invalid_grant_mid_run_fails_fast_and_marks_once(db: TestDb) {
    for processes in [1, 2] {
        let r = sim(&db, "invalid_grant_mid_run", processes, &[]);
        let v = assert_invariants_held(&r);
        let names: Vec<_> = v["invariants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            names
                .iter()
                .any(|n| n == "no token request after invalid_grant"),
            "{names:?}"
        );
        assert!(
            names
                .iter()
                .any(|n| n == "invalid_grant marks needs_reconnect exactly once"),
            "{names:?}"
        );
        assert!(
            v["failures_by_outcome"]["needs_reconnect"]
                .as_u64()
                .unwrap()
                > 0,
            "{r}"
        );
    }
}
on_both_backends!(
    invalid_grant_mid_run_fails_fast_and_marks_once,
    invalid_grant_mid_run_fails_fast_and_marks_once
);

async fn rotation_never_presents_a_superseded_token(db: TestDb) {
    for processes in [1, 3] {
        let v = assert_invariants_held(&sim(&db, "rotation", processes, &[]));
        assert_eq!(v["jobs_failed"], 0);
        assert!(v["invariants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "no request presents a superseded refresh token"));
    }
}
on_both_backends!(
    rotation_never_presents_a_superseded_token,
    rotation_never_presents_a_superseded_token
);

async fn server_error_burst_loses_nothing(db: TestDb) {
    for processes in [1, 2] {
        let v = assert_invariants_held(&sim(&db, "server_error_burst", processes, &[]));
        if let Some(failures) = v["failures_by_outcome"].as_object() {
            assert!(failures.keys().all(|k| k == "retry_later"), "{v}");
        }
    }
}
on_both_backends!(
    server_error_burst_loses_nothing,
    server_error_burst_loses_nothing
);

/// The run can fail: without coordination, a refresh storm breaks the invariant and exits 1.
#[test]
fn uncoordinated_workers_break_the_one_refresh_per_expiry_invariant() {
    let db = TestDb::sqlite();
    let r = sim(&db, "success", 1, &["--unsafe-no-refresh-coordination"]);
    r.assert_code(1);
    let v = r.json();
    let one = v["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "one refresh per credential per expiry")
        .unwrap()
        .clone();
    assert_eq!(one["held"], false, "{r}");
    assert!(v["refreshes_per_expiry"].as_f64().unwrap() > 1.0, "{r}");
}

#[test]
fn html_report_is_a_self_contained_page() {
    let db = TestDb::sqlite();
    let page = db.path().join("report.html");
    let r = sim(&db, "rotation", 1, &["--report", page.to_str().unwrap()]);
    r.assert_code(0);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        html.contains("Token requests over time") && html.contains("<circle"),
        "timeline missing"
    );
    assert!(
        html.contains("Job latency") && html.contains("<rect"),
        "histogram missing"
    );
    assert!(
        !html.contains("<script") && !html.contains("http://") && !html.contains("https://"),
        "not self-contained"
    );
    assert!(!html.contains("ya29.") && !html.contains("1//"));
}

#[test]
fn celery_sim_is_an_alias_and_bad_flags_exit_2() {
    let db = TestDb::sqlite();
    let r = run(
        db.cmd(),
        &[
            "--mode",
            "celery-sim",
            "--jobs",
            "200",
            "--workers",
            "4",
            "--format",
            "json",
        ],
        None,
    );
    r.assert_code(0);
    assert_eq!(r.json()["mode"], "worker-sim");
    run(
        db.cmd(),
        &["--mode", "worker-sim", "--scenario", "nope"],
        None,
    )
    .assert_code(2)
    .assert_stderr_has("worker-sim knows success, rotation");
    run(db.cmd(), &["--mode", "worker-sim", "--workers", "0"], None).assert_code(2);
    run(
        db.cmd(),
        &["--mode", "worker-sim", "--credential-id", "1"],
        None,
    )
    .assert_code(2)
    .assert_stderr_has("--token-url");
}

/// Text output, at trace level, holds no token (the workers handle thousands).
#[test]
fn worker_sim_output_holds_no_token_at_trace_level() {
    let db = TestDb::sqlite();
    let mut c = db.cmd();
    c.env("OAUTHTEST_LOG", "trace");
    let r = run(
        c,
        &[
            "--mode",
            "worker-sim",
            "--jobs",
            "300",
            "--workers",
            "8",
            "--scenario",
            "rotation",
        ],
        None,
    );
    r.assert_code(0);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("TRACE") || all.contains("DEBUG"),
        "no trace output to scan"
    );
    for needle in ["ya29.", "1//", "sim-secret-"] {
        assert!(!all.contains(needle), "{needle} leaked");
    }
}
