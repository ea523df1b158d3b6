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
//!
//! The engine works over a [`RefreshStore`]: oauthtest's own store ([`Native`]), or the
//! application's rows ([`AppRows`]: the lease in oauthtest's own table, compare-and-swap
//! write-backs the application's way).

pub mod app_rows;
mod backend;
mod builder;

pub use app_rows::AppRows;
pub use backend::{Native, RefreshStore, RowView};
pub use builder::EngineBuilder;

use crate::credential::GoogleCredential;
use crate::exchange::{code, Outcome, RefreshRequest, TokenExchanger};
use crate::google_api::{self, ApiEndpoints};
use crate::secret::{AccessToken, ClientSecret};
use crate::store::{CredentialState, HistoryEntry, LeaseOwner, Liveness, RefreshWrite, Store};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod outcome;

use outcome::{api_answer, is_token_request, life, token_life_left, without_credential};
pub use outcome::{EngineError, JobResult, Usable};

/// How many times a job refreshes and calls again after the API answered 401.
const API_401_RETRIES: usize = 3;

/// How long a worker waits for another's lease before saying whose and until when.
const LEASE_WAIT_ANNOUNCED_AFTER: Duration = Duration::from_secs(1);

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

/// The refresh engine, shared by every worker of a process, over oauthtest's own store
/// ([`Native`]) or the application's ([`AppRows`]).
pub struct Engine<S: RefreshStore = Native> {
    store: S,
    exchanger: TokenExchanger,
    http: reqwest::Client,
    api: ApiEndpoints,
    default_client_id: Option<String>,
    default_client_secret: Option<ClientSecret>,
    owner: String,
    here: LeaseOwner,
    config: EngineConfig,
    flights: Mutex<HashMap<S::Id, Arc<tokio::sync::Mutex<()>>>>,
    token_attempts: AtomicU64,
}

impl<S: RefreshStore> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("owner", &self.owner)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Everything an [`Engine`] is built from.
pub struct EngineParts<S> {
    /// The store (with its keys).
    pub store: S,
    /// The token exchange.
    pub exchanger: TokenExchanger,
    /// The HTTP client for API calls.
    pub http: reqwest::Client,
    /// API endpoints.
    pub api: ApiEndpoints,
    /// Client id for credentials without one.
    pub default_client_id: Option<String>,
    /// Client secret for credentials without one.
    pub default_client_secret: Option<ClientSecret>,
    /// Behaviour.
    pub config: EngineConfig,
}

impl Engine<Native> {
    /// The store this engine writes to.
    pub fn store(&self) -> &Store {
        &self.store.store
    }
}

impl<S: RefreshStore> Engine<S> {
    /// Builds an engine; its lease owner id is unique to this process and engine, and names
    /// this host and pid so that a lease left by a killed process can be recognised.
    pub fn new(parts: EngineParts<S>) -> Self {
        let here = LeaseOwner::this_process();
        Self {
            store: parts.store,
            exchanger: parts.exchanger,
            http: parts.http,
            api: parts.api,
            default_client_id: parts.default_client_id,
            default_client_secret: parts.default_client_secret,
            owner: here.to_string(),
            here,
            config: parts.config,
            flights: Mutex::new(HashMap::new()),
            token_attempts: AtomicU64::new(0),
        }
    }

    /// The store it works over.
    pub fn backend(&self) -> &S {
        &self.store
    }

    /// Token-endpoint requests this engine has made (every attempt, retries included).
    pub fn token_attempts(&self) -> u64 {
        self.token_attempts.load(Ordering::Relaxed)
    }

    fn is_fresh(&self, row: &RowView, now: DateTime<Utc>) -> bool {
        let margin = TimeDelta::from_std(self.config.margin).unwrap_or(TimeDelta::zero());
        row.expires_at.is_some_and(|e| e - margin > now)
    }

    fn usable_from(
        &self,
        id: &S::Id,
        row: &S::Row,
        view: &RowView,
        outcome: &'static str,
    ) -> Result<Usable, EngineError> {
        let secrets = self.store.secrets(row)?;
        match secrets.access_token {
            Some(token) => Ok(Usable {
                access_token: token,
                expires_at: view.expires_at,
                version: view.version,
                outcome,
            }),
            None => Err(EngineError::ProtocolError {
                id: id.to_string(),
                detail: "stored credential has an expiry but no access token".into(),
            }),
        }
    }

    /// The row and what it says.
    async fn load(&self, id: &S::Id) -> Result<(S::Row, RowView), EngineError> {
        let row = self.store.load(id).await?;
        let view = self.store.view(&row);
        Ok((row, view))
    }

    fn reconnect_error(id: &S::Id, view: &RowView) -> EngineError {
        EngineError::NeedsReconnect {
            id: id.to_string(),
            detail: format!(
                "credential is marked needs_reconnect (last outcome: {})",
                view.last_outcome.as_deref().unwrap_or("none")
            ),
        }
    }

    /// A working access token for credential `id`, refreshing it first when it expires within
    /// the margin. A credential marked needs_reconnect fails at once, with no token request.
    ///
    /// # Errors
    /// [`EngineError`], classified.
    #[tracing::instrument(skip_all, fields(credential = %id))]
    pub async fn ensure_fresh(&self, id: S::Id) -> Result<Usable, EngineError> {
        let (row, view) = self.load(&id).await?;
        if view.needs_reconnect {
            return Err(Self::reconnect_error(&id, &view));
        }
        if self.is_fresh(&view, Utc::now()) {
            return self.usable_from(&id, &row, &view, code::NOT_NEEDED);
        }
        self.refresh(id, view.version).await
    }

    /// Refreshes credential `id` unless another worker already did since the row was read at
    /// `seen_version` (then its token is returned, with no token request).
    ///
    /// # Errors
    /// [`EngineError`], classified.
    #[tracing::instrument(skip_all, fields(credential = %id))]
    pub async fn refresh(&self, id: S::Id, seen_version: i64) -> Result<Usable, EngineError> {
        let id = &id;
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
            flights.entry(id.clone()).or_default().clone()
        };
        let _in_flight = flight.lock().await;

        let started = Instant::now();
        let deadline = started + self.config.lease_ttl * 2;
        let mut announced = false;
        loop {
            let (row, view) = self.load(id).await?;
            if view.needs_reconnect {
                return Err(Self::reconnect_error(id, &view));
            }
            if view.version != seen_version && self.is_fresh(&view, Utc::now()) {
                return self.usable_from(id, &row, &view, code::NOT_NEEDED);
            }
            if self
                .store
                .try_acquire_lease(id, &self.owner, self.config.lease_ttl)
                .await?
            {
                break;
            }
            let holder = view.lease_owner.clone().unwrap_or_else(|| "?".into());
            if self.take_over_if_gone(id, &holder).await? {
                break;
            }
            if Instant::now() > deadline {
                return Err(EngineError::LeaseTimeout {
                    id: id.to_string(),
                    holder,
                    waited_s: started.elapsed().as_secs(),
                });
            }
            if !announced && started.elapsed() >= LEASE_WAIT_ANNOUNCED_AFTER {
                announced = true;
                self.announce_wait(id, &view, &holder, deadline);
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

    /// Takes over the lease of a holder that is provably gone (same host: its pid is not running,
    /// or the machine rebooted since). Returns whether it did.
    async fn take_over_if_gone(&self, id: &S::Id, holder: &str) -> Result<bool, EngineError> {
        let Some(owner) = LeaseOwner::parse(holder) else {
            return Ok(false);
        };
        let why = match owner.liveness(&self.here) {
            Liveness::Gone => format!("pid {} is not running on this host", owner.pid),
            Liveness::Rebooted => "this host rebooted since it was taken".to_owned(),
            Liveness::Running | Liveness::Unknown => return Ok(false),
        };
        let taken = self
            .store
            .take_over_lease(id, holder, &self.owner, self.config.lease_ttl)
            .await?;
        if taken {
            tracing::warn!(
                credential = %id,
                "took over the refresh lease held by {holder}: {why}, so it was killed or exited \
                 before releasing it"
            );
        }
        Ok(taken)
    }

    /// Says, once per wait, whose lease is waited for and until when.
    fn announce_wait(&self, id: &S::Id, row: &RowView, holder: &str, deadline: Instant) {
        let now_ms = Utc::now().timestamp_millis();
        let lapses = row
            .lease_expires_at_ms
            .map(|at| (at - now_ms).max(0) / 1000)
            .map_or_else(|| "unknown".to_owned(), |s| format!("{s} s"));
        let status = match LeaseOwner::parse(holder).map(|o| (o.liveness(&self.here), o)) {
            Some((Liveness::Running, o)) => format!("pid {} is running on this host", o.pid),
            Some((_, o)) => format!("on host {}, whose processes this host cannot see", o.host),
            None => "an owner written by an older oauthtest".to_owned(),
        };
        tracing::warn!(
            credential = %id,
            "waiting for the refresh lease held by {holder} ({status}): it lapses in {lapses}; \
             giving up in {} s",
            deadline.saturating_duration_since(Instant::now()).as_secs()
        );
    }

    async fn refresh_holding_lease(
        &self,
        id: &S::Id,
        seen_version: i64,
    ) -> Result<Usable, EngineError> {
        // Re-read under the lease: another worker may have finished just before we took it.
        let (row, view) = self.load(id).await?;
        if view.needs_reconnect {
            return Err(Self::reconnect_error(id, &view));
        }
        if view.version != seen_version && self.is_fresh(&view, Utc::now()) {
            self.store.release_lease(id, &self.owner).await?;
            return self.usable_from(id, &row, &view, code::NOT_NEEDED);
        }
        let secrets = self.store.secrets(&row)?;
        let refresh_token = secrets
            .refresh_token
            .as_ref()
            .ok_or_else(|| EngineError::NoRefreshToken(id.to_string()))?;
        let client_id = secrets
            .client_id
            .clone()
            .or_else(|| self.default_client_id.clone())
            .ok_or_else(|| EngineError::ClientMisconfigured {
                id: id.to_string(),
                detail: "no client id stored with the credential and none configured \
                         (GOOGLE_CLIENT_ID / --client-id)"
                    .into(),
            })?;
        let client_secret = secrets
            .client_secret
            .as_ref()
            .or(self.default_client_secret.as_ref());
        let request = RefreshRequest {
            client_id: &client_id,
            client_secret,
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

        // Every write-back re-seals (a failed refresh keeps the secrets it read): the envelope is
        // bound to the row's version, and each write-back moves the version on.
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
                        .or_else(|| secrets.refresh_token.as_ref().cloned()),
                    expiry: Some(expires_at),
                    scopes: if grant.scopes.is_empty() {
                        secrets.scopes.clone()
                    } else {
                        grant.scopes
                    },
                    token_type: grant.token_type,
                    client_id: secrets.client_id.clone(),
                    client_secret: secrets.client_secret.as_ref().cloned(),
                    id_token: grant
                        .id_token
                        .or_else(|| secrets.id_token.as_ref().cloned()),
                };
                let detail = format!(
                    "{attempts} attempt(s); refresh token {}",
                    if rotated { "rotated" } else { "kept" }
                );
                let done = self
                    .store
                    .complete_refresh(
                        id,
                        &row,
                        &self.owner,
                        write(Some(&new), CredentialState::Active, false),
                        &history(detail),
                    )
                    .await?;
                if !done {
                    return Err(EngineError::LeaseLost(id.to_string()));
                }
                let (_, view) = self.load(id).await?;
                Ok(Usable {
                    access_token: new
                        .access_token
                        .unwrap_or_else(|| AccessToken::from(String::new())),
                    expires_at: Some(expires_at),
                    version: view.version,
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
                        &row,
                        &self.owner,
                        write(Some(&secrets), CredentialState::NeedsReconnect, false),
                        &history(detail.clone()),
                    )
                    .await?;
                Err(EngineError::NeedsReconnect {
                    id: id.to_string(),
                    detail,
                })
            }
            other => {
                let (detail, err): (String, fn(String, String) -> EngineError) = match other {
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
                        &row,
                        &self.owner,
                        write(Some(&secrets), CredentialState::Active, true),
                        &history(detail.clone()),
                    )
                    .await?;
                Err(err(id.to_string(), detail))
            }
        }
    }

    /// One worker job: get a working token, call the API with it, and on a 401 refresh once
    /// (unless another worker already did) and call again. A failed job says why
    /// ([`JobResult::why`]): the error, or what the API answered and how much life the token it
    /// was sent had left by this worker's clock.
    pub async fn run_job(&self, id: S::Id) -> JobResult {
        let mut refreshes = 0;
        let usable = match self.ensure_fresh(id.clone()).await {
            Ok(u) => u,
            Err(e) => {
                return JobResult {
                    outcome: e.code(),
                    refreshes: u32::from(is_token_request(&e)),
                    why: Some(without_credential(&e.to_string())),
                    error: Some(e),
                    api: None,
                }
            }
        };
        refreshes += u32::from(usable.outcome == code::REFRESHED);
        let mut outcome = usable.outcome;
        let mut left = token_life_left(&usable);
        let mut api = google_api::call_profile(&self.http, &self.api, &usable.access_token).await;
        let mut why = None;
        let mut tries = Vec::new();
        let mut version = usable.version;
        let mut sent = usable.outcome;
        // A 401 means the token is no longer good: refresh (unless another worker already did)
        // and call again. A token can also run out between its refresh and its use on a loaded
        // machine, so this is tried a few times; every refresh it makes is for a token that the
        // API has refused, never one still good.
        while api.unauthorized() && tries.len() < API_401_RETRIES {
            tracing::info!(credential = %id, "API answered 401; refreshing and retrying");
            tries.push(format!(
                "the API answered 401 to a {sent} token sent with {} left",
                life(left)
            ));
            match self.refresh(id.clone(), version).await {
                Ok(again) => {
                    refreshes += u32::from(again.outcome == code::REFRESHED);
                    outcome = again.outcome;
                    sent = again.outcome;
                    version = again.version;
                    left = token_life_left(&again);
                    api =
                        google_api::call_profile(&self.http, &self.api, &again.access_token).await;
                }
                Err(e) => {
                    return JobResult {
                        outcome: e.code(),
                        refreshes: refreshes + u32::from(is_token_request(&e)),
                        why: Some(format!(
                            "{}; the refresh that followed failed: {}",
                            tries.join("; "),
                            without_credential(&e.to_string())
                        )),
                        error: Some(e),
                        api: Some(api),
                    }
                }
            }
        }
        if !api.ok() {
            tries.push(format!(
                "{} to a {sent} token sent with {} left",
                api_answer(&api),
                life(left)
            ));
            why = Some(tries.join("; then "));
        }
        JobResult {
            outcome,
            error: None,
            api: Some(api),
            refreshes,
            why,
        }
    }
}

fn describe(error: &str, description: Option<&str>) -> String {
    match description {
        Some(d) => format!("{error}: {d}"),
        None => error.to_owned(),
    }
}
