//! The modes, and which options each takes.

use clap::ValueEnum;

/// What oauthtest does in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// List stored Google credentials and their state (never a secret); with --credential-id, one
    /// credential and its history.
    List,
    /// Encrypt and store a credential from a JSON file (--file, or - for stdin): an OAuth 2.0
    /// Playground token response or an authorized_user file. Prints the new id.
    Import,
    /// Create the store (a SQLite file, or oauthtest's tables in a PostgreSQL database) and
    /// apply migrations; changes no credential. The read-only modes never create a store.
    Init,
    /// Print a new random encryption key (32 bytes, base64) for OAUTHTEST_ENCRYPTION_KEY.
    Keygen,
    /// Re-encrypt every stored credential with the current key (old keys from
    /// OAUTHTEST_OLD_ENCRYPTION_KEYS).
    Rekey,
    /// Run one scenario (--scenario, default success) against the embedded mock Google, printing
    /// each exchange step by step.
    Mock,
    /// Run every scenario concurrently against embedded mocks: the pre-deploy check. Exit 1 if
    /// any fails. With --target-cmd, judge your own refresh code instead of oauthtest's.
    MockAll,
    /// Many concurrent workers running jobs on the same credentials (Celery-style): proves
    /// exactly one refresh per expiry, no lost tokens, fast failure on invalid_grant.
    /// With --target-cmd (and the application's --store-config) the application's own workers
    /// run instead, on credentials seeded as temporary rows in its store: without
    /// --enqueue-cmd, CMD runs once and starts its own pool of OAUTHTEST_WORKERS workers; with
    /// it, CMD is the worker entry point, run --concurrency times, and the enqueue command sends
    /// OAUTHTEST_JOBS jobs and waits for them. With --token-url of a running serve, the
    /// invariants are judged from serve's journal, every process that used it included.
    #[value(alias = "celery-sim")]
    WorkerSim,
    /// Refresh one stored credential (--credential-id) against Google, verify the new token
    /// (tokeninfo, Gmail profile) and store it; with --dry-run, only report what it would do.
    Real,
    /// The staging check: a valid credential, expire it, refresh it as a worker would, prove the
    /// new token works (each step pass/fail); --no-refresh only expires it.
    ForceExpire,
    /// Copy one credential (--credential-id) from another store (--from-database-url), decrypted
    /// with that store's key and re-encrypted with this one's; either store may be an
    /// application's (--from-store-config for the source, --store-config for this one).
    Copy,
    /// Wipe every credential's tokens except --keep ids, marking them needs_reconnect (after a
    /// production dump is restored into staging). Shows what it would do unless --yes.
    Scrub,
    /// Check configuration and store without changing anything: key, production key kept apart,
    /// database, migrations, every credential decrypts, token endpoint (--check-endpoint),
    /// production guard. Each check is listed with its fix where it has one; exit 1 if any
    /// check fails.
    Doctor,
    /// Remove the temporary rows that a mock, mock-all or worker-sim run with --database-url left
    /// when it was killed (kill -9): those of runs that are gone (same host, their pid not
    /// running), with their history. Shows what it would remove unless --yes; --run ID for one
    /// run (also one this machine cannot check, e.g. another host's).
    Cleanup,
    /// Serve the mock Google standalone (token, tokeninfo, revoke, Gmail profile, OpenID
    /// discovery, and an admin API under /__admin/) for apps in any language. Prints the base
    /// URL as the first line; stops on SIGINT or SIGTERM.
    Serve,
}

impl Mode {
    /// The name as typed after `--mode`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::List => "list",
            Mode::Init => "init",
            Mode::Import => "import",
            Mode::Keygen => "keygen",
            Mode::Rekey => "rekey",
            Mode::Mock => "mock",
            Mode::MockAll => "mock-all",
            Mode::WorkerSim => "worker-sim",
            Mode::Real => "real",
            Mode::ForceExpire => "force-expire",
            Mode::Copy => "copy",
            Mode::Scrub => "scrub",
            Mode::Doctor => "doctor",
            Mode::Cleanup => "cleanup",
            Mode::Serve => "serve",
        }
    }

    /// The log filter when neither --log nor OAUTHTEST_LOG gives one: `serve` logs each request.
    pub fn default_log_filter(self) -> &'static str {
        match self {
            Mode::Serve => "warn,oauthtest::serve=info",
            _ => "warn",
        }
    }

    /// Whether the mode can change stored credentials. Some runs of it only read (`--dry-run`,
    /// scrub without `--yes`): the production guard decides on [`crate::task::Task::effect`].
    pub fn writes_credentials(self) -> bool {
        matches!(
            self,
            Mode::Import | Mode::Rekey | Mode::Real | Mode::ForceExpire | Mode::Copy | Mode::Scrub
        )
    }

    /// Every mode, in the order `--help` lists them.
    pub const ALL: [Mode; 15] = [
        Mode::Init,
        Mode::List,
        Mode::Import,
        Mode::Keygen,
        Mode::Rekey,
        Mode::Mock,
        Mode::MockAll,
        Mode::WorkerSim,
        Mode::Real,
        Mode::ForceExpire,
        Mode::Copy,
        Mode::Scrub,
        Mode::Doctor,
        Mode::Cleanup,
        Mode::Serve,
    ];

    /// The options this mode takes beyond [`COMMON_ARGS`], by their clap ids (the field names of
    /// [`Cli`](super::Cli)). Any other option given on the command line is refused, naming the modes that
    /// take it; `--mode MODE --help` shows exactly these.
    pub fn takes(self) -> &'static [&'static str] {
        match self {
            Mode::Init => &["database_url"],
            // list reads only the columns beside the envelope: it needs no key.
            Mode::List => &["database_url", "credential_id", "store_config"],
            Mode::Import => &[
                "database_url",
                "key_file",
                "client_id",
                "client_secret",
                "file",
                "user_id",
                "credential_type",
                "name",
                "store_config",
            ],
            Mode::Keygen => &[],
            Mode::Rekey => &["database_url", "key_file", "dry_run"],
            Mode::Mock => &[
                "database_url",
                "scenario",
                "scenarios",
                "target_cmd",
                "target_timeout",
                "store_config",
                "user_id",
            ],
            Mode::MockAll => &[
                "database_url",
                "scenario",
                "scenarios",
                "report",
                "target_cmd",
                "target_timeout",
                "store_config",
                "user_id",
            ],
            Mode::WorkerSim => &[
                "database_url",
                "key_file",
                "client_id",
                "client_secret",
                "token_url",
                "tokeninfo_url",
                "api_url",
                "request_timeout_ms",
                "credential_id",
                "scenario",
                "report",
                "workers",
                "jobs",
                "credentials",
                "processes",
                "token_ttl_secs",
                "unsafe_no_refresh_coordination",
                "worker_child",
                "credential_ids",
                "admin_token",
                "store_config",
                "target_cmd",
                "enqueue_cmd",
                "target_timeout",
            ],
            Mode::Real => &[
                "database_url",
                "key_file",
                "client_id",
                "client_secret",
                "token_url",
                "tokeninfo_url",
                "api_url",
                "request_timeout_ms",
                "credential_id",
                "dry_run",
                "check_token",
                "store_config",
            ],
            Mode::ForceExpire => &[
                "database_url",
                "key_file",
                "client_id",
                "client_secret",
                "token_url",
                "tokeninfo_url",
                "api_url",
                "request_timeout_ms",
                "credential_id",
                "no_refresh",
                "trigger_cmd",
                "trigger_url",
                "trigger_timeout",
                "store_config",
            ],
            Mode::Copy => &[
                "database_url",
                "key_file",
                "credential_id",
                "from_database_url",
                "from_key_file",
                "from_store_config",
                "store_config",
            ],
            Mode::Scrub => &[
                "database_url",
                "key_file",
                "keep",
                "yes",
                "dry_run",
                "store_config",
            ],
            Mode::Doctor => &[
                "database_url",
                "key_file",
                "token_url",
                "request_timeout_ms",
                "check_endpoint",
                "production_key_id",
                "production_key_file",
                "store_config",
            ],
            Mode::Cleanup => &["database_url", "run", "yes"],
            Mode::Serve => super::identity::SERVE_TAKES,
        }
    }
}

/// The options every mode takes.
pub const COMMON_ARGS: &[&str] = &[
    "mode",
    "format",
    "environment",
    "i_know_this_is_production",
    "log",
    "verbose",
    "help",
    "version",
];
