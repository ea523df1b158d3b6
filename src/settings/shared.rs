//! The rules the modes keep on either store, written once: oauthtest's own store and the
//! application's (`--store-config`) differ only in how `--credential-id` reads ([`Ids`]:
//! oauthtest's positive numbers, or the application's row ids as text).

use super::tasks::{admin_token, flag_of, in_range};
use crate::cli::Cli;
use crate::error::{Error, Result};
use crate::task::*;
use std::time::Duration;

/// How a store's credential ids are read from the command line.
pub(super) struct Ids<I> {
    /// Reads one id given by a flag.
    pub(super) parse: fn(&str, &str) -> Result<I>,
    /// What `--credential-id` takes, for messages: `N (see --mode list)`.
    hint: &'static str,
}

/// oauthtest's own ids: positive numbers.
pub(super) const OURS: Ids<CredentialId> = Ids {
    parse: credential_id,
    hint: "N (see --mode list)",
};

/// The application's row ids: any non-empty text (n8n's ids are strings).
pub(super) const THEIRS: Ids<RowId> = Ids {
    parse: row_id,
    hint: "ID (the application's row id; see --mode list)",
};

fn credential_id(flag: &str, value: &str) -> Result<CredentialId> {
    let value = value.trim();
    value
        .parse()
        .ok()
        .and_then(CredentialId::new)
        .ok_or_else(|| {
            Error::Usage(format!(
                "{flag} {value}: a credential id is a positive number (see --mode list)"
            ))
        })
}

fn row_id(flag: &str, value: &str) -> Result<RowId> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::Usage(format!(
            "{flag} is empty: give the application's row id (see --mode list)"
        )));
    }
    Ok(RowId::new(value))
}

impl<I> Ids<I> {
    /// `--credential-id`, if given.
    pub(super) fn optional(&self, cli: &Cli) -> Result<Option<I>> {
        cli.credential_id
            .as_deref()
            .map(|v| (self.parse)("--credential-id", v))
            .transpose()
    }

    /// `--credential-id`, which the mode needs; `why` says so when it is missing.
    pub(super) fn required_because(&self, cli: &Cli, why: &str) -> Result<I> {
        match &cli.credential_id {
            Some(v) => (self.parse)("--credential-id", v),
            None => Err(Error::Usage(why.into())),
        }
    }

    /// `--credential-id`, which `cli.mode` needs.
    pub(super) fn required(&self, cli: &Cli) -> Result<I> {
        self.required_because(
            cli,
            &format!(
                "--mode {} needs --credential-id {}",
                cli.mode.name(),
                self.hint
            ),
        )
    }
}

/// `--mode list`.
pub(super) fn list_args<I>(cli: &Cli, ids: &Ids<I>) -> Result<ListArgs<I>> {
    Ok(ListArgs {
        credential_id: ids.optional(cli)?,
    })
}

/// `--mode real`.
pub(super) fn real_args<I>(cli: &Cli, ids: &Ids<I>) -> Result<RealArgs<I>> {
    if cli.check_token && !cli.dry_run {
        return Err(Error::Usage(
            "--check-token goes with --dry-run (it only reads); without --dry-run real \
             refreshes the credential and checks the new token anyway"
                .into(),
        ));
    }
    Ok(RealArgs {
        credential_id: ids.required(cli)?,
        dry_run: cli.dry_run,
        check_token: cli.check_token,
    })
}

/// `--mode force-expire`, with step 3's trigger (the application's store only).
pub(super) fn force_expire_args<I>(
    cli: &Cli,
    ids: &Ids<I>,
    trigger: Option<TriggerArgs>,
) -> Result<ForceExpireArgs<I>> {
    Ok(ForceExpireArgs {
        credential_id: ids.required(cli)?,
        no_refresh: cli.no_refresh,
        trigger,
    })
}

/// `--mode import`, the new row's type being `credential_type`.
pub(super) fn import_args(cli: &Cli, credential_type: String) -> Result<ImportArgs> {
    Ok(ImportArgs {
        file: cli.file.clone().ok_or_else(|| {
            Error::Usage("--mode import needs --file PATH (or --file - to read stdin)".into())
        })?,
        user_id: cli.user_id,
        credential_type,
        name: cli.name.clone(),
    })
}

/// `--mode doctor`.
pub(super) fn doctor_args(cli: &Cli) -> DoctorArgs {
    DoctorArgs {
        check_endpoint: cli.check_endpoint,
        production_override: cli.i_know_this_is_production,
    }
}

/// `--mode scrub`'s arguments: `ids` reads a `--keep` value.
pub(super) fn scrub_args<I>(cli: &Cli, ids: &Ids<I>) -> Result<ScrubArgs<I>> {
    if cli.yes && cli.dry_run {
        return Err(Error::Usage(
            "--yes and --dry-run contradict each other: --yes wipes, --dry-run (the default \
             without --yes) only shows what would be wiped"
                .into(),
        ));
    }
    Ok(ScrubArgs {
        keep: cli
            .keep
            .iter()
            .map(|v| (ids.parse)("--keep", v))
            .collect::<Result<_>>()?,
        apply: cli.yes,
    })
}

/// worker-sim's jobs on stored credentials against `--token-url` (Google, or a running
/// `serve`): oauthtest's own rows, or the application's.
///
/// # Errors
/// [`Error::Usage`] naming the flag at fault.
pub(super) fn worker_sim_on_rows<I>(cli: &Cli, ids: &Ids<I>) -> Result<WorkerSimExternalArgs<I>> {
    let workers = in_range("--workers", cli.workers, 1, MAX_WORKERS)?;
    let jobs = in_range("--jobs", cli.jobs, 1, MAX_JOBS)?;
    if cli.token_url.is_none() {
        if cli.worker_child {
            return Err(Error::Usage("--worker-child needs --token-url".into()));
        }
        return Err(Error::Usage(
            "--mode worker-sim --credential-id N runs against a real token endpoint: give \
             --token-url (Google's, or a running `oauthtest --mode serve`); without it worker-sim \
             uses --credentials synthetic credentials and the embedded mock"
                .into(),
        ));
    }
    // The embedded-mock options mean nothing against a token endpoint given by URL.
    // --token-ttl-secs says how long the endpoint's tokens live (a child: its parent's mock).
    for flag in ["scenario", "report", "processes", "credentials"] {
        if cli.was_given(flag) {
            return Err(Error::Usage(format!(
                "{} is for worker-sim on the embedded mock; with --token-url worker-sim runs \
                 on stored credentials (--credential-id) against that endpoint",
                flag_of(flag)
            )));
        }
    }
    let credential_ids = match (&cli.credential_ids, &cli.credential_id) {
        (Some(list), _) => list
            .split(',')
            .map(|s| {
                (ids.parse)("--credential-ids", s).map_err(|_| {
                    Error::Usage("--credential-ids must be comma-separated ids".into())
                })
            })
            .collect::<Result<Vec<_>>>()?,
        (None, Some(one)) => vec![(ids.parse)("--credential-id", one)?],
        (None, None) => {
            return Err(Error::Usage(
                "worker-sim with --token-url needs --credential-id N (a stored credential)".into(),
            ))
        }
    };
    Ok(WorkerSimExternalArgs {
        credential_ids,
        workers,
        jobs,
        token_ttl: Duration::from_secs(in_range(
            "--token-ttl-secs",
            cli.token_ttl_secs,
            1,
            MAX_TOKEN_TTL_SECS,
        )?),
        child: cli.worker_child,
        coordinate: !cli.unsafe_no_refresh_coordination,
        admin_token: admin_token(cli)?,
    })
}
