//! `--mode worker-sim` (alias `celery-sim`): many concurrent workers, one refresh per expiry,
//! nothing lost. See [`crate::worker_sim`] for what a run does and [`crate::worker_sim::invariants`]
//! for what it proves.

use crate::error::{Error, Result};
use crate::exit_code;
use crate::google_api::ApiEndpoints;
use crate::report::{count, Report};
use crate::settings::Settings;
use crate::task::WorkerSimArgs;
use crate::worker_sim::invariants::{judge, Invariant, Judgement};
use crate::worker_sim::{
    build_rig, deserialize_histogram, engine_for, run_workers, spawn_child, Behaviour,
    ProcessTotals, SimConfig, REQUEST_TIMEOUT,
};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::HashSet;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The figures and verdict of a run.
#[derive(Debug, Serialize)]
pub struct WorkerSimReport {
    #[serde(skip)]
    pub(super) child: Option<ProcessTotals>,
    behaviour: Option<Behaviour>,
    processes: usize,
    workers: usize,
    credentials: usize,
    jobs: u64,
    jobs_succeeded: u64,
    jobs_failed: u64,
    failures_by_outcome: std::collections::BTreeMap<String, u64>,
    failure_reasons: std::collections::BTreeMap<String, u64>,
    pub(super) token_requests: u64,
    pub(super) refreshes_per_expiry: Option<f64>,
    jobs_per_second: f64,
    duration_ms: u64,
    latency_ms: Latency,
    peak_memory_kb: Option<u64>,
    judged_from: &'static str,
    pub(super) invariants: Vec<crate::worker_sim::invariants::Invariant>,
    /// With --target-cmd, when an invariant broke: the last lines of the commands' stderr.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    command_stderr: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

fn latency(h: &Histogram<u64>) -> Latency {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Latency {
        p50: ms(0.50),
        p95: ms(0.95),
        p99: ms(0.99),
        max: h.max() as f64 / 1000.0,
    }
}

/// This process's peak resident memory (Linux), in KB.
fn peak_memory_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn sim_config(settings: &Settings, args: &WorkerSimArgs) -> Result<SimConfig> {
    let name = args.scenario.as_str();
    let behaviour = Behaviour::parse(name).ok_or_else(|| {
        Error::Usage(format!(
            "--scenario {name}: worker-sim knows {}",
            Behaviour::NAMES
        ))
    })?;
    Ok(SimConfig {
        workers: args.workers,
        jobs: args.jobs,
        credentials: args.credentials,
        token_ttl: args.token_ttl,
        behaviour,
        processes: args.processes,
        database_url: args.database_url.clone(),
        progress: true,
        coordinate: args.coordinate,
        request_timeout: settings.request_timeout.unwrap_or(REQUEST_TIMEOUT),
    })
}

/// Runs worker-sim on synthetic credentials and the embedded mock.
///
/// # Errors
/// [`Error::Usage`] for bad flags; store, key and mock errors.
pub async fn run(settings: &Settings, args: &WorkerSimArgs) -> Result<WorkerSimReport> {
    let config = sim_config(settings, args)?;
    let rig = build_rig(&config).await?;
    let api = ApiEndpoints {
        profile_url: rig.mock.api_url(),
        tokeninfo_url: rig.mock.tokeninfo_url(),
    };
    let engine = Arc::new(engine_for(
        rig.store.clone(),
        rig.keyring.clone(),
        &rig.mock.token_url(),
        api,
        &config,
    )?);
    let ids = Arc::new(rig.credentials.iter().map(|c| c.id).collect::<Vec<_>>());
    let per_process = config.jobs / config.processes as u64;
    let own_jobs = config.jobs - per_process * (config.processes as u64 - 1);

    let revoked: HashSet<i64> = if config.behaviour == Behaviour::InvalidGrantMidRun {
        rig.credentials.iter().step_by(2).map(|c| c.id).collect()
    } else {
        HashSet::new()
    };
    let midpoint: Option<Box<dyn FnOnce() + Send>> = if revoked.is_empty() {
        None
    } else {
        let mock = rig.mock.clone();
        let tokens: Vec<String> = rig
            .credentials
            .iter()
            .step_by(2)
            .map(|c| c.initial_refresh_token.clone())
            .collect();
        Some(Box::new(move || {
            for t in &tokens {
                mock.revoke(t);
            }
        }))
    };

    let started = Instant::now();
    let mut children = Vec::new();
    for _ in 1..config.processes {
        children.push(spawn_child(&rig, &config, per_process)?);
    }
    let mut totals = run_workers(
        engine,
        ids,
        config.workers,
        own_jobs,
        config.progress,
        midpoint,
    )
    .await?;
    let mut hist = deserialize_histogram(&totals.latency_histogram)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("latency histogram unreadable")))?;
    // A worker process that dies (killed, crashed) is a finding about the run, not a bug of
    // oauthtest's: its jobs are not counted and the run fails on it.
    let mut lost_processes = Vec::new();
    for (n, child) in children.into_iter().enumerate() {
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| Error::Internal(e.into()))?;
        let theirs = if out.status.success() {
            serde_json::from_slice::<ProcessTotals>(&out.stdout).ok()
        } else {
            None
        };
        let Some(theirs) = theirs else {
            lost_processes.push(format!("worker process {} ({})", n + 2, out.status));
            continue;
        };
        if let Some(h) = deserialize_histogram(&theirs.latency_histogram) {
            let _ = hist.add(&h);
        }
        totals.jobs_succeeded += theirs.jobs_succeeded;
        totals.jobs_failed += theirs.jobs_failed;
        totals.token_attempts += theirs.token_attempts;
        totals.reconnect_failure_max_us = totals
            .reconnect_failure_max_us
            .max(theirs.reconnect_failure_max_us);
        for (k, v) in theirs.failures_by_outcome {
            *totals.failures_by_outcome.entry(k).or_default() += v;
        }
        for (k, v) in theirs.failure_reasons {
            *totals.failure_reasons.entry(k).or_default() += v;
        }
    }
    let elapsed = started.elapsed();
    let mut judgement = judge(&rig, &config, &totals, &revoked).await?;
    if config.processes > 1 {
        judgement.invariants.push(Invariant {
            name: "every worker process finished",
            held: lost_processes.is_empty(),
            detail: if lost_processes.is_empty() {
                format!(
                    "{} finished and reported",
                    count(config.processes, "process", "processes")
                )
            } else {
                format!(
                    "{} ended without reporting; their jobs are not counted",
                    lost_processes.join(", ")
                )
            },
        });
    }
    if config.database_url.is_some() {
        let ids: Vec<i64> = rig.credentials.iter().map(|c| c.id).collect();
        rig.store.delete(&ids).await?;
        crate::temp_rows::release(&rig.url, &ids);
    }
    let report = build_report(
        &config,
        &totals,
        &hist,
        elapsed,
        Some(&judgement),
        "the mock's journal",
    );
    if let Some(path) = &args.report {
        let title = format!(
            "oauthtest worker-sim: {} ({} × {}, {} jobs, {})",
            args.scenario,
            count(config.workers, "worker", "workers"),
            count(config.processes, "process", "processes"),
            config.jobs,
            count(config.credentials, "credential", "credentials"),
        );
        write_report(path, &report, &title, &judgement, &hist)?;
    }
    rig.store.close().await;
    Ok(report)
}

/// Writes `--report`: as mock-all does, by extension, JSON for .json, else a self-contained
/// HTML page.
///
/// # Errors
/// [`Error::Config`] when the file cannot be written.
pub(super) fn write_report(
    path: &std::path::Path,
    report: &WorkerSimReport,
    title: &str,
    judgement: &Judgement,
    hist: &Histogram<u64>,
) -> Result<()> {
    let body = if path.extension().is_some_and(|e| e == "json") {
        serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
    } else {
        crate::worker_sim::html::render(
            title,
            &report.summary_rows(),
            judgement,
            hist,
            report.credentials,
        )
    };
    crate::report::write_report_file(path, body.as_bytes())
}

pub(super) fn build_report(
    config: &SimConfig,
    totals: &ProcessTotals,
    hist: &Histogram<u64>,
    elapsed: Duration,
    judgement: Option<&Judgement>,
    judged_from: &'static str,
) -> WorkerSimReport {
    let jobs = totals.jobs_succeeded + totals.jobs_failed;
    WorkerSimReport {
        child: None,
        behaviour: Some(config.behaviour),
        processes: config.processes,
        workers: config.workers,
        credentials: config.credentials,
        jobs,
        jobs_succeeded: totals.jobs_succeeded,
        jobs_failed: totals.jobs_failed,
        failures_by_outcome: totals.failures_by_outcome.clone(),
        failure_reasons: totals.failure_reasons.clone(),
        token_requests: judgement.map_or(totals.token_attempts, |j| j.token_requests as u64),
        refreshes_per_expiry: judgement.map(|j| j.refreshes_per_expiry),
        jobs_per_second: jobs as f64 / elapsed.as_secs_f64().max(1e-9),
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        latency_ms: latency(hist),
        peak_memory_kb: peak_memory_kb(),
        judged_from,
        invariants: judgement.map(|j| j.invariants.clone()).unwrap_or_default(),
        command_stderr: Vec::new(),
    }
}

impl WorkerSimReport {
    /// Marks the report as a run of the application's workers (`--target-cmd`), whose jobs
    /// oauthtest does not time, with the tail of the commands' stderr to show.
    pub(super) fn set_app_run(&mut self, command_stderr: Vec<String>) {
        self.command_stderr = command_stderr;
        self.latency_ms = Latency {
            p50: 0.0,
            p95: 0.0,
            p99: 0.0,
            max: 0.0,
        };
        self.peak_memory_kb = None;
    }

    fn summary_rows(&self) -> Vec<(String, String)> {
        vec![
            (
                "jobs".into(),
                format!(
                    "{} ok / {} failed of {}",
                    self.jobs_succeeded, self.jobs_failed, self.jobs
                ),
            ),
            ("token requests".into(), self.token_requests.to_string()),
            (
                "refreshes per expiry".into(),
                self.refreshes_per_expiry
                    .map_or_else(|| "not judged".into(), |r| format!("{r:.2}")),
            ),
            (
                "job latency".into(),
                format!(
                    "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                    self.latency_ms.p50,
                    self.latency_ms.p95,
                    self.latency_ms.p99,
                    self.latency_ms.max
                ),
            ),
            (
                "throughput".into(),
                format!(
                    "{:.0} jobs/s over {} ms",
                    self.jobs_per_second, self.duration_ms
                ),
            ),
            (
                "shape".into(),
                format!(
                    "{} × {}, {}",
                    count(self.workers, "worker", "workers"),
                    count(self.processes, "process", "processes"),
                    count(self.credentials, "credential", "credentials")
                ),
            ),
            (
                "peak memory".into(),
                self.peak_memory_kb.map_or_else(
                    || "unknown".into(),
                    |k| format!("{} MB (this process)", k / 1024),
                ),
            ),
        ]
    }
}

impl Report for WorkerSimReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        for (k, v) in self.summary_rows() {
            writeln!(out, "{k:<22} {v}")?;
        }
        if !self.failures_by_outcome.is_empty() {
            writeln!(out, "{:<22} {:?}", "failures", self.failures_by_outcome)?;
            for (why, n) in &self.failure_reasons {
                writeln!(out, "{:<22} {n} × {why}", "  why")?;
            }
        }
        for line in &self.command_stderr {
            writeln!(out, "{:<22} {line}", "  stderr")?;
        }
        writeln!(out, "invariants (judged from {}):", self.judged_from)?;
        if self.invariants.is_empty() {
            writeln!(
                out,
                "  none judged: the token endpoint is not the embedded mock"
            )?;
        }
        for i in &self.invariants {
            writeln!(
                out,
                "  {} {}: {}",
                if i.held { "HELD  " } else { "BROKEN" },
                i.name,
                i.detail
            )?;
        }
        Ok(())
    }

    fn to_json(&self) -> serde_json::Value {
        if let Some(child) = &self.child {
            return serde_json::json!(child);
        }
        let mut v = serde_json::json!(self);
        v["mode"] = "worker-sim".into();
        v
    }

    fn exit_code(&self) -> u8 {
        // A child reports its counts to its parent, which judges; any other run that judged
        // nothing must not pass.
        if self.child.is_some() {
            return exit_code::SUCCESS;
        }
        if !self.invariants.is_empty() && self.invariants.iter().all(|i| i.held) {
            exit_code::SUCCESS
        } else {
            exit_code::CHECK_FAILED
        }
    }
}
