//! The command line's mode-specific flags, validated into one [`Task`].
//!
//! A flag the mode does not take is refused, naming the modes that take it: a flag that is
//! silently ignored (`mock --report`, `rekey --credential-id`) makes a user believe it did
//! something. Sizes and times are range-checked here, with the limit in the message.

use super::shared::{self, OURS};
use crate::cli::{Cli, Mode, COMMON_ARGS};
use crate::error::{Error, Result};
use crate::task::*;
use clap::CommandFactory as _;
use std::time::Duration;

/// The `--long` spelling of the option with clap id `id`.
pub(super) fn flag_of(id: &str) -> String {
    Cli::command()
        .get_arguments()
        .find(|a| a.get_id() == id)
        .and_then(|a| a.get_long().map(|l| format!("--{l}")))
        .unwrap_or_else(|| id.to_owned())
}

/// `--mode a, --mode b or --mode c`.
fn modes_sentence(modes: &[Mode]) -> String {
    let names: Vec<String> = modes
        .iter()
        .map(|m| format!("--mode {}", m.name()))
        .collect();
    match names.split_last() {
        None => "no mode".into(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// Refuses every option given on the command line that `cli.mode` does not take.
fn refuse_untaken(cli: &Cli) -> Result<()> {
    let takes = cli.mode.takes();
    for id in &cli.given {
        if COMMON_ARGS.contains(&id.as_str()) || takes.contains(&id.as_str()) {
            continue;
        }
        let modes: Vec<Mode> = Mode::ALL
            .into_iter()
            .filter(|m| m.takes().contains(&id.as_str()))
            .collect();
        return Err(Error::Usage(format!(
            "{} works with {}, not --mode {} (see oauthtest --mode {} --help)",
            flag_of(id),
            modes_sentence(&modes),
            cli.mode.name(),
            cli.mode.name(),
        )));
    }
    Ok(())
}

pub(super) fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    flag: &str,
    value: T,
    min: T,
    max: T,
) -> Result<T> {
    if value < min || value > max {
        return Err(Error::Usage(format!(
            "{flag} {value} is out of range: it must be from {min} to {max}"
        )));
    }
    Ok(value)
}

/// `--consent allow|deny|EMAIL`.
fn consent(value: Option<&str>) -> Result<mock_server::Consent> {
    let mut consent = mock_server::Consent::default();
    match value {
        None | Some("allow") => {}
        Some("deny") => consent.deny = true,
        Some(email)
            if email.contains('@')
                && !email.starts_with('@')
                && !email.ends_with('@')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            consent.account = Some(email.to_owned());
        }
        Some(other) => {
            return Err(Error::Usage(format!(
                "--consent {other:?}: expected allow, deny or the email address of the account that signs in"
            )))
        }
    }
    Ok(consent)
}

/// An issuer as Google's libraries compare it: a non-empty string without spaces.
fn issuer(value: &str) -> Result<String> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::Usage(format!(
            "--issuer {value:?}: an issuer is a URL such as https://accounts.google.com, without spaces"
        )));
    }
    Ok(value.to_owned())
}

fn nonempty(value: Option<&String>) -> Option<String> {
    value.filter(|s| !s.trim().is_empty()).cloned()
}

fn database_url_if_named(cli: &Cli) -> Option<String> {
    nonempty(cli.database_url.as_ref())
}

fn mock_args(cli: &Cli, mode: Mode, app_store: bool) -> Result<MockArgs> {
    if cli.target_cmd.is_none() {
        for id in ["store_config", "user_id"] {
            if cli.was_given(id) {
                return Err(Error::Usage(format!(
                    "{} with --mode {} goes with --target-cmd CMD: the scenarios' credentials \
                     are then written into your application's table for CMD to refresh, and \
                     judged from it; oauthtest's own engine runs on a store of its own",
                    flag_of(id),
                    mode.name()
                )));
            }
        }
    }
    let target = match &cli.target_cmd {
        Some(cmd) if cmd.trim().is_empty() => {
            return Err(Error::Usage(
                "--target-cmd is empty; give the command that runs your refresh code".into(),
            ))
        }
        Some(cmd) => Some(TargetArgs {
            cmd: cmd.clone(),
            timeout: Duration::from_secs(in_range(
                "--target-timeout",
                cli.target_timeout,
                1,
                MAX_COMMAND_TIMEOUT_SECS,
            )?),
            app_store_user: app_store.then_some(cli.user_id),
        }),
        None => {
            if cli.was_given("target_timeout") {
                return Err(Error::Usage(
                    "--target-timeout goes with --target-cmd CMD".into(),
                ));
            }
            None
        }
    };
    let only = match (&cli.scenario, mode) {
        (Some(list), Mode::MockAll) => {
            let names: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect();
            if names.is_empty() {
                return Err(Error::Usage(
                    "--scenario is empty; give scenario names, comma-separated".into(),
                ));
            }
            names
        }
        _ => Vec::new(),
    };
    Ok(MockArgs {
        scenario: cli.scenario.clone().unwrap_or_else(|| "success".into()),
        only,
        scenarios_dir: cli.scenarios.clone(),
        target,
        report: (mode == Mode::MockAll)
            .then(|| cli.report.clone())
            .flatten(),
        database_url: database_url_if_named(cli),
    })
}

/// `worker-sim --target-cmd CMD [--enqueue-cmd CMD2]` on the application's store.
///
/// # Errors
/// [`Error::Usage`] naming the flag at fault.
pub(super) fn worker_sim_app(cli: &Cli) -> Result<WorkerSimAppArgs> {
    let cmd = |flag: &str, value: Option<&String>| match value {
        Some(v) if v.trim().is_empty() => Err(Error::Usage(format!(
            "{flag} is empty; give the command to run (with sh -c)"
        ))),
        other => Ok(other.cloned()),
    };
    let worker_cmd = cmd("--target-cmd", cli.target_cmd.as_ref())?.ok_or_else(|| {
        Error::Usage(
            "--enqueue-cmd sends the jobs to the application's workers: give them with \
             --target-cmd CMD (see --mode worker-sim --help)"
                .into(),
        )
    })?;
    for id in [
        "processes",
        "unsafe_no_refresh_coordination",
        "credential_ids",
    ] {
        if cli.was_given(id) {
            return Err(Error::Usage(format!(
                "{} is for oauthtest's own simulated workers; with --target-cmd the \
                 application's workers run (--concurrency N of them)",
                flag_of(id)
            )));
        }
    }
    if cli.credential_id.is_some() {
        return Err(Error::Usage(
            "worker-sim --target-cmd seeds its own credentials into the application's store \
             (--credentials N, removed afterwards); --credential-id is not taken with it \
             (without --target-cmd, oauthtest's own workers run on the rows it names)"
                .into(),
        ));
    }
    Ok(WorkerSimAppArgs {
        scenario: cli.scenario.clone().unwrap_or_else(|| "success".into()),
        worker_cmd,
        enqueue_cmd: cmd("--enqueue-cmd", cli.enqueue_cmd.as_ref())?,
        timeout: Duration::from_secs(in_range(
            "--target-timeout",
            cli.target_timeout,
            1,
            MAX_COMMAND_TIMEOUT_SECS,
        )?),
        workers: in_range("--concurrency", cli.workers, 1, MAX_APP_WORKERS)?,
        jobs: in_range("--jobs", cli.jobs, 1, MAX_JOBS)?,
        credentials: in_range("--credentials", cli.credentials, 1, MAX_APP_CREDENTIALS)?,
        token_ttl: Duration::from_secs(in_range(
            "--token-ttl-secs",
            cli.token_ttl_secs,
            1,
            MAX_TOKEN_TTL_SECS,
        )?),
        report: cli.report.clone(),
    })
}

fn worker_sim(cli: &Cli) -> Result<Task> {
    if cli.target_cmd.is_some() || cli.enqueue_cmd.is_some() {
        return Err(Error::Usage(
            "worker-sim --target-cmd runs the application's workers on the application's own \
             store: give its store config (--store-config FILE, ./oauthtest.toml or \
             OAUTHTEST_STORE_CONFIG) and its database (--database-url)"
                .into(),
        ));
    }
    if cli.token_url.is_some()
        || cli.worker_child
        || cli.credential_id.is_some()
        || cli.credential_ids.is_some()
    {
        return Ok(Task::WorkerSimExternal(shared::worker_sim_on_rows(
            cli, &OURS,
        )?));
    }
    let workers = in_range("--workers", cli.workers, 1, MAX_WORKERS)?;
    let jobs = in_range("--jobs", cli.jobs, 1, MAX_JOBS)?;
    let coordinate = !cli.unsafe_no_refresh_coordination;
    Ok(Task::WorkerSim(WorkerSimArgs {
        scenario: cli.scenario.clone().unwrap_or_else(|| "success".into()),
        workers,
        jobs,
        credentials: in_range("--credentials", cli.credentials, 1, MAX_CREDENTIALS)?,
        processes: in_range("--processes", cli.processes, 1, MAX_PROCESSES)?,
        token_ttl: Duration::from_secs(in_range(
            "--token-ttl-secs",
            cli.token_ttl_secs,
            1,
            MAX_TOKEN_TTL_SECS,
        )?),
        coordinate,
        report: cli.report.clone(),
        database_url: database_url_if_named(cli),
    }))
}

/// The mode's task from the command line.
///
/// # Errors
/// [`Error::Usage`] naming the flag at fault.
pub fn task_from(cli: &Cli, app_store: bool) -> Result<Task> {
    refuse_untaken(cli)?;
    if cli.was_given("dry_run") && !matches!(cli.mode, Mode::Real | Mode::Rekey | Mode::Scrub) {
        // Unreachable through `takes`, kept so that a mode given `dry_run` by mistake in its
        // table cannot write under a flag that promises it will not.
        return Err(Error::Usage(format!(
            "--mode {} has no dry run",
            cli.mode.name()
        )));
    }
    // worker-sim's synthetic run needs no application store, even where one is configured.
    let synthetic = cli.mode == Mode::WorkerSim
        && cli.target_cmd.is_none()
        && cli.enqueue_cmd.is_none()
        && cli.credential_id.is_none()
        && cli.credential_ids.is_none();
    // copy's destination may be either kind of store: it looks at the settings itself.
    let mock = matches!(cli.mode, Mode::Mock | Mode::MockAll);
    if app_store && cli.mode != Mode::Copy && !synthetic && !mock {
        return super::app_tasks::app_task(cli).map(Task::App);
    }
    Ok(match cli.mode {
        Mode::List => Task::List(shared::list_args(cli, &OURS)?),
        Mode::Import => Task::Import(shared::import_args(cli, cli.credential_type.clone())?),
        Mode::Init => Task::Init,
        Mode::Keygen => Task::Keygen,
        Mode::Rekey => Task::Rekey(RekeyArgs {
            dry_run: cli.dry_run,
        }),
        Mode::Mock | Mode::MockAll => {
            let args = mock_args(cli, cli.mode, app_store)?;
            if cli.mode == Mode::Mock {
                Task::Mock(args)
            } else {
                Task::MockAll(args)
            }
        }
        Mode::WorkerSim => worker_sim(cli)?,
        Mode::Real => Task::Real(shared::real_args(cli, &OURS)?),
        Mode::ForceExpire => {
            if super::trigger::trigger_args(cli)?.is_some() {
                return Err(Error::Usage(
                    "--trigger-cmd/--trigger-url work on your application's own store: give \
                     --store-config FILE (or ./oauthtest.toml, OAUTHTEST_STORE_CONFIG), so that \
                     step 4 reads the row your application writes, not oauthtest's copy"
                        .into(),
                ));
            }
            Task::ForceExpire(shared::force_expire_args(cli, &OURS, None)?)
        }
        Mode::Copy => Task::Copy(copy_args(cli)?),
        Mode::Scrub => Task::Scrub(shared::scrub_args(cli, &OURS)?),
        Mode::Cleanup => {
            let run = cli.run.as_deref().map(str::trim);
            if let Some(run) = run {
                if run.is_empty() || !run.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(Error::Usage(
                        "--run takes a run's mark: the hex digits after \"temporary, run\" in \
                         a temporary row's name (see --mode cleanup without --run)"
                            .into(),
                    ));
                }
            }
            Task::Cleanup(CleanupArgs {
                run: run.map(str::to_owned),
                apply: cli.yes,
            })
        }
        Mode::Doctor => Task::Doctor(shared::doctor_args(cli)),
        Mode::Serve => Task::Serve(ServeArgs {
            host: cli.host,
            port: cli.port,
            read_timeout: Duration::from_millis(in_range(
                "--read-timeout-ms",
                cli.read_timeout_ms,
                1,
                MAX_TIMEOUT_MS,
            )?),
            scenario: cli.scenario.clone(),
            scenarios_dir: cli.scenarios.clone(),
            admin_token: admin_token(cli)?,
            admin_allow_hosts: cli
                .admin_allow_host
                .iter()
                .map(|h| allowed_host(h))
                .collect::<Result<_>>()?,
            issuer: issuer(&cli.identity.issuer)?,
            signing_key: cli.identity.signing_key.clone(),
            consent: consent(cli.identity.consent.as_deref())?,
            tls_ca_file: match (cli.identity.tls, &cli.identity.tls_ca_file) {
                (false, Some(_)) => {
                    return Err(Error::Usage(
                        "--tls-ca-file is where --tls writes its CA certificate; add --tls".into(),
                    ))
                }
                (false, None) => None,
                (true, file) => Some(
                    file.clone()
                        .unwrap_or_else(|| std::path::PathBuf::from("oauthtest-ca.pem")),
                ),
            },
        }),
    })
}

/// `--admin-token`, refused when blank (a blank token would protect nothing).
pub(super) fn admin_token(cli: &Cli) -> Result<Option<secrecy::SecretString>> {
    use secrecy::ExposeSecret as _;
    match &cli.admin_token {
        Some(token) if token.expose_secret().trim().is_empty() => Err(Error::Usage(
            "--admin-token (or OAUTHTEST_ADMIN_TOKEN) is empty; give a token or leave it unset"
                .into(),
        )),
        Some(token) if token.expose_secret().chars().any(char::is_whitespace) => Err(Error::Usage(
            "--admin-token (or OAUTHTEST_ADMIN_TOKEN) holds whitespace; a bearer token cannot"
                .into(),
        )),
        other => Ok(other.clone()),
    }
}

/// One `--admin-allow-host`: a host name or address, optionally with a port.
fn allowed_host(value: &str) -> Result<String> {
    let trimmed = value.trim();
    match trimmed.parse::<http::uri::Authority>() {
        Ok(authority) if !trimmed.contains('@') && !authority.host().is_empty() => {
            Ok(trimmed.to_ascii_lowercase())
        }
        _ => Err(Error::Usage(format!(
            "--admin-allow-host {value:?} is not a host name: give NAME or NAME:PORT, as a client sends it in its Host header"
        ))),
    }
}

/// copy's arguments: the source is oauthtest's store, or an application's with
/// `--from-store-config` (its row id is text then).
fn copy_args(cli: &Cli) -> Result<CopyArgs> {
    const ONE: &str = "--mode copy copies exactly one credential: pass --credential-id ID \
                       (copying a whole store is refused)";
    let from_database_url = nonempty(cli.from_database_url.as_ref()).ok_or_else(|| {
        Error::Usage("--mode copy needs --from-database-url URL (the store to copy from)".into())
    })?;
    let source = match &cli.from_store_config {
        None => CopySource::Native(OURS.required_because(cli, ONE)?),
        Some(path) => {
            let id = match cli.credential_id.as_deref().map(str::trim) {
                Some(id) if !id.is_empty() => RowId::new(id),
                _ => return Err(Error::Usage(ONE.into())),
            };
            CopySource::App {
                config: path.clone(),
                id,
            }
        }
    };
    Ok(CopyArgs {
        source,
        from_database_url,
    })
}
