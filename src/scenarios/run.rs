//! Runs one scenario through the full path a worker takes, against its own mock Google and its
//! own throwaway encrypted store: seed the credential (encrypted, bound to its row), run a worker
//! job (decrypt, detect expiry, refresh, parse, encrypt, persist, call the API, refresh once on a
//! 401), then verify from the store and from the mock's own journal.

use super::{setup, Scenario};
use crate::credential::GoogleCredential;
use crate::crypto::{EncryptionKey, Keyring};
use crate::exchange::{build_http_client, ExchangeConfig, RetryPolicy};
use crate::google_api::ApiEndpoints;
use crate::refresh::{EngineBuilder, EngineConfig};
use crate::store::{HistoryEntry, NewCredential, Store};
use chrono::Utc;
use mock_server::{fingerprint, Endpoint, MockGoogle, TokenStatus};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a scenario's throwaway credential lives.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// A store to put a temporary row in (removed afterwards); `None`: a temp SQLite file.
    pub database_url: Option<String>,
}

/// How one scenario went.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// What it stands for.
    pub description: String,
    /// Whether every expectation held.
    pub passed: bool,
    /// The engine's outcome.
    pub outcome: String,
    /// Token requests the mock received.
    pub token_requests: usize,
    /// The API call: `succeeded`, `failed`, `not_made`.
    pub api_call: String,
    /// Wall time.
    pub duration_ms: u64,
    /// Each broken expectation, as `field: expected X, got Y`.
    pub failures: Vec<String>,
    /// What happened, step by step (tokens shown as fingerprints only).
    pub steps: Vec<String>,
}

impl ScenarioResult {
    /// A result for `scenario` that has not run yet.
    pub(crate) fn new(scenario: &Scenario) -> Self {
        Self {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            passed: false,
            outcome: "not_run".into(),
            token_requests: 0,
            api_call: "not_made".into(),
            duration_ms: 0,
            failures: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// Records how the run ended: a problem that stopped it becomes a failure; passed when no
    /// expectation failed.
    pub(crate) fn finish(mut self, ran: Result<(), String>, started: Instant) -> Self {
        if let Err(problem) = ran {
            self.failures.push(format!("could not run: {problem}"));
        }
        self.passed = self.failures.is_empty();
        self.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self
    }
}

/// Runs `scenario`; never panics, never fails: problems become failures in the result.
pub async fn run_scenario(scenario: &Scenario, options: &RunOptions) -> ScenarioResult {
    let started = Instant::now();
    let mut result = ScenarioResult::new(scenario);
    let ran = execute(scenario, options, &mut result).await;
    result.finish(ran, started)
}

async fn execute(
    scenario: &Scenario,
    options: &RunOptions,
    result: &mut ScenarioResult,
) -> Result<(), String> {
    let mock = MockGoogle::start_with(setup::mock_config())
        .await
        .map_err(|e| format!("mock Google did not start: {e}"))?;
    let mut seeded = setup::apply(scenario, &mock)?;
    let other_deployments = std::mem::take(&mut seeded.other_deployments);
    let initial_refresh_fp = fingerprint(seeded.refresh_token.expose_secret());
    result.steps.push(format!(
        "stored credential: access token {}, refresh token {}, client {}",
        scenario.credential.access_token.describe(),
        initial_refresh_fp,
        seeded.client_id
    ));

    // A throwaway encrypted store.
    let tempdir;
    let url = match &options.database_url {
        Some(url) => url.clone(),
        None => {
            tempdir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
            format!("sqlite://{}", tempdir.path().join("scenario.db").display())
        }
    };
    let store = Arc::new(Store::connect(&url).await.map_err(|e| e.to_string())?);
    let keyring = Arc::new(Keyring::new(EncryptionKey::generate(), vec![]));
    let secrets = GoogleCredential {
        access_token: seeded.access_token,
        refresh_token: Some(seeded.refresh_token),
        expiry: seeded.expiry,
        scopes: seeded.scopes,
        token_type: "Bearer".into(),
        client_id: Some(seeded.client_id),
        client_secret: Some(seeded.client_secret),
        id_token: None,
    };
    let temporary = options.database_url.is_some();
    let writing = if temporary {
        let writing = crate::temp_rows::writing().map_err(|e| e.to_string())?;
        crate::temp_rows::expect(&url);
        Some(writing)
    } else {
        None
    };
    let name = format!("oauthtest scenario {}", scenario.name);
    let id = store
        .insert(
            &NewCredential {
                user_id: 0,
                credential_type: "gmailOAuth2".into(),
                name: if temporary {
                    crate::temp_rows::name(&name)
                } else {
                    name
                },
            },
            &secrets,
            &keyring,
            &HistoryEntry::new("mock", "seed", "ok", Some(scenario.name.clone())),
        )
        .await
        .map_err(|e| e.to_string())?;
    if temporary {
        crate::temp_rows::register(&url, id);
    }
    drop(writing);

    let outcome = run_job_and_verify(
        scenario,
        &mock,
        &store,
        &keyring,
        id,
        &initial_refresh_fp,
        result,
    )
    .await;
    result
        .failures
        .extend(setup::other_deployments_failure(&other_deployments, &mock));
    if options.database_url.is_some() && store.delete(&[id]).await.is_ok() {
        crate::temp_rows::release(&url, &[id]);
    }
    store.close().await;
    outcome
}

async fn run_job_and_verify(
    scenario: &Scenario,
    mock: &MockGoogle,
    store: &Arc<Store>,
    keyring: &Arc<Keyring>,
    id: i64,
    initial_refresh_fp: &str,
    result: &mut ScenarioResult,
) -> Result<(), String> {
    let e = &scenario.engine;
    let timeout = Duration::from_millis(e.request_timeout_ms);
    let http = build_http_client(timeout).map_err(|e| e.to_string())?;
    let mut exchange =
        ExchangeConfig::with_token_url(&mock.token_url()).map_err(|e| e.to_string())?;
    exchange.request_timeout = timeout;
    exchange.retry = RetryPolicy {
        max_attempts: e.max_attempts,
        initial_backoff: Duration::from_millis(e.initial_backoff_ms),
        max_retry_after: Duration::from_millis(e.retry_after_cap_ms),
        ..RetryPolicy::default()
    };
    let worst = (timeout
        + Duration::from_millis(e.retry_after_cap_ms.max(e.initial_backoff_ms * 8)))
        * e.max_attempts.max(1);
    let api = ApiEndpoints {
        profile_url: mock.api_url(),
        tokeninfo_url: mock.tokeninfo_url(),
    };
    let engine = EngineBuilder::new(store.clone(), keyring.clone(), exchange, api)
        .http(http)
        .config(EngineConfig {
            lease_ttl: worst + Duration::from_secs(5),
            mode: "mock",
            ..EngineConfig::default()
        })
        .build()
        .map_err(|e| e.to_string())?;

    let job = engine.run_job(id).await;
    result.outcome = job.outcome.to_owned();
    result.api_call = match &job.api {
        None => "not_made",
        Some(a) if a.ok() => "succeeded",
        Some(_) => "failed",
    }
    .into();
    let journal = mock.journal();
    result.token_requests = mock.token_request_count();
    for entry in &journal {
        result.steps.push(describe_entry(entry));
    }
    match &job.error {
        Some(err) => result.steps.push(format!("worker: {err}")),
        None => result.steps.push(format!(
            "worker: outcome {}, API call {}",
            job.outcome, result.api_call
        )),
    }

    // Verify against the expectations, from the store and the mock's journal.
    let expect = &scenario.expect;
    let mut check = |field: &str, expected: &str, got: &str| {
        if expected != got {
            result
                .failures
                .push(format!("{field}: expected {expected}, got {got}"));
        }
    };
    check("outcome", &expect.outcome, job.outcome);
    check(
        "token_requests",
        &expect.token_requests.to_string(),
        &mock.token_request_count().to_string(),
    );
    check("api_call", &expect.api_call, &result.api_call.clone());
    let row = store
        .get(id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the credential row disappeared")?;
    check("state", &expect.state, &row.state);
    let stored = match row.decrypt(keyring) {
        Ok(s) => s,
        Err(e) => {
            result
                .failures
                .push(format!("stored credential: no longer decrypts: {e}"));
            return Ok(());
        }
    };
    let stored_refresh = stored
        .refresh_token
        .as_ref()
        .map(|t| t.expose_secret().to_owned());
    if let Some(want) = &expect.refresh_token {
        let got = match &stored_refresh {
            Some(t) if fingerprint(t) == initial_refresh_fp => "kept",
            Some(_) => "rotated",
            None => "missing",
        };
        check("refresh_token", want, got);
    }
    if job.outcome == crate::exchange::code::REFRESHED {
        // The refreshed token must have been written back, and be the one the mock issued last.
        let status = stored
            .access_token
            .as_ref()
            .map(|t| mock.access_token_status(t.expose_secret()));
        if status != Some(TokenStatus::Live) {
            result.failures.push(format!(
                "stored access token: expected live at the mock, got {status:?} (refreshed token not written back?)"
            ));
        }
        if row.expires_at.is_none_or(|e| e <= Utc::now()) {
            result
                .failures
                .push("stored expiry: expected in the future after a refresh".into());
        }
        if let Some(t) = &stored_refresh {
            let status = mock.refresh_token_status(t);
            if status != TokenStatus::Live {
                result.failures.push(format!(
                    "stored refresh token: expected the live one, got {status:?}"
                ));
            }
        }
    }
    if job.outcome != crate::exchange::code::REFRESHED
        && expect.state == "active"
        && expect.refresh_token.as_deref() == Some("kept")
    {
        // A credential a failed refresh left active must still refresh: the next job recovers.
        if let Some(t) = &stored_refresh {
            let status = mock.refresh_token_status(t);
            if status != TokenStatus::Live {
                result.failures.push(format!(
                    "stored refresh token: expected still live (so the next job can recover), got {status:?}"
                ));
            }
        }
    }
    if let Some(min) = expect.min_retry_spacing_ms {
        result.failures.extend(check_retry_spacing(&journal, min));
    }
    Ok(())
}

/// The smallest gap between consecutive token requests must be at least `min_ms`.
pub(crate) fn check_retry_spacing(
    journal: &[mock_server::JournalEntry],
    min_ms: u64,
) -> Option<String> {
    let times: Vec<Duration> = journal
        .iter()
        .filter(|e| e.endpoint == Endpoint::Token)
        .map(|e| e.elapsed)
        .collect();
    let gaps = times
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]).as_millis());
    match gaps.min() {
        Some(g) if g >= u128::from(min_ms) => None,
        Some(g) => Some(format!(
            "min_retry_spacing_ms: expected at least {min_ms}, got {g}"
        )),
        None => Some(format!(
            "min_retry_spacing_ms: expected at least {min_ms} between token requests, but there were fewer than two"
        )),
    }
}

/// One journal entry as a step line, tokens as fingerprints.
pub(crate) fn describe_entry(e: &mock_server::JournalEntry) -> String {
    let what = match e.endpoint {
        Endpoint::Token => format!(
            "POST /token grant_type={} client={} auth={:?} refresh_token={} ({})",
            e.grant_type.as_deref().unwrap_or("-"),
            e.client_id.as_deref().unwrap_or("-"),
            e.client_auth,
            e.refresh_token_fingerprint.as_deref().unwrap_or("-"),
            e.refresh_token_status
                .map_or_else(|| "-".to_owned(), |s| format!("{s:?}")),
        ),
        Endpoint::Api => format!(
            "GET /gmail/v1/users/me/profile token={}",
            e.token_fingerprint.as_deref().unwrap_or("-")
        ),
        other => format!("{} {:?}", e.method, other),
    };
    let answer = match (e.status, &e.error) {
        (None, _) => "connection dropped".to_owned(),
        (Some(s), Some(err)) => format!("{s} {err}"),
        (Some(s), None) => s.to_string(),
    };
    format!("#{} {what} -> {answer} [{}]", e.seq, e.action)
}
