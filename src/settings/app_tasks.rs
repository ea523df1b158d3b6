//! The tasks of the modes that work on the application's own store (`--store-config`): the
//! same flags as on oauthtest's store, with `--credential-id` (and `--keep`) the application's
//! row ids as text.

use crate::cli::{Cli, Mode};
use crate::error::{Error, Result};
use crate::task::*;

/// A row id given by `flag`: any non-empty text (n8n's ids are strings).
fn row_id(flag: &str, value: &str) -> Result<RowId> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::Usage(format!(
            "{flag} is empty: give the application's row id (see --mode list)"
        )));
    }
    Ok(RowId::new(value))
}

fn required(cli: &Cli, why: &str) -> Result<RowId> {
    match &cli.credential_id {
        Some(v) => row_id("--credential-id", v),
        None => Err(Error::Usage(why.into())),
    }
}

/// The task for `cli.mode` on the application's store.
///
/// # Errors
/// [`Error::Usage`] naming the flag at fault, or the mode that does not work on an
/// application store.
pub(super) fn app_task(cli: &Cli) -> Result<AppTask> {
    Ok(match cli.mode {
        Mode::List => AppTask::List(ListArgs {
            credential_id: cli
                .credential_id
                .as_deref()
                .map(|v| row_id("--credential-id", v))
                .transpose()?,
        }),
        Mode::Real => {
            if cli.check_token && !cli.dry_run {
                return Err(Error::Usage(
                    "--check-token goes with --dry-run (it only reads); without --dry-run real \
                     refreshes the credential and checks the new token anyway"
                        .into(),
                ));
            }
            AppTask::Real(RealArgs {
                credential_id: required(
                    cli,
                    "--mode real needs --credential-id ID (the application's row id; see --mode list)",
                )?,
                dry_run: cli.dry_run,
                check_token: cli.check_token,
            })
        }
        Mode::ForceExpire => AppTask::ForceExpire(ForceExpireArgs {
            credential_id: required(
                cli,
                "--mode force-expire needs --credential-id ID (the application's row id; see --mode list)",
            )?,
            no_refresh: cli.no_refresh,
            trigger: super::trigger::trigger_args(cli)?,
        }),
        Mode::Doctor => AppTask::Doctor(DoctorArgs {
            check_endpoint: cli.check_endpoint,
            production_override: cli.i_know_this_is_production,
        }),
        Mode::Scrub => AppTask::Scrub(super::tasks::scrub_args(cli, row_id)?),
        Mode::Import => AppTask::Import(ImportArgs {
            file: cli.file.clone().ok_or_else(|| {
                Error::Usage("--mode import needs --file PATH (or --file - to read stdin)".into())
            })?,
            user_id: cli.user_id,
            // Unset: the first of store.google_types.
            credential_type: if cli.was_given("credential_type") {
                cli.credential_type.clone()
            } else {
                String::new()
            },
            name: cli.name.clone(),
        }),
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
