//! Raw flags and environment, validated once into what a run needs.
//!
//! Precedence: flags, then environment variables, then a `.env` file in the working directory,
//! then defaults. clap reads flags and the environment; [`load_dotenv`] runs before it and only
//! fills variables that are not already set, which gives the `.env` layer its place.

mod app_tasks;
mod shared;
mod tasks;
mod trigger;

use crate::app_store::{process_env, AppStore, Cipher, StoreConfig};
use crate::cli::{Cli, Environment, Format, Mode};
use crate::crypto::{EncryptionKey, Keyring};
use crate::error::{Error, Result};
use crate::exchange::{build_http_client, ExchangeConfig};
use crate::google_api::ApiEndpoints;
use crate::refresh::{Engine, EngineBuilder, EngineConfig};
use crate::secret::ClientSecret;
use crate::store::{Store, DEFAULT_DATABASE_URL};
use crate::task::{Effect, Task};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The environment variable holding the current encryption key.
pub const KEY_VAR: &str = "OAUTHTEST_ENCRYPTION_KEY";
/// The environment variable holding previous keys (comma-separated), which only decrypt.
pub const OLD_KEYS_VAR: &str = "OAUTHTEST_OLD_ENCRYPTION_KEYS";
/// The environment variable holding the key of the store `--mode copy` reads from.
pub const FROM_KEY_VAR: &str = "OAUTHTEST_FROM_ENCRYPTION_KEY";
/// The environment variable holding the production key, for `--mode doctor` to compare ids.
pub const PRODUCTION_KEY_VAR: &str = "OAUTHTEST_PRODUCTION_ENCRYPTION_KEY";

/// Variables oauthtest or the libraries it uses read that are not a flag's variable (those come
/// from the command line's own definition, see [`load_dotenv`]).
const DOTENV_EXTRA_VARS: &[&str] = &[
    KEY_VAR,
    OLD_KEYS_VAR,
    FROM_KEY_VAR,
    PRODUCTION_KEY_VAR,
    "RUST_LOG",
    "NO_COLOR",
    "TZ",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// Loads `.env` from the working directory, if there is one, without overriding variables that
/// are already set. Call it before any thread starts.
///
/// Only the variables oauthtest reads are taken from it (every flag's variable, the key
/// variables, `RUST_LOG`, `NO_COLOR`, `TZ`, the proxy and TLS-trust variables); other lines are
/// parsed, then left alone. Setting a variable costs time proportional to the size of the whole
/// environment, so exporting every line of a 50,000-line file took minutes; this way the time
/// is linear in the file's size (see docs/reliability.md).
///
/// # Errors
/// [`Error::Config`] naming the line that does not parse (never its content, which may be a
/// secret).
pub fn load_dotenv() -> Result<Option<PathBuf>> {
    use clap::CommandFactory as _;
    let path = PathBuf::from(".env");
    if !path.is_file() {
        return Ok(None);
    }
    let command = Cli::command();
    let wanted: std::collections::HashSet<&str> = command
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .filter_map(|name| name.to_str())
        .chain(DOTENV_EXTRA_VARS.iter().copied())
        .collect();
    let exports = dotenv_exports(
        &path,
        |name| wanted.contains(name),
        |name| std::env::var_os(name).is_some(),
    )?;
    for (name, value) in exports {
        std::env::set_var(name, value);
    }
    Ok(Some(path))
}

/// The variables a `.env` file sets: those `wanted` names and `is_set` says are not set yet,
/// the first line naming a variable winning. Linear in the file's size.
///
/// # Errors
/// [`Error::Config`] naming the line that does not parse (never its content).
fn dotenv_exports(
    path: &Path,
    wanted: impl Fn(&str) -> bool,
    is_set: impl Fn(&str) -> bool,
) -> Result<Vec<(String, String)>> {
    let parse_error = |e: dotenvy::Error| match e {
        dotenvy::Error::LineParse(_, index) => Error::config(
            ".env",
            format!("cannot parse the line at character {index}; expected KEY=VALUE"),
        ),
        dotenvy::Error::Io(e) => Error::config(".env", format!("cannot read: {e}")),
        _ => Error::config(".env", "cannot read"),
    };
    let mut seen = std::collections::HashSet::new();
    let mut exports = Vec::new();
    for item in dotenvy::from_path_iter(path).map_err(parse_error)? {
        let (name, value) = item.map_err(parse_error)?;
        if !wanted(&name) || !seen.insert(name.clone()) || is_set(&name) {
            continue;
        }
        exports.push((name, value));
    }
    Ok(exports)
}

#[cfg(test)]
mod dotenv_tests {
    use super::*;

    #[test]
    fn a_large_dotenv_exports_only_the_variables_oauthtest_reads_first_line_winning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        let mut text = String::new();
        for i in 0..50_000 {
            text.push_str(&format!("UNRELATED_{i}=value_{i}\n"));
        }
        text.push_str("DATABASE_URL=sqlite://first.db\nDATABASE_URL=sqlite://second.db\n");
        text.push_str("OAUTHTEST_ENV=staging\n");
        std::fs::write(&path, text).unwrap();
        let wanted = |name: &str| matches!(name, "DATABASE_URL" | "OAUTHTEST_ENV");
        let exports = dotenv_exports(&path, wanted, |name| name == "OAUTHTEST_ENV").unwrap();
        assert_eq!(
            exports,
            vec![("DATABASE_URL".to_owned(), "sqlite://first.db".to_owned())]
        );
    }

    #[test]
    fn a_line_that_does_not_parse_is_named_by_position_never_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "GOOD=1\nBAD LINE 'PLANTED\n").unwrap();
        let err = dotenv_exports(&path, |_| true, |_| false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot parse the line"), "{err}");
        assert!(!err.contains("PLANTED"), "{err}");
    }
}

/// Everything a mode needs, validated. `Debug` shows the database URL with its password removed.
pub struct Settings {
    /// Output format.
    pub format: Format,
    /// The store URL (default applied).
    pub database_url: String,
    /// Whether the store URL was given (flag, environment or `.env`) rather than defaulted.
    pub database_url_explicit: bool,
    /// Client id for credentials without their own.
    pub client_id: Option<String>,
    /// Client secret for credentials without their own.
    pub client_secret: Option<ClientSecret>,
    /// The environment, if any was given.
    pub environment: Option<Environment>,
    /// Google's token endpoint (or a stand-in).
    pub token_url: Url,
    /// Google's tokeninfo and API endpoints (or stand-ins).
    pub api: ApiEndpoints,
    /// `--request-timeout-ms`, when given: one request's time limit at Google's endpoints.
    pub request_timeout: Option<Duration>,
    /// The application's store (`--store-config`, `./oauthtest.toml`, `OAUTHTEST_STORE_CONFIG`),
    /// for the modes that take one; `None`: oauthtest's own store.
    pub app_store: Option<StoreConfig>,
    key_file: Option<PathBuf>,
    from_key_file: Option<PathBuf>,
    production_key_id: Option<String>,
    production_key_file: Option<PathBuf>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("format", &self.format)
            .field(
                "database_url",
                &crate::store::redact_url(&self.database_url),
            )
            .field("database_url_explicit", &self.database_url_explicit)
            .field("client_id", &self.client_id)
            .field("environment", &self.environment)
            .field(
                "token_url",
                &crate::store::redact_url(self.token_url.as_str()),
            )
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// The production key's id, and the setting it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductionKeyId {
    /// The key id (16 hex digits, as [`EncryptionKey::id`]).
    pub id: String,
    /// The flag or variable it was read from.
    pub source: String,
}

impl Settings {
    /// Validates the command line.
    ///
    /// # Errors
    /// [`Error::Usage`] for flag combinations that cannot work; [`Error::ProductionGuard`] when a
    /// mode that changes credentials is asked for in production without the override.
    pub fn from_cli(cli: &Cli) -> Result<(Self, Task)> {
        // mock and mock-all use a store config only to seed --target-cmd's rows; without a CMD
        // an oauthtest.toml lying in the working directory is none of their business.
        let seeds_app_rows =
            !matches!(cli.mode, Mode::Mock | Mode::MockAll) || cli.target_cmd.is_some();
        let app_store = if cli.mode.takes().contains(&"store_config") && seeds_app_rows {
            let cwd = std::env::current_dir()
                .map_err(|e| Error::config("working directory", e.to_string()))?;
            StoreConfig::discover(cli.store_config.as_deref(), &cwd, &process_env)?
        } else {
            None
        };
        let task = tasks::task_from(cli, app_store.is_some())?;
        guard(cli, &task)?;
        if let Some(url) = cli.database_url.as_deref() {
            let rest = url
                .trim()
                .strip_prefix("sqlite:")
                .map(|r| r.trim_start_matches('/'));
            if rest.is_some_and(str::is_empty) {
                return Err(Error::config(
                    "--database-url / DATABASE_URL",
                    "sqlite:// has no path; give sqlite://PATH, e.g. sqlite://oauthtest.db",
                ));
            }
        }
        let settings = Self {
            format: cli.format,
            database_url_explicit: cli
                .database_url
                .as_deref()
                .is_some_and(|u| !u.trim().is_empty()),
            database_url: cli
                .database_url
                .clone()
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            client_id: cli.client_id.clone().filter(|s| !s.is_empty()),
            client_secret: cli
                .client_secret
                .clone()
                .filter(|s| !s.expose_secret().is_empty()),
            environment: cli.environment,
            token_url: parse_endpoint(
                "--token-url",
                cli.token_url
                    .as_deref()
                    .unwrap_or(crate::exchange::GOOGLE_TOKEN_URL),
            )?,
            api: ApiEndpoints {
                profile_url: parse_endpoint(
                    "--api-url",
                    cli.api_url
                        .as_deref()
                        .unwrap_or(crate::google_api::GMAIL_PROFILE_URL),
                )?
                .into(),
                tokeninfo_url: parse_endpoint(
                    "--tokeninfo-url",
                    cli.tokeninfo_url
                        .as_deref()
                        .unwrap_or(crate::google_api::GOOGLE_TOKENINFO_URL),
                )?
                .into(),
            },
            request_timeout: match cli.request_timeout_ms {
                Some(0) => {
                    return Err(Error::Usage(
                        "--request-timeout-ms must be at least 1".into(),
                    ))
                }
                Some(ms) if ms > crate::task::MAX_TIMEOUT_MS => {
                    return Err(Error::Usage(format!(
                        "--request-timeout-ms {ms} is out of range: it must be from 1 to {}",
                        crate::task::MAX_TIMEOUT_MS
                    )))
                }
                ms => ms.map(Duration::from_millis),
            },
            app_store,
            key_file: cli.key_file.clone(),
            from_key_file: cli.from_key_file.clone(),
            production_key_id: cli
                .production_key_id
                .clone()
                .filter(|s| !s.trim().is_empty()),
            production_key_file: cli.production_key_file.clone(),
        };
        Ok((settings, task))
    }

    /// The keyring: the current key from `--key-file` or `OAUTHTEST_ENCRYPTION_KEY`, previous
    /// keys from `OAUTHTEST_OLD_ENCRYPTION_KEYS`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting that is missing or malformed (never its value).
    pub fn keyring(&self) -> Result<Keyring> {
        let current = read_key(
            self.key_file.as_deref(),
            "--key-file",
            KEY_VAR,
            "is not set; generate a key with `oauthtest --mode keygen` and export it, \
             or pass --key-file",
        )?;
        let previous = match std::env::var(OLD_KEYS_VAR) {
            Ok(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .enumerate()
                .map(|(i, k)| {
                    EncryptionKey::from_base64(k)
                        .map_err(|e| Error::config(OLD_KEYS_VAR, format!("entry {} {e}", i + 1)))
                })
                .collect::<Result<Vec<_>>>()?,
            Err(_) => Vec::new(),
        };
        Ok(Keyring::new(current, previous))
    }

    /// The key of the store `--mode copy` reads from: `--from-key-file` or
    /// `OAUTHTEST_FROM_ENCRYPTION_KEY`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting that is missing or malformed (never its value).
    pub fn source_keyring(&self) -> Result<Keyring> {
        let key = read_key(
            self.from_key_file.as_deref(),
            "--from-key-file",
            FROM_KEY_VAR,
            "is not set; --mode copy needs the source store's key (or pass --from-key-file)",
        )?;
        Ok(Keyring::new(key, Vec::new()))
    }

    /// Where the current key is read from: `--key-file PATH` or `OAUTHTEST_ENCRYPTION_KEY`.
    pub fn key_source(&self) -> String {
        self.key_file.as_ref().map_or_else(
            || KEY_VAR.to_owned(),
            |p| format!("--key-file {}", p.display()),
        )
    }

    /// The production key's id, for `--mode doctor` to prove this store's keys differ from it:
    /// `--production-key-id` / `OAUTHTEST_PRODUCTION_KEY_ID` as given, else the id of the key in
    /// `--production-key-file` or `OAUTHTEST_PRODUCTION_ENCRYPTION_KEY`. `None` when none is set.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting that is malformed (never its value).
    pub fn production_key_id(&self) -> Result<Option<ProductionKeyId>> {
        if let Some(id) = &self.production_key_id {
            let id = id.trim().to_ascii_lowercase();
            if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::config(
                    "--production-key-id",
                    "must be a key id: 16 hex digits, as `oauthtest --mode doctor` prints for the \
                     production key (never the key itself)",
                ));
            }
            return Ok(Some(ProductionKeyId {
                id,
                source: "--production-key-id".into(),
            }));
        }
        let in_env = std::env::var(PRODUCTION_KEY_VAR).is_ok_and(|v| !v.trim().is_empty());
        if self.production_key_file.is_none() && !in_env {
            return Ok(None);
        }
        let key = read_key(
            self.production_key_file.as_deref(),
            "--production-key-file",
            PRODUCTION_KEY_VAR,
            "is not set",
        )?;
        Ok(Some(ProductionKeyId {
            id: key.id().to_owned(),
            source: self.production_key_file.as_ref().map_or_else(
                || PRODUCTION_KEY_VAR.to_owned(),
                |p| format!("--production-key-file {}", p.display()),
            ),
        }))
    }

    /// Connects to the application's store (`read_only`: nothing can be written) and builds its
    /// cipher when `with_key` (the key is read from the variable or file the config names).
    ///
    /// # Errors
    /// [`Error::Config`] naming the config file and key (a table or column that is missing, a
    /// key that is unset or malformed); [`Error::Store`] for the database.
    pub async fn open_app_store(
        &self,
        read_only: bool,
        with_key: bool,
    ) -> Result<(AppStore, Option<Cipher>)> {
        let cfg = self
            .app_store
            .clone()
            .ok_or_else(|| Error::Usage("this mode needs a store config".into()))?;
        let cipher = if with_key {
            Some(Cipher::from_config(&cfg, &process_env)?)
        } else {
            None
        };
        let store = if read_only {
            AppStore::connect_read_only(cfg, &self.database_url).await?
        } else {
            AppStore::connect(cfg, &self.database_url).await?
        };
        Ok((store, cipher))
    }

    /// Connects to the configured store and migrates it.
    ///
    /// # Errors
    /// [`Error::Store`] naming the database (password removed).
    pub async fn open_store(&self) -> Result<Store> {
        Ok(Store::connect(&self.database_url).await?)
    }

    /// Opens the configured store only to read it: no file created, no migration applied; a
    /// database that holds no store is reported as such.
    ///
    /// # Errors
    /// [`Error::Store`] naming the database (password removed).
    pub async fn open_store_read_only(&self) -> Result<Store> {
        Ok(Store::connect_read_only(&self.database_url).await?)
    }

    /// The HTTP client for Google: built once per run, with the exchange's request timeout and
    /// redirects off. Share it between the [`Engine`] and the calls that verify a token.
    ///
    /// # Errors
    /// [`Error::Internal`] when the TLS backend cannot initialise.
    pub fn http_client(&self) -> Result<reqwest::Client> {
        build_http_client(self.request_timeout())
            .map_err(|e| Error::Internal(anyhow::Error::new(e)))
    }

    /// One request's time limit at Google's endpoints: `--request-timeout-ms`, or the
    /// exchange's default (10 s).
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
            .unwrap_or_else(|| ExchangeConfig::default().request_timeout)
    }

    /// The refresh engine a worker would use, pointed at the configured token endpoint with
    /// Google-like retries, writing history lines as `mode`.
    pub fn engine(
        &self,
        http: reqwest::Client,
        store: Arc<Store>,
        keyring: Arc<Keyring>,
        mode: &'static str,
    ) -> Result<Engine> {
        let exchange = ExchangeConfig {
            token_url: self.token_url.clone(),
            ..ExchangeConfig::default()
        };
        EngineBuilder::new(store, keyring, exchange, self.api.clone())
            .request_timeout(self.request_timeout())
            .http(http)
            .default_client(self.client_id.clone(), self.client_secret.clone())
            .config(EngineConfig {
                mode,
                ..EngineConfig::default()
            })
            .build()
            .map_err(|e| Error::Internal(anyhow::Error::new(e)))
    }
}

/// The production guard: in production, a task that changes stored credentials, or puts
/// temporary rows into a store that was named, needs `--i-know-this-is-production`. It decides on
/// what the task will do ([`Task::effect`]), never on which flags were typed.
fn guard(cli: &Cli, task: &Task) -> Result<()> {
    if cli.environment != Some(Environment::Production) || cli.i_know_this_is_production {
        return Ok(());
    }
    match task.effect() {
        Effect::None | Effect::ReadOnly => Ok(()),
        Effect::Writes => Err(Error::ProductionGuard {
            mode: cli.mode.name().into(),
            reason: "this mode changes stored credentials",
        }),
        Effect::TemporaryRows
            if matches!(task, Task::Mock(a) | Task::MockAll(a)
                if a.target.as_ref().is_some_and(|t| t.app_store_user.is_some())) =>
        {
            Err(Error::ProductionGuard {
                mode: cli.mode.name().into(),
                reason: "with --target-cmd and a store config this mode inserts and removes \
                         temporary rows in the application's own table; run it against a \
                         staging database",
            })
        }
        Effect::TemporaryRows => Err(Error::ProductionGuard {
            mode: cli.mode.name().into(),
            reason: "this mode inserts and removes temporary rows in the store --database-url \
                     (DATABASE_URL) names; leave it unset to use a temporary store of its own",
        }),
    }
}

/// A key from `file` if given (named by `file_flag`), else from the variable `var`.
fn read_key(file: Option<&Path>, file_flag: &str, var: &str, unset: &str) -> Result<EncryptionKey> {
    match file {
        Some(path) => {
            let setting = format!("{file_flag} {}", path.display());
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::config(&setting, format!("cannot read: {e}")))?;
            EncryptionKey::from_base64(&text).map_err(|e| Error::config(&setting, e.to_string()))
        }
        None => {
            let value = std::env::var(var).map_err(|_| Error::config(var, unset))?;
            EncryptionKey::from_base64(&value).map_err(|e| Error::config(var, e.to_string()))
        }
    }
}

/// An endpoint URL given by `flag`: absolute, http or https. The message never echoes the
/// value (a URL can carry credentials).
fn parse_endpoint(flag: &str, value: &str) -> Result<Url> {
    let url = Url::parse(value.trim())
        .map_err(|e| Error::config(flag, format!("is not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::config(
            flag,
            format!("must be an http or https URL, not {}", url.scheme()),
        ));
    }
    Ok(url)
}
