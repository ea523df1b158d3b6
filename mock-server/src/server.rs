//! The handle a test or a mode holds: starting the mock (on its own thread, through the
//! [front end](crate::front)), seeding and scripting it, reading its journal, stopping it.
//!
//! A started mock serves from a thread of its own with a single-threaded tokio runtime, as a
//! test's mock server should: the caller may block (run a child process, wait on a pipe) while
//! the mock keeps answering, and dropping the handle stops the server. A
//! [`detached`](MockGoogle::detached) mock has no server; its caller's front end hands each
//! request to [`MockGoogle::answer`], or serves the handle itself with [`front::serve`], since
//! a `MockGoogle` is a [`front::Service`].

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::config::{ClientRegistration, MockConfig, MAX_CLOCK_OFFSET};
use crate::error::MockError;
use crate::front::{self, Limits};
use crate::journal::{
    JournalEntry, API_PATH, DISCOVERY_PATH, REVOKE_PATH, TOKENINFO_PATH, TOKEN_PATH,
};
use crate::request::{Answer, Request};
use crate::script::Step;
use crate::state::{Shared, State};
use crate::tokens::TokenStatus;

/// What [`MockGoogle::answer`] returns: the answer, and the journal entry recorded for it (safe
/// to log: it holds fingerprints, never tokens).
#[derive(Debug)]
pub struct Answered {
    /// What to send.
    pub answer: Answer,
    /// What the journal recorded.
    pub entry: JournalEntry,
}

/// The service the front end of a started mock runs: the shared state, nothing else.
struct Google(Arc<Shared>);

impl front::Service for Google {
    fn call(&self, request: Request) -> Answer {
        answer(&self.0, &request).answer
    }
}

fn answer(shared: &Shared, request: &Request) -> Answered {
    let decision = shared.decide(request);
    let answer = match decision.reply {
        None => Answer::Drop,
        Some(reply) => Answer::Respond {
            status: reply.status,
            headers: reply.headers,
            body: reply.body,
            delay: decision.delay,
        },
    };
    Answered {
        answer,
        entry: decision.entry,
    }
}

/// The server thread of a started mock; dropping this stops it.
struct Background {
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The thread lets open connections finish (Limits::shutdown_grace), then ends.
            let _ = stop.send(());
        }
    }
}

/// Where a started mock listens.
enum Bind {
    /// `127.0.0.1`, a port the OS picks, with a backlog that fits the connection limit.
    Loopback,
    /// A listener the caller bound.
    Given(TcpListener),
}

/// Starts the front end on a thread of its own; returns once it listens.
fn spawn(
    bind: Bind,
    config: MockConfig,
    limits: Limits,
) -> impl std::future::Future<Output = Result<(Arc<Shared>, Background), MockError>> {
    let (ready_tx, ready_rx) = oneshot::channel::<Result<SocketAddr, MockError>>();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (shared_tx, shared_rx) = std::sync::mpsc::channel::<Arc<Shared>>();
    let started = std::thread::Builder::new()
        .name("mock-google".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(MockError::Bind(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match bind {
                    Bind::Loopback => {
                        front::listen(SocketAddr::from(([127, 0, 0, 1], 0)), limits.backlog())
                            .map_err(MockError::Bind)
                    }
                    Bind::Given(listener) => listener
                        .set_nonblocking(true)
                        .and_then(|()| tokio::net::TcpListener::from_std(listener))
                        .map_err(MockError::Listener),
                };
                let address = listener.and_then(|l| {
                    l.local_addr()
                        .map(|address| (l, address))
                        .map_err(MockError::Listener)
                });
                let (listener, address) = match address {
                    Ok(pair) => pair,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                if ready_tx.send(Ok(address)).is_err() {
                    return;
                }
                let Ok(shared) = shared_rx.recv() else {
                    return;
                };
                front::serve(listener, Arc::new(Google(shared)), limits, stop_rx).await;
            });
        });
    async move {
        started.map_err(MockError::Bind)?;
        let address = ready_rx
            .await
            .map_err(|_| MockError::Bind(std::io::Error::other("the mock's thread ended")))??;
        let shared = Arc::new(Shared::new(config, format!("http://{address}")));
        shared_tx
            .send(Arc::clone(&shared))
            .map_err(|_| MockError::Bind(std::io::Error::other("the mock's thread ended")))?;
        Ok((
            shared,
            Background {
                stop: Some(stop_tx),
            },
        ))
    }
}

/// Sets up a mock before starting it: its configuration, its limits, its listener.
///
/// ```
/// # async fn demo() -> Result<(), mock_server::MockError> {
/// use mock_server::{Limits, MockConfig, MockGoogle};
///
/// let google = MockGoogle::builder()
///     .config(MockConfig { rotate_refresh_tokens: true, ..MockConfig::default() })
///     .limits(Limits { max_body_bytes: 4096, ..Limits::default() })
///     .start()
///     .await?;
/// # drop(google);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MockBuilder {
    config: MockConfig,
    limits: Limits,
    listener: Option<TcpListener>,
}

impl MockBuilder {
    /// How the mock behaves (default: [`MockConfig::default`]).
    #[must_use]
    pub fn config(mut self, config: MockConfig) -> Self {
        self.config = config;
        self
    }

    /// What one connection may cost (default: [`Limits::default`]).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Serve on a listener the caller bound (to choose the port, or to know it first) instead
    /// of `127.0.0.1` and a port the OS picks.
    #[must_use]
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Starts the mock; returns once it listens.
    ///
    /// # Errors
    /// [`MockError::InvalidConfig`] when the configuration contradicts itself,
    /// [`MockError::Bind`] when no loopback port can be bound (or no thread started),
    /// [`MockError::Listener`] when the given listener is unusable.
    pub async fn start(self) -> Result<MockGoogle, MockError> {
        self.config.validate()?;
        let bind = self.listener.map_or(Bind::Loopback, Bind::Given);
        let (shared, background) = spawn(bind, self.config, self.limits).await?;
        Ok(MockGoogle {
            shared,
            _server: Some(background),
        })
    }
}

/// A mock of Google's OAuth endpoints.
///
/// Dropping a started mock stops its server. Methods take `&self` and are cheap: the handle can
/// be shared (`Arc<MockGoogle>`) between the test and the code under test.
pub struct MockGoogle {
    shared: Arc<Shared>,
    /// `None` for a [`detached`](Self::detached) mock, whose HTTP front end is the caller's.
    _server: Option<Background>,
}

impl fmt::Debug for MockGoogle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockGoogle")
            .field("uri", &self.shared.base_url)
            .field("config", &self.shared.initial)
            .finish_non_exhaustive()
    }
}

impl front::Service for MockGoogle {
    fn call(&self, request: Request) -> Answer {
        self.answer(&request).answer
    }
}

impl MockGoogle {
    /// Starts a mock with the [default configuration](MockConfig::default) on `127.0.0.1` and
    /// a port the OS picks, as `wiremock::MockServer::start` does.
    ///
    /// # Errors
    /// [`MockError::Bind`] when no loopback port can be bound.
    pub async fn start() -> Result<MockGoogle, MockError> {
        Self::builder().start().await
    }

    /// Starts a mock configured by `config` on `127.0.0.1` and a port the OS picks.
    ///
    /// # Errors
    /// [`MockError::Bind`] when no loopback port can be bound, [`MockError::InvalidConfig`] when
    /// the configuration contradicts itself.
    pub async fn start_with(config: MockConfig) -> Result<MockGoogle, MockError> {
        Self::builder().config(config).start().await
    }

    /// Starts the mock on a listener the caller bound (to choose the port, or to know it first).
    ///
    /// # Errors
    /// [`MockError::Listener`] when the listener has no local address or cannot be made
    /// non-blocking, [`MockError::InvalidConfig`] when the configuration contradicts itself.
    pub async fn start_on(
        listener: TcpListener,
        config: MockConfig,
    ) -> Result<MockGoogle, MockError> {
        Self::builder()
            .config(config)
            .listener(listener)
            .start()
            .await
    }

    /// Sets up a mock's configuration, limits and listener before starting it.
    pub fn builder() -> MockBuilder {
        MockBuilder::default()
    }

    /// A mock without an HTTP server of its own: the caller's front end receives requests at
    /// `base_url` (which the discovery document and the `*_url` methods name) and hands each
    /// one to [`answer`](Self::answer). Everything else works as for a started mock.
    ///
    /// # Errors
    /// [`MockError::InvalidConfig`] when the configuration contradicts itself.
    pub fn detached(config: MockConfig, base_url: &str) -> Result<MockGoogle, MockError> {
        config.validate()?;
        Ok(MockGoogle {
            shared: Arc::new(Shared::new(
                config,
                base_url.trim_end_matches('/').to_string(),
            )),
            _server: None,
        })
    }

    /// Decides and journals the answer to one request, exactly as the mock's own front end
    /// does (script steps, Google's logic, drops and delays); sending it is the caller's job.
    /// Only the request's path and query are read of its URI.
    pub fn answer(&self, request: &Request) -> Answered {
        answer(&self.shared, request)
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`, without a trailing slash.
    pub fn uri(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The token endpoint: `{uri}/token`.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.uri())
    }

    /// The tokeninfo endpoint: `{uri}/tokeninfo`.
    pub fn tokeninfo_url(&self) -> String {
        format!("{}{TOKENINFO_PATH}", self.uri())
    }

    /// The revoke endpoint: `{uri}/revoke`.
    pub fn revoke_url(&self) -> String {
        format!("{}{REVOKE_PATH}", self.uri())
    }

    /// The Gmail profile call that proves an access token works: `{uri}/gmail/v1/users/me/profile`.
    pub fn api_url(&self) -> String {
        format!("{}{API_PATH}", self.uri())
    }

    /// The OpenID discovery document: `{uri}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}{DISCOVERY_PATH}", self.uri())
    }

    /// The configuration the mock was started with (runtime changes are not reflected here).
    pub fn config(&self) -> &MockConfig {
        &self.shared.initial
    }

    /// Seeds a live refresh token, as a consent flow would: `1//` + random. The client need not
    /// be registered (a token of an unknown client is a scenario too). With `refresh_token_ttl`
    /// set, it dies that long from now on the mock clock.
    ///
    /// # Security
    /// The returned string is a credential for this mock only; do not log it.
    pub fn issue_refresh_token(&self, client_id: &str, scopes: &[String]) -> String {
        let mut state = self.shared.state.lock();
        let now_ms = state.now_ms();
        let expires_at_ms = state
            .config
            .refresh_token_ttl
            .map(|ttl| now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)));
        let grant = state.tokens.new_grant(client_id, scopes, true);
        let token = state.tokens.issue_refresh(grant, expires_at_ms, now_ms);
        if let Some(limit) = state.config.refresh_token_limit {
            state.tokens.limit_live_refresh_tokens(grant, limit);
        }
        token
    }

    /// Seeds a live access token without a refresh token (`ya29.` + random), valid for `ttl` on
    /// the mock clock. tokeninfo reports it with `access_type` "online".
    pub fn issue_access_token(&self, client_id: &str, scopes: &[String], ttl: Duration) -> String {
        let mut state = self.shared.state.lock();
        let now_ms = state.now_ms();
        let expires_at_ms =
            now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let grant = state.tokens.new_grant(client_id, scopes, false);
        state
            .tokens
            .issue_access(grant, Arc::from(scopes), expires_at_ms)
    }

    /// Marks a registered client deleted (or restores it). Returns `false` if no such client.
    pub fn set_client_deleted(&self, client_id: &str, deleted: bool) -> bool {
        let mut state = self.shared.state.lock();
        match state
            .config
            .clients
            .iter_mut()
            .find(|c| c.client_id == client_id)
        {
            Some(client) => {
                client.deleted = deleted;
                true
            }
            None => false,
        }
    }

    /// Registers a client, or replaces the registration of the same id. Until
    /// [`reset`](Self::reset), which returns to the start configuration.
    ///
    /// # Errors
    /// [`MockError::InvalidConfig`] for an empty client id.
    pub fn register_client(&self, client: ClientRegistration) -> Result<(), MockError> {
        if client.client_id.is_empty() {
            return Err(MockError::InvalidConfig(
                "a registered client has an empty client_id".to_string(),
            ));
        }
        let mut state = self.shared.state.lock();
        let clients = &mut state.config.clients;
        match clients.iter_mut().find(|c| c.client_id == client.client_id) {
            Some(existing) => *existing = client,
            None => clients.push(client),
        }
        Ok(())
    }

    /// Turns refresh-token rotation on or off from now on (see
    /// [`MockConfig::rotate_refresh_tokens`]), until [`reset`](Self::reset).
    pub fn set_rotate_refresh_tokens(&self, rotate: bool) {
        self.shared.state.lock().config.rotate_refresh_tokens = rotate;
    }

    /// Sets the lifetime of refresh tokens issued from now on (see
    /// [`MockConfig::refresh_token_ttl`]), until [`reset`](Self::reset).
    pub fn set_refresh_token_ttl(&self, ttl: Option<Duration>) {
        self.shared.state.lock().config.refresh_token_ttl = ttl;
    }

    /// Replaces the token endpoint's script: the Nth request from now gets `steps[N]`; after the
    /// script runs out, [`Action::Google`](crate::Action::Google).
    pub fn set_token_script(&self, steps: Vec<Step>) {
        self.shared.state.lock().token_script = steps.into();
    }

    /// Replaces the Gmail API endpoint's script, like [`set_token_script`](Self::set_token_script).
    pub fn set_api_script(&self, steps: Vec<Step>) {
        self.shared.state.lock().api_script = steps.into();
    }

    /// Moves the mock clock forward: tokens it issued expire as if that time had passed. The
    /// clock stops at [`MAX_CLOCK_OFFSET`] ahead of the real one; use
    /// [`try_advance_clock`](Self::try_advance_clock) to be told instead.
    pub fn advance_clock(&self, by: Duration) {
        let mut state = self.shared.state.lock();
        state.clock_offset = state.clock_offset.saturating_add(by).min(MAX_CLOCK_OFFSET);
    }

    /// Moves the mock clock forward by `by`, unless that would put it more than
    /// [`MAX_CLOCK_OFFSET`] ahead of the real clock. Returns how far ahead it is now.
    ///
    /// # Errors
    /// [`MockError::OutOfRange`], naming the limit and how far ahead the clock is already; the
    /// clock is unchanged.
    pub fn try_advance_clock(&self, by: Duration) -> Result<Duration, MockError> {
        let mut state = self.shared.state.lock();
        let ahead = state.clock_offset;
        match ahead.checked_add(by).filter(|total| *total <= MAX_CLOCK_OFFSET) {
            Some(total) => {
                state.clock_offset = total;
                Ok(total)
            }
            None => Err(MockError::OutOfRange(format!(
                "the mock clock may run at most {} s ({} years) ahead of the real clock; it is {} s ahead, so it can advance at most {} s more, not {} s",
                MAX_CLOCK_OFFSET.as_secs(),
                MAX_CLOCK_OFFSET.as_secs() / (365 * 24 * 3600),
                ahead.as_secs(),
                MAX_CLOCK_OFFSET.saturating_sub(ahead).as_secs(),
                by.as_secs()
            ))),
        }
    }

    /// The mock clock, unix seconds.
    pub fn now_unix(&self) -> i64 {
        self.shared.state.lock().now_ms().div_euclid(1000)
    }

    /// The journal, oldest first (at most `journal_capacity` entries, the most recent ones).
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.shared.state.lock().journal.iter().cloned().collect()
    }

    /// At most `limit` journal entries after request number `since` that `keep` accepts, oldest
    /// first: a page, copied under the lock without copying the whole journal (which may hold
    /// 100,000 entries in a long `serve` run).
    pub fn journal_page(
        &self,
        since: u64,
        limit: usize,
        keep: impl Fn(&JournalEntry) -> bool,
    ) -> Vec<JournalEntry> {
        let state = self.shared.state.lock();
        let start = state.journal.partition_point(|e| e.seq <= since);
        state
            .journal
            .range(start..)
            .filter(|e| keep(e))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Requests received at the token endpoint (any method, dropped ones included). Exact even
    /// when the journal has reached its capacity.
    pub fn token_request_count(&self) -> usize {
        self.shared.state.lock().token_requests
    }

    /// Where a refresh token stands now.
    pub fn refresh_token_status(&self, token: &str) -> TokenStatus {
        let state = self.shared.state.lock();
        state.tokens.refresh_status(token, state.now_ms())
    }

    /// Where an access token stands now.
    pub fn access_token_status(&self, token: &str) -> TokenStatus {
        let state = self.shared.state.lock();
        state.tokens.access_status(token, state.now_ms())
    }

    /// Runs `f` on the mock's state, under its lock.
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.shared.state.lock())
    }

    /// Runs `f` on the token store, with the mock clock's now (unix ms).
    pub(crate) fn with_tokens<R>(
        &self,
        f: impl FnOnce(&mut crate::tokens::TokenStore, i64) -> R,
    ) -> R {
        let mut state = self.shared.state.lock();
        let now_ms = state.now_ms();
        f(&mut state.tokens, now_ms)
    }

    /// The id_token signing keys (their own lock, not the state's).
    pub(crate) fn keys(&self) -> &crate::signing::Keys {
        &self.shared.keys
    }

    /// Forgets tokens, journal, scripts, counters, clock offset, sign-in codes, service
    /// accounts and runtime configuration changes (clients, rotation, refresh-token lifetime,
    /// consent); keeps the start configuration, the port and the signing keys.
    pub fn reset(&self) {
        *self.shared.state.lock() = State::new(&self.shared.initial);
    }
}
