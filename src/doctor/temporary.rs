//! The `temporary_rows` check: rows a `mock`, `mock-all` or `worker-sim` run put into this store
//! and could not remove because it was killed (`kill -9`), one check per run, each with the
//! command that removes them (`--mode cleanup`).

use crate::check::{Check, Status};
use crate::report::{human_span, join_numbers};
use crate::store::{Liveness, MigrationStatus, Store, StoreError};
use crate::temp_rows;
use chrono::Utc;

const CHECK: &str = "temporary_rows";

/// One check per run whose temporary rows are in the store: `warn` for a run that is gone (or
/// that this machine cannot check), `ok` for one still running; a single `ok` when there are
/// none. Nothing when the store could not be read (the credentials check says why).
pub(super) async fn check_temporary_rows(
    store: Option<&Store>,
    status: Option<&Result<MigrationStatus, StoreError>>,
) -> Vec<Check> {
    let Some(store) = store else {
        return Vec::new();
    };
    if matches!(status, Some(Ok(s)) if !s.ledger_exists) {
        return Vec::new();
    }
    let Ok(listing) = store.list_all().await else {
        return Vec::new();
    };
    let runs = temp_rows::by_run(&listing.rows);
    if runs.is_empty() {
        return vec![Check::new(CHECK, Status::Pass, "no temporary rows")];
    }
    let now = Utc::now();
    runs.iter()
        .map(|run| {
            let what = format!(
                "{} temporary row(s) of run {} ({}), written {} ago by {}",
                run.ids.len(),
                run.mark.run,
                join_numbers(&run.ids),
                human_span((now - run.oldest).num_seconds()),
                run.writer()
            );
            match run.liveness() {
                Liveness::Running => Check::new(
                    CHECK,
                    Status::Pass,
                    format!("{what}, which is still running: it removes them when it ends"),
                ),
                l @ (Liveness::Gone | Liveness::Rebooted) => Check::new(
                    CHECK,
                    Status::Warn,
                    format!(
                        "{what}, which is gone ({}): it was killed before it could remove them",
                        if l == Liveness::Gone {
                            "no process has that pid"
                        } else {
                            "the machine rebooted since"
                        }
                    ),
                )
                .with_fix(format!("`{}` removes them", run.cleanup_command())),
                Liveness::Unknown => Check::new(
                    CHECK,
                    Status::Warn,
                    format!("{what}, which this machine cannot check"),
                )
                .with_fix(format!(
                    "once that run is gone, `{}` removes them",
                    run.cleanup_command()
                )),
            }
        })
        .collect()
}
