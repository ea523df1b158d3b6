//! The rows the store returns, as sqlx reads them from either backend.

use crate::credential::GoogleCredential;
use crate::crypto::{Binding, CryptoError, Keyring};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueFormat, PgValueRef, Postgres};
use sqlx::sqlite::{Sqlite, SqliteTypeInfo, SqliteValueRef};
use sqlx::{ColumnIndex, Decode, Row, Type, TypeInfo as _, ValueRef as _};
use std::fmt;

/// A credential query: the columns [`CredentialRow`] reads, then `$tail` (a literal, so the SQL
/// stays a static string).
macro_rules! select_credential {
    ($tail:literal) => {
        concat!(
            "SELECT id, user_id, type, name, encrypted_data, created_at, updated_at, expires_at, \
             state, has_refresh_token, key_id, version, last_refresh_at, last_refresh_outcome, \
             failure_count, cooldown_until_ms, lease_owner, lease_expires_at_ms \
             FROM oauthtest_credentials ",
            $tail
        )
    };
}
pub(crate) use select_credential;

/// Whether a credential can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialState {
    /// Usable: refreshes are attempted when the access token expires.
    Active,
    /// The refresh token is dead (`invalid_grant` or scrubbed): the user must reconnect; no
    /// refresh is ever attempted again.
    NeedsReconnect,
}

impl CredentialState {
    /// The value stored in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialState::Active => "active",
            CredentialState::NeedsReconnect => "needs_reconnect",
        }
    }
}

/// One row of `oauthtest_credentials`. `encrypted_data` is the sealed envelope; nothing here is
/// a secret in the clear, and `Debug` shows the envelope's length only.
#[derive(Clone)]
pub struct CredentialRow {
    /// Row id; the envelope is bound to it.
    pub id: i64,
    /// The owning user's id.
    pub user_id: i64,
    /// Credential type, e.g. `gmailOAuth2`.
    pub credential_type: String,
    /// Human name.
    pub name: String,
    /// The sealed envelope (see [`crate::crypto`]).
    pub encrypted_data: String,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
    /// When the stored access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// `active` or `needs_reconnect`.
    pub state: String,
    /// Whether the payload holds a refresh token.
    pub has_refresh_token: bool,
    /// The id of the key that sealed the envelope.
    pub key_id: String,
    /// Bumped on every write; updates compare-and-swap on it.
    pub version: i64,
    /// When a refresh last completed (any outcome).
    pub last_refresh_at: Option<DateTime<Utc>>,
    /// That refresh's outcome code.
    pub last_refresh_outcome: Option<String>,
    /// Consecutive retryable failures.
    pub failure_count: i64,
    /// No refresh before this instant (unix ms), after repeated failures.
    pub cooldown_until_ms: Option<i64>,
    /// Who holds the refresh lease.
    pub lease_owner: Option<String>,
    /// When that lease lapses (unix ms).
    pub lease_expires_at_ms: Option<i64>,
    /// The id of the store the row was read from (`None` for a store whose migrations predate
    /// store ids): `otv2` envelopes are bound to it.
    pub store_id: Option<String>,
}

impl fmt::Debug for CredentialRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialRow")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("type", &self.credential_type)
            .field("name", &self.name)
            .field(
                "encrypted_data",
                &format_args!("[{} bytes]", self.encrypted_data.len()),
            )
            .field("expires_at", &self.expires_at)
            .field("state", &self.state)
            .field("key_id", &self.key_id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl CredentialRow {
    /// The row's state; an unknown value (which the schema's CHECK forbids) reads as
    /// needs-reconnect, the state in which nothing is attempted.
    pub fn state(&self) -> CredentialState {
        match self.state.as_str() {
            "active" => CredentialState::Active,
            _ => CredentialState::NeedsReconnect,
        }
    }

    /// Decrypts and parses the row's payload (an `otv2` envelope must be bound to this store, row
    /// and version).
    ///
    /// # Errors
    /// [`DecryptError::Crypto`] (wrong key, tampering, moved from another row or store, an older
    /// envelope put back) or [`DecryptError::Payload`], both naming this credential.
    pub fn decrypt(&self, keyring: &Keyring) -> Result<GoogleCredential, DecryptError> {
        let binding = self.store_id.as_deref().map(|store_id| Binding {
            store_id,
            credential_id: self.id,
            version: self.version,
        });
        let plaintext = keyring
            .open(binding.as_ref(), self.id, &self.encrypted_data)
            .map_err(|source| DecryptError::Crypto {
                id: self.id,
                source,
            })?;
        GoogleCredential::from_payload(&plaintext).map_err(|problem| DecryptError::Payload {
            id: self.id,
            problem,
        })
    }
}

/// Why a stored credential could not be opened; the CLI's [`crate::error::Error`] converts it.
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    /// The envelope does not open.
    #[error("credential {id}: {source}")]
    Crypto {
        /// The credential's id.
        id: i64,
        /// Why decryption failed.
        source: CryptoError,
    },
    /// The envelope opens, but its payload is not a Google credential.
    #[error("credential {id}: decrypted payload is not a valid credential: {problem}")]
    Payload {
        /// The credential's id.
        id: i64,
        /// What is wrong with it.
        problem: String,
    },
}

/// One line of `oauthtest_refresh_history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    /// Line id.
    pub id: i64,
    /// The credential it is about.
    pub credential_id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// By which mode.
    pub mode: String,
    /// What was done.
    pub action: String,
    /// How it ended.
    pub outcome: String,
    /// Detail, never a secret.
    pub detail: Option<String>,
}

// Written out rather than derived: sqlx's derive macros would build sqlx, its drivers and
// SQLite's C code a second time, for the compiler (see docs/benchmarks.md, "Build cost").
impl<'r, R> sqlx::FromRow<'r, R> for HistoryRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    StoreTime: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(HistoryRow {
            id: row.try_get("id")?,
            credential_id: row.try_get("credential_id")?,
            at: row.try_get::<StoreTime, _>("at")?.0,
            mode: row.try_get("mode")?,
            action: row.try_get("action")?,
            outcome: row.try_get("outcome")?,
            detail: row.try_get("detail")?,
        })
    }
}

/// A row of `oauthtest_credentials` that cannot be read as a credential (edited by hand, written
/// by something else): its id, when that much reads, and what is wrong, never a column's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRow {
    /// The row's id, when it reads.
    pub id: Option<i64>,
    /// What is wrong, e.g. `user_id is stored as TEXT, not an integer`.
    pub problem: String,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "credential {id}: row cannot be read: {}", self.problem),
            None => write!(f, "a credential row cannot be read: {}", self.problem),
        }
    }
}

/// A timestamp column, read without trusting it: PostgreSQL's `infinity`, `-infinity` and years
/// past chrono's range (PostgreSQL reaches 294276, chrono 262143) are an error, not a panic as
/// sqlx's own `DateTime` decoding makes them.
pub(crate) struct StoreTime(DateTime<Utc>);

impl From<StoreTime> for DateTime<Utc> {
    fn from(t: StoreTime) -> Self {
        t.0
    }
}

/// Why a stored timestamp was refused (the value itself is never quoted).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TimeProblem(&'static str);

const OUT_OF_RANGE: TimeProblem =
    TimeProblem("is outside the representable range (infinity, -infinity, or a year past 262143)");

impl Type<Postgres> for StoreTime {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for StoreTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => {
                // Microseconds since 2000-01-01 00:00 UTC; i64::MAX and MIN are ±infinity.
                let us = <i64 as Decode<Postgres>>::decode(value)?;
                let epoch = NaiveDate::from_ymd_opt(2000, 1, 1)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .ok_or(OUT_OF_RANGE)?;
                // Any i64 of microseconds is a TimeDelta; the sum is what can overflow.
                epoch
                    .checked_add_signed(TimeDelta::microseconds(us))
                    .map(|naive| StoreTime(naive.and_utc()))
                    .ok_or_else(|| OUT_OF_RANGE.into())
            }
            PgValueFormat::Text => {
                let text = value.as_str()?;
                DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z")
                    .map(|t| StoreTime(t.with_timezone(&Utc)))
                    .map_err(|_| OUT_OF_RANGE.into())
            }
        }
    }
}

impl Type<Sqlite> for StoreTime {
    fn type_info() -> SqliteTypeInfo {
        <DateTime<Utc> as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <DateTime<Utc> as Type<Sqlite>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Sqlite> for StoreTime {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        // sqlx's message quotes the text; ours does not.
        <DateTime<Utc> as Decode<Sqlite>>::decode(value)
            .map(StoreTime)
            .map_err(|_| TimeProblem("is not a timestamp").into())
    }
}

/// One column, or a description of why it cannot be read as `what` (never its value).
fn column<'r, R, T>(row: &'r R, name: &'static str, what: &str) -> Result<T, String>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get::<T, _>(name).map_err(|e| {
        let source = match &e {
            sqlx::Error::ColumnDecode { source, .. } => Some(source),
            _ => None,
        };
        if source.is_some_and(|s| s.is::<sqlx::error::UnexpectedNullError>()) {
            return format!("{name} is NULL, not {what}");
        }
        if let Some(problem) = source.and_then(|s| s.downcast_ref::<TimeProblem>()) {
            return format!("{name} {problem}");
        }
        let stored = row
            .try_get_raw(name)
            .map(|v| v.type_info().name().to_owned())
            .unwrap_or_else(|_| "an unknown type".into());
        format!("{name} is stored as {stored}, not {what}")
    })
}

/// Reads one credential row, column by column, so that a bad value is named rather than failing
/// the whole query (or, for PostgreSQL's infinite timestamps, panicking).
pub(crate) fn read_credential<R>(row: &R) -> Result<CredentialRow, BadRow>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> StoreTime: Decode<'r, R::Database> + Type<R::Database>,
{
    let id = column::<R, i64>(row, "id", "an integer")
        .map_err(|problem| BadRow { id: None, problem })?;
    let read = || -> Result<CredentialRow, String> {
        let time = |name| column::<R, StoreTime>(row, name, "a timestamp").map(|t| t.0);
        let maybe_time =
            |name| column::<R, Option<StoreTime>>(row, name, "a timestamp").map(|t| t.map(|t| t.0));
        Ok(CredentialRow {
            id,
            user_id: column(row, "user_id", "an integer")?,
            credential_type: column(row, "type", "text")?,
            name: column(row, "name", "text")?,
            encrypted_data: column(row, "encrypted_data", "text (an envelope)")?,
            created_at: time("created_at")?,
            updated_at: time("updated_at")?,
            expires_at: maybe_time("expires_at")?,
            state: column(row, "state", "text")?,
            has_refresh_token: column(row, "has_refresh_token", "a boolean")?,
            key_id: column(row, "key_id", "text")?,
            version: column(row, "version", "an integer")?,
            last_refresh_at: maybe_time("last_refresh_at")?,
            last_refresh_outcome: column(row, "last_refresh_outcome", "text")?,
            failure_count: column(row, "failure_count", "an integer")?,
            cooldown_until_ms: column(row, "cooldown_until_ms", "an integer")?,
            lease_owner: column(row, "lease_owner", "text")?,
            lease_expires_at_ms: column(row, "lease_expires_at_ms", "an integer")?,
            store_id: None,
        })
    };
    read().map_err(|problem| BadRow {
        id: Some(id),
        problem,
    })
}
