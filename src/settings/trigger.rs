//! force-expire's step 3 by the application: `--trigger-cmd`, `--trigger-url` and
//! `--trigger-timeout`, checked once for oauthtest's own store and for an application's.

use super::tasks::in_range;
use crate::cli::Cli;
use crate::error::{Error, Result};
use crate::task::{TriggerArgs, MAX_COMMAND_TIMEOUT_SECS};
use std::time::Duration;

/// `--trigger-cmd` / `--trigger-url` / `--trigger-timeout` (force-expire's step 3).
pub(super) fn trigger_args(cli: &Cli) -> Result<Option<TriggerArgs>> {
    if cli.trigger_cmd.is_none() && cli.trigger_url.is_none() {
        if cli.was_given("trigger_timeout") {
            return Err(Error::Usage(
                "--trigger-timeout goes with --trigger-cmd CMD or --trigger-url URL".into(),
            ));
        }
        return Ok(None);
    }
    if cli.no_refresh {
        return Err(Error::Usage(
            "--no-refresh and --trigger-cmd/--trigger-url contradict each other: --no-refresh \
             stops after step 2, the trigger is step 3"
                .into(),
        ));
    }
    let cmd =
        match &cli.trigger_cmd {
            Some(cmd) if cmd.trim().is_empty() => return Err(Error::Usage(
                "--trigger-cmd is empty; give the command that runs your application's workflow"
                    .into(),
            )),
            other => other.clone(),
        };
    let url = cli
        .trigger_url
        .as_deref()
        .map(|u| {
            url::Url::parse(u)
                .ok()
                .filter(|p| matches!(p.scheme(), "http" | "https") && p.has_host())
                .ok_or_else(|| {
                    Error::Usage(
                        "--trigger-url: expected an http:// or https:// URL with a host".into(),
                    )
                })
        })
        .transpose()?;
    Ok(Some(TriggerArgs {
        cmd,
        url,
        timeout: Duration::from_secs(in_range(
            "--trigger-timeout",
            cli.trigger_timeout,
            1,
            MAX_COMMAND_TIMEOUT_SECS,
        )?),
    }))
}
