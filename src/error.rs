//! The errors a run can end with, each knowing its exit code.
//!
//! Every message names the setting, file or credential at fault and never contains a secret:
//! variants carry identifiers and short descriptions, never token or key material.

use crate::exit_code;
use crate::store::{DecryptError, StoreError};

/// Why a run stopped before producing its report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag combination that cannot work (for example `--mode import` without `--file`).
    #[error("{0}")]
    Usage(String),
    /// A configuration value that is missing or malformed.
    #[error("{setting}: {problem}")]
    Config {
        /// The flag or environment variable at fault, e.g. `OAUTHTEST_ENCRYPTION_KEY`.
        setting: String,
        /// What is wrong with it (never its value).
        problem: String,
    },
    /// An input file that cannot be read or understood.
    #[error("{source_name}: {problem}")]
    Input {
        /// The file path, or `stdin`.
        source_name: String,
        /// What is wrong, naming the field where there is one.
        problem: String,
    },
    /// The store could not be reached, migrated, read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored credential that cannot be decrypted, or whose payload is not a Google
    /// credential (the store's own error, converted).
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    /// No credential has this id.
    #[error("credential {id} not found in {store}{}", count_note(*.count))]
    NotFound {
        /// The id asked for.
        id: i64,
        /// The store looked in (password removed).
        store: String,
        /// How many credentials it holds, when that could be counted.
        count: Option<usize>,
    },
    /// The production guard refused a mode that changes stored credentials.
    #[error("refusing to run --mode {mode}: the environment is production (--env / OAUTHTEST_ENV), and {reason}; pass --i-know-this-is-production to override")]
    ProductionGuard {
        /// The refused mode.
        mode: String,
        /// What the mode would do to the store.
        reason: &'static str,
    },
    /// SIGINT or SIGTERM stopped the run; its temporary rows are removed on the way out.
    #[error("interrupted by {signal}; the run stopped before it finished (what it had done so far is reported as partial, not as a verdict)")]
    Interrupted {
        /// `SIGINT` or `SIGTERM`.
        signal: &'static str,
    },
    /// Anything else: a bug or an unexpected failure of the tool itself.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// The process exit code this error ends the run with.
    pub fn exit_code(&self) -> u8 {
        // Every variant by name: a new one must choose its code here.
        match self {
            Error::Usage(_)
            | Error::Config { .. }
            | Error::Input { .. }
            | Error::Store(_)
            | Error::Decrypt(_)
            | Error::NotFound { .. }
            | Error::ProductionGuard { .. } => exit_code::USAGE_OR_INPUT,
            Error::Interrupted { signal } => exit_code::interrupted(signal),
            Error::Internal(_) => exit_code::INTERNAL,
        }
    }

    /// A stable name for the kind of error, for `--format json` (`docs/json.md`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::Config { .. } => "config",
            Error::Input { .. } => "input",
            Error::Store(_) => "store",
            Error::Decrypt(DecryptError::Crypto { .. }) => "decrypt",
            Error::Decrypt(DecryptError::Payload { .. }) => "payload",
            Error::NotFound { .. } => "not_found",
            Error::ProductionGuard { .. } => "production_guard",
            Error::Interrupted { .. } => "interrupted",
            Error::Internal(_) => "internal",
        }
    }

    /// The error as `--format json` prints it on stdout:
    /// `{"error": {"kind", "message", "exit_code"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "kind": self.kind(),
                "message": self.to_string(),
                "exit_code": self.exit_code(),
            }
        })
    }

    /// Shorthand for a configuration error.
    pub fn config(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Config {
            setting: setting.into(),
            problem: problem.into(),
        }
    }

    /// Shorthand for an input error.
    pub fn input(source_name: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Input {
            source_name: source_name.into(),
            problem: problem.into(),
        }
    }
}

/// ` (3 credentials)`; spelt out here so that `error` needs nothing from `report` (which
/// returns this module's errors).
fn count_note(count: Option<usize>) -> String {
    count.map_or_else(String::new, |n| {
        format!(" ({n} credential{})", if n == 1 { "" } else { "s" })
    })
}

/// The error for credential `id` missing from `store`, saying how many it holds.
pub async fn not_found(store: &crate::store::Store, id: i64) -> Error {
    Error::NotFound {
        id,
        store: store.url().to_owned(),
        count: store.list().await.ok().map(|rows| rows.len()),
    }
}

/// The result type of everything below `run`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
