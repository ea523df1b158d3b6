//! `worker-sim --target-cmd CMD --concurrency N` (alias `celery-sim`): the application's own
//! workers (a Celery pool, say) on credentials seeded into the application's own store, their
//! tokens expiring during the run, against one embedded mock Google; judged from the mock's
//! journal and from the application's rows re-read through the store adapter.
//!
//! 1. The mock starts (tokens living `--token-ttl-secs`); `--credentials` rows are inserted into
//!    the application's table the application's way ([`AppStore::insert`]), each with its own
//!    OAuth client and an expired access token, as temporary rows ([`crate::temp_rows`]: removed
//!    afterwards on every path out of the run).
//! 2. The commands run as `worker_sim::commands` says, with the mock's URLs, the row ids, the job
//!    count and the worker count in `OAUTHTEST_*` variables.
//! 3. The invariants: one refresh per credential per expiry, no token request after
//!    `invalid_grant`, no superseded refresh token presented (the journal); the rows of the
//!    revoked users marked "must reconnect" and only those, every other row holding the live
//!    refresh token and an access token the mock issued (the rows); every job done as the
//!    scenario allows (the finishing command); every worker ran to the end.

use super::commands::{self, Ended, JobSummary, Running};
use super::invariants::Invariant;
use super::mode::{build_report, write_report, WorkerSimReport};
use super::served::{judge_journal, TokenEntry};
use super::{client_secret, script_behaviour, start_mock, Behaviour, ProcessTotals};
use super::{margin_for, SimConfig, REQUEST_TIMEOUT};
use crate::app_store::{AppStore, AppStoreError, Cipher, NewAppCredential, RowId};
use crate::error::{Error, Result};
use crate::report::count;
use crate::settings::Settings;
use crate::task::WorkerSimAppArgs;
use chrono::{TimeDelta, Utc};
use mock_server::{fingerprint, Endpoint, MockGoogle, TokenStatus};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GMAIL_READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";

/// One seeded row.
struct Seeded {
    id: RowId,
    /// Fingerprint of the refresh token it started with (the journal names tokens so).
    refresh_fingerprint: String,
    refresh_token: String,
}

/// Runs the application's workers and judges them.
///
/// # Errors
/// [`Error::Usage`] for a scenario worker-sim does not know; the application store's errors
/// (its table, its key) before anything runs; [`Error::Internal`] when the mock cannot start.
pub async fn run(settings: &Settings, args: &WorkerSimAppArgs) -> Result<WorkerSimReport> {
    let name = args.scenario.as_str();
    let behaviour = Behaviour::parse(name).ok_or_else(|| {
        Error::Usage(format!(
            "--scenario {name}: worker-sim knows {}",
            Behaviour::NAMES
        ))
    })?;
    let config = SimConfig {
        workers: args.workers,
        jobs: args.jobs,
        credentials: args.credentials,
        token_ttl: args.token_ttl,
        behaviour,
        processes: 1,
        database_url: Some(settings.database_url.clone()),
        progress: false,
        coordinate: true,
        request_timeout: settings.request_timeout.unwrap_or(REQUEST_TIMEOUT),
    };
    let (store, cipher) = settings.open_app_store(false, true).await?;
    let cipher = cipher.ok_or_else(|| Error::Usage("no cipher".into()))?;
    let mock = Arc::new(start_mock(&config, true).await?);
    script_behaviour(&mock, &config);

    crate::temp_rows::expect_app(&settings.database_url, store.config());
    let seeded = seed(&store, &cipher, &mock, &config, &settings.database_url).await;
    let outcome = match seeded {
        Ok(seeded) => {
            let outcome = drive(settings, args, &config, &store, &cipher, &mock, &seeded).await;
            let ids: Vec<RowId> = seeded.iter().map(|s| s.id.clone()).collect();
            if store.delete(&ids).await.is_ok() {
                for id in &ids {
                    crate::temp_rows::release_app(&settings.database_url, store.config(), id);
                }
            }
            outcome
        }
        Err(e) => Err(e),
    };
    store.close().await;
    outcome
}

/// Inserts the run's credentials, each registered as temporary as soon as it is written.
async fn seed(
    store: &AppStore,
    cipher: &Cipher,
    mock: &MockGoogle,
    config: &SimConfig,
    url: &str,
) -> Result<Vec<Seeded>> {
    let cfg = store.config();
    let scopes = vec![GMAIL_READONLY.to_owned()];
    let expired = Utc::now() - TimeDelta::seconds(60);
    let mut seeded = Vec::with_capacity(config.credentials);
    for i in 0..config.credentials {
        let (secrets, refresh) = super::expired_credential(mock, i, &scopes, expired);
        let new = NewAppCredential {
            credential_type: cfg.google_types.first().cloned(),
            name: Some(crate::temp_rows::name(&format!(
                "worker-sim credential {i}"
            ))),
            user_id: Some(i.to_string()),
        };
        let writing = crate::temp_rows::writing()?;
        let row = store.insert(cipher, &new, &secrets).await?;
        crate::temp_rows::register_app(url, cfg, &row.row.id);
        drop(writing);
        seeded.push(Seeded {
            id: row.row.id.clone(),
            refresh_fingerprint: fingerprint(&refresh),
            refresh_token: refresh,
        });
    }
    if cfg.payload.client_id.is_none() && config.credentials > 1 {
        return Err(Error::config(
            &cfg.file,
            "store.payload.client_id is not mapped, so each row cannot carry its own OAuth \
             client: worker-sim --target-cmd needs it mapped, or --credentials 1",
        ));
    }
    Ok(seeded)
}

/// The variables every command gets.
fn env_for(
    settings: &Settings,
    args: &WorkerSimAppArgs,
    config: &SimConfig,
    mock: &MockGoogle,
    seeded: &[Seeded],
) -> Vec<(String, String)> {
    let ids: Vec<&str> = seeded.iter().map(|s| s.id.as_str()).collect();
    let mut env: Vec<(String, String)> = [("OAUTHTEST_SCENARIO", args.scenario.clone())]
        .into_iter()
        .chain(crate::app_command::endpoint_env(mock))
        .chain([
            ("OAUTHTEST_CREDENTIAL_IDS", ids.join(",")),
            ("OAUTHTEST_JOBS", config.jobs.to_string()),
            ("OAUTHTEST_CONCURRENCY", config.workers.to_string()),
            ("OAUTHTEST_RUN_ID", crate::temp_rows::run_mark().to_owned()),
            (
                "OAUTHTEST_TOKEN_TTL_SECS",
                config.token_ttl.as_secs().to_string(),
            ),
            (
                "OAUTHTEST_REFRESH_MARGIN_MS",
                margin_for(config.token_ttl).as_millis().to_string(),
            ),
            ("OAUTHTEST_TIMEOUT_SECS", args.timeout.as_secs().to_string()),
            ("DATABASE_URL", settings.database_url.clone()),
        ])
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    if seeded.len() == 1 {
        env.push(("OAUTHTEST_CREDENTIAL_ID".into(), seeded[0].id.to_string()));
    }
    env
}

/// Runs the commands, then judges.
async fn drive(
    settings: &Settings,
    args: &WorkerSimAppArgs,
    config: &SimConfig,
    store: &AppStore,
    cipher: &Cipher,
    mock: &Arc<MockGoogle>,
    seeded: &[Seeded],
) -> Result<WorkerSimReport> {
    let env = env_for(settings, args, config, mock, seeded);
    let secrets: Vec<String> = seeded
        .iter()
        .map(|s| s.refresh_token.clone())
        .chain((0..config.credentials).map(client_secret))
        .collect();
    let revoked: Vec<&Seeded> = if config.behaviour == Behaviour::InvalidGrantMidRun {
        seeded.iter().step_by(2).collect()
    } else {
        Vec::new()
    };
    let revoked_at_midpoint = Arc::new(AtomicBool::new(false));
    let watcher = (!revoked.is_empty()).then(|| {
        let tokens: Vec<String> = revoked.iter().map(|s| s.refresh_token.clone()).collect();
        tokio::spawn(revoke_at_midpoint(
            mock.clone(),
            config.jobs,
            tokens,
            revoked_at_midpoint.clone(),
        ))
    });

    let started = Instant::now();
    let deadline = started + args.timeout;
    let (finishing, workers) =
        start(args, config, &env).map_err(|e| Error::config("--target-cmd", e))?;
    let finished = finishing
        .finish(deadline.saturating_duration_since(Instant::now()), &secrets)
        .await;
    let mut early = Vec::new();
    let mut stopped = Vec::new();
    // Every worker is stopped at once: their warm shutdowns overlap, so stopping N workers
    // costs one shutdown, not N.
    let shared = Arc::new(secrets.clone());
    let mut stopping = tokio::task::JoinSet::new();
    for (n, mut worker) in workers.into_iter().enumerate() {
        let shared = shared.clone();
        stopping.spawn(async move {
            let gone = worker.exited();
            (n, gone, worker.stop(&shared).await)
        });
    }
    let mut ended: Vec<(usize, bool, Ended)> = stopping.join_all().await;
    ended.sort_by_key(|(n, _, _)| *n);
    for (_, gone, e) in ended {
        if gone {
            early.push(e);
        } else {
            stopped.push(e);
        }
    }
    let elapsed = started.elapsed();
    if let Some(w) = watcher {
        w.abort();
    }

    let entries: Vec<TokenEntry> = mock
        .journal()
        .iter()
        .filter(|e| e.endpoint == Endpoint::Token)
        .map(TokenEntry::from_journal)
        .collect();
    let mut judgement = judge_journal(&entries, &HashSet::new(), config.token_ttl);
    let revoked_ids: HashSet<&RowId> = if revoked_at_midpoint.load(Ordering::SeqCst) {
        revoked.iter().map(|s| &s.id).collect()
    } else {
        HashSet::new()
    };
    judgement
        .invariants
        .extend(judge_rows(store, cipher, mock, seeded, &entries, &revoked_ids).await?);
    let summary = commands::summary(&finished.stdout);
    let totals = totals(config, &finished, summary.as_ref());
    judgement.invariants.push(jobs_invariant(
        config,
        &finished,
        summary.as_ref(),
        revoked_ids.len(),
    ));
    if args.enqueue_cmd.is_some() {
        judgement.invariants.push(workers_invariant(&early));
    }
    let mut report = build_report(
        config,
        &totals,
        &empty_histogram(),
        elapsed,
        Some(&judgement),
        "the mock's journal and the application's rows",
    );
    report.set_app_run(
        stopped
            .iter()
            .chain(early.iter())
            .chain(std::iter::once(&finished))
            .filter(|e| !e.stderr_tail.is_empty())
            .filter(|_| !judgement.held())
            .flat_map(|e| {
                e.stderr_tail
                    .iter()
                    .map(move |l| format!("{}: {l}", e.what))
            })
            .collect(),
    );
    if let Some(path) = &args.report {
        let title = format!(
            "oauthtest worker-sim --target-cmd: {} ({}, {} jobs, {})",
            args.scenario,
            count(config.workers, "worker", "workers"),
            config.jobs,
            count(config.credentials, "credential", "credentials"),
        );
        write_report(path, &report, &title, &judgement, &empty_histogram())?;
    }
    Ok(report)
}

/// Starts the commands: the finishing one, and the workers (none when the finishing one is
/// the pool).
fn start(
    args: &WorkerSimAppArgs,
    config: &SimConfig,
    env: &[(String, String)],
) -> std::result::Result<(Running, Vec<Running>), String> {
    let with = |extra: &[(&str, String)]| {
        let mut env = env.to_vec();
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        env
    };
    let Some(enqueue) = &args.enqueue_cmd else {
        let pool = commands::spawn(
            "the worker pool (--target-cmd)".into(),
            &args.worker_cmd,
            &with(&[("OAUTHTEST_WORKERS", config.workers.to_string())]),
        )?;
        return Ok((pool, Vec::new()));
    };
    let mut workers = Vec::with_capacity(config.workers);
    for i in 0..config.workers {
        workers.push(commands::spawn(
            format!("worker {i} (--target-cmd)"),
            &args.worker_cmd,
            &with(&[
                ("OAUTHTEST_WORKERS", "1".into()),
                ("OAUTHTEST_WORKER_INDEX", i.to_string()),
            ]),
        )?);
    }
    let finishing = commands::spawn(
        "the enqueue command (--enqueue-cmd)".into(),
        enqueue,
        &with(&[("OAUTHTEST_WORKERS", config.workers.to_string())]),
    )?;
    Ok((finishing, workers))
}

/// Half-way through (half the jobs' API calls seen), every other user revokes access.
async fn revoke_at_midpoint(
    mock: Arc<MockGoogle>,
    jobs: u64,
    tokens: Vec<String>,
    done: Arc<AtomicBool>,
) {
    let (mut since, mut calls) = (0u64, 0u64);
    loop {
        let page = mock.journal_page(since, 10_000, |_| true);
        if let Some(last) = page.last() {
            since = last.seq;
        }
        calls += page.iter().filter(|e| e.endpoint == Endpoint::Api).count() as u64;
        if calls >= jobs / 2 {
            for t in &tokens {
                mock.revoke(t);
            }
            done.store(true, Ordering::SeqCst);
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The rows, re-read one by one through the adapter.
async fn judge_rows(
    store: &AppStore,
    cipher: &Cipher,
    mock: &MockGoogle,
    seeded: &[Seeded],
    entries: &[TokenEntry],
    revoked: &HashSet<&RowId>,
) -> Result<Vec<Invariant>> {
    let refused: HashSet<&str> = entries
        .iter()
        .filter(|e| e.error.as_deref() == Some("invalid_grant"))
        .filter_map(|e| e.refresh_token_fingerprint.as_deref())
        .collect();
    let (mut lost, mut not_marked, mut wrongly_marked) = (Vec::new(), Vec::new(), Vec::new());
    for s in seeded {
        let cred = match store.load(cipher, &s.id).await {
            Ok(cred) => cred,
            Err(e @ AppStoreError::Database { .. }) => return Err(e.into()),
            Err(e) => {
                lost.push(format!("row {}: {e}", s.id));
                continue;
            }
        };
        let told_invalid = refused.contains(s.refresh_fingerprint.as_str());
        if told_invalid && !cred.needs_reconnect {
            not_marked.push(s.id.to_string());
        }
        if cred.needs_reconnect {
            if !revoked.contains(&s.id) {
                wrongly_marked.push(s.id.to_string());
            }
            continue;
        }
        if revoked.contains(&s.id) {
            continue;
        }
        let refresh = cred
            .secrets
            .refresh_token
            .as_ref()
            .map(|t| mock.refresh_token_status(t.expose_secret()));
        if refresh != Some(TokenStatus::Live) {
            lost.push(format!(
                "row {}: the stored refresh token is {}",
                s.id,
                status_name(refresh)
            ));
        }
        let access = cred
            .secrets
            .access_token
            .as_ref()
            .map(|t| mock.access_token_status(t.expose_secret()));
        if !matches!(access, Some(TokenStatus::Live | TokenStatus::Expired)) {
            lost.push(format!(
                "row {}: the stored access token is {}",
                s.id,
                status_name(access)
            ));
        }
    }
    let mut out = Vec::new();
    if !revoked.is_empty() || !not_marked.is_empty() || !wrongly_marked.is_empty() {
        let held = not_marked.is_empty() && wrongly_marked.is_empty();
        out.push(Invariant {
            name: "invalid_grant marks the row for reconnect, and only then",
            held,
            detail: if held {
                format!(
                    "{} revoked mid-run; every row answered invalid_grant is marked",
                    count(revoked.len(), "credential", "credentials")
                )
            } else {
                format!(
                    "answered invalid_grant but not marked: {not_marked:?}; marked without \
                     being revoked: {wrongly_marked:?}"
                )
            },
        });
    }
    out.push(Invariant {
        name: "no token lost: stored tokens are the live ones",
        held: lost.is_empty(),
        detail: if lost.is_empty() {
            format!(
                "{} re-read through the store adapter and checked against the mock",
                count(seeded.len(), "row", "rows")
            )
        } else {
            lost.into_iter().take(10).collect::<Vec<_>>().join("; ")
        },
    });
    Ok(out)
}

fn status_name(status: Option<TokenStatus>) -> &'static str {
    match status {
        None => "missing",
        Some(TokenStatus::Unknown) => "not one the mock issued",
        Some(s) => s.name(),
    }
}

fn totals(config: &SimConfig, finished: &Ended, summary: Option<&JobSummary>) -> ProcessTotals {
    let (ok, failed, outcomes) = match summary {
        Some(s) => (
            s.ok,
            s.jobs.saturating_sub(s.ok),
            s.outcomes
                .iter()
                .filter(|(k, _)| k.as_str() != "ok")
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        ),
        None if finished.code == Some(0) => (config.jobs, 0, BTreeMap::new()),
        None => (
            0,
            config.jobs,
            BTreeMap::from([(finished.status(), config.jobs)]),
        ),
    };
    ProcessTotals {
        jobs_succeeded: ok,
        jobs_failed: failed,
        failure_reasons: outcomes.clone(),
        failures_by_outcome: outcomes,
        token_attempts: 0,
        latency_histogram: String::new(),
        reconnect_failure_max_us: 0,
    }
}

/// `no job fails`, or with revocations mid-run, `jobs fail only as the scenario allows`: at most
/// the revoked users' share of the jobs (their jobs may fail however the application names it:
/// `needs_reconnect`, or at the API, whose token was revoked with the grant).
fn jobs_invariant(
    config: &SimConfig,
    finished: &Ended,
    summary: Option<&JobSummary>,
    revoked: usize,
) -> Invariant {
    let credentials = config.credentials.max(1) as u64;
    let may_fail = (config.jobs * revoked as u64).div_ceil(credentials);
    let name = if revoked == 0 {
        "no job fails"
    } else {
        "jobs fail only as the scenario allows"
    };
    let mut problems = Vec::new();
    if finished.timed_out || finished.code.is_none() {
        problems.push(format!("{} {}", finished.what, finished.status()));
    }
    match summary {
        Some(s) => {
            if s.jobs != config.jobs {
                problems.push(format!("it ran {} of the {} jobs", s.jobs, config.jobs));
            }
            let failed = s.jobs.saturating_sub(s.ok);
            if failed > may_fail {
                let failures: Vec<String> = s
                    .outcomes
                    .iter()
                    .filter(|(k, _)| k.as_str() != "ok")
                    .map(|(k, v)| format!("{v} {k}"))
                    .collect();
                problems.push(if revoked == 0 {
                    format!("{failed} of {} jobs failed: {}", s.jobs, failures.join(", "))
                } else {
                    format!(
                        "{failed} of {} jobs failed ({}); the {} revoked users' share is at most                          {may_fail}",
                        s.jobs,
                        failures.join(", "),
                        revoked
                    )
                });
            }
        }
        None if !problems.is_empty() || finished.code == Some(0) => {}
        None => problems.push(format!(
            "{} {} and printed no job summary",
            finished.what,
            finished.status()
        )),
    }
    Invariant {
        name,
        held: problems.is_empty(),
        detail: if problems.is_empty() {
            match summary {
                Some(s) => format!("{} of {} jobs ok, outcomes {:?}", s.ok, s.jobs, s.outcomes),
                None => format!("{} exited 0 (no job summary printed)", finished.what),
            }
        } else {
            problems.join("; ")
        },
    }
}

fn workers_invariant(early: &[Ended]) -> Invariant {
    Invariant {
        name: "every worker ran until the jobs were done",
        held: early.is_empty(),
        detail: if early.is_empty() {
            "every worker was still running when the enqueue command finished".into()
        } else {
            early
                .iter()
                .map(|e| format!("{} {} early", e.what, e.status()))
                .collect::<Vec<_>>()
                .join("; ")
        },
    }
}

fn empty_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| unreachable!("valid histogram bounds"))
}
