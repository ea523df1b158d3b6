//! `--mode mock` and `--mode mock-all`: scenarios against an embedded mock of Google.
//!
//! `mock` runs one scenario (default `success`) and prints each exchange step by step, tokens
//! shown as fingerprints. `mock-all` runs every scenario concurrently, each with its own mock
//! server and throwaway store (or temporary rows in the store given by `--database-url` /
//! `DATABASE_URL`, removed afterwards): the check CI runs before every deploy.
//!
//! With `--target-cmd CMD`, both judge the user's own refresh code instead of oauthtest's engine
//! ([`crate::scenarios::target`]); `mock-all` then runs as many scenarios at once as there are
//! CPUs, since each starts a process. With a store config as well, each scenario's credential
//! is a temporary row in the application's own table, judged from that row afterwards
//! ([`crate::scenarios::app_target`]).

use crate::error::{Error, Result};
use crate::exit_code;
use crate::report::Report;
use crate::scenarios::app_target::AppTarget;
use crate::scenarios::run::{run_scenario, RunOptions, ScenarioResult};
use crate::scenarios::target::{run_target, TargetOptions};
use crate::scenarios::{self, Scenario};
use crate::settings::Settings;
use crate::task::MockArgs;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Instant;

/// The results of one or more scenarios.
#[derive(Debug)]
pub struct MockReport {
    mode: &'static str,
    results: Vec<ScenarioResult>,
    duration_ms: u64,
    verbose: bool,
}

fn load(args: &MockArgs) -> Result<Vec<Scenario>> {
    scenarios::load_all(args.scenarios_dir.as_deref()).map_err(|e| Error::input(e.file, e.problem))
}

/// Where each scenario runs: oauthtest's engine, or the user's CMD.
#[derive(Clone)]
enum Runner {
    Engine(RunOptions),
    Target(TargetOptions),
}

impl Runner {
    /// The runner `args` ask for; with `--target-cmd` and a store config, connected to the
    /// application's table.
    async fn new(settings: &Settings, args: &MockArgs) -> Result<Self> {
        Ok(match &args.target {
            Some(target) => Runner::Target(TargetOptions {
                cmd: target.cmd.clone(),
                timeout: target.timeout,
                app: match target.app_store_user {
                    Some(user_id) => Some(Arc::new(AppTarget::open(settings, user_id).await?)),
                    None => None,
                },
            }),
            None => Runner::Engine(RunOptions {
                database_url: args.database_url.clone(),
            }),
        })
    }

    /// Closes what [`Runner::new`] opened.
    async fn close(&self) {
        if let Runner::Target(TargetOptions { app: Some(app), .. }) = self {
            app.close().await;
        }
    }

    async fn run(&self, scenario: &Scenario) -> ScenarioResult {
        match self {
            Runner::Engine(options) => run_scenario(scenario, options).await,
            Runner::Target(options) => run_target(scenario, options).await,
        }
    }

    /// How many scenarios run at once: all of them on the engine, one per CPU with a CMD.
    fn parallelism(&self, scenarios: usize) -> usize {
        match self {
            Runner::Engine(_) => scenarios.max(1),
            Runner::Target(_) => std::thread::available_parallelism().map_or(2, usize::from),
        }
    }
}

/// `--mode mock`: one scenario, step by step.
///
/// # Errors
/// [`Error::Input`] for a malformed scenario file; [`Error::Usage`] for an unknown name.
pub async fn run_one(settings: &Settings, args: &MockArgs) -> Result<MockReport> {
    let name = args.scenario.as_str();
    let all = load(args)?;
    let chosen =
        scenarios::find(&all, name).map_err(|e| Error::Usage(format!("--scenario {name}: {e}")))?;
    let started = Instant::now();
    crate::progress::scenarios_planned(1);
    let runner = Runner::new(settings, args).await?;
    let result = runner.run(chosen).await;
    runner.close().await;
    Ok(MockReport {
        mode: "mock",
        results: vec![result],
        duration_ms: elapsed_ms(started),
        verbose: true,
    })
}

/// `--mode mock-all`: every scenario, concurrently (against `--target-cmd` when given).
///
/// # Errors
/// [`Error::Input`] for a malformed scenario file; [`Error::Usage`] for an unknown name in
/// `--scenario`, or when the report file cannot be written.
pub async fn run_all(settings: &Settings, args: &MockArgs) -> Result<MockReport> {
    let mut scenarios = load(args)?;
    if !args.only.is_empty() {
        for name in &args.only {
            scenarios::find(&scenarios, name)
                .map_err(|e| Error::Usage(format!("--scenario {name}: {e}")))?;
        }
        scenarios.retain(|s| args.only.contains(&s.name));
    }
    let started = Instant::now();
    let runner = Runner::new(settings, args).await?;
    let slots = Arc::new(tokio::sync::Semaphore::new(
        runner.parallelism(scenarios.len()),
    ));
    let mut set = tokio::task::JoinSet::new();
    crate::progress::scenarios_planned(scenarios.len());
    for (i, s) in scenarios.into_iter().enumerate() {
        let runner = runner.clone();
        let slots = Arc::clone(&slots);
        set.spawn(async move {
            let _slot = slots.acquire_owned().await;
            (i, runner.run(&s).await)
        });
    }
    let mut results = Vec::new();
    while let Some(done) = set.join_next().await {
        let (i, r) =
            done.map_err(|e| Error::Internal(anyhow::anyhow!("scenario task failed: {e}")))?;
        crate::progress::scenario_done(&r.name, r.passed, &r.failures);
        results.push((i, r));
    }
    runner.close().await;
    results.sort_by_key(|(i, _)| *i);
    let report = MockReport {
        mode: "mock-all",
        results: results.into_iter().map(|(_, r)| r).collect(),
        duration_ms: elapsed_ms(started),
        verbose: false,
    };
    if let Some(path) = &args.report {
        write_report_file(&report, path)?;
    }
    Ok(report)
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Writes the report to `path`: JUnit XML for `.xml`, JSON for `.json`, text otherwise.
fn write_report_file(report: &MockReport, path: &std::path::Path) -> Result<()> {
    let body = match path.extension().and_then(|e| e.to_str()) {
        Some("xml") => report.junit(),
        Some("json") => serde_json::to_string_pretty(&report.to_json()).unwrap_or_default(),
        _ => {
            let mut out = Vec::new();
            let _ = report.render_text(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        }
    };
    crate::report::write_report_file(path, body.as_bytes())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

impl MockReport {
    fn failed(&self) -> usize {
        self.results.iter().filter(|r| !r.passed).count()
    }

    /// The report as JUnit XML (one testcase per scenario).
    pub fn junit(&self) -> String {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        x.push_str(&format!(
            "<testsuites name=\"oauthtest\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">\n",
            self.results.len(),
            self.failed(),
            self.duration_ms as f64 / 1000.0
        ));
        x.push_str(&format!(
            "  <testsuite name=\"oauthtest {}\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">\n",
            self.mode,
            self.results.len(),
            self.failed(),
            self.duration_ms as f64 / 1000.0
        ));
        for r in &self.results {
            x.push_str(&format!(
                "    <testcase classname=\"oauthtest.scenarios\" name=\"{}\" time=\"{:.3}\">\n",
                xml_escape(&r.name),
                r.duration_ms as f64 / 1000.0
            ));
            if !r.passed {
                x.push_str(&format!(
                    "      <failure message=\"{}\">{}</failure>\n",
                    xml_escape(&r.failures.join("; ")),
                    xml_escape(&r.steps.join("\n"))
                ));
            }
            x.push_str("    </testcase>\n");
        }
        x.push_str("  </testsuite>\n</testsuites>\n");
        x
    }
}

impl Report for MockReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        for r in &self.results {
            if self.verbose {
                writeln!(out, "scenario {}: {}", r.name, r.description)?;
                for s in &r.steps {
                    writeln!(out, "  {s}")?;
                }
            }
            writeln!(
                out,
                "{} {:<32} outcome={:<20} token_requests={:<2} api={:<9} {}ms",
                if r.passed { "PASS" } else { "FAIL" },
                r.name,
                r.outcome,
                r.token_requests,
                r.api_call,
                r.duration_ms
            )?;
            for f in &r.failures {
                writeln!(out, "     {f}")?;
            }
        }
        writeln!(
            out,
            "{} passed, {} failed ({} in {} ms)",
            self.results.len() - self.failed(),
            self.failed(),
            crate::report::count(self.results.len(), "scenario", "scenarios"),
            self.duration_ms
        )
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": self.mode,
            "passed": self.results.len() - self.failed(),
            "failed": self.failed(),
            "duration_ms": self.duration_ms,
            "scenarios": self.results,
        })
    }

    fn render_junit(&self) -> Option<String> {
        Some(self.junit())
    }

    fn exit_code(&self) -> u8 {
        if self.failed() == 0 {
            exit_code::SUCCESS
        } else {
            exit_code::CHECK_FAILED
        }
    }
}
