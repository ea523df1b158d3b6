//! The revocation scenarios: a revoked grant kills its access and refresh tokens together,
//! whichever of them was revoked, and a revocation may take effect after a delay. oauthtest's
//! engine passes each one; a client that trusts its stored expiry (no refresh on a 401) fails
//! each one, while the same client refreshing on a 401 passes.

use crate::serve::{python_with, script};
use crate::support::*;
use oauthtest::scenarios::run::{run_scenario, RunOptions};
use oauthtest::scenarios::{self, find};

/// Each revocation scenario and the token requests a correct client makes in it.
const REVOCATION_SCENARIOS: [(&str, usize); 3] = [
    ("revoked_refresh_token_kills_its_access_token", 1),
    ("revoked_access_token_kills_its_refresh_token", 1),
    ("revocation_takes_effect_after_a_delay", 2),
];

#[tokio::test]
async fn the_engine_refreshes_on_the_401_and_marks_needs_reconnect_in_each_revocation_scenario() {
    let all = scenarios::load_all(None).unwrap();
    for (name, requests) in REVOCATION_SCENARIOS {
        let scenario = find(&all, name).unwrap();
        let result = run_scenario(scenario, &RunOptions::default()).await;
        assert!(
            result.passed,
            "{name}: {}\n  {}",
            result.failures.join("; "),
            result.steps.join("\n  ")
        );
        assert_eq!(result.outcome, "needs_reconnect", "{name}");
        assert_eq!(result.token_requests, requests, "{name}");
        assert_eq!(result.api_call, "failed", "{name}");
        assert!(
            result.steps.iter().any(|s| s.contains("-> 401")),
            "{name}: the API must have refused the token\n  {}",
            result.steps.join("\n  ")
        );
    }
}

#[test]
fn a_client_that_trusts_its_stored_expiry_fails_each_revocation_scenario() {
    if !python_with("json", "the revocation scenarios' --target-cmd test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let client = script("tests/python/refresh_client.py");
    for (name, requests) in REVOCATION_SCENARIOS {
        let target = |flags: &str| {
            run(
                oauthtest_cmd(dir.path()),
                &[
                    "--mode",
                    "mock",
                    "--scenario",
                    name,
                    "--target-cmd",
                    &format!("python3 {client} {flags}"),
                ],
                None,
            )
        };
        let correct = target("");
        correct.assert_code(0);
        assert!(
            correct.stdout.contains(&format!("PASS {name}")),
            "{correct}"
        );

        let trusting = target("--trust-expiry");
        trusting.assert_code(1);
        assert!(
            trusting.stdout.contains(&format!("FAIL {name}")),
            "{trusting}"
        );
        assert!(
            trusting.stdout.contains(&format!(
                "token_requests: expected {requests}, got {}",
                requests - 1
            )),
            "{trusting}"
        );
        for line in trusting.stdout.lines().chain(trusting.stderr.lines()) {
            assert!(
                !line.contains("ya29.") && !line.contains("1//"),
                "token leaked: {line}"
            );
        }
    }
}

#[test]
fn a_revocation_delay_without_a_revoked_token_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("scenarios");
    std::fs::create_dir(&own).unwrap();
    std::fs::write(
        own.join("delay.toml"),
        "[mock]\nrevocation_delay_seconds = 60\n\n[expect]\noutcome = \"refreshed\"\ntoken_requests = 1\nstate = \"active\"\napi_call = \"succeeded\"\n",
    )
    .unwrap();
    let r = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "mock-all", "--scenarios", own.to_str().unwrap()],
        None,
    );
    r.assert_code(2);
    r.assert_stderr_has("delay.toml: line 2: mock.revocation_delay_seconds needs a revoked token");
}
