//! Running a scenario against the user's own refresh code: `mock-all --target-cmd 'CMD'`.
//!
//! Most applications are not written in Rust, and what must be proven is *their* refresh code,
//! not oauthtest's engine. For each scenario this starts the scenario's mock (the same setup as
//! the engine run), runs CMD with `sh -c`, hands it the mock's URLs and the stored credential in
//! `OAUTHTEST_*` environment variables, and then judges what the mock saw and how CMD exited
//! against the scenario's expectations: the same files serve both purposes.
//!
//! What is judged (see the README's "serve" section for the user-facing table):
//! - CMD's exit status: 0 exactly when the scenario expects a working API call
//!   (`expect.api_call = "succeeded"`), non-zero otherwise;
//! - token requests: `expect.token_requests`, or the range in the scenario's `[target]` table;
//! - no token request after a final answer (`invalid_grant`, `invalid_client`, …);
//! - the API call as the mock saw it (`succeeded`: one answered 200; `failed`: made, never
//!   answered 200; `not_made`);
//! - `expect.min_retry_spacing_ms` between token requests;
//! - other deployments sharing the credential (`[mock] other_deployments`) still working.
//!
//! With a store config (`--store-config`, `./oauthtest.toml`, `OAUTHTEST_STORE_CONFIG`) the
//! credential is also written into the application's own table as a temporary row, CMD gets its
//! id in `OAUTHTEST_CREDENTIAL_ID`, and `expect.outcome`, `expect.state` and
//! `expect.refresh_token` are judged from that row afterwards ([`super::app_target`]). Without
//! one they describe storage the mock cannot see, and are not judged (each result says so).
//!
//! # Security
//! CMD's output is shown only on failure, its last lines only, with every token-shaped string
//! and every secret handed to CMD replaced by `[redacted]`.

use super::app_target::AppTarget;
use super::run::{check_retry_spacing, describe_entry, ScenarioResult};
use super::{setup, Scenario};
use crate::app_store::RowId;
use mock_server::{fingerprint, Endpoint, JournalEntry, MockGoogle, TokenStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// How CMD is run.
#[derive(Debug, Clone)]
pub struct TargetOptions {
    /// The command line, run with `sh -c`.
    pub cmd: String,
    /// How long one run may take before it is killed and fails.
    pub timeout: Duration,
    /// The application's table the scenarios' credentials go into, when a store config was
    /// given.
    pub app: Option<Arc<AppTarget>>,
}

/// What a result says when no store config was given.
const NOT_JUDGED: &str = "not judged: expect.outcome, expect.state and expect.refresh_token \
    (they describe your application's storage; give --store-config to have them judged from \
    its row)";

/// Token-endpoint errors after which a correct client stops asking.
const FINAL_ERRORS: &[&str] = &[
    "invalid_grant",
    "invalid_client",
    "deleted_client",
    "unauthorized_client",
    "invalid_request",
    "invalid_scope",
    "unsupported_grant_type",
];

/// How many bytes of each of CMD's output streams are kept (the end of them).
const OUTPUT_TAIL_BYTES: usize = 4096;
/// How many lines of CMD's stderr a failure shows.
const OUTPUT_TAIL_LINES: usize = 8;

/// Runs `scenario` against CMD; never panics, never fails: problems become failures.
pub async fn run_target(scenario: &Scenario, options: &TargetOptions) -> ScenarioResult {
    let started = Instant::now();
    let mut result = ScenarioResult::new(scenario);
    let ran = execute(scenario, options, &mut result).await;
    result.finish(ran, started)
}

/// The environment CMD gets: every `OAUTHTEST_*` variable documented in the README.
fn target_env(
    scenario: &Scenario,
    mock: &MockGoogle,
    seeded: &setup::SeededCredential,
) -> Vec<(&'static str, String)> {
    let mut env = vec![("OAUTHTEST_SCENARIO", scenario.name.clone())];
    env.extend(crate::app_command::endpoint_env(mock));
    env.extend([
        ("OAUTHTEST_CLIENT_ID", seeded.client_id.clone()),
        (
            "OAUTHTEST_CLIENT_SECRET",
            seeded.client_secret.expose_secret().to_owned(),
        ),
        (
            "OAUTHTEST_REFRESH_TOKEN",
            seeded.refresh_token.expose_secret().to_owned(),
        ),
        ("OAUTHTEST_SCOPES", seeded.scopes.join(" ")),
    ]);
    if let Some(token) = &seeded.access_token {
        env.push(("OAUTHTEST_ACCESS_TOKEN", token.expose_secret().to_owned()));
        if let Some(expiry) = seeded.expiry {
            env.push((
                "OAUTHTEST_ACCESS_TOKEN_EXPIRES_AT",
                expiry.timestamp().to_string(),
            ));
        }
    }
    env
}

async fn execute(
    scenario: &Scenario,
    options: &TargetOptions,
    result: &mut ScenarioResult,
) -> Result<(), String> {
    let mock = MockGoogle::start_with(setup::mock_config())
        .await
        .map_err(|e| format!("mock Google did not start: {e}"))?;
    let mut seeded = setup::apply(scenario, &mock)?;
    let other_deployments = std::mem::take(&mut seeded.other_deployments);
    let initial_live =
        mock.refresh_token_status(seeded.refresh_token.expose_secret()) == TokenStatus::Live;
    let row = match &options.app {
        Some(app) => Some(app.seed(scenario, &seeded).await?),
        None => None,
    };
    let ran = run_and_judge(
        scenario,
        options,
        result,
        &mock,
        &seeded,
        row.as_ref().map(|id| (id, initial_live)),
    )
    .await;
    result
        .failures
        .extend(setup::other_deployments_failure(&other_deployments, &mock));
    if let (Some(app), Some(id)) = (&options.app, &row) {
        app.remove(id).await;
    }
    ran
}

/// Runs CMD on a seeded scenario and judges it; `row`: the application row it was given (and
/// whether its refresh token was live at the start).
async fn run_and_judge(
    scenario: &Scenario,
    options: &TargetOptions,
    result: &mut ScenarioResult,
    mock: &MockGoogle,
    seeded: &setup::SeededCredential,
    row: Option<(&RowId, bool)>,
) -> Result<(), String> {
    let mut env = target_env(scenario, mock, seeded);
    if let Some((id, _)) = row {
        env.push(("OAUTHTEST_CREDENTIAL_ID", id.to_string()));
    }
    result.steps.push(format!(
        "handed to CMD: access token {}, refresh token {}, client {}{}",
        scenario.credential.access_token.describe(),
        fingerprint(seeded.refresh_token.expose_secret()),
        seeded.client_id,
        row.map_or_else(String::new, |(id, _)| format!(
            ", application row {id} (temporary)"
        ))
    ));
    let secrets: Vec<String> = [
        Some(seeded.refresh_token.expose_secret()),
        Some(seeded.client_secret.expose_secret()),
        seeded.access_token.as_ref().map(|t| t.expose_secret()),
    ]
    .into_iter()
    .flatten()
    .map(str::to_owned)
    .collect();

    let finished = run_cmd(options, &env).await?;
    let journal = mock.journal();
    result.token_requests = mock.token_request_count();
    result.api_call = observed_api_call(&journal).into();
    result.outcome = match finished.code {
        Some(code) => format!("exit {code}"),
        None if finished.timed_out => "killed".into(),
        None => "signal".into(),
    };
    result.steps.extend(journal.iter().map(describe_entry));
    result
        .steps
        .push(match (finished.code, finished.timed_out) {
            (_, true) => format!(
                "CMD did not finish within {} s and was killed",
                options.timeout.as_secs()
            ),
            (Some(code), _) => format!("CMD exited with status {code}"),
            (None, _) => "CMD was ended by a signal".into(),
        });

    judge(scenario, &journal, result, &finished);
    match (&options.app, row) {
        (Some(app), Some((id, initial_live))) => {
            app.judge(id, scenario, seeded, initial_live, mock, result)
                .await;
        }
        _ => result.steps.push(NOT_JUDGED.into()),
    }
    if !result.failures.is_empty() {
        let stderr = redact(&String::from_utf8_lossy(&finished.stderr), &secrets);
        let lines: Vec<&str> = stderr.lines().collect();
        let start = lines.len().saturating_sub(OUTPUT_TAIL_LINES);
        result
            .steps
            .extend(lines[start..].iter().map(|l| format!("CMD stderr: {l}")));
    }
    Ok(())
}

/// The API call as the mock saw it.
fn observed_api_call(journal: &[JournalEntry]) -> &'static str {
    let calls: Vec<&JournalEntry> = journal
        .iter()
        .filter(|e| e.endpoint == Endpoint::Api)
        .collect();
    if calls.iter().any(|e| e.status == Some(200)) {
        "succeeded"
    } else if calls.is_empty() {
        "not_made"
    } else {
        "failed"
    }
}

fn judge(
    scenario: &Scenario,
    journal: &[JournalEntry],
    result: &mut ScenarioResult,
    finished: &Finished,
) {
    let expect = &scenario.expect;
    let wants_success = expect.api_call == "succeeded";
    let exit_ok = match finished.code {
        Some(0) => wants_success,
        Some(_) => !wants_success,
        None => false,
    };
    if !exit_ok {
        let got = match finished.code {
            Some(code) => code.to_string(),
            None if finished.timed_out => "none (killed after the timeout)".into(),
            None => "none (ended by a signal)".into(),
        };
        result.failures.push(if wants_success {
            format!("exit status: expected 0 (the scenario expects a working API call), got {got}")
        } else {
            format!(
                "exit status: expected non-zero (the scenario expects no working API call: {}), got {got}",
                expect.outcome
            )
        });
    }
    let (fewest, most) = scenario.target_token_requests();
    let got = result.token_requests;
    if got < fewest || got > most {
        let wanted = if fewest == most {
            fewest.to_string()
        } else {
            format!("{fewest} to {most}")
        };
        result
            .failures
            .push(format!("token_requests: expected {wanted}, got {got}"));
    }
    let tokens: Vec<&JournalEntry> = journal
        .iter()
        .filter(|e| e.endpoint == Endpoint::Token)
        .collect();
    if let Some(at) = tokens.iter().position(|e| {
        e.error
            .as_deref()
            .is_some_and(|code| FINAL_ERRORS.contains(&code))
    }) {
        let after = tokens.len() - at - 1;
        if after > 0 {
            result.failures.push(format!(
                "kept refreshing after {}: {after} more token request(s); a correct client stops",
                tokens[at].error.as_deref().unwrap_or("a final error")
            ));
        }
    }
    if result.api_call != expect.api_call {
        result.failures.push(format!(
            "api_call: expected {}, got {}",
            expect.api_call, result.api_call
        ));
    }
    if let Some(min) = expect.min_retry_spacing_ms {
        result.failures.extend(check_retry_spacing(journal, min));
    }
}

/// How CMD ended.
pub(crate) struct Finished {
    /// The exit status, `None` when killed or ended by a signal.
    pub(crate) code: Option<i32>,
    pub(crate) timed_out: bool,
    /// The end of its stderr.
    pub(crate) stderr: Vec<u8>,
}

/// Runs CMD with `sh -c` in its own process group, with every inherited `OAUTHTEST_*` variable
/// replaced by `env`, killed (with whatever it started) after the timeout.
pub(crate) async fn run_cmd(
    options: &TargetOptions,
    env: &[(&'static str, String)],
) -> Result<Finished, String> {
    let mut child =
        crate::app_command::sh_command(&options.cmd, env.iter().map(|(k, v)| (*k, v.as_str())))
            .spawn()
            .map_err(|e| format!("cannot start `sh -c CMD`: {e}"))?;
    let pid = child.id();
    let stdout = child.stdout.take().map(|out| tokio::spawn(read_tail(out)));
    let stderr = child.stderr.take().map(|err| tokio::spawn(read_tail(err)));
    let (status, timed_out) = match tokio::time::timeout(options.timeout, child.wait()).await {
        Ok(Ok(status)) => (Some(status), false),
        Ok(Err(e)) => return Err(format!("cannot wait for CMD: {e}")),
        Err(_) => (None, true),
    };
    // Whatever CMD left running (or all of it, after a timeout) goes now: the scenario is over,
    // and its pipes must close for the output readers to finish.
    if let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    if timed_out {
        let _ = child.wait().await;
    }
    if let Some(task) = stdout {
        // Drained and dropped: only stderr is shown, but a full stdout pipe would block CMD.
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    let stderr = match stderr {
        Some(task) => tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(Finished {
        code: status.and_then(|s| s.code()),
        timed_out,
        stderr,
    })
}

/// Reads a stream to its end, keeping only its last [`OUTPUT_TAIL_BYTES`].
pub(crate) async fn read_tail(mut stream: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * OUTPUT_TAIL_BYTES {
                    tail.drain(..tail.len() - OUTPUT_TAIL_BYTES);
                }
            }
        }
    }
    if tail.len() > OUTPUT_TAIL_BYTES {
        tail.drain(..tail.len() - OUTPUT_TAIL_BYTES);
    }
    tail
}

/// Replaces each of `secrets`, and every Google-shaped token (`ya29.…`, `1//…`), with
/// `[redacted]`.
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret.as_str(), "[redacted]");
    }
    for prefix in ["ya29.", "1//"] {
        let mut cleaned = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(prefix) {
            cleaned.push_str(&rest[..at]);
            cleaned.push_str("[redacted]");
            let token = &rest[at + prefix.len()..];
            let end = token
                .find(|c: char| !(c.is_ascii_alphanumeric() || "-_./~+=".contains(c)))
                .unwrap_or(token.len());
            rest = &token[end..];
        }
        cleaned.push_str(rest);
        out = cleaned;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_given_secrets_and_google_shaped_tokens() {
        let text = "token ya29.a0AfB_x-y.z refresh 1//0abc/def secret s3cr3t, done";
        let shown = redact(text, &["s3cr3t".to_owned()]);
        assert_eq!(
            shown,
            "token [redacted] refresh [redacted] secret [redacted], done"
        );
    }
}
