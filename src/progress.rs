//! What a run had done when SIGINT or SIGTERM stopped it: the scenarios `mock` and `mock-all`
//! finished (with their results) and the jobs `worker-sim` ran in this process, so that an
//! interrupted run prints what it did so far instead of nothing.
//!
//! Process-wide on purpose, like [`crate::temp_rows`]: the interrupted mode's future is dropped
//! by the signal, and `main` reads what it recorded afterwards. What is here is judged so far
//! only, never a verdict: an interrupted run keeps its exit code (130 or 143).

use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One scenario's result, as far as the run got.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioDone {
    /// The scenario.
    pub name: String,
    /// Whether every expectation held.
    pub passed: bool,
    /// Each broken expectation.
    pub failures: Vec<String>,
}

/// Worker-sim's jobs in this process so far.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Jobs {
    /// Jobs the run was asked for (all processes).
    pub planned: u64,
    /// Jobs this process finished that succeeded.
    pub succeeded: u64,
    /// Jobs this process finished that failed.
    pub failed: u64,
    /// The failed ones, by outcome.
    pub failures_by_outcome: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
struct Recorded {
    scenarios_planned: Option<usize>,
    scenarios: Vec<ScenarioDone>,
    jobs: Option<Jobs>,
}

static RECORDED: Mutex<Recorded> = Mutex::new(Recorded {
    scenarios_planned: None,
    scenarios: Vec::new(),
    jobs: None,
});

fn recorded() -> MutexGuard<'static, Recorded> {
    RECORDED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The run is about to run `n` scenarios.
pub fn scenarios_planned(n: usize) {
    recorded().scenarios_planned = Some(n);
}

/// A scenario finished with this result.
pub fn scenario_done(name: &str, passed: bool, failures: &[String]) {
    recorded().scenarios.push(ScenarioDone {
        name: name.to_owned(),
        passed,
        failures: failures.to_vec(),
    });
}

/// Worker-sim is about to run `n` jobs.
pub fn jobs_planned(n: u64) {
    recorded().jobs.get_or_insert_with(Jobs::default).planned = n;
}

/// A worker-sim job finished: succeeded, or failed with `outcome`.
pub fn job_done(succeeded: bool, outcome: &str) {
    let mut r = recorded();
    let jobs = r.jobs.get_or_insert_with(Jobs::default);
    if succeeded {
        jobs.succeeded += 1;
    } else {
        jobs.failed += 1;
        *jobs
            .failures_by_outcome
            .entry(outcome.to_owned())
            .or_default() += 1;
    }
}

/// What an interrupted run had done: printed (text) or emitted (`--format json`, the
/// `interrupted` object beside `error`) by the binary after the run's temporary rows are gone.
#[derive(Debug, Serialize)]
pub struct Interrupted {
    /// `SIGINT` or `SIGTERM`.
    pub signal: &'static str,
    /// The mode that was stopped.
    pub mode: &'static str,
    /// Always true: what follows was judged so far, not the run's verdict.
    pub partial: bool,
    /// mock, mock-all: scenarios the run was to run (absent before it started them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenarios_planned: Option<usize>,
    /// mock, mock-all: the scenarios that finished, in the order they did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenarios: Option<Vec<ScenarioDone>>,
    /// worker-sim: the jobs this process finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Jobs>,
    /// Temporary rows removed from `--database-url`'s store on the way out.
    pub temporary_rows_removed: usize,
}

impl Interrupted {
    /// What was recorded, for the run of `mode` that `signal` stopped.
    pub fn collect(signal: &'static str, mode: &'static str, removed: usize) -> Self {
        let r = recorded();
        let scenarios =
            (r.scenarios_planned.is_some() || !r.scenarios.is_empty()).then(|| r.scenarios.clone());
        Self {
            signal,
            mode,
            partial: true,
            scenarios_planned: r.scenarios_planned,
            scenarios,
            jobs: r.jobs.clone(),
            temporary_rows_removed: removed,
        }
    }

    /// For people, on stdout.
    ///
    /// # Errors
    /// Writing to `out`.
    pub fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "INTERRUPTED by {}: --mode {} stopped before it finished. What it had done so far \
             (partial: not a verdict):",
            self.signal, self.mode
        )?;
        if let Some(done) = &self.scenarios {
            let passed = done.iter().filter(|s| s.passed).count();
            let of = self
                .scenarios_planned
                .map_or_else(String::new, |n| format!(" of {n}"));
            writeln!(
                out,
                "  scenarios finished   {}{of}: {passed} passed, {} failed",
                done.len(),
                done.len() - passed
            )?;
            for s in done {
                let verdict = if s.passed { "PASS" } else { "FAIL" };
                writeln!(out, "    {verdict} {}", s.name)?;
                for f in &s.failures {
                    writeln!(out, "         {f}")?;
                }
            }
        }
        if let Some(j) = &self.jobs {
            writeln!(
                out,
                "  jobs done            {} of {} in this process: {} ok, {} failed",
                j.succeeded + j.failed,
                j.planned,
                j.succeeded,
                j.failed
            )?;
            if !j.failures_by_outcome.is_empty() {
                let by: Vec<String> = j
                    .failures_by_outcome
                    .iter()
                    .map(|(k, v)| format!("{v} × {k}"))
                    .collect();
                writeln!(out, "  failures             {}", by.join(", "))?;
            }
        }
        if self.scenarios.is_none() && self.jobs.is_none() {
            writeln!(out, "  nothing finished yet")?;
        }
        writeln!(
            out,
            "  temporary rows removed {}",
            self.temporary_rows_removed
        )
    }

    /// For `--format json`: `{"error": {...}, "interrupted": {...}}`.
    pub fn to_json(&self, error: serde_json::Value) -> serde_json::Value {
        let mut v = error;
        v["interrupted"] = serde_json::json!(self);
        v
    }
}
