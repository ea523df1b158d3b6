//! The tasks of the modes that work on the application's own store (`--store-config`): the
//! same flags as on oauthtest's store, with `--credential-id` (and `--keep`) the application's
//! row ids as text.

use super::shared::{self, THEIRS};
use crate::cli::{Cli, Mode};
use crate::error::{Error, Result};
use crate::task::*;

/// The task for `cli.mode` on the application's store.
///
/// # Errors
/// [`Error::Usage`] naming the flag at fault, or the mode that does not work on an
/// application store.
pub(super) fn app_task(cli: &Cli) -> Result<AppTask> {
    Ok(match cli.mode {
        Mode::List => AppTask::List(shared::list_args(cli, &THEIRS)?),
        Mode::Real => AppTask::Real(shared::real_args(cli, &THEIRS)?),
        Mode::ForceExpire => AppTask::ForceExpire(shared::force_expire_args(
            cli,
            &THEIRS,
            super::trigger::trigger_args(cli)?,
        )?),
        Mode::Doctor => AppTask::Doctor(shared::doctor_args(cli)),
        Mode::Scrub => AppTask::Scrub(shared::scrub_args(cli, &THEIRS)?),
        // --type unset: the first of store.google_types.
        Mode::Import => AppTask::Import(shared::import_args(
            cli,
            if cli.was_given("credential_type") {
                cli.credential_type.clone()
            } else {
                String::new()
            },
        )?),
        Mode::WorkerSim if cli.target_cmd.is_none() && cli.enqueue_cmd.is_none() => {
            if cli.worker_child {
                return Err(Error::Usage(
                    "--worker-child is for worker-sim's own child processes on oauthtest's store"
                        .into(),
                ));
            }
            AppTask::WorkerSimRows(shared::worker_sim_on_rows(cli, &THEIRS)?)
        }
        Mode::WorkerSim => AppTask::WorkerSim(super::tasks::worker_sim_app(cli)?),
        other => {
            return Err(Error::Usage(format!(
                "--mode {} does not work on an application store (--store-config, \
                 ./oauthtest.toml, OAUTHTEST_STORE_CONFIG) yet",
                other.name()
            )))
        }
    })
}
