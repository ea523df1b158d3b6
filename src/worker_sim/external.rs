//! worker-sim on stored credentials against a token endpoint given by URL (`--token-url`: a
//! running `serve`, or Google): oauthtest's own rows ([`run_external`], also a child process
//! of a multi-process run) or the application's ([`super::app_rows::run`]). Both run the same
//! workers over the same engine and are judged the same way (`on_rows`): from serve's
//! journal when the endpoint is a serve, and from this process's own counts.

use crate::error::{Error, Result};
use crate::refresh::{Engine, RefreshStore};
use crate::report::count_u64;
use crate::settings::Settings;
use crate::task::WorkerSimExternalArgs;
use crate::worker_sim::invariants::Invariant;
use crate::worker_sim::mode::{build_report, WorkerSimReport};
use crate::worker_sim::served::{judge_journal, JournalError, ServedJournal};
use crate::worker_sim::{
    deserialize_histogram, engine_for, run_workers, Behaviour, SimConfig, PARENT_PID_VAR,
    REQUEST_TIMEOUT,
};
use secrecy::SecretString;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

/// The run's shape: `args`' workers and jobs on `credentials` stored credentials.
pub(super) fn external_config<I>(
    settings: &Settings,
    args: &WorkerSimExternalArgs<I>,
    credentials: usize,
) -> SimConfig {
    SimConfig {
        workers: args.workers,
        jobs: args.jobs,
        credentials,
        token_ttl: args.token_ttl,
        behaviour: Behaviour::Success,
        processes: 1,
        database_url: None,
        progress: !args.child,
        coordinate: args.coordinate,
        request_timeout: settings.request_timeout.unwrap_or(REQUEST_TIMEOUT),
    }
}

/// Jobs on oauthtest's stored credentials against a token endpoint given by URL: a child
/// process of a multi-process run, or a run against Google or a running `serve`.
///
/// # Errors
/// A credential that is not stored (exit 2, naming it); store, key and journal errors.
pub async fn run_external(
    settings: &Settings,
    args: &WorkerSimExternalArgs,
) -> Result<WorkerSimReport> {
    if args.child {
        // Die with the parent: a child left running after its parent is gone would keep
        // working on rows nobody judges. The parent may already be gone before this line runs
        // (killed while the child started): then the child's parent is no longer the pid the
        // parent gave it, and it stops at once.
        let _ =
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM));
        let parent = std::env::var(PARENT_PID_VAR)
            .ok()
            .and_then(|p| p.parse::<i32>().ok());
        let now = rustix::process::getppid().map(|p| p.as_raw_nonzero().get());
        if parent.is_some_and(|p| now != Some(p)) {
            return Err(Error::Interrupted { signal: "SIGTERM" });
        }
    }
    let ids: Vec<i64> = args.credential_ids.iter().map(|id| id.get()).collect();
    let config = external_config(settings, args, ids.len());
    let keyring = Arc::new(settings.keyring()?);
    let store = Arc::new(settings.open_store().await?);
    // Every row is read once, before any job runs: a missing one is named at once.
    let mut rows = Vec::with_capacity(ids.len());
    for id in &ids {
        match store.get(*id).await? {
            Some(row) => rows.push(row),
            None => return Err(crate::error::not_found(&store, *id).await),
        }
    }
    // The mock's journal, read from where it is now: every process's requests from here on
    // are judged (a serve's; any other endpoint keeps no journal oauthtest can read).
    let journal = if args.child {
        None
    } else {
        served_journal(settings, args.admin_token.clone()).await?
    };
    let mut clients = HashSet::new();
    if journal.is_some() {
        for row in &rows {
            let stored = row.decrypt(&keyring).ok().and_then(|s| s.client_id);
            clients.extend(stored.or_else(|| settings.client_id.clone()));
        }
    }
    let engine = Arc::new(engine_for(
        store.clone(),
        keyring,
        settings.token_url.as_str(),
        settings.api.clone(),
        &config,
    )?);
    let report = on_rows(&config, args.child, engine, ids, journal, &clients).await;
    store.close().await;
    report
}

/// Runs the workers over `ids` and judges the run: from serve's `journal` (the requests of
/// `clients`' credentials since it was opened) when there is one, and from this process's own
/// counts (a child only counts, for its parent to judge).
///
/// # Errors
/// The first store failure of any job; a journal serve refuses to show.
pub(super) async fn on_rows<S: RefreshStore>(
    config: &SimConfig,
    child: bool,
    engine: Arc<Engine<S>>,
    ids: Vec<S::Id>,
    journal: Option<(ServedJournal, u64)>,
    clients: &HashSet<String>,
) -> Result<WorkerSimReport> {
    let started = Instant::now();
    let totals = run_workers(
        engine,
        Arc::new(ids),
        config.workers,
        config.jobs,
        config.progress,
        None,
    )
    .await?;
    let elapsed = started.elapsed();
    let hist = deserialize_histogram(&totals.latency_histogram)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("latency histogram unreadable")))?;
    let judged_from = if journal.is_some() {
        "the mock's journal (/__admin/requests) and this process's counts"
    } else {
        "this process's own counts"
    };
    let mut report = build_report(config, &totals, &hist, elapsed, None, judged_from);
    if let Some((journal, since)) = &journal {
        let entries = journal
            .token_requests_since(*since)
            .await
            .map_err(journal_error)?;
        let judgement = judge_journal(&entries, clients, config.token_ttl);
        report.token_requests = judgement.token_requests as u64;
        report.refreshes_per_expiry = Some(judgement.refreshes_per_expiry);
        report.invariants.extend(judgement.invariants);
    }
    if child {
        report.child = Some(totals);
    } else {
        // What this process saw is judged too, and a run whose every job failed fails.
        let failed = totals.jobs_failed;
        report.invariants.push(Invariant {
            name: "no job fails",
            held: failed == 0,
            detail: if failed == 0 {
                format!(
                    "{} succeeded",
                    count_u64(totals.jobs_succeeded, "job", "jobs")
                )
            } else {
                format!(
                    "{} of {} failed: {:?}",
                    failed,
                    count_u64(failed + totals.jobs_succeeded, "job", "jobs"),
                    totals.failures_by_outcome
                )
            },
        });
    }
    Ok(report)
}

fn journal_error(e: JournalError) -> Error {
    match e {
        JournalError::NotServe(why) | JournalError::Refused(why) => Error::config(
            "--token-url",
            format!("the mock's journal cannot be read: {why}"),
        ),
    }
}

/// serve's journal and where it stands, or `None` (said on stderr) when the token endpoint
/// keeps none that can be read.
///
/// # Errors
/// [`Error::Config`] when serve refuses its admin API (the admin token).
pub(super) async fn served_journal(
    settings: &Settings,
    admin_token: Option<SecretString>,
) -> Result<Option<(ServedJournal, u64)>> {
    let journal = ServedJournal::new(
        &settings.token_url,
        admin_token,
        settings.request_timeout.unwrap_or(REQUEST_TIMEOUT),
    );
    match journal.last_seq().await {
        Ok(since) => Ok(Some((journal, since))),
        Err(JournalError::NotServe(why)) => {
            tracing::warn!(
                "no mock journal to judge from ({why}): only this process's own counts are \
                 judged; point --token-url at a running `oauthtest --mode serve` to judge every \
                 process"
            );
            Ok(None)
        }
        Err(e) => Err(journal_error(e)),
    }
}
