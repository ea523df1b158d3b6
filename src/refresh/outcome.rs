//! What the engine hands back: a working token, a job's result, or a classified error.

use crate::error::Error;
use crate::exchange::code;
use crate::google_api::ApiResult;
use crate::secret::AccessToken;
use crate::store::{DecryptError, StoreError};
use chrono::{DateTime, Utc};

/// Why the engine could not hand back a working token.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The refresh token is dead: the user must reconnect. Never retried.
    #[error("credential {id}: the user must reconnect ({detail})")]
    NeedsReconnect {
        /// Credential.
        id: String,
        /// Google's error, or why the credential is in that state.
        detail: String,
    },
    /// The OAuth client is wrong (invalid_client, deleted_client, unauthorized_client).
    #[error("credential {id}: OAuth client misconfigured ({detail})")]
    ClientMisconfigured {
        /// Credential.
        id: String,
        /// Google's error.
        detail: String,
    },
    /// Google rejected our request (invalid_request, invalid_scope, …).
    #[error("credential {id}: token request rejected ({detail})")]
    RequestRejected {
        /// Credential.
        id: String,
        /// Google's error.
        detail: String,
    },
    /// A transient failure outlasted the retries.
    #[error("credential {id}: token endpoint unavailable, retry later ({detail})")]
    RetryLater {
        /// Credential.
        id: String,
        /// The last failure.
        detail: String,
    },
    /// The token endpoint answered 2xx with an unusable body.
    #[error("credential {id}: malformed token response ({detail})")]
    ProtocolError {
        /// Credential.
        id: String,
        /// What was wrong.
        detail: String,
    },
    /// The stored credential has no refresh token.
    #[error("credential {0}: no refresh token stored; the user must reconnect")]
    NoRefreshToken(String),
    /// Another worker held the lease for longer than a refresh may take.
    #[error("credential {id}: timed out after {waited_s} s waiting for the refresh lease held by {holder}")]
    LeaseTimeout {
        /// Credential.
        id: String,
        /// Who held it (host, pid, run; never a secret).
        holder: String,
        /// How long this worker waited, in seconds.
        waited_s: u64,
    },
    /// The lease lapsed during the refresh, so the result was not written (another worker's
    /// newer token is kept).
    #[error("credential {0}: refresh lease lapsed before write-back; result discarded")]
    LeaseLost(String),
    /// The credential could not be loaded or decrypted.
    #[error(transparent)]
    Credential(#[from] Error),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Credential(Error::Store(e))
    }
}

impl From<DecryptError> for EngineError {
    fn from(e: DecryptError) -> Self {
        EngineError::Credential(Error::Decrypt(e))
    }
}

impl EngineError {
    /// The outcome code for reports: the same vocabulary as
    /// [`Outcome::code`](crate::exchange::Outcome::code).
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::NeedsReconnect { .. } | EngineError::NoRefreshToken(_) => {
                code::NEEDS_RECONNECT
            }
            EngineError::ClientMisconfigured { .. } => code::CLIENT_MISCONFIGURED,
            EngineError::RequestRejected { .. } => code::REQUEST_REJECTED,
            EngineError::RetryLater { .. } => code::RETRY_LATER,
            EngineError::ProtocolError { .. } => code::PROTOCOL_ERROR,
            EngineError::LeaseTimeout { .. } | EngineError::LeaseLost(_) => code::LEASE_ERROR,
            EngineError::Credential(_) => code::CREDENTIAL_ERROR,
        }
    }
}

/// A working access token.
pub struct Usable {
    /// The token.
    pub access_token: AccessToken,
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// The row version it was read at (to recognise another worker's refresh after a 401).
    pub version: i64,
    /// `refreshed` when this call made the token request, `not_needed` otherwise.
    pub outcome: &'static str,
}

impl std::fmt::Debug for Usable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Usable")
            .field("access_token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("version", &self.version)
            .field("outcome", &self.outcome)
            .finish()
    }
}

/// What one worker job did.
#[derive(Debug)]
pub struct JobResult {
    /// The refresh outcome (`not_needed`, `refreshed`, or an error code).
    pub outcome: &'static str,
    /// The error, when the job failed.
    pub error: Option<EngineError>,
    /// The final API call, if one was made.
    pub api: Option<ApiResult>,
    /// Token requests this job's own refreshes made (0 when another worker refreshed).
    pub refreshes: u32,
    /// Why the job failed, when it did (no credential id, never a secret), so that failures
    /// can be grouped by cause rather than only by outcome.
    pub why: Option<String>,
}

impl JobResult {
    /// Whether the job got its API call through.
    pub fn succeeded(&self) -> bool {
        self.api.as_ref().is_some_and(ApiResult::ok)
    }
}

/// Whether an engine error came from a token request this worker made.
pub(super) fn is_token_request(e: &EngineError) -> bool {
    !matches!(
        e,
        EngineError::Credential(_)
            | EngineError::LeaseTimeout { .. }
            | EngineError::NoRefreshToken(_)
    ) && !matches!(e, EngineError::NeedsReconnect { detail, .. } if detail.starts_with("credential is marked"))
}

/// How long a token had left when it was sent (ms, by this worker's clock).
pub(super) fn token_life_left(usable: &Usable) -> Option<i64> {
    usable
        .expires_at
        .map(|at| (at - Utc::now()).num_milliseconds())
}

pub(super) fn life(left_ms: Option<i64>) -> String {
    match left_ms {
        Some(ms) if ms < 0 => format!("{} ms past its expiry", -ms),
        Some(ms) => format!("{ms} ms of its life"),
        None => "an unknown expiry".to_owned(),
    }
}

pub(super) fn api_answer(api: &ApiResult) -> String {
    match api {
        ApiResult::Status(code) => format!("the API answered {code}"),
        ApiResult::NoResponse(reason) => format!("the API did not answer ({reason})"),
    }
}

/// An error message without its leading `credential N: `, so failures group by reason.
pub(super) fn without_credential(message: &str) -> String {
    match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("credential ") => rest.to_owned(),
        _ => message.to_owned(),
    }
}
