//! The refresh engine: what a background worker does with a stored credential.
//!
//! Decrypt, detect expiry (with a margin, like Google's own libraries), refresh through
//! [`crate::exchange`], encrypt, persist, and hand back a working access token; on a 401 from the
//! API, refresh once and retry. Outcomes are classified so that `invalid_grant` ends in
//! `needs_reconnect` (never retried), and a credential in that state fails fast without any
//! token request.
//!
//! Refreshes are coordinated so that many workers sharing one database make exactly one token
//! request per expiry:
//! 1. in-process single flight: one refresh per credential per process at a time;
//! 2. a database lease on the row (see [`Store::try_acquire_lease`]) across processes and
//!    machines: it holds no connection, lapses by itself, and every write-back is fenced on it;
//! 3. the row is re-read after each wait and after taking the lease, and the refresh is skipped
//!    when another worker already did it.

mod builder;

pub use builder::EngineBuilder;

use crate::credential::GoogleCredential;
use crate::crypto::Keyring;
use crate::error::Error;
use crate::exchange::{code, Outcome, RefreshRequest, TokenExchanger};
use crate::google_api::{self, ApiEndpoints, ApiResult};
use crate::store::{CredentialRow, CredentialState, HistoryEntry, RefreshWrite, Store, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// google-auth's refresh threshold: refresh when less than 3 min 45 s remain.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(225);

/// How the engine decides and coordinates.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Refresh when the access token expires within this margin.
    pub margin: Duration,
    /// How long a refresh lease lasts; must exceed the longest exchange (timeouts × attempts).
    pub lease_ttl: Duration,
    /// How often a worker waiting for another's lease re-reads the row.
    pub lease_poll: Duration,
    /// The mode name written into history lines.
    pub mode: &'static str,
    /// Coordinate refreshes (single flight + lease). Only worker-sim's demonstration of a
    /// refresh storm turns this off.
    pub coordinate: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            margin: DEFAULT_MARGIN,
            lease_ttl: Duration::from_secs(60),
            lease_poll: Duration::from_millis(20),
            mode: "refresh",
            coordinate: true,
        }
    }
}

/// Why the engine could not hand back a working token.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The refresh token is dead: the user must reconnect. Never retried.
    #[error("credential {id}: the user must reconnect ({detail})")]
    NeedsReconnect {
        /// Credential.
        id: i64,
        /// Google's error, or why the credential is in that state.
        detail: String,
    },
    /// The OAuth client is wrong (invalid_client, deleted_client, unauthorized_client).
    #[error("credential {id}: OAuth client misconfigured ({detail})")]
    ClientMisconfigured {
        /// Credential.
        id: i64,
        /// Google's error.
        detail: String,
    },
    /// Google rejected our request (invalid_request, invalid_scope, …).
    #[error("credential {id}: token request rejected ({detail})")]
    RequestRejected {
        /// Credential.
        id: i64,
        /// Google's error.
        detail: String,
    },
    /// A transient failure outlasted the retries.
    #[error("credential {id}: token endpoint unavailable, retry later ({detail})")]
    RetryLater {
        /// Credential.
        id: i64,
        /// The last failure.
        detail: String,
    },
    /// The token endpoint answered 2xx with an unusable body.
    #[error("credential {id}: malformed token response ({detail})")]
    ProtocolError {
        /// Credential.
        id: i64,
        /// What was wrong.
        detail: String,
    },
    /// The stored credential has no refresh token.
    #[error("credential {0}: no refresh token stored; the user must reconnect")]
    NoRefreshToken(i64),
    /// Another worker held the lease for longer than a refresh may take.
    #[error("credential {0}: timed out waiting for another worker's refresh")]
    LeaseTimeout(i64),
    /// The lease lapsed during the refresh, so the result was not written (another worker's
    /// newer token is kept).
    #[error("credential {0}: refresh lease lapsed before write-back; result discarded")]
    LeaseLost(i64),
    /// The credential could not be loaded or decrypted.
    #[error(transparent)]
    Credential(#[from] Error),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Credential(Error::Store(e))
    }
}

impl EngineError {
    /// The outcome code for reports: the same vocabulary as [`Outcome::code`].
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::NeedsReconnect { .. } | EngineError::NoRefreshToken(_) => {
                code::NEEDS_RECONNECT
            }
            EngineError::ClientMisconfigured { .. } => code::CLIENT_MISCONFIGURED,
            EngineError::RequestRejected { .. } => code::REQUEST_REJECTED,
            EngineError::RetryLater { .. } => code::RETRY_LATER,
            EngineError::ProtocolError { .. } => code::PROTOCOL_ERROR,
            EngineError::LeaseTimeout(_) | EngineError::LeaseLost(_) => code::LEASE_ERROR,
            EngineError::Credential(_) => code::CREDENTIAL_ERROR,
        }
    }
}

/// A working access token.
pub struct Usable {
    /// The token.
    pub access_token: SecretString,
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
}

impl JobResult {
    /// Whether the job got its API call through.
    pub fn succeeded(&self) -> bool {
        self.api.as_ref().is_some_and(ApiResult::ok)
    }
}

/// The refresh engine, shared by every worker of a process.
pub struct Engine {
    store: Arc<Store>,
    keyring: Arc<Keyring>,
    exchanger: TokenExchanger,
    http: reqwest::Client,
    api: ApiEndpoints,
    default_client_id: Option<String>,
    default_client_secret: Option<SecretString>,
    owner: String,
    config: EngineConfig,
    flights: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    token_attempts: AtomicU64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("owner", &self.owner)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn dup(s: &SecretString) -> SecretString {
    SecretString::from(s.expose_secret().to_owned())
}

/// Everything an [`Engine`] is built from.
pub struct EngineParts {
    /// The store.
    pub store: Arc<Store>,
    /// Keys.
    pub keyring: Arc<Keyring>,
    /// The token exchange.
    pub exchanger: TokenExchanger,
    /// The HTTP client for API calls.
    pub http: reqwest::Client,
    /// API endpoints.
    pub api: ApiEndpoints,
    /// Client id for credentials without one.
    pub default_client_id: Option<String>,
    /// Client secret for credentials without one.
    pub default_client_secret: Option<SecretString>,
    /// Behaviour.
    pub config: EngineConfig,
}

impl Engine {
    /// Builds an engine; its lease owner id is unique to this process and engine.
    pub fn new(parts: EngineParts) -> Self {
        Self {
            store: parts.store,
            keyring: parts.keyring,
            exchanger: parts.exchanger,
            http: parts.http,
            api: parts.api,
            default_client_id: parts.default_client_id,
            default_client_secret: parts.default_client_secret,
            owner: format!(
                "pid{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
            config: parts.config,
            flights: Mutex::new(HashMap::new()),
            token_attempts: AtomicU64::new(0),
        }
    }

    /// Token-endpoint requests this engine has made (every attempt, retries included).
    pub fn token_attempts(&self) -> u64 {
        self.token_attempts.load(Ordering::Relaxed)
    }

    /// The store this engine writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn is_fresh(&self, row: &CredentialRow, now: DateTime<Utc>) -> bool {
        let margin = TimeDelta::from_std(self.config.margin).unwrap_or(TimeDelta::zero());
        row.expires_at.is_some_and(|e| e - margin > now)
    }

    fn usable_from(
        &self,
        row: &CredentialRow,
        outcome: &'static str,
    ) -> Result<Usable, EngineError> {
        let secrets = row.decrypt(&self.keyring)?;
        match secrets.access_token {
            Some(token) => Ok(Usable {
                access_token: token,
                expires_at: row.expires_at,
                version: row.version,
                outcome,
            }),
            None => Err(EngineError::ProtocolError {
                id: row.id,
                detail: "stored credential has an expiry but no access token".into(),
            }),
        }
    }

    async fn load(&self, id: i64) -> Result<CredentialRow, EngineError> {
        match self.store.get(id).await? {
            Some(row) => Ok(row),
            None => Err(EngineError::Credential(
                crate::error::not_found(&self.store, id).await,
            )),
        }
    }

    fn reconnect_error(row: &CredentialRow) -> EngineError {
        EngineError::NeedsReconnect {
            id: row.id,
            detail: format!(
                "credential is marked needs_reconnect (last outcome: {})",
                row.last_refresh_outcome.as_deref().unwrap_or("none")
            ),
        }
    }

    /// A working access token for credential `id`, refreshing it first when it expires within
    /// the margin. A credential marked needs_reconnect fails at once, with no token request.
    ///
    /// # Errors
    /// [`EngineError`], classified.
    #[tracing::instrument(skip(self), fields(credential = id))]
    pub async fn ensure_fresh(&self, id: i64) -> Result<Usable, EngineError> {
        let row = self.load(id).await?;
        if row.state() == CredentialState::NeedsReconnect {
            return Err(Self::reconnect_error(&row));
        }
        if self.is_fresh(&row, Utc::now()) {
            return self.usable_from(&row, code::NOT_NEEDED);
        }
        self.refresh(id, row.version).await
    }

    /// Refreshes credential `id` unless another worker already did since the row was read at
    /// `seen_version` (then its token is returned, with no token request).
    ///
    /// # Errors
    /// [`EngineError`], classified.
    #[tracing::instrument(skip(self), fields(credential = id))]
    pub async fn refresh(&self, id: i64, seen_version: i64) -> Result<Usable, EngineError> {
        if !self.config.coordinate {
            // The refresh storm worker-sim exists to catch: no single flight, and the lease
            // taken regardless of its holder.
            self.store
                .steal_lease(id, &self.owner, self.config.lease_ttl)
                .await?;
            return self.refresh_holding_lease(id, seen_version).await;
        }
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            flights.entry(id).or_default().clone()
        };
        let _in_flight = flight.lock().await;

        let deadline = Instant::now() + self.config.lease_ttl * 2;
        loop {
            let row = self.load(id).await?;
            if row.state() == CredentialState::NeedsReconnect {
                return Err(Self::reconnect_error(&row));
            }
            if row.version != seen_version && self.is_fresh(&row, Utc::now()) {
                return self.usable_from(&row, code::NOT_NEEDED);
            }
            if self
                .store
                .try_acquire_lease(id, &self.owner, self.config.lease_ttl)
                .await?
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(EngineError::LeaseTimeout(id));
            }
            tokio::time::sleep(self.config.lease_poll).await;
        }

        let result = self.refresh_holding_lease(id, seen_version).await;
        if result.is_err() {
            // Write-backs release the lease themselves; this covers early exits.
            let _ = self.store.release_lease(id, &self.owner).await;
        }
        result
    }

    async fn refresh_holding_lease(
        &self,
        id: i64,
        seen_version: i64,
    ) -> Result<Usable, EngineError> {
        // Re-read under the lease: another worker may have finished just before we took it.
        let row = self.load(id).await?;
        if row.state() == CredentialState::NeedsReconnect {
            return Err(Self::reconnect_error(&row));
        }
        if row.version != seen_version && self.is_fresh(&row, Utc::now()) {
            self.store.release_lease(id, &self.owner).await?;
            return self.usable_from(&row, code::NOT_NEEDED);
        }
        let secrets = row.decrypt(&self.keyring)?;
        let refresh_token = secrets
            .refresh_token
            .as_ref()
            .ok_or(EngineError::NoRefreshToken(id))?;
        let client_id = secrets
            .client_id
            .clone()
            .or_else(|| self.default_client_id.clone())
            .ok_or_else(|| EngineError::ClientMisconfigured {
                id,
                detail: "no client id stored with the credential and none configured \
                         (GOOGLE_CLIENT_ID / --client-id)"
                    .into(),
            })?;
        let client_secret = secrets
            .client_secret
            .as_ref()
            .map(dup)
            .or_else(|| self.default_client_secret.as_ref().map(dup));
        let request = RefreshRequest {
            client_id: &client_id,
            client_secret: client_secret.as_ref(),
            refresh_token,
            scopes: &[],
        };
        let exchange = self.exchanger.refresh(&request).await;
        let attempts = exchange.attempts.len();
        self.token_attempts
            .fetch_add(attempts as u64, Ordering::Relaxed);
        let outcome = exchange.outcome;
        let code = outcome.code();
        let mode = self.config.mode;
        let history = |detail: String| HistoryEntry::new(mode, "refresh", code, Some(detail));

        let write = |secrets, state, failed| RefreshWrite {
            secrets,
            state,
            outcome: code,
            failed,
            cooldown_until_ms: None,
        };
        match outcome {
            Outcome::Refreshed(grant) => {
                let expires_at =
                    Utc::now() + TimeDelta::from_std(grant.expires_in).unwrap_or(TimeDelta::zero());
                let rotated = grant.refresh_token.is_some();
                let new = GoogleCredential {
                    access_token: Some(grant.access_token),
                    refresh_token: grant
                        .refresh_token
                        .or_else(|| secrets.refresh_token.as_ref().map(dup)),
                    expiry: Some(expires_at),
                    scopes: if grant.scopes.is_empty() {
                        secrets.scopes.clone()
                    } else {
                        grant.scopes
                    },
                    token_type: grant.token_type,
                    client_id: secrets.client_id.clone(),
                    client_secret: secrets.client_secret.as_ref().map(dup),
                    id_token: grant
                        .id_token
                        .or_else(|| secrets.id_token.as_ref().map(dup)),
                };
                let detail = format!(
                    "{attempts} attempt(s); refresh token {}",
                    if rotated { "rotated" } else { "kept" }
                );
                let done = self
                    .store
                    .complete_refresh(
                        id,
                        &self.owner,
                        write(Some(&new), CredentialState::Active, false),
                        &self.keyring,
                        &history(detail),
                    )
                    .await?;
                if !done {
                    return Err(EngineError::LeaseLost(id));
                }
                let row = self.load(id).await?;
                Ok(Usable {
                    access_token: new
                        .access_token
                        .unwrap_or_else(|| SecretString::from(String::new())),
                    expires_at: Some(expires_at),
                    version: row.version,
                    outcome: code::REFRESHED,
                })
            }
            Outcome::NeedsReconnect {
                error, description, ..
            } => {
                let detail = describe(&error, description.as_deref());
                self.store
                    .complete_refresh(
                        id,
                        &self.owner,
                        write(None, CredentialState::NeedsReconnect, false),
                        &self.keyring,
                        &history(detail.clone()),
                    )
                    .await?;
                Err(EngineError::NeedsReconnect { id, detail })
            }
            other => {
                let (detail, err): (String, fn(i64, String) -> EngineError) = match other {
                    Outcome::ClientMisconfigured { error, description } => {
                        (describe(&error, description.as_deref()), |id, detail| {
                            EngineError::ClientMisconfigured { id, detail }
                        })
                    }
                    Outcome::RequestRejected { error, description } => {
                        (describe(&error, description.as_deref()), |id, detail| {
                            EngineError::RequestRejected { id, detail }
                        })
                    }
                    Outcome::RetryLater { reason, .. } => (
                        format!("{reason} after {attempts} attempt(s)"),
                        |id, detail| EngineError::RetryLater { id, detail },
                    ),
                    Outcome::ProtocolError { detail } => (detail, |id, detail| {
                        EngineError::ProtocolError { id, detail }
                    }),
                    Outcome::Refreshed(_) | Outcome::NeedsReconnect { .. } => {
                        unreachable!("handled above")
                    }
                };
                self.store
                    .complete_refresh(
                        id,
                        &self.owner,
                        write(None, CredentialState::Active, true),
                        &self.keyring,
                        &history(detail.clone()),
                    )
                    .await?;
                Err(err(id, detail))
            }
        }
    }

    /// One worker job: get a working token, call the API with it, and on a 401 refresh once
    /// (unless another worker already did) and call again.
    pub async fn run_job(&self, id: i64) -> JobResult {
        let mut refreshes = 0;
        let usable = match self.ensure_fresh(id).await {
            Ok(u) => u,
            Err(e) => {
                return JobResult {
                    outcome: e.code(),
                    refreshes: u32::from(is_token_request(&e)),
                    error: Some(e),
                    api: None,
                }
            }
        };
        refreshes += u32::from(usable.outcome == code::REFRESHED);
        let mut outcome = usable.outcome;
        let mut api = google_api::call_profile(&self.http, &self.api, &usable.access_token).await;
        if api.unauthorized() {
            tracing::info!(
                credential = id,
                "API answered 401; refreshing once and retrying"
            );
            match self.refresh(id, usable.version).await {
                Ok(again) => {
                    refreshes += u32::from(again.outcome == code::REFRESHED);
                    outcome = again.outcome;
                    api =
                        google_api::call_profile(&self.http, &self.api, &again.access_token).await;
                }
                Err(e) => {
                    return JobResult {
                        outcome: e.code(),
                        refreshes: refreshes + u32::from(is_token_request(&e)),
                        error: Some(e),
                        api: Some(api),
                    }
                }
            }
        }
        JobResult {
            outcome,
            error: None,
            api: Some(api),
            refreshes,
        }
    }
}

/// Whether an engine error came from a token request this worker made.
fn is_token_request(e: &EngineError) -> bool {
    !matches!(
        e,
        EngineError::Credential(_) | EngineError::LeaseTimeout(_) | EngineError::NoRefreshToken(_)
    ) && !matches!(e, EngineError::NeedsReconnect { detail, .. } if detail.starts_with("credential is marked"))
}

fn describe(error: &str, description: Option<&str>) -> String {
    match description {
        Some(d) => format!("{error}: {d}"),
        None => error.to_owned(),
    }
}
