//! `worker-sim`: what breaks in production worker pools, reproduced on purpose.
//!
//! Many concurrent workers (Celery-style: a dozen concurrent tasks per worker, several workers, one
//! shared database) run jobs on the same credentials while their access tokens expire during the
//! run. Each job does what a real task does ([`crate::refresh::Engine::run_job`]): load its
//! credential, refresh if needed, call the API, and on a 401 refresh once and retry. Afterwards
//! the invariants are judged from the mock Google's own journal (see [`invariants`]): exactly one
//! refresh per credential per expiry, nothing lost, fast failure after `invalid_grant`, no
//! superseded refresh token ever presented.
//!
//! `--processes P` starts P-1 more processes of this binary against the same store and the same
//! mock, so coordination is proven across processes, not only across tasks.
//!
//! With `--token-url` the same workers run on stored credentials against that endpoint
//! ([`external`]): oauthtest's own rows, or with a store config the application's
//! ([`app_rows`]). With `--target-cmd` the application's own workers run instead
//! ([`app_workers`]).

pub mod app_rows;
pub mod app_workers;
mod commands;
pub mod external;
pub mod html;
pub mod invariants;
pub mod mode;
pub mod served;

use crate::credential::GoogleCredential;
use crate::crypto::{EncryptionKey, Keyring};
use crate::error::{Error, Result};
use crate::exchange::{ExchangeConfig, RetryPolicy};
use crate::google_api::ApiEndpoints;
use crate::refresh::{Engine, EngineBuilder, EngineConfig, EngineError, Native, RefreshStore};
use crate::secret::{AccessToken, ClientSecret, RefreshToken};
use crate::store::{HistoryEntry, NewCredential, Store, StoreError};
use base64::Engine as _;
use chrono::{TimeDelta, Utc};
use hdrhistogram::Histogram;
use mock_server::{ClientRegistration, MockConfig, MockGoogle, Step};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the mock Google does during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Google answers every refresh.
    Success,
    /// Every refresh returns a new refresh token; the old one is superseded.
    Rotation,
    /// Half-way through, every other credential's user revokes access: those refreshes get
    /// `invalid_grant`.
    InvalidGrantMidRun,
    /// The first token requests get 503s (a provider hiccup), then Google recovers.
    ServerErrorBurst,
}

impl Behaviour {
    /// The names `--scenario` accepts for worker-sim.
    pub const NAMES: &'static str = "success, rotation, invalid_grant_mid_run, server_error_burst";

    /// Parses a `--scenario` name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "success" => Behaviour::Success,
            "rotation" => Behaviour::Rotation,
            "invalid_grant_mid_run" | "invalid_grant" => Behaviour::InvalidGrantMidRun,
            "server_error_burst" | "5xx_burst" => Behaviour::ServerErrorBurst,
            _ => return None,
        })
    }
}

/// A worker-sim run's shape.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Concurrent workers per process.
    pub workers: usize,
    /// Jobs in all (split across processes).
    pub jobs: u64,
    /// Synthetic credentials.
    pub credentials: usize,
    /// Access-token lifetime at the mock (tokens expire during the run).
    pub token_ttl: Duration,
    /// Mock behaviour.
    pub behaviour: Behaviour,
    /// Processes in all (this one included).
    pub processes: usize,
    /// A store to put temporary rows in (removed afterwards); `None`: a temp SQLite file.
    pub database_url: Option<String>,
    /// Show a progress bar (only on a terminal).
    pub progress: bool,
    /// Coordinate refreshes; `false` reproduces a refresh storm (to show what the invariants catch).
    pub coordinate: bool,
    /// One request's time limit at the token endpoint and the API ([`REQUEST_TIMEOUT`] unless
    /// `--request-timeout-ms` says otherwise).
    pub request_timeout: Duration,
}

/// The variable a worker-sim child is told its parent's pid in, to notice a parent that died
/// before the child could ask to die with it.
pub const PARENT_PID_VAR: &str = "OAUTHTEST_WORKER_PARENT_PID";

/// worker-sim's default time limit for one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What this process's workers did.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProcessTotals {
    /// Jobs whose API call went through.
    pub jobs_succeeded: u64,
    /// Jobs that failed.
    pub jobs_failed: u64,
    /// Failed jobs by outcome code.
    pub failures_by_outcome: BTreeMap<String, u64>,
    /// Failed jobs by cause (`outcome: why`), so a report says why jobs failed, not only how.
    #[serde(default)]
    pub failure_reasons: BTreeMap<String, u64>,
    /// Token-endpoint requests this process made.
    pub token_attempts: u64,
    /// Job latency histogram (µs), serialized (hdrhistogram V2, base64).
    pub latency_histogram: String,
    /// Latency of failed `needs_reconnect` jobs, max in µs.
    pub reconnect_failure_max_us: u64,
}

/// The engine settings worker-sim uses: refresh a quarter-lifetime before expiry, short backoffs.
pub fn engine_for(
    store: Arc<Store>,
    keyring: Arc<Keyring>,
    token_url: &str,
    api: ApiEndpoints,
    config: &SimConfig,
) -> Result<Engine> {
    engine_on(
        Native { store, keyring },
        token_url,
        api,
        config,
        (None, None),
    )
}

/// [`engine_for`] on any store the engine works over (the application's rows), with the OAuth
/// client for rows that carry none.
pub fn engine_on<S: RefreshStore>(
    store: S,
    token_url: &str,
    api: ApiEndpoints,
    config: &SimConfig,
    client: (Option<String>, Option<ClientSecret>),
) -> Result<Engine<S>> {
    let (timeout, token_ttl, coordinate) =
        (config.request_timeout, config.token_ttl, config.coordinate);
    let exchange = ExchangeConfig::with_token_url(token_url)
        .map_err(|e| Error::config("--token-url", e.to_string()))?;
    EngineBuilder::on(store, exchange, api)
        .default_client(client.0, client.1)
        .request_timeout(timeout)
        .retry(RetryPolicy {
            initial_backoff: Duration::from_millis(5),
            max_retry_after: Duration::from_millis(200),
            ..RetryPolicy::default()
        })
        .config(EngineConfig {
            margin: margin_for(token_ttl),
            lease_ttl: Duration::from_secs(30),
            lease_poll: Duration::from_millis(5),
            mode: "worker-sim",
            coordinate,
        })
        .build()
        .map_err(|e| Error::Internal(e.into()))
}

/// The refresh margin worker-sim uses for a token lifetime.
pub fn margin_for(token_ttl: Duration) -> Duration {
    token_ttl / 4
}

/// Runs `jobs` jobs over `ids` with `workers` concurrent workers; `at_midpoint` runs once when
/// half the jobs have been handed out.
///
/// A job that fails because the store failed (the database went away, the disk is full) ends
/// the run: no worker takes another job, the jobs in flight finish (each bounded by the pool's
/// acquire timeout and the request timeout), and the first store error is returned. Without
/// this, every remaining job would wait out the pool's timeout in turn and the run would never
/// end.
///
/// # Errors
/// [`Error::Store`], the first store failure of any job; [`Error::Internal`] when a worker task
/// panicked.
pub async fn run_workers<S: RefreshStore>(
    engine: Arc<Engine<S>>,
    ids: Arc<Vec<S::Id>>,
    workers: usize,
    jobs: u64,
    progress: bool,
    at_midpoint: Option<Box<dyn FnOnce() + Send>>,
) -> Result<ProcessTotals> {
    let next = Arc::new(AtomicU64::new(0));
    let store_failure: Arc<std::sync::Mutex<Option<StoreError>>> = Arc::default();
    let midpoint = Arc::new(std::sync::Mutex::new(at_midpoint));
    let bar = if progress && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(jobs);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bar:40} {pos}/{len} jobs  {per_sec}  eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    // One histogram for all workers (a few hundred KB), so memory does not grow with workers.
    let hist = Arc::new(std::sync::Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
            .unwrap_or_else(|_| unreachable!("valid histogram bounds")),
    ));
    let mut set = tokio::task::JoinSet::new();
    crate::progress::jobs_planned(jobs);
    for _ in 0..workers.max(1) {
        let (engine, ids, next, midpoint, bar, hist, store_failure) = (
            engine.clone(),
            ids.clone(),
            next.clone(),
            midpoint.clone(),
            bar.clone(),
            hist.clone(),
            store_failure.clone(),
        );
        set.spawn(async move {
            let (mut ok, mut failed, mut reconnect_max) = (0u64, 0u64, 0u64);
            let mut failures: BTreeMap<String, u64> = BTreeMap::new();
            let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= jobs || stopped(&store_failure) {
                    break;
                }
                if j == jobs / 2 {
                    let hook = midpoint.lock().ok().and_then(|mut m| m.take());
                    if let Some(hook) = hook {
                        hook();
                    }
                }
                let id = ids[usize::try_from(j).unwrap_or(0) % ids.len()].clone();
                let started = Instant::now();
                let result = engine.run_job(id).await;
                let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                if let Ok(mut h) = hist.lock() {
                    let _ = h.record(us.clamp(1, 60_000_000));
                }
                if let Some(EngineError::Credential(Error::Store(e))) = result.error {
                    let mut first = store_failure.lock().unwrap_or_else(|p| p.into_inner());
                    first.get_or_insert(e);
                    break;
                }
                crate::progress::job_done(result.succeeded(), result.outcome);
                if result.succeeded() {
                    ok += 1;
                } else {
                    failed += 1;
                    *failures.entry(result.outcome.to_owned()).or_default() += 1;
                    let why = result.why.as_deref().unwrap_or("no reason recorded");
                    *reasons
                        .entry(format!("{}: {why}", result.outcome))
                        .or_default() += 1;
                    if result.outcome == crate::exchange::code::NEEDS_RECONNECT {
                        reconnect_max = reconnect_max.max(us);
                    }
                }
                bar.inc(1);
            }
            (ok, failed, failures, reasons, reconnect_max)
        });
    }
    let mut totals = ProcessTotals {
        jobs_succeeded: 0,
        jobs_failed: 0,
        failures_by_outcome: BTreeMap::new(),
        failure_reasons: BTreeMap::new(),
        token_attempts: 0,
        latency_histogram: String::new(),
        reconnect_failure_max_us: 0,
    };
    while let Some(done) = set.join_next().await {
        let (ok, failed, failures, reasons, rmax) =
            done.map_err(|e| Error::Internal(anyhow::anyhow!("worker task failed: {e}")))?;
        totals.jobs_succeeded += ok;
        totals.jobs_failed += failed;
        totals.reconnect_failure_max_us = totals.reconnect_failure_max_us.max(rmax);
        for (k, v) in failures {
            *totals.failures_by_outcome.entry(k).or_default() += v;
        }
        for (k, v) in reasons {
            *totals.failure_reasons.entry(k).or_default() += v;
        }
    }
    bar.finish_and_clear();
    let failure = store_failure
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(e) = failure {
        return Err(Error::Store(e));
    }
    totals.token_attempts = engine.token_attempts();
    totals.latency_histogram = match hist.lock() {
        Ok(h) => serialize_histogram(&h),
        Err(_) => String::new(),
    };
    Ok(totals)
}

/// Whether a job has hit a store failure (see [`run_workers`]).
fn stopped(store_failure: &std::sync::Mutex<Option<StoreError>>) -> bool {
    store_failure
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some()
}

fn serialize_histogram(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    let _ = hdrhistogram::serialization::Serializer::serialize(
        &mut hdrhistogram::serialization::V2Serializer::new(),
        h,
        &mut buf,
    );
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Reads a histogram written by `serialize_histogram`.
pub fn deserialize_histogram(s: &str) -> Option<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .ok()
}

/// One synthetic credential: its id, client and initial refresh token.
#[derive(Clone)]
pub struct SimCredential {
    /// Row id.
    pub id: i64,
    /// Its own OAuth client (so the journal tells credentials apart).
    pub client_id: String,
    /// The refresh token it started with.
    pub initial_refresh_token: String,
}

impl std::fmt::Debug for SimCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCredential")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("initial_refresh_token", &"[redacted]")
            .finish()
    }
}

/// The mock, store and credentials of an embedded run.
pub struct Rig {
    /// The mock Google.
    pub mock: Arc<MockGoogle>,
    /// The store.
    pub store: Arc<Store>,
    /// The ephemeral key.
    pub key_b64: SecretString,
    /// The keyring built from it.
    pub keyring: Arc<Keyring>,
    /// Store URL (for child processes).
    pub url: String,
    /// The credentials.
    pub credentials: Vec<SimCredential>,
    _tempdir: Option<tempfile::TempDir>,
}

/// The OAuth client of synthetic credential `i` (each its own, so the journal tells them apart).
pub fn client_id(i: usize) -> String {
    format!("sim-client-{i}.apps.googleusercontent.com")
}

/// The client secret of synthetic credential `i`.
pub fn client_secret(i: usize) -> String {
    format!("sim-secret-{i}")
}

/// Synthetic credential `i` as the application stored it: a refresh token the mock issued, an
/// access token that expired at `expired`, its own client. Returns it and its refresh token.
pub fn expired_credential(
    mock: &MockGoogle,
    i: usize,
    scopes: &[String],
    expired: chrono::DateTime<Utc>,
) -> (GoogleCredential, String) {
    let client = client_id(i);
    let refresh = mock.issue_refresh_token(&client, scopes);
    let secrets = GoogleCredential {
        access_token: Some(AccessToken::from(mock.issue_access_token(
            &client,
            scopes,
            Duration::ZERO,
        ))),
        refresh_token: Some(RefreshToken::from(refresh.clone())),
        expiry: Some(expired),
        scopes: scopes.to_vec(),
        token_type: "Bearer".into(),
        client_id: Some(client),
        client_secret: Some(ClientSecret::from(client_secret(i))),
        id_token: None,
    };
    (secrets, refresh)
}

/// Starts the mock of a run: tokens living `config.token_ttl`, rotating under
/// [`Behaviour::Rotation`], one client per synthetic credential; API calls journaled when
/// `journal_api_calls` (a run that watches them), else only the token endpoint.
///
/// # Errors
/// [`Error::Internal`] when the mock cannot start.
pub async fn start_mock(config: &SimConfig, journal_api_calls: bool) -> Result<MockGoogle> {
    let mock_config = MockConfig {
        access_token_ttl: config.token_ttl,
        rotate_refresh_tokens: config.behaviour == Behaviour::Rotation,
        clients: (0..config.credentials)
            .map(|i| ClientRegistration::new(client_id(i), client_secret(i)))
            .collect(),
        journal_api_calls,
        ..MockConfig::default()
    };
    MockGoogle::start_with(mock_config)
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("mock Google did not start: {e}")))
}

/// Scripts what the behaviour needs from the start (a burst of 503s for
/// [`Behaviour::ServerErrorBurst`]).
pub fn script_behaviour(mock: &MockGoogle, config: &SimConfig) {
    if config.behaviour == Behaviour::ServerErrorBurst {
        let burst = config.credentials.max(1) * 2;
        mock.set_token_script(
            (0..burst)
                .map(|_| Step::respond(503, r#"{"error":"internal_failure"}"#))
                .collect(),
        );
    }
}

/// Starts the mock and seeds `config.credentials` expired credentials in the store.
///
/// # Errors
/// [`Error::Store`] when the store cannot be opened; [`Error::Internal`] when the mock cannot
/// start.
pub async fn build_rig(config: &SimConfig) -> Result<Rig> {
    let mock = start_mock(config, false).await?;
    let (url, tempdir) = match &config.database_url {
        Some(u) => (u.clone(), None),
        None => {
            let dir = tempfile::tempdir().map_err(|e| Error::Internal(e.into()))?;
            let url = format!("sqlite://{}", dir.path().join("worker-sim.db").display());
            (url, Some(dir))
        }
    };
    let store = Arc::new(Store::connect(&url).await?);
    let key = EncryptionKey::generate();
    let key_b64 = key.to_base64();
    let keyring = Arc::new(Keyring::new(key, vec![]));
    let scopes = vec!["https://www.googleapis.com/auth/gmail.readonly".to_owned()];
    let mut credentials = Vec::with_capacity(config.credentials);
    let expired = Utc::now() - TimeDelta::seconds(60);
    let temporary = config.database_url.is_some();
    if temporary {
        crate::temp_rows::expect(&url);
    }
    for i in 0..config.credentials {
        let (secrets, refresh) = expired_credential(&mock, i, &scopes, expired);
        let client = client_id(i);
        let writing = if temporary {
            Some(crate::temp_rows::writing()?)
        } else {
            None
        };
        let id = store
            .insert(
                &NewCredential {
                    user_id: i64::try_from(i).unwrap_or(0),
                    credential_type: "gmailOAuth2".into(),
                    name: if temporary {
                        crate::temp_rows::name(&format!("worker-sim credential {i}"))
                    } else {
                        format!("worker-sim credential {i}")
                    },
                },
                &secrets,
                &keyring,
                &HistoryEntry::new("worker-sim", "seed", "ok", None),
            )
            .await?;
        if temporary {
            crate::temp_rows::register(&url, id);
        }
        drop(writing);
        credentials.push(SimCredential {
            id,
            client_id: client,
            initial_refresh_token: refresh,
        });
    }
    script_behaviour(&mock, config);
    Ok(Rig {
        mock: Arc::new(mock),
        store,
        key_b64,
        keyring,
        url,
        credentials,
        _tempdir: tempdir,
    })
}

/// Starts a child process running `jobs` jobs over `ids` against the rig's mock and store.
///
/// # Errors
/// [`Error::Internal`] when the child cannot be started.
pub fn spawn_child(rig: &Rig, config: &SimConfig, jobs: u64) -> Result<tokio::process::Child> {
    let exe = std::env::current_exe().map_err(|e| Error::Internal(e.into()))?;
    let ids: Vec<String> = rig.credentials.iter().map(|c| c.id.to_string()).collect();
    tokio::process::Command::new(exe)
        .args([
            "--mode",
            "worker-sim",
            "--worker-child",
            "--format",
            "json",
            "--token-url",
            &rig.mock.token_url(),
            "--api-url",
            &rig.mock.api_url(),
            "--credential-ids",
            &ids.join(","),
            "--jobs",
            &jobs.to_string(),
            "--workers",
            &config.workers.to_string(),
            "--token-ttl-secs",
            &config.token_ttl.as_secs().to_string(),
            "--request-timeout-ms",
            &config.request_timeout.as_millis().to_string(),
        ])
        .args(if config.coordinate {
            &[][..]
        } else {
            &["--unsafe-no-refresh-coordination"][..]
        })
        // The parent passed the production guard for this store (its own temporary one, or the
        // one it was told to use); the child works on the parent's rows only.
        .env_remove("OAUTHTEST_ENV")
        .env(PARENT_PID_VAR, std::process::id().to_string())
        .env("DATABASE_URL", &rig.url)
        .env("OAUTHTEST_ENCRYPTION_KEY", rig.key_b64.expose_secret())
        .env_remove("OAUTHTEST_ENCRYPTION_KEY_FILE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Internal(anyhow::anyhow!("cannot start a worker process: {e}")))
}

#[cfg(test)]
mod tests;
