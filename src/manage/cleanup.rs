//! `--mode cleanup`: remove the temporary rows a killed run left in a store.
//!
//! `mock`, `mock-all` and `worker-sim` given `--database-url` remove their temporary rows on
//! every way out of the run but one: a `kill -9` (or a machine that went down) leaves them.
//! Their names say whose they are ([`crate::temp_rows::Mark`]), and this mode removes those of
//! runs that are provably gone (same host and boot and no process with the writer's pid, or the
//! machine rebooted since), with their history and their leases (columns of the rows). A run
//! still going keeps its rows; one this machine cannot judge (another host, a mark without a
//! pid) keeps them unless it is named with `--run`, which says the caller knows it is gone.
//! Without `--yes` it only shows what it would remove.

use crate::error::{Error, Result};
use crate::report::{human_span, join_numbers, Report};
use crate::settings::Settings;
use crate::store::{redact_url, Liveness};
use crate::task::CleanupArgs;
use crate::temp_rows::{self, TemporaryRun};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::{self, Write};

/// One run's temporary rows and what was done with them.
#[derive(Debug, Serialize)]
pub struct RunEntry {
    run: String,
    /// `pid N on HOST`, or that the mark names no process.
    writer: String,
    /// `gone`, `rebooted`, `running` or `unknown`.
    alive: &'static str,
    rows: Vec<i64>,
    oldest: DateTime<Utc>,
    age_secs: i64,
    /// `removed`, `would_remove` or `kept`.
    action: &'static str,
    /// Why kept, when kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// What cleanup found and did.
#[derive(Debug, Serialize)]
pub struct CleanupReport {
    database: String,
    applied: bool,
    runs: Vec<RunEntry>,
    removed: usize,
}

/// Whether a run's rows may go: `Ok(())`, or why they stay.
fn removable(run: &TemporaryRun, named: bool) -> std::result::Result<(), String> {
    match run.liveness() {
        Liveness::Gone | Liveness::Rebooted => Ok(()),
        Liveness::Running => Err(format!(
            "{} is still running: the run removes its rows when it ends",
            run.writer()
        )),
        Liveness::Unknown if named => Ok(()),
        Liveness::Unknown => Err(format!(
            "written by {}, which this machine cannot check; if that run is gone, name it: \
             --run {}",
            run.writer(),
            run.mark.run
        )),
    }
}

/// Finds the store's temporary rows by run and, with `--yes`, removes those of dead runs.
///
/// # Errors
/// [`Error::Usage`] when `--run` names a run with no rows here, or one still running (nothing
/// is removed then); [`Error::Store`].
pub async fn run(settings: &Settings, args: &CleanupArgs) -> Result<CleanupReport> {
    let store = if args.apply {
        settings.open_store().await?
    } else {
        settings.open_store_read_only().await?
    };
    let listing = store.list_all().await?;
    let mut runs = temp_rows::by_run(&listing.rows);
    if let Some(wanted) = &args.run {
        runs.retain(|r| &r.mark.run == wanted);
        let Some(run) = runs.first() else {
            store.close().await;
            return Err(Error::Usage(format!(
                "--run {wanted}: this store holds no temporary rows of that run (see --mode \
                 cleanup without --run)"
            )));
        };
        if let Err(why) = removable(run, true) {
            store.close().await;
            return Err(Error::Usage(format!(
                "--run {wanted}: {why}; nothing removed"
            )));
        }
    }
    let now = Utc::now();
    let mut entries = Vec::new();
    let mut removed = 0;
    for run in &runs {
        let verdict = removable(run, args.run.is_some());
        let action = match (&verdict, args.apply) {
            (Err(_), _) => "kept",
            (Ok(()), false) => "would_remove",
            (Ok(()), true) => {
                store.delete(&run.ids).await?;
                removed += run.ids.len();
                "removed"
            }
        };
        entries.push(RunEntry {
            run: run.mark.run.clone(),
            writer: run.writer(),
            alive: temp_rows::liveness_word(run.liveness()),
            rows: run.ids.clone(),
            oldest: run.oldest,
            age_secs: (now - run.oldest).num_seconds(),
            action,
            reason: verdict.err(),
        });
    }
    store.close().await;
    Ok(CleanupReport {
        database: redact_url(&settings.database_url),
        applied: args.apply,
        runs: entries,
        removed,
    })
}

impl Report for CleanupReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.runs.is_empty() {
            return writeln!(out, "No temporary rows in {}.", self.database);
        }
        for r in &self.runs {
            let what = match r.action {
                "removed" => "removed".to_owned(),
                "would_remove" => "would remove".to_owned(),
                _ => format!("kept: {}", r.reason.as_deref().unwrap_or("")),
            };
            writeln!(
                out,
                "run {}: {} row(s) ({}), written {} ago by {} ({}): {what}",
                r.run,
                r.rows.len(),
                join_numbers(&r.rows),
                human_span(r.age_secs),
                r.writer,
                r.alive
            )?;
        }
        if self.applied {
            writeln!(out, "Removed {} row(s) and their history.", self.removed)
        } else {
            writeln!(
                out,
                "Nothing removed (a preview): run again with --yes to remove the rows marked \
                 \"would remove\"."
            )
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self);
        v["mode"] = "cleanup".into();
        v
    }
}
