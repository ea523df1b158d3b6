//! The command line: `oauthtest --mode MODE [options]`.
//!
//! `--mode`, `--credential-id` and `--dry-run` are the interface CI scripts and checklists already
//! call (the staging scripts this tool replaces took the same), so they stay exactly so. Every
//! option that has an environment variable reads it when the flag is absent; a `.env` file in the
//! working directory fills in variables that are not set. Raw flags become [`crate::settings`]
//! once, in one place.

pub mod help;
pub mod identity;
mod mode;

pub use mode::{Mode, COMMON_ARGS};

use crate::secret::ClientSecret;
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory as _, FromArgMatches as _, Parser, ValueEnum};
use secrecy::SecretString;
use std::ffi::OsString;
use std::path::PathBuf;

/// Reads a secret flag into a type whose `Debug` is redacted, so that `Cli`'s is too.
fn secret<T: for<'a> From<&'a str>>(value: &str) -> Result<T, std::convert::Infallible> {
    Ok(T::from(value))
}

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// For people.
    #[default]
    Text,
    /// Stable, documented JSON (see docs/json.md).
    Json,
    /// JUnit XML (mock-all); other modes print text.
    Junit,
}

/// The deployment environment this run is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    /// A developer's machine.
    #[value(alias = "dev")]
    Development,
    /// CI or automated tests.
    Test,
    /// Staging.
    #[value(alias = "stage")]
    Staging,
    /// Production: modes that change stored credentials refuse to run.
    #[value(alias = "prod")]
    Production,
}

/// Proves an application's Google OAuth2 token refresh works before it ships.
#[derive(Debug, Parser)]
#[command(name = "oauthtest", version, about, after_help = crate::exit_code::HELP_TABLE)]
pub struct Cli {
    /// What to do.
    #[arg(long, value_enum)]
    pub mode: Mode,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// The store: sqlite://PATH (created on first use) or postgres://USER@HOST:PORT/DB.
    /// [default: sqlite://oauthtest.db]
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Read the encryption key from this file instead of OAUTHTEST_ENCRYPTION_KEY
    /// (32 random bytes in base64, as --mode keygen prints).
    #[arg(long, env = "OAUTHTEST_ENCRYPTION_KEY_FILE")]
    pub key_file: Option<PathBuf>,

    /// The OAuth client id, for credentials that do not carry their own.
    #[arg(long, env = "GOOGLE_CLIENT_ID")]
    pub client_id: Option<String>,

    /// The OAuth client secret (prefer the environment variable: flags show in `ps`).
    #[arg(long, env = "GOOGLE_CLIENT_SECRET", hide_env_values = true, value_parser = secret::<ClientSecret>)]
    pub client_secret: Option<ClientSecret>,

    /// The environment this run is in; production refuses modes that change credentials.
    #[arg(long = "env", value_enum, env = "OAUTHTEST_ENV")]
    pub environment: Option<Environment>,

    /// Override the production guard (for deliberate maintenance on a production store).
    #[arg(long)]
    pub i_know_this_is_production: bool,

    /// The options given on the command line itself (clap ids), as opposed to the environment
    /// or defaults: a mode refuses those it does not take. Filled by [`Cli::try_parse_args`].
    #[arg(skip)]
    pub given: Vec<String>,

    /// The credential to act on, as --mode list shows it (with --store-config: a row id, text).
    #[arg(long, value_name = "ID")]
    pub credential_id: Option<String>,

    /// The application's credential store, described in TOML (docs/app-store.md); else
    /// ./oauthtest.toml, else the file OAUTHTEST_STORE_CONFIG names; else oauthtest's own store.
    #[arg(long, value_name = "FILE")]
    pub store_config: Option<PathBuf>,

    /// Report what would happen; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Log filter for stderr: a level (error, warn, info, debug, trace, off) or target=level
    /// pairs, comma-separated (warn,oauthtest=debug).
    /// [default: warn; for serve, warn,oauthtest::serve=info, which logs each request]
    #[arg(long, env = "OAUTHTEST_LOG")]
    pub log: Option<String>,

    /// More logging: -v info, -vv debug, -vvv trace (overrides --log).
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    /// mock: the scenario to run. mock-all: only these (comma-separated). serve: the scenario to
    /// apply at start (as POST /__admin/scenario does).
    #[arg(long, value_name = "NAME", help_heading = "Scenarios")]
    pub scenario: Option<String>,

    /// mock, mock-all: add the scenario files (*.toml) in this directory to the shipped set
    /// (a file with a shipped scenario's name replaces it).
    #[arg(long, value_name = "DIR", help_heading = "Scenarios")]
    pub scenarios: Option<PathBuf>,

    /// mock-all: also write the report to FILE (JUnit XML for .xml, JSON for .json, else text);
    /// worker-sim: a self-contained HTML page.
    #[arg(long, value_name = "FILE", help_heading = "Scenarios")]
    pub report: Option<PathBuf>,

    /// worker-sim: concurrent workers per process; with --target-cmd, the application's
    /// workers in all (--concurrency).
    #[arg(
        long,
        visible_alias = "concurrency",
        default_value_t = 12,
        help_heading = "worker-sim"
    )]
    pub workers: usize,

    /// worker-sim: jobs in all.
    #[arg(long, default_value_t = 1000, help_heading = "worker-sim")]
    pub jobs: u64,

    /// worker-sim: synthetic credentials (embedded mock).
    #[arg(long, default_value_t = 1, help_heading = "worker-sim")]
    pub credentials: usize,

    /// worker-sim: processes sharing the store and the mock (this one included).
    #[arg(long, default_value_t = 1, help_heading = "worker-sim")]
    pub processes: usize,

    /// worker-sim: access-token lifetime at the mock, so tokens expire during the run; with
    /// --token-url, the lifetime that endpoint gives (the refresh margin and the judging of
    /// duplicate refreshes follow it; a value below the real one never reports a false one).
    #[arg(long, default_value_t = 2, help_heading = "worker-sim")]
    pub token_ttl_secs: u64,

    /// worker-sim: turn refresh coordination off to watch a refresh storm break the invariants
    /// (a demonstration of what the run catches; never for real use).
    #[arg(long, hide = true)]
    pub unsafe_no_refresh_coordination: bool,

    /// Internal: this process is a worker-sim child.
    #[arg(long, hide = true)]
    pub worker_child: bool,

    /// worker-sim with --token-url: the stored credentials to work on, comma-separated (one:
    /// --credential-id). With a store config, the application's row ids: oauthtest's workers on
    /// its rows, written back its way.
    #[arg(long, value_name = "IDS", help_heading = "worker-sim")]
    pub credential_ids: Option<String>,
    /// mock-all: judge your own refresh code: for each scenario, run CMD with `sh -c` against
    /// its own mock (URLs and the stored credential in OAUTHTEST_* variables, see the README),
    /// then check what the mock saw and CMD's exit status (0 expected exactly when the scenario
    /// expects a working API call). With a store config, each scenario's credential is also a
    /// temporary row in your application's table (its id in OAUTHTEST_CREDENTIAL_ID), judged
    /// from that row afterwards and removed. worker-sim: the application's worker entry point
    /// (see --enqueue-cmd), on credentials seeded into its store (--store-config).
    #[arg(long, value_name = "CMD", help_heading = "Scenarios")]
    pub target_cmd: Option<String>,

    /// worker-sim --target-cmd: the command that enqueues the jobs (OAUTHTEST_JOBS of them, on
    /// OAUTHTEST_CREDENTIAL_IDS) and waits for them, run once with `sh -c` after the workers
    /// started; --target-cmd is then the worker entry point, run --concurrency times (one
    /// worker each). Without it, --target-cmd runs once, starts its own pool of
    /// OAUTHTEST_WORKERS workers and runs the jobs itself.
    #[arg(long, value_name = "CMD", help_heading = "worker-sim")]
    pub enqueue_cmd: Option<String>,

    /// mock-all --target-cmd: seconds one run of CMD may take before it is killed and fails;
    /// worker-sim --target-cmd: seconds the whole run may take.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 60,
        help_heading = "Scenarios"
    )]
    pub target_timeout: u64,

    /// serve: the port to listen on; 0 picks a free one (the first line printed is the URL).
    #[arg(long, default_value_t = 0, help_heading = "Serve")]
    pub port: u16,

    /// serve: the address to listen on (0.0.0.0 to accept other machines).
    #[arg(long, default_value = "127.0.0.1", help_heading = "Serve")]
    pub host: std::net::IpAddr,

    /// serve: milliseconds a client may take to send its request headers, and then its body,
    /// before the connection is closed (idle keep-alive connections too).
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 10_000,
        help_heading = "Serve"
    )]
    pub read_timeout_ms: u64,

    /// serve: require `Authorization: Bearer TOKEN` on every admin API request (/__admin).
    /// Prefer the environment variable: flags show in `ps`. Without it, serve warns when
    /// --host is not a loopback address. worker-sim --token-url: the token to read that
    /// serve's journal with.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "OAUTHTEST_ADMIN_TOKEN",
        hide_env_values = true,
        value_parser = secret::<SecretString>,
        help_heading = "Serve"
    )]
    pub admin_token: Option<SecretString>,

    /// serve: a Host the admin API accepts besides the listener's own address (and localhost on
    /// a loopback or 0.0.0.0 listener), as NAME (any port) or NAME:PORT; repeatable. For a
    /// proxy or a container port mapping in front of serve.
    #[arg(long, value_name = "HOST", help_heading = "Serve")]
    pub admin_allow_host: Vec<String>,

    /// serve as an identity provider: issuer, signing key, consent, TLS.
    #[command(flatten)]
    pub identity: identity::IdentityArgs,

    /// import: the JSON file to read, or - for stdin.
    #[arg(long, value_name = "PATH", help_heading = "Import")]
    pub file: Option<PathBuf>,

    /// import, and mock / mock-all --target-cmd with a store config: the user id the new
    /// (temporary) rows are given.
    #[arg(long, default_value_t = 1, help_heading = "Import")]
    pub user_id: i64,

    /// import: the credential type.
    #[arg(long = "type", default_value = "gmailOAuth2", help_heading = "Import")]
    pub credential_type: String,

    /// import: the credential's name.
    #[arg(long, default_value = "Google credential", help_heading = "Import")]
    pub name: String,

    /// real, force-expire, worker-sim: the token endpoint [default: Google's,
    /// https://oauth2.googleapis.com/token; worker-sim: the embedded mock].
    // The URL is shown as typed in --help, not as a link.
    #[allow(rustdoc::bare_urls)]
    #[arg(
        long,
        env = "OAUTHTEST_TOKEN_URL",
        value_name = "URL",
        help_heading = "Google endpoints"
    )]
    pub token_url: Option<String>,

    /// real, force-expire, worker-sim: the tokeninfo endpoint [default: Google's].
    #[arg(
        long,
        env = "OAUTHTEST_TOKENINFO_URL",
        value_name = "URL",
        help_heading = "Google endpoints"
    )]
    pub tokeninfo_url: Option<String>,

    /// real, force-expire, worker-sim: the read-only API call that proves a token works (GET with
    /// a bearer token) [default: the Gmail profile].
    #[arg(
        long,
        env = "OAUTHTEST_API_URL",
        value_name = "URL",
        help_heading = "Google endpoints"
    )]
    pub api_url: Option<String>,

    /// real, force-expire, worker-sim, doctor: how long one request to the token endpoint (or
    /// tokeninfo, the API) may take, connecting included, before it counts as a timeout (retried
    /// like Google's libraries do). [default: 10000; worker-sim: 5000]
    #[arg(
        long,
        env = "OAUTHTEST_REQUEST_TIMEOUT_MS",
        value_name = "MS",
        help_heading = "Google endpoints"
    )]
    pub request_timeout_ms: Option<u64>,

    /// real --dry-run: also ask tokeninfo about the current access token (read-only).
    #[arg(long, help_heading = "Staging")]
    pub check_token: bool,

    /// force-expire: only set the expiry in the past; do not refresh.
    #[arg(long, help_heading = "Staging")]
    pub no_refresh: bool,

    /// force-expire (with --store-config): step 3 runs your application's own workflow instead
    /// of oauthtest's refresh: CMD with `sh -c`, given OAUTHTEST_CREDENTIAL_ID and the endpoint
    /// variables (OAUTHTEST_TOKEN_URL, OAUTHTEST_TOKENINFO_URL, OAUTHTEST_API_URL); step 4 then
    /// judges what it stored in its row.
    #[arg(long, value_name = "CMD", help_heading = "Staging")]
    pub trigger_cmd: Option<String>,

    /// force-expire (with --store-config): step 3 POSTs {"credential_id", "token_url",
    /// "tokeninfo_url", "api_url"} as JSON to your application's URL (a staging endpoint that
    /// runs the workflow); a 2xx answer means it ran. After --trigger-cmd when both are given.
    #[arg(long, value_name = "URL", help_heading = "Staging")]
    pub trigger_url: Option<String>,

    /// force-expire --trigger-cmd/--trigger-url: seconds the trigger may take before it is
    /// killed (or the request abandoned) and step 3 fails.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 60,
        help_heading = "Staging"
    )]
    pub trigger_timeout: u64,

    /// copy: the store to copy from, e.g. production (postgres://… or sqlite://…).
    #[arg(
        long,
        env = "OAUTHTEST_FROM_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL",
        help_heading = "Staging"
    )]
    pub from_database_url: Option<String>,

    /// copy: read the source store's key from this file instead of
    /// OAUTHTEST_FROM_ENCRYPTION_KEY.
    #[arg(
        long,
        env = "OAUTHTEST_FROM_ENCRYPTION_KEY_FILE",
        value_name = "PATH",
        help_heading = "Staging"
    )]
    pub from_key_file: Option<PathBuf>,

    /// copy: the source is an application's store, described by this TOML file (as
    /// --store-config describes this run's store; docs/app-store.md); its rows are opened with
    /// the key it names (give the source its own key_env, e.g. PRODUCTION_APP_KEY).
    #[arg(long, value_name = "FILE", help_heading = "Staging")]
    pub from_store_config: Option<PathBuf>,

    /// scrub: a credential to leave as it is (repeat, or separate ids with commas).
    #[arg(
        long,
        value_name = "N",
        value_delimiter = ',',
        help_heading = "Staging"
    )]
    pub keep: Vec<String>,

    /// scrub: really wipe; without it scrub only shows what it would do. cleanup: really
    /// remove the rows.
    #[arg(long, help_heading = "Staging")]
    pub yes: bool,

    /// cleanup: only the temporary rows of this run (the 8 hex digits after "temporary, run" in
    /// their names), also when this machine cannot tell whether it is gone.
    #[arg(long, value_name = "ID", help_heading = "Staging")]
    pub run: Option<String>,

    /// doctor: also check that the token endpoint (--token-url) answers; a plain HTTP request
    /// that sends no credential.
    #[arg(long, help_heading = "Doctor")]
    pub check_endpoint: bool,

    /// doctor: the production key's id (16 hex digits, not a secret), to prove this store's keys
    /// differ from it.
    #[arg(
        long,
        env = "OAUTHTEST_PRODUCTION_KEY_ID",
        value_name = "ID",
        help_heading = "Doctor"
    )]
    pub production_key_id: Option<String>,

    /// doctor: read the production key from this file instead of
    /// OAUTHTEST_PRODUCTION_ENCRYPTION_KEY, to prove this store's keys differ from it (only its id
    /// is used; prefer --production-key-id, which keeps the key itself out of staging).
    #[arg(
        long,
        env = "OAUTHTEST_PRODUCTION_ENCRYPTION_KEY_FILE",
        value_name = "PATH",
        help_heading = "Doctor"
    )]
    pub production_key_file: Option<PathBuf>,
}

/// What the command line asks for: a run, or a help text to print.
#[derive(Debug)]
pub enum Parsed {
    /// Run with these flags.
    Run(Box<Cli>),
    /// Print this help text (`--help` / `-h`, for `--mode MODE` when given) and exit 0.
    Help(String),
}

impl Cli {
    /// Parses `args` (the program name first). `--help` is answered here, per mode: with
    /// `--mode MODE` it shows what that mode takes, without it the list of modes.
    ///
    /// # Errors
    /// clap's error for flags that do not parse (it prints itself, with exit code 2).
    pub fn try_parse_args<I, T>(args: I) -> Result<Parsed, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        if let Some(long) = help::asked_for(&args) {
            return Ok(Parsed::Help(help::render(help::mode_in(&args), long)));
        }
        let matches = Self::command().try_get_matches_from(&args)?;
        let mut cli = Self::from_arg_matches(&matches)?;
        cli.given = Self::command()
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .filter(|id| matches.value_source(id) == Some(ValueSource::CommandLine))
            .map(str::to_owned)
            .collect();
        Ok(Parsed::Run(Box::new(cli)))
    }

    /// Whether option `id` (a clap id) was given on the command line.
    pub fn was_given(&self, id: &str) -> bool {
        self.given.iter().any(|g| g == id)
    }
}

#[cfg(test)]
mod tests;
