//! What one run does: a typed task per mode, each holding exactly its validated arguments.
//!
//! [`crate::settings::Settings::from_cli`] is the only reader of the raw command line; it
//! returns the common settings and one [`Task`]. Modes receive their own arguments from the
//! task and never see a flag. Each task also says what it will do to the store ([`Effect`]),
//! and the production guard decides on that, not on which flags were typed.

pub use crate::app_store::RowId;
use secrecy::SecretString;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The id of a stored credential: a positive integer, as `--mode list` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CredentialId(i64);

impl CredentialId {
    /// `value` if it is a valid id (at least 1).
    pub fn new(value: i64) -> Option<Self> {
        (value >= 1).then_some(Self(value))
    }

    /// The id as stored.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a task does to the credential store it is pointed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Never opens a store (keygen, serve, mock on its own temporary store).
    None,
    /// Opens the store read-only: no file created, no migration, no row written.
    ReadOnly,
    /// Inserts and removes temporary rows of its own in the store it is pointed at.
    TemporaryRows,
    /// Changes stored credentials.
    Writes,
}

/// `--mode list`. `I` is the kind of id: [`CredentialId`] for oauthtest's own store, [`RowId`]
/// for the application's (`--store-config`).
#[derive(Debug, Clone)]
pub struct ListArgs<I = CredentialId> {
    /// One credential and its history, instead of all.
    pub credential_id: Option<I>,
}

/// `--mode import`.
#[derive(Debug, Clone)]
pub struct ImportArgs {
    /// The JSON file, or `-` for stdin.
    pub file: PathBuf,
    /// The owning user.
    pub user_id: i64,
    /// The credential type.
    pub credential_type: String,
    /// The credential's name.
    pub name: String,
}

/// `--mode rekey`.
#[derive(Debug, Clone)]
pub struct RekeyArgs {
    /// Count only; write nothing.
    pub dry_run: bool,
}

/// `--mode mock-all --target-cmd` and `--mode mock --target-cmd`.
#[derive(Debug, Clone)]
pub struct TargetArgs {
    /// The command, run with `sh -c`.
    pub cmd: String,
    /// How long one run may take.
    pub timeout: Duration,
    /// With a store config: each scenario's credential goes into the application's own table
    /// as a temporary row owned by this user (`--user-id`); `None`: handed over in variables
    /// only.
    pub app_store_user: Option<i64>,
}

/// `--mode mock` and `--mode mock-all`.
#[derive(Debug, Clone)]
pub struct MockArgs {
    /// mock: the scenario to run.
    pub scenario: String,
    /// mock-all: only these scenarios (`--scenario a,b`); empty: all of them.
    pub only: Vec<String>,
    /// Extra scenario files.
    pub scenarios_dir: Option<PathBuf>,
    /// The user's refresh code, instead of oauthtest's engine.
    pub target: Option<TargetArgs>,
    /// mock-all: also write the report here.
    pub report: Option<PathBuf>,
    /// The store to put temporary rows in, when one was named.
    pub database_url: Option<String>,
}

/// The largest `--workers`, `--credentials` and `--processes` worker-sim accepts.
pub const MAX_WORKERS: usize = 10_000;
/// The largest `--credentials`.
pub const MAX_CREDENTIALS: usize = 100_000;
/// The largest `--processes`.
pub const MAX_PROCESSES: usize = 64;
/// The largest `--jobs`.
pub const MAX_JOBS: u64 = 1_000_000_000;
/// The largest `--token-ttl-secs`.
pub const MAX_TOKEN_TTL_SECS: u64 = 86_400;
/// The largest `--target-timeout` and `--trigger-timeout`, in seconds.
pub const MAX_COMMAND_TIMEOUT_SECS: u64 = 3_600;
/// The largest `--read-timeout-ms` and `--request-timeout-ms`.
pub const MAX_TIMEOUT_MS: u64 = 600_000;

/// `--mode worker-sim` on synthetic credentials and the embedded mock.
#[derive(Debug, Clone)]
pub struct WorkerSimArgs {
    /// The behaviour of the mock (`--scenario`).
    pub scenario: String,
    /// Concurrent workers per process.
    pub workers: usize,
    /// Jobs in all.
    pub jobs: u64,
    /// Synthetic credentials.
    pub credentials: usize,
    /// Processes sharing the store and the mock.
    pub processes: usize,
    /// Access-token lifetime at the mock.
    pub token_ttl: Duration,
    /// Refresh coordination off (a demonstration).
    pub coordinate: bool,
    /// Also write the report here (HTML for `.html`, JSON for `.json`).
    pub report: Option<PathBuf>,
    /// The store to put temporary rows in, when one was named.
    pub database_url: Option<String>,
}

/// The largest `--concurrency` with `--target-cmd` (each worker is a process of the
/// application's).
pub const MAX_APP_WORKERS: usize = 256;
/// The largest `--credentials` with `--target-cmd` (rows in the application's store).
pub const MAX_APP_CREDENTIALS: usize = 1_000;

/// `--mode worker-sim --target-cmd CMD` on the application's store: the application's own
/// workers on credentials seeded as temporary rows there.
#[derive(Debug, Clone)]
pub struct WorkerSimAppArgs {
    /// The behaviour of the mock (`--scenario`).
    pub scenario: String,
    /// The worker entry point (`--target-cmd`), run with `sh -c`.
    pub worker_cmd: String,
    /// The command that enqueues the jobs and waits for them (`--enqueue-cmd`); `None`: the
    /// worker command runs once, starts its own pool and runs the jobs itself.
    pub enqueue_cmd: Option<String>,
    /// How long the whole run may take before every command is killed.
    pub timeout: Duration,
    /// Workers in all (`--concurrency`).
    pub workers: usize,
    /// Jobs in all.
    pub jobs: u64,
    /// Credentials seeded.
    pub credentials: usize,
    /// Access-token lifetime at the mock.
    pub token_ttl: Duration,
    /// Also write the report here (HTML for `.html`, JSON for `.json`).
    pub report: Option<PathBuf>,
}

/// `--mode worker-sim --token-url URL`: workers on stored credentials against a real (or
/// `serve`'s) token endpoint; also what a worker-sim child process runs.
#[derive(Debug, Clone)]
pub struct WorkerSimExternalArgs<I = CredentialId> {
    /// The stored credentials to work on.
    pub credential_ids: Vec<I>,
    /// Concurrent workers.
    pub workers: usize,
    /// Jobs in all.
    pub jobs: u64,
    /// The access-token lifetime the parent's mock gives (children only; the refresh margin
    /// follows it).
    pub token_ttl: Duration,
    /// This process is a child of a worker-sim parent.
    pub child: bool,
    /// Refresh coordination off (a demonstration).
    pub coordinate: bool,
    /// The bearer token of serve's admin API, to read its journal (`--admin-token`).
    pub admin_token: Option<SecretString>,
}

/// `--mode real`.
#[derive(Debug, Clone)]
pub struct RealArgs<I = CredentialId> {
    /// The credential.
    pub credential_id: I,
    /// Report only; write nothing.
    pub dry_run: bool,
    /// With the dry run, also ask tokeninfo about the current access token.
    pub check_token: bool,
}

/// `--mode force-expire`.
#[derive(Debug, Clone)]
pub struct ForceExpireArgs<I = CredentialId> {
    /// The credential.
    pub credential_id: I,
    /// Only expire it; do not refresh.
    pub no_refresh: bool,
    /// Step 3 runs the application's workflow instead of oauthtest's refresh.
    pub trigger: Option<TriggerArgs>,
}

/// `force-expire --trigger-cmd` / `--trigger-url`: the application's workflow, as step 3.
#[derive(Debug, Clone)]
pub struct TriggerArgs {
    /// Run with `sh -c`.
    pub cmd: Option<String>,
    /// POSTed to (after `cmd` when both are given).
    pub url: Option<url::Url>,
    /// How long each may take.
    pub timeout: Duration,
}

impl TriggerArgs {
    /// What runs the workflow: `cmd`, `url` or `cmd+url`.
    pub fn describe(&self) -> &'static str {
        match (&self.cmd, &self.url) {
            (Some(_), Some(_)) => "cmd+url",
            (None, Some(_)) => "url",
            _ => "cmd",
        }
    }
}

/// The credential `copy` reads: a row of oauthtest's own store, or of an application's store
/// (`--from-store-config`).
#[derive(Debug, Clone)]
pub enum CopySource {
    /// A credential of oauthtest's store, opened with `OAUTHTEST_FROM_ENCRYPTION_KEY`.
    Native(CredentialId),
    /// A row of the application's table the config describes, opened with the key it names.
    App {
        /// The source's store config file (`--from-store-config`), read when the copy starts.
        config: PathBuf,
        /// The application's row id.
        id: RowId,
    },
}

/// `--mode copy`. The destination is the store the run is pointed at: oauthtest's own, or the
/// application's (`--store-config`).
#[derive(Debug, Clone)]
pub struct CopyArgs {
    /// The credential in the source store.
    pub source: CopySource,
    /// The store to copy from.
    pub from_database_url: String,
}

/// `--mode scrub`.
#[derive(Debug, Clone)]
pub struct ScrubArgs<I = CredentialId> {
    /// Credentials to leave as they are.
    pub keep: Vec<I>,
    /// Really wipe; otherwise only show what would be wiped.
    pub apply: bool,
}

/// `--mode cleanup`.
#[derive(Debug, Clone)]
pub struct CleanupArgs {
    /// Only this run's rows (its mark, 8 hex digits).
    pub run: Option<String>,
    /// Really remove; otherwise only show what would be removed.
    pub apply: bool,
}

/// `--mode doctor`.
#[derive(Debug, Clone)]
pub struct DoctorArgs {
    /// Also check that the token endpoint answers.
    pub check_endpoint: bool,
    /// The production guard's override was given.
    pub production_override: bool,
}

/// `--mode serve`.
#[derive(Debug, Clone)]
pub struct ServeArgs {
    /// The address to listen on.
    pub host: IpAddr,
    /// The port; 0 picks a free one.
    pub port: u16,
    /// How long a client may take to send its request.
    pub read_timeout: Duration,
    /// A scenario to apply at start.
    pub scenario: Option<String>,
    /// Extra scenario files.
    pub scenarios_dir: Option<PathBuf>,
    /// The bearer token admin requests must carry (`--admin-token`).
    pub admin_token: Option<SecretString>,
    /// Host names the admin API accepts besides the listener's own (`--admin-allow-host`).
    pub admin_allow_hosts: Vec<String>,
    /// `iss` of the id_tokens and `issuer` of the discovery document.
    pub issuer: String,
    /// A PEM file holding the id_token signing key; `None` generates one.
    pub signing_key: Option<PathBuf>,
    /// HTTPS, writing the throwaway CA's certificate to this file; `None` serves plain HTTP.
    pub tls_ca_file: Option<PathBuf>,
    /// What the sign-in's consent step does at start (and after a reset).
    pub consent: mock_server::Consent,
}

/// One run's work: the mode and exactly its validated arguments.
#[derive(Debug, Clone)]
pub enum Task {
    /// `--mode init`.
    Init,
    /// `--mode list`.
    List(ListArgs),
    /// `--mode import`.
    Import(ImportArgs),
    /// `--mode keygen`.
    Keygen,
    /// `--mode rekey`.
    Rekey(RekeyArgs),
    /// `--mode mock`.
    Mock(MockArgs),
    /// `--mode mock-all`.
    MockAll(MockArgs),
    /// `--mode worker-sim` on the embedded mock.
    WorkerSim(WorkerSimArgs),
    /// `--mode worker-sim --token-url` (or a worker-sim child).
    WorkerSimExternal(WorkerSimExternalArgs),
    /// `--mode real`.
    Real(RealArgs),
    /// `--mode force-expire`.
    ForceExpire(ForceExpireArgs),
    /// `--mode copy`.
    Copy(CopyArgs),
    /// `--mode scrub`.
    Scrub(ScrubArgs),
    /// `--mode doctor`.
    Doctor(DoctorArgs),
    /// `--mode cleanup`.
    Cleanup(CleanupArgs),
    /// `--mode serve`.
    Serve(ServeArgs),
    /// A mode on the application's own store (`--store-config`).
    App(AppTask),
}

/// A mode on the application's own credential store: the same arguments, with the
/// application's row ids ([`RowId`], text: n8n's ids are strings).
#[derive(Debug, Clone)]
pub enum AppTask {
    /// `--mode list`.
    List(ListArgs<RowId>),
    /// `--mode real`.
    Real(RealArgs<RowId>),
    /// `--mode force-expire`.
    ForceExpire(ForceExpireArgs<RowId>),
    /// `--mode doctor`.
    Doctor(DoctorArgs),
    /// `--mode scrub`.
    Scrub(ScrubArgs<RowId>),
    /// `--mode import`: a new row in the application's format.
    Import(ImportArgs),
    /// `--mode worker-sim --target-cmd`: the application's workers on temporary rows.
    WorkerSim(WorkerSimAppArgs),
    /// `--mode worker-sim --credential-id`: oauthtest's workers on the application's rows.
    WorkerSimRows(WorkerSimExternalArgs<RowId>),
}

impl AppTask {
    /// What it does to the application's store: the production guard's input.
    pub fn effect(&self) -> Effect {
        match self {
            AppTask::List(_) | AppTask::Doctor(_) => Effect::ReadOnly,
            AppTask::WorkerSim(_) => Effect::TemporaryRows,
            AppTask::Real(a) if a.dry_run => Effect::ReadOnly,
            AppTask::Scrub(a) if !a.apply => Effect::ReadOnly,
            AppTask::Real(_)
            | AppTask::ForceExpire(_)
            | AppTask::Scrub(_)
            | AppTask::Import(_)
            | AppTask::WorkerSimRows(_) => Effect::Writes,
        }
    }
}

impl Task {
    /// What this task does to the store it is pointed at: the production guard's input.
    pub fn effect(&self) -> Effect {
        match self {
            Task::Keygen | Task::Serve(_) => Effect::None,
            Task::App(a) => a.effect(),
            Task::List(_) | Task::Doctor(_) => Effect::ReadOnly,
            Task::Rekey(a) if a.dry_run => Effect::ReadOnly,
            Task::Real(a) if a.dry_run => Effect::ReadOnly,
            Task::Scrub(a) if !a.apply => Effect::ReadOnly,
            Task::Cleanup(a) if !a.apply => Effect::ReadOnly,
            Task::Mock(a) | Task::MockAll(a) => match (&a.database_url, &a.target) {
                (Some(_), None) => Effect::TemporaryRows,
                (_, Some(t)) if t.app_store_user.is_some() => Effect::TemporaryRows,
                _ => Effect::None,
            },
            Task::WorkerSim(a) => match a.database_url {
                Some(_) => Effect::TemporaryRows,
                None => Effect::None,
            },
            Task::Init
            | Task::Import(_)
            | Task::Rekey(_)
            | Task::Real(_)
            | Task::ForceExpire(_)
            | Task::Copy(_)
            | Task::Scrub(_)
            | Task::Cleanup(_)
            | Task::WorkerSimExternal(_) => Effect::Writes,
        }
    }
}
