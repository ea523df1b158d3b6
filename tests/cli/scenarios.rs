//! Scenarios and the `mock` / `mock-all` modes.

use crate::support::*;
use oauthtest::scenarios::run::{run_scenario, RunOptions};
use oauthtest::scenarios::{self, BUILTIN};

/// Every shipped scenario is a test case: each must pass through the full path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_scenario_passes() {
    let all = scenarios::load_all(None).unwrap();
    assert_eq!(all.len(), BUILTIN.len());
    let mut set = tokio::task::JoinSet::new();
    for s in all {
        set.spawn(async move { run_scenario(&s, &RunOptions::default()).await });
    }
    let mut failed = Vec::new();
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        if !r.passed {
            failed.push(format!(
                "{}: {}\n  {}",
                r.name,
                r.failures.join("; "),
                r.steps.join("\n  ")
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "scenarios failed:\n{}",
        failed.join("\n")
    );
}

/// The shipped set covers every case the issue lists.
#[test]
fn shipped_set_covers_the_required_cases() {
    let names: Vec<_> = BUILTIN
        .iter()
        .map(|(f, _)| f.trim_end_matches(".toml"))
        .collect();
    for required in [
        "success",
        "success_openid_id_token",
        "rotation",
        "invalid_grant_revoked",
        "invalid_grant_bad_request",
        "invalid_rapt",
        "testing_app_7_day_expiry",
        "invalid_client_not_found",
        "invalid_client_wrong_secret",
        "deleted_client",
        "unauthorized_client",
        "invalid_request",
        "invalid_scope",
        "server_error_then_success",
        "unavailable_until_retries_run_out",
        "rate_limited_retry_after",
        "html_403_sorry",
        "timeout_then_success",
        "connection_reset_then_success",
        "malformed_json",
        "missing_access_token",
        "expires_in_missing",
        "expires_in_string",
        "api_401_then_refresh",
    ] {
        assert!(
            names.contains(&required),
            "missing shipped scenario {required}"
        );
    }
}

#[test]
fn mock_all_json_reports_every_scenario_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "mock-all", "--format", "json"],
        None,
    );
    r.assert_code(0);
    let v = r.json();
    assert_eq!(v["failed"], 0, "{r}");
    assert_eq!(v["passed"].as_u64().unwrap() as usize, BUILTIN.len());
    for s in v["scenarios"].as_array().unwrap() {
        for field in ["name", "passed", "outcome", "token_requests", "duration_ms"] {
            assert!(s.get(field).is_some(), "scenario lacks {field}: {s}");
        }
    }
    assert!(
        !dir.path().join("oauthtest.db").exists(),
        "mock-all must not touch the default store"
    );
}

#[test]
fn wrong_expectation_fails_mock_all_with_expected_versus_got() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(
        mine.join("wrong.toml"),
        "description = \"claims invalid_grant is retried\"\n[credential]\nrefresh_token = \"revoked\"\n\
         [expect]\noutcome = \"refreshed\"\ntoken_requests = 3\nstate = \"active\"\napi_call = \"succeeded\"\n",
    )
    .unwrap();
    let report = dir.path().join("report.xml");
    let r = run(
        oauthtest_cmd(dir.path()),
        &[
            "--mode",
            "mock-all",
            "--scenarios",
            "mine",
            "--report",
            report.to_str().unwrap(),
        ],
        None,
    );
    r.assert_code(1);
    assert!(r.stdout.contains("FAIL wrong"), "{r}");
    assert!(
        r.stdout
            .contains("outcome: expected refreshed, got needs_reconnect"),
        "{r}"
    );
    assert!(
        r.stdout.contains("token_requests: expected 3, got 1"),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("state: expected active, got needs_reconnect"),
        "{r}"
    );
    let xml = std::fs::read_to_string(&report).unwrap();
    assert!(
        xml.contains("<testcase classname=\"oauthtest.scenarios\" name=\"wrong\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"outcome: expected refreshed, got needs_reconnect"),
        "{xml}"
    );
    assert!(
        xml.contains(&format!("tests=\"{}\" failures=\"1\"", BUILTIN.len() + 1)),
        "{xml}"
    );
}

#[test]
fn user_scenario_replaces_a_shipped_one_of_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("success.toml"),
        "description = \"mine\"\n[credential]\naccess_token = \"valid\"\n[expect]\noutcome = \"not_needed\"\ntoken_requests = 0\nstate = \"active\"\napi_call = \"succeeded\"\n",
    )
    .unwrap();
    let r = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "mock", "--scenarios", ".", "--format", "json"],
        None,
    );
    r.assert_code(0);
    assert_eq!(r.json()["scenarios"][0]["description"], "mine");
}

#[test]
fn malformed_scenario_file_is_reported_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo.toml"),
        "description = \"x\"\n[expect]\noutcome = \"refreshed\"\ntoken_requests = 1\nstate = \"active\"\napi_call = \"succeeded\"\nrefresh_tokn = \"kept\"\n",
    )
    .unwrap();
    let r = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "mock-all", "--scenarios", "."],
        None,
    );
    r.assert_code(2).assert_one_line_error();
    r.assert_stderr_has("typo.toml: line 7")
        .assert_stderr_has("refresh_tokn");
}

#[test]
fn mock_prints_each_exchange_step_by_step_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        oauthtest_cmd(dir.path()),
        &[
            "--mode",
            "mock",
            "--scenario",
            "server_error_then_success",
            "-vvv",
        ],
        None,
    );
    r.assert_code(0);
    assert!(r.stdout.contains("#1 POST /token"), "{r}");
    assert!(
        r.stdout.contains("-> 500 internal_failure [scripted]"),
        "{r}"
    );
    assert!(r.stdout.contains("#2 POST /token"), "{r}");
    assert!(r.stdout.contains("GET /gmail/v1/users/me/profile"), "{r}");
    assert!(r.stdout.contains("PASS server_error_then_success"), "{r}");
    for line in r.stdout.lines().chain(r.stderr.lines()) {
        assert!(
            !line.contains("ya29.") && !line.contains("1//"),
            "token leaked: {line}"
        );
    }
    let unknown = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "mock", "--scenario", "nope"],
        None,
    );
    unknown
        .assert_code(2)
        .assert_stderr_has("--scenario nope: no such scenario");
}

#[test]
fn mock_all_junit_format_is_xml_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "mock-all", "--format", "junit"],
        None,
    );
    r.assert_code(0);
    assert!(r.stdout.starts_with("<?xml"), "{r}");
    assert_eq!(r.stdout.matches("<testcase ").count(), BUILTIN.len());
    assert!(!r.stdout.contains("<failure"));
}

/// With a database given, mock-all uses temporary rows in it and removes them afterwards.
#[tokio::test]
#[cfg_attr(
    oauthtest_no_postgres,
    ignore = "PostgreSQL did not answer when the tests were built (start it, then `touch build.rs`)"
)]
async fn mock_all_in_a_given_postgres_store_leaves_no_rows() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let r = run(db.cmd(), &["--mode", "mock-all", "--format", "json"], None);
    r.assert_code(0);
    let list = run(db.cmd(), &["--mode", "list", "--format", "json"], None);
    assert_eq!(
        list.json()["credentials"].as_array().unwrap().len(),
        0,
        "{list}"
    );
}
