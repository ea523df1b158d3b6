//! Why the application store refused: each error names the config file and key, or the table,
//! row and field at fault, and never quotes a key, a token or a stored value.

use crate::exit_code;

/// Why an application-store operation failed. Every variant ends the run with exit code 2
/// ([`exit_code::USAGE_OR_INPUT`]) and means nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum AppStoreError {
    /// The config file cannot be read, is not TOML, or a key is unknown, missing or malformed,
    /// or names a table or column the database does not have.
    #[error("{file}: {key}: {problem}")]
    Config {
        /// The config file (or `--store-config`, `OAUTHTEST_STORE_CONFIG`).
        file: String,
        /// The key at fault, e.g. `store.cipher`.
        key: String,
        /// What is wrong (never a secret value).
        problem: String,
    },
    /// The application's key is missing, unreadable or malformed.
    #[error("{file}: {key}: {problem}")]
    Key {
        /// The config file that names the key.
        file: String,
        /// `store.key_env`, `store.key_file` or `store.old_keys_env`.
        key: String,
        /// What is wrong, naming the variable or file, never the key.
        problem: String,
    },
    /// A row's stored value does not decrypt: wrong key, tampered with, truncated, or (for
    /// formats that bind a row) moved from another row.
    #[error("{table} row {row}: {problem}")]
    Decrypt {
        /// The application's table.
        table: String,
        /// The row's id.
        row: String,
        /// Why, never quoting the value.
        problem: String,
    },
    /// A row's decrypted payload does not match the mapping: not JSON, a pointer that names no
    /// field, a field of the wrong type, an expiry that does not parse.
    #[error("{table} row {row}: {field}: {problem}")]
    Payload {
        /// The application's table.
        table: String,
        /// The row's id.
        row: String,
        /// The config key and its pointer, e.g. `store.payload.expiry (/expiry)`.
        field: String,
        /// What is wrong, never quoting the payload.
        problem: String,
    },
    /// No row has this id.
    #[error("{table}: no row with {id_column} = {row}")]
    NotFound {
        /// The application's table.
        table: String,
        /// The id column.
        id_column: String,
        /// The id asked for.
        row: String,
    },
    /// The row exists but its type is not one of `store.google_types`.
    #[error(
        "{table} row {row}: type {found:?} is not a Google credential type (store.google_types)"
    )]
    NotGoogle {
        /// The application's table.
        table: String,
        /// The row's id.
        row: String,
        /// The row's type.
        found: String,
    },
    /// The row changed between read and write (the compare-and-swap failed): the application or
    /// another writer got there first. Nothing was written.
    #[error("{table} row {row} changed since oauthtest read it (the application or another writer updated it); nothing was written, read it again and retry")]
    ChangedMeanwhile {
        /// The application's table.
        table: String,
        /// The row's id.
        row: String,
    },
    /// The application's own `encrypt_cmd` / `decrypt_cmd` failed.
    #[error("{table} row {row}: {key}: {problem}")]
    Command {
        /// The application's table.
        table: String,
        /// The row's id.
        row: String,
        /// `store.encrypt_cmd` or `store.decrypt_cmd`.
        key: String,
        /// What happened (exit status, timeout); its output is not shown, it may hold secrets.
        problem: String,
    },
    /// What the table cannot do for this operation (for example an insert without an id).
    #[error("{table}: {problem}")]
    Unsupported {
        /// The application's table.
        table: String,
        /// What cannot be done and why.
        problem: String,
    },
    /// The database could not be reached, or a statement failed.
    #[error("database {url}: {reason}")]
    Database {
        /// The URL, password removed.
        url: String,
        /// The driver's reason.
        reason: String,
    },
}

impl AppStoreError {
    /// The process exit code this error ends a run with: always 2, nothing was written.
    pub fn exit_code(&self) -> u8 {
        exit_code::USAGE_OR_INPUT
    }

    /// Whether this is the compare-and-swap conflict ([`AppStoreError::ChangedMeanwhile`]).
    pub fn is_changed_meanwhile(&self) -> bool {
        matches!(self, AppStoreError::ChangedMeanwhile { .. })
    }

    pub(crate) fn config(file: &str, key: &str, problem: impl Into<String>) -> Self {
        AppStoreError::Config {
            file: file.to_owned(),
            key: key.to_owned(),
            problem: problem.into(),
        }
    }
}

impl From<AppStoreError> for crate::Error {
    fn from(e: AppStoreError) -> Self {
        match e {
            AppStoreError::Config { file, key, problem }
            | AppStoreError::Key { file, key, problem } => crate::Error::Config {
                setting: format!("{file}: {key}"),
                problem,
            },
            AppStoreError::Database { url, reason } => {
                crate::Error::Store(crate::store::StoreError::Query { url, reason })
            }
            other => crate::Error::Input {
                source_name: "application store".to_owned(),
                problem: other.to_string(),
            },
        }
    }
}
