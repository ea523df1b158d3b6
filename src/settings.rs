//! Raw flags and environment, validated once into what a run needs.
//!
//! Precedence: flags, then environment variables, then a `.env` file in the working directory,
//! then defaults. clap reads flags and the environment; [`load_dotenv`] runs before it and only
//! fills variables that are not already set, which gives the `.env` layer its place.

use crate::cli::{Cli, Environment, Format, Mode};
use crate::crypto::{EncryptionKey, Keyring};
use crate::error::{Error, Result};
use crate::store::{Store, DEFAULT_DATABASE_URL};
use secrecy::SecretString;
use std::path::{Path, PathBuf};

/// The environment variable holding the current encryption key.
pub const KEY_VAR: &str = "OAUTHTEST_ENCRYPTION_KEY";
/// The environment variable holding previous keys (comma-separated), which only decrypt.
pub const OLD_KEYS_VAR: &str = "OAUTHTEST_OLD_ENCRYPTION_KEYS";

/// Loads `.env` from the working directory, if there is one, without overriding variables that
/// are already set. Call it before any thread starts.
///
/// # Errors
/// [`Error::Config`] naming the line that does not parse (never its content, which may be a
/// secret).
pub fn load_dotenv() -> Result<Option<PathBuf>> {
    let path = PathBuf::from(".env");
    if !path.is_file() {
        return Ok(None);
    }
    match dotenvy::from_path(&path) {
        Ok(()) => Ok(Some(path)),
        Err(dotenvy::Error::LineParse(_, index)) => Err(Error::config(
            ".env",
            format!("cannot parse the line at character {index}; expected KEY=VALUE"),
        )),
        Err(dotenvy::Error::Io(e)) => Err(Error::config(".env", format!("cannot read: {e}"))),
        Err(_) => Err(Error::config(".env", "cannot read")),
    }
}

/// Everything a mode needs, validated.
#[derive(Debug)]
pub struct Settings {
    /// The mode.
    pub mode: Mode,
    /// Output format.
    pub format: Format,
    /// The store URL (default applied).
    pub database_url: String,
    /// Whether the store URL was given (flag, environment or `.env`) rather than defaulted.
    pub database_url_explicit: bool,
    /// Client id for credentials without their own.
    pub client_id: Option<String>,
    /// Client secret for credentials without their own.
    pub client_secret: Option<SecretString>,
    /// The environment, if any was given.
    pub environment: Option<Environment>,
    key_file: Option<PathBuf>,
}

impl Settings {
    /// Validates the command line.
    ///
    /// # Errors
    /// [`Error::Usage`] for flag combinations that cannot work; [`Error::ProductionGuard`] when a
    /// mode that changes credentials is asked for in production without the override.
    pub fn from_cli(cli: &Cli) -> Result<Self> {
        if cli.mode == Mode::Import && cli.file.is_none() {
            return Err(Error::Usage(
                "--mode import needs --file PATH (or --file - to read stdin)".into(),
            ));
        }
        if let Some(cmd) = &cli.target_cmd {
            if !matches!(cli.mode, Mode::Mock | Mode::MockAll) {
                return Err(Error::Usage(format!(
                    "--target-cmd works with --mode mock-all or --mode mock, not --mode {}",
                    cli.mode.name()
                )));
            }
            if cmd.trim().is_empty() {
                return Err(Error::Usage(
                    "--target-cmd is empty; give the command that runs your refresh code".into(),
                ));
            }
        }
        if cli.mode.writes_credentials()
            && cli.environment == Some(Environment::Production)
            && !cli.i_know_this_is_production
        {
            return Err(Error::ProductionGuard {
                mode: cli.mode.name().into(),
            });
        }
        Ok(Self {
            mode: cli.mode,
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
                .filter(|s| !s.is_empty())
                .map(SecretString::from),
            environment: cli.environment,
            key_file: cli.key_file.clone(),
        })
    }

    /// The keyring: the current key from `--key-file` or `OAUTHTEST_ENCRYPTION_KEY`, previous
    /// keys from `OAUTHTEST_OLD_ENCRYPTION_KEYS`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting that is missing or malformed (never its value).
    pub fn keyring(&self) -> Result<Keyring> {
        let current = match &self.key_file {
            Some(path) => read_key_file(path)?,
            None => {
                let value = std::env::var(KEY_VAR).map_err(|_| {
                    Error::config(
                        KEY_VAR,
                        "is not set; generate a key with `oauthtest --mode keygen` and export it, \
                         or pass --key-file",
                    )
                })?;
                EncryptionKey::from_base64(&value)
                    .map_err(|e| Error::config(KEY_VAR, e.to_string()))?
            }
        };
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

    /// Connects to the configured store and migrates it.
    ///
    /// # Errors
    /// [`Error::Store`] naming the database (password removed).
    pub async fn open_store(&self) -> Result<Store> {
        Ok(Store::connect(&self.database_url).await?)
    }
}

fn read_key_file(path: &Path) -> Result<EncryptionKey> {
    let setting = format!("--key-file {}", path.display());
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(&setting, format!("cannot read: {e}")))?;
    EncryptionKey::from_base64(&text).map_err(|e| Error::config(&setting, e.to_string()))
}
