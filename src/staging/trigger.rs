//! `force-expire --trigger-cmd CMD` / `--trigger-url URL` on the application's own store: step 3
//! runs the application's own workflow on the expired row instead of oauthtest's refresh, and
//! step 4 reads the row back through the store adapter and judges what the application stored:
//! a new access token, an expiry ahead, a token that tokeninfo and the API accept, the row not
//! marked "must reconnect", and the refresh token the live one (asked of `oauthtest --mode
//! serve`'s admin API when the token endpoint is one; Google itself cannot be asked).
//!
//! # Security
//! The trigger gets the credential's id and the endpoints, never a token: the application reads
//! its own row. CMD's stderr is shown only when step 3 fails, its last lines only, with every
//! token of the row, the application's key and every Google-shaped token replaced by
//! `[redacted]`. A trigger URL is shown without its query.

use super::app::Opened;
use crate::app_store::{AppCredential, AppStore, KeySource};
use crate::scenarios::target::{redact, run_cmd, TargetOptions};
use crate::secret::RefreshToken;
use crate::settings::Settings;
use crate::staging::{self, Check, Snapshot, Status};
use crate::task::TriggerArgs;
use std::time::{Duration, Instant};

pub(super) const STEP_TRIGGER: &str = "3 trigger the application's workflow";

/// How many lines of CMD's stderr a failed step 3 shows.
const STDERR_LINES: usize = 8;

/// The variables the trigger gets: the row's id and the endpoints in use.
fn trigger_env(settings: &Settings, id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OAUTHTEST_CREDENTIAL_ID", id.to_owned()),
        ("OAUTHTEST_TOKEN_URL", settings.token_url.to_string()),
        (
            "OAUTHTEST_TOKENINFO_URL",
            settings.api.tokeninfo_url.clone(),
        ),
        ("OAUTHTEST_API_URL", settings.api.profile_url.clone()),
    ]
}

/// Every secret of the row and the application's keys, for redacting CMD's output.
pub(super) fn secrets_of(o: &Opened) -> Vec<String> {
    let s = &o.cred.secrets;
    let mut out: Vec<String> = [
        s.access_token.as_ref().map(|t| t.expose_secret()),
        s.refresh_token.as_ref().map(|t| t.expose_secret()),
        s.client_secret.as_ref().map(|t| t.expose_secret()),
    ]
    .into_iter()
    .flatten()
    .map(str::to_owned)
    .collect();
    out.extend(app_keys(&o.store));
    out
}

fn app_keys(store: &AppStore) -> Vec<String> {
    let config = store.config();
    let mut keys = match &config.key {
        KeySource::Env(name) => std::env::var(name).ok().into_iter().collect(),
        KeySource::File(path) => std::fs::read_to_string(path)
            .ok()
            .map(|k| k.trim().to_owned())
            .into_iter()
            .collect(),
        KeySource::None => Vec::new(),
    };
    if let Some(old) = config
        .old_keys_env
        .as_ref()
        .and_then(|n| std::env::var(n).ok())
    {
        keys.extend(old.split(',').map(|k| k.trim().to_owned()));
    }
    keys.retain(|k| !k.is_empty());
    keys
}

/// Step 3: CMD, then the URL (when given); the checks, each saying what was expected and found.
pub(super) async fn run(
    settings: &Settings,
    trigger: &TriggerArgs,
    id: &str,
    secrets: &[String],
) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Some(cmd) = &trigger.cmd {
        checks.extend(run_command(settings, cmd, trigger.timeout, id, secrets).await);
    }
    if let Some(url) = &trigger.url {
        checks.push(post(settings, url, trigger.timeout, id).await);
    }
    checks
}

async fn run_command(
    settings: &Settings,
    cmd: &str,
    timeout: Duration,
    id: &str,
    secrets: &[String],
) -> Vec<Check> {
    let options = TargetOptions {
        cmd: cmd.to_owned(),
        timeout,
        app: None,
    };
    let started = Instant::now();
    let finished = match run_cmd(&options, &trigger_env(settings, id)).await {
        Ok(f) => f,
        Err(e) => return vec![Check::new("trigger-cmd", Status::Fail, e)],
    };
    let took = started.elapsed().as_secs_f64();
    let check = match (finished.code, finished.timed_out) {
        (_, true) => Check::new(
            "trigger-cmd",
            Status::Fail,
            format!(
                "expected CMD to finish within {} s (--trigger-timeout); it was killed",
                timeout.as_secs()
            ),
        ),
        (Some(0), _) => Check::new(
            "trigger-cmd",
            Status::Pass,
            format!("CMD exited with status 0 after {took:.1} s"),
        ),
        (Some(code), _) => Check::new(
            "trigger-cmd",
            Status::Fail,
            format!("expected CMD to exit with status 0, it exited with status {code}"),
        ),
        (None, _) => Check::new(
            "trigger-cmd",
            Status::Fail,
            "expected CMD to exit with status 0, it was ended by a signal",
        ),
    };
    let mut checks = vec![check];
    if checks[0].failed() {
        let stderr = redact(&String::from_utf8_lossy(&finished.stderr), secrets);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let start = lines.len().saturating_sub(STDERR_LINES);
        checks.extend(
            lines[start..]
                .iter()
                .map(|l| Check::new("CMD stderr", Status::Note, *l)),
        );
    }
    checks
}

/// The URL as shown: without its query or fragment, which may carry a secret.
fn shown(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    u.to_string()
}

async fn post(settings: &Settings, url: &url::Url, timeout: Duration, id: &str) -> Check {
    let name = "trigger-url";
    let http = match settings.http_client() {
        Ok(h) => h,
        Err(e) => return Check::new(name, Status::Fail, e.to_string()),
    };
    let body = serde_json::json!({
        "credential_id": id,
        "token_url": settings.token_url.as_str(),
        "tokeninfo_url": settings.api.tokeninfo_url,
        "api_url": settings.api.profile_url,
    });
    let started = Instant::now();
    let answer = http
        .post(url.clone())
        .json(&body)
        .timeout(timeout)
        .send()
        .await;
    let at = shown(url);
    match answer {
        Ok(r) if r.status().is_success() => Check::new(
            name,
            Status::Pass,
            format!(
                "POST {at} answered {} after {:.1} s",
                r.status().as_u16(),
                started.elapsed().as_secs_f64()
            ),
        ),
        Ok(r) => Check::new(
            name,
            Status::Fail,
            format!(
                "expected a 2xx answer from POST {at}, got {}",
                r.status().as_u16()
            ),
        ),
        Err(e) if e.is_timeout() => Check::new(
            name,
            Status::Fail,
            format!(
                "expected an answer from POST {at} within {} s (--trigger-timeout), got none",
                timeout.as_secs()
            ),
        ),
        Err(e) => Check::new(
            name,
            Status::Fail,
            format!(
                "expected an answer from POST {at}, could not reach it ({})",
                if e.is_connect() {
                    "connection refused or unreachable"
                } else {
                    "request failed"
                }
            ),
        ),
    }
}

/// Step 4: the row as the application left it (`after`), judged against the row as step 2 left
/// it (`expired`). The checks, and whether the user must reconnect.
pub(super) async fn verify(
    settings: &Settings,
    o: &Opened,
    expired: &Snapshot,
    after_cred: &AppCredential,
    after: &Snapshot,
) -> Vec<Check> {
    let token = after_cred.secrets.access_token.as_ref();
    let refresh_token = after_cred.secrets.refresh_token.as_ref();
    let mut checks = Vec::new();
    if after.state == "needs_reconnect" {
        // The application did what it should on invalid_grant; there is no token to judge.
        checks.push(Check::new(
            "state",
            Status::Fail,
            "expected the row active with a new token, found it marked \"must reconnect\" \
             (store.reconnect): the token endpoint refused the application's refresh",
        ));
        return checks;
    }
    checks.push(Check::new("state", Status::Pass, "active, as expected"));
    let old = expired.access_token_fingerprint.as_deref();
    let new = after.access_token_fingerprint.as_deref();
    let fresh = match (old, new) {
        (_, None) => {
            checks.push(Check::new(
                "access token",
                Status::Fail,
                "expected a new access token in the row, found none",
            ));
            false
        }
        (Some(a), Some(b)) if a == b => {
            checks.push(Check::new(
                "access token",
                Status::Fail,
                format!(
                    "expected a new access token in the row, found the expired one ({b}): the \
                     application did not write a refreshed token back"
                ),
            ));
            false
        }
        (_, Some(b)) => {
            checks.push(Check::new(
                "access token",
                Status::Pass,
                format!("a new one ({b}), as expected"),
            ));
            true
        }
    };
    checks.push(if after.expired == Some(false) {
        Check::new(
            "expiry",
            Status::Pass,
            format!("ahead, as expected ({})", after.expiry_text()),
        )
    } else {
        Check::new(
            "expiry",
            Status::Fail,
            format!("expected an expiry ahead, found {}", after.expiry_text()),
        )
    });
    match token {
        Some(token) if fresh => {
            let http = match settings.http_client() {
                Ok(h) => h,
                Err(e) => {
                    checks.push(Check::new("tokeninfo", Status::Fail, e.to_string()));
                    return checks;
                }
            };
            checks.extend(
                staging::prove_token_works(
                    &http,
                    &settings.api,
                    token,
                    o.report.before.client_id.as_deref(),
                    &o.report.before.scopes,
                )
                .await,
            );
            checks.push(live_refresh_token(settings, &http, expired, refresh_token).await);
        }
        _ => checks.push(Check::new(
            "works",
            Status::Skip,
            "no new access token to try at tokeninfo and the API",
        )),
    }
    checks
}

/// Whether the row's refresh token is the one the token endpoint accepts now: asked of
/// `serve`'s admin API (`POST /__admin/token-status`); a Note when the endpoint is not one.
async fn live_refresh_token(
    settings: &Settings,
    http: &reqwest::Client,
    expired: &Snapshot,
    refresh_token: Option<&RefreshToken>,
) -> Check {
    let name = "refresh token";
    let Some(rt) = refresh_token else {
        return Check::new(
            name,
            Status::Fail,
            "expected the live refresh token in the row, found none",
        );
    };
    let fp = rt.fingerprint();
    let how = if expired.refresh_token_fingerprint.as_deref() == Some(fp.as_str()) {
        "kept"
    } else {
        "rotated"
    };
    let mut status_url = settings.token_url.clone();
    status_url.set_path("/__admin/token-status");
    status_url.set_query(None);
    let asked = http
        .post(status_url)
        .json(&serde_json::json!({"refresh_token": rt.expose_secret()}))
        .send()
        .await;
    let status = match asked {
        Ok(r) if r.status().is_success() => r
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["status"].as_str().map(str::to_owned)),
        _ => None,
    };
    match status.as_deref() {
        Some("live") => Check::new(
            name,
            Status::Pass,
            format!("{fp} ({how}) is the live one, as expected"),
        ),
        Some(other) => Check::new(
            name,
            Status::Fail,
            format!(
                "expected the live refresh token in the row, found {fp} ({how}), which the token \
                 endpoint says is {other}{}",
                if other == "superseded" {
                    ": the application did not save the rotated refresh token"
                } else {
                    ""
                }
            ),
        ),
        None => Check::new(
            name,
            Status::Note,
            format!(
                "{fp} ({how}); whether it is still live is not checked: the token endpoint is \
                 not oauthtest serve (Google cannot be asked without using the token)"
            ),
        ),
    }
}
