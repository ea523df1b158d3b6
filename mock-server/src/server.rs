//! The running mock: a wiremock server wired to the shared state, and the handle tests hold.
//!
//! wiremock serves HTTP; this module decides, per request, which script step applies, runs the
//! Google logic under one short-lived lock, journals the outcome and hands wiremock a response
//! (or an error, which makes hyper close the connection: the "dropped connection" step).
//!
//! The same decision is also offered without wiremock ([`MockGoogle::detached`] and
//! [`MockGoogle::answer`]) for a long-running front end that must bound what it reads and keeps:
//! wiremock reads whole bodies without a limit and keeps a copy of every matched request, which
//! is right for a test's short-lived mock and wrong for `oauthtest --mode serve`.
//!
//! Two mocks are mounted, in this order (wiremock tries mocks in insertion order under its own
//! lock, one request at a time):
//! 1. a matcher that claims the request when the next step of its endpoint's script is
//!    [`Action::Drop`]; it consumes and journals that step, and its responder returns an error;
//! 2. a catch-all whose responder does everything else.
//!
//! The state lock is a `parking_lot::Mutex` taken only inside those synchronous callbacks and
//! the handle's methods, never across an `.await`.

use std::collections::VecDeque;
use std::fmt;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use wiremock::{Match, Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::authorize::SignIn;
use crate::config::{ClientRegistration, MockConfig};
use crate::error::MockError;
use crate::google::{self, Ctx, Reply};
use crate::identity::Identity;
use crate::incoming::Incoming;
use crate::journal::{
    ClientAuth, Endpoint, JournalEntry, ACTION_DROPPED, ACTION_GOOGLE, ACTION_SCRIPTED, API_PATH,
    DISCOVERY_PATH, REVOKE_PATH, TOKENINFO_PATH, TOKEN_PATH,
};
use crate::script::{Action, Step};
use crate::service_account::ServiceAccounts;
use crate::signing::Keys;
use crate::tokens::{fingerprint, TokenStatus, TokenStore};

/// Everything that changes while the mock runs.
struct State {
    /// The behaviour now: the start configuration plus runtime changes (deleted or added
    /// clients, rotation, refresh-token lifetime).
    config: MockConfig,
    tokens: TokenStore,
    token_script: VecDeque<Step>,
    api_script: VecDeque<Step>,
    clock_offset: Duration,
    journal: VecDeque<JournalEntry>,
    next_seq: u64,
    token_requests: usize,
    sign_in: SignIn,
    service_accounts: ServiceAccounts,
}

impl State {
    fn new(config: &MockConfig) -> Self {
        Self {
            config: config.clone(),
            tokens: TokenStore::default(),
            token_script: VecDeque::new(),
            api_script: VecDeque::new(),
            clock_offset: Duration::ZERO,
            journal: VecDeque::new(),
            next_seq: 1,
            token_requests: 0,
            sign_in: SignIn::default(),
            service_accounts: ServiceAccounts::default(),
        }
    }

    /// The mock clock, in unix milliseconds: the real clock plus every `advance_clock`.
    fn now_ms(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        i64::try_from((real + self.clock_offset).as_millis()).unwrap_or(i64::MAX)
    }

    fn script_mut(&mut self, endpoint: Endpoint) -> Option<&mut VecDeque<Step>> {
        match endpoint {
            Endpoint::Token => Some(&mut self.token_script),
            Endpoint::Api => Some(&mut self.api_script),
            _ => None,
        }
    }

    /// Starts the journal entry of a request, recording token statuses before any handling.
    fn begin_entry(&mut self, request: &Incoming, now_ms: i64, elapsed: Duration) -> JournalEntry {
        let seq = self.next_seq;
        self.next_seq += 1;
        if request.endpoint == Endpoint::Token {
            self.token_requests += 1;
        }
        let mut entry = JournalEntry {
            seq,
            mock_time_unix: now_ms.div_euclid(1000),
            elapsed,
            endpoint: request.endpoint,
            method: request.method.clone(),
            grant_type: None,
            client_id: None,
            client_auth: ClientAuth::None,
            refresh_token_fingerprint: None,
            refresh_token_status: None,
            token_fingerprint: None,
            status: None,
            action: ACTION_GOOGLE,
            error: None,
        };
        match request.endpoint {
            Endpoint::Token => {
                entry.grant_type = request.form_value("grant_type").map(str::to_string);
                let credentials = request.client_credentials();
                entry.client_id = credentials.id;
                entry.client_auth = credentials.auth;
                if let Some(token) = request.form_value("refresh_token") {
                    entry.refresh_token_fingerprint = Some(fingerprint(token));
                    entry.refresh_token_status = Some(self.tokens.refresh_status(token, now_ms));
                }
            }
            Endpoint::TokenInfo => {
                entry.token_fingerprint = request
                    .param("access_token")
                    .or_else(|| request.param("id_token"))
                    .or_else(|| request.bearer_token())
                    .map(fingerprint);
            }
            Endpoint::Revoke => entry.token_fingerprint = request.param("token").map(fingerprint),
            Endpoint::Api | Endpoint::UserInfo => {
                entry.token_fingerprint = request.bearer_token().map(fingerprint);
            }
            Endpoint::Authorize => entry.client_id = request.param("client_id").map(str::to_string),
            Endpoint::Discovery | Endpoint::Other => {}
        }
        entry
    }

    fn record(&mut self, entry: JournalEntry, config: &MockConfig) {
        let capacity = config.journal_capacity;
        if capacity == 0 || (entry.endpoint == Endpoint::Api && !config.journal_api_calls) {
            return;
        }
        while self.journal.len() >= capacity {
            self.journal.pop_front();
        }
        self.journal.push_back(entry);
    }
}

/// What the wiremock callbacks and the handle share.
struct Shared {
    /// The configuration the mock started with; [`MockGoogle::reset`] returns to it.
    initial: MockConfig,
    started: Instant,
    base_url: String,
    state: Mutex<State>,
    /// The id_token signing keys: kept across resets.
    keys: Keys,
}

/// What the mock decided for one request: a reply (already checked to be sendable) or a
/// dropped connection, and the journal entry recorded for it.
struct Decision {
    reply: Option<Sendable>,
    delay: Duration,
    entry: JournalEntry,
}

impl Shared {
    fn new(config: MockConfig, base_url: String) -> Self {
        // `validate` has parsed the PEM already.
        let pem = config.signing_key.as_ref().map(|k| k.0.as_str());
        if pem.is_none() {
            crate::signing::warm_up();
        }
        Self {
            state: Mutex::new(State::new(&config)),
            keys: Keys::new(pem).unwrap_or_default(),
            initial: config,
            started: Instant::now(),
            base_url,
        }
    }

    /// Matcher side of a dropped connection: claims the request if its endpoint's next step is
    /// [`Action::Drop`], consuming and journaling that step. wiremock calls this once per request,
    /// under its own lock, right before the paired responder, so nothing can slip in between.
    fn claim_drop(&self, request: &Request) -> bool {
        let endpoint = Endpoint::from_path(request.url.path());
        if !matches!(endpoint, Endpoint::Token | Endpoint::Api) {
            return false;
        }
        let mut state = self.state.lock();
        let next_is_drop = state
            .script_mut(endpoint)
            .and_then(|script| script.front())
            .is_some_and(|step| step.action == Action::Drop);
        if !next_is_drop {
            return false;
        }
        if let Some(script) = state.script_mut(endpoint) {
            script.pop_front();
        }
        let incoming = Incoming::parse(request);
        let now_ms = state.now_ms();
        let mut entry = state.begin_entry(&incoming, now_ms, self.started.elapsed());
        entry.action = ACTION_DROPPED;
        state.record(entry, &self.initial);
        true
    }

    /// Takes the next script step of the request's endpoint, runs it and journals the outcome.
    /// With `may_drop` false (wiremock, whose matcher consumed Drop steps already) a Drop step
    /// is answered as Google instead.
    fn decide(&self, request: &Request, may_drop: bool) -> Decision {
        let incoming = Incoming::parse(request);
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let now_ms = state.now_ms();
        let step = state
            .script_mut(incoming.endpoint)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(Step::google);
        let mut entry = state.begin_entry(&incoming, now_ms, self.started.elapsed());
        if step.action == Action::Drop && may_drop {
            entry.action = ACTION_DROPPED;
            state.record(entry.clone(), &self.initial);
            return Decision {
                reply: None,
                delay: Duration::ZERO,
                entry,
            };
        }
        let mut ctx = Ctx {
            config: &state.config,
            clients: &state.config.clients,
            tokens: &mut state.tokens,
            now_ms,
            base_url: &self.base_url,
            keys: &self.keys,
            sign_in: &mut state.sign_in,
            service_accounts: &state.service_accounts,
        };
        let (reply, action) = match &step.action {
            Action::Google => (google::answer(&mut ctx, &incoming), ACTION_GOOGLE),
            Action::Respond {
                status,
                headers,
                body,
            } => (Reply::canned(*status, headers, body), ACTION_SCRIPTED),
            Action::RevokeThenGoogle => {
                google::revoke_presented_token(&mut ctx, &incoming);
                (google::answer(&mut ctx, &incoming), ACTION_SCRIPTED)
            }
            Action::Drop => {
                // Unreachable through wiremock: `claim_drop` consumes Drop steps first.
                tracing::warn!("a Drop step reached the responder; answering as Google");
                (google::answer(&mut ctx, &incoming), ACTION_GOOGLE)
            }
        };
        let sendable = Sendable::from_reply(reply);
        entry.action = action;
        entry.status = Some(sendable.status.as_u16());
        entry.error = sendable.error.clone();
        state.record(entry.clone(), &self.initial);
        Decision {
            reply: Some(sendable),
            delay: step.delay,
            entry,
        }
    }

    /// Answers every request that wiremock does not drop.
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let decision = self.decide(request, false);
        let Some(reply) = decision.reply else {
            // `decide` never drops when told not to; answer something sane regardless.
            return ResponseTemplate::new(500);
        };
        let mut template =
            ResponseTemplate::new(reply.status).set_body_raw(reply.body.into_bytes(), "");
        for (name, value) in reply.headers {
            template = template.append_header(name, value);
        }
        if decision.delay.is_zero() {
            template
        } else {
            template.set_delay(decision.delay)
        }
    }
}

/// A reply whose status and headers are valid HTTP.
struct Sendable {
    status: http::StatusCode,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    body: String,
    /// What the journal records as the error code.
    error: Option<String>,
}

impl Sendable {
    /// Checks a reply. A canned reply that could not be sent (status outside 200..=599,
    /// malformed header) becomes a 500 journaled as `invalid_script`, instead of a panic inside
    /// the server.
    fn from_reply(reply: Reply) -> Self {
        let status = http::StatusCode::from_u16(reply.status)
            .ok()
            .filter(|s| (200..=599).contains(&s.as_u16()));
        let mut headers = Vec::with_capacity(reply.headers.len());
        for (name, value) in &reply.headers {
            match (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                (Ok(name), Ok(value)) => headers.push((name, value)),
                _ => {
                    tracing::warn!(header = %name, "mock-server: scripted header is not valid HTTP");
                    return Self::from_reply(invalid_script(&format!(
                        "mock-server: scripted header {name:?} is not valid HTTP"
                    )));
                }
            }
        }
        let Some(status) = status else {
            tracing::warn!(
                status = reply.status,
                "mock-server: scripted status is unusable"
            );
            return Self::from_reply(invalid_script(&format!(
                "mock-server: scripted status {} is unusable",
                reply.status
            )));
        };
        Self {
            status,
            headers,
            body: reply.body,
            error: reply.error,
        }
    }
}

fn invalid_script(message: &str) -> Reply {
    Reply {
        status: 500,
        headers: vec![(
            "content-type".to_string(),
            "text/plain; charset=utf-8".to_string(),
        )],
        body: message.to_string(),
        error: Some("invalid_script".to_string()),
    }
}

/// How the mock answers one request given to [`MockGoogle::answer`].
pub enum Answer {
    /// Send this response, `delay` from now.
    Respond {
        /// The status.
        status: http::StatusCode,
        /// The headers, in order.
        headers: Vec<(http::HeaderName, http::HeaderValue)>,
        /// The body. It may hold a freshly issued token: do not log it.
        body: String,
        /// How long to hold the answer back (a scripted delay).
        delay: Duration,
    },
    /// Close the connection without any response (a scripted [`Action::Drop`]).
    Drop,
}

impl fmt::Debug for Answer {
    /// Bodies may hold tokens: shown by length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Respond {
                status,
                headers,
                body,
                delay,
            } => f
                .debug_struct("Respond")
                .field("status", status)
                .field("headers", &headers.len())
                .field("body", &format_args!("[{} bytes]", body.len()))
                .field("delay", delay)
                .finish(),
            Self::Drop => f.write_str("Drop"),
        }
    }
}

/// What [`MockGoogle::answer`] returns: the answer, and the journal entry recorded for it (safe
/// to log: it holds fingerprints, never tokens).
#[derive(Debug)]
pub struct Answered {
    /// What to send.
    pub answer: Answer,
    /// What the journal recorded.
    pub entry: JournalEntry,
}

struct DropMatcher(Arc<Shared>);

impl Match for DropMatcher {
    fn matches(&self, request: &Request) -> bool {
        self.0.claim_drop(request)
    }
}

struct GoogleResponder(Arc<Shared>);

impl Respond for GoogleResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.respond(request)
    }
}

/// Returned to hyper so that it closes the connection without a response.
#[derive(Debug, thiserror::Error)]
#[error("mock-server: connection dropped by a scripted Drop step")]
struct ConnectionDropped;

/// A running mock of Google's OAuth endpoints on `127.0.0.1`.
///
/// Dropping it stops the server. Methods take `&self` and are cheap: the handle can be shared
/// (`Arc<MockGoogle>`) between the test and the code under test.
pub struct MockGoogle {
    /// `None` for a [`detached`](Self::detached) mock, whose HTTP front end is the caller's.
    server: Option<MockServer>,
    shared: Arc<Shared>,
}

impl fmt::Debug for MockGoogle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockGoogle")
            .field("uri", &self.shared.base_url)
            .field("config", &self.shared.initial)
            .finish_non_exhaustive()
    }
}

impl MockGoogle {
    /// Starts the mock on `127.0.0.1` and a port the OS picks.
    ///
    /// # Errors
    /// [`MockError::Bind`] when no loopback port can be bound, [`MockError::InvalidConfig`] when
    /// the configuration contradicts itself.
    pub async fn start(config: MockConfig) -> Result<MockGoogle, MockError> {
        config.validate()?;
        let listener = TcpListener::bind("127.0.0.1:0").map_err(MockError::Bind)?;
        Self::start_on(listener, config).await
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
        config.validate()?;
        // wiremock would panic on these; check them here to return an error instead.
        let address = listener.local_addr().map_err(MockError::Listener)?;
        listener
            .set_nonblocking(true)
            .map_err(MockError::Listener)?;

        let shared = Arc::new(Shared::new(config, format!("http://{address}")));
        let server = MockServer::builder()
            .listener(listener)
            .disable_request_recording()
            .start()
            .await;
        Mock::given(DropMatcher(Arc::clone(&shared)))
            .respond_with_err(|_: &Request| ConnectionDropped)
            .named("scripted connection drops")
            .mount(&server)
            .await;
        Mock::given(wiremock::matchers::any())
            .respond_with(GoogleResponder(Arc::clone(&shared)))
            .named("stateful Google")
            .mount(&server)
            .await;
        Ok(MockGoogle {
            server: Some(server),
            shared,
        })
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
            server: None,
            shared: Arc::new(Shared::new(
                config,
                base_url.trim_end_matches('/').to_string(),
            )),
        })
    }

    /// Decides and journals the answer to one request, exactly as the wiremock server would
    /// (script steps, Google's logic, drops and delays); sending it is the caller's job. The
    /// request's URL is only read for its path and query.
    pub fn answer(&self, request: &Request) -> Answered {
        let decision = self.shared.decide(request, true);
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

    /// Base URL, e.g. `http://127.0.0.1:41234`, without a trailing slash.
    pub fn uri(&self) -> String {
        match &self.server {
            Some(server) => server.uri(),
            None => self.shared.base_url.clone(),
        }
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

    /// Revokes a live access or refresh token and, as Google does, every token of its grant
    /// (revoking an access token also kills its refresh token). Returns `false` when there was
    /// nothing live to revoke.
    pub fn revoke(&self, token: &str) -> bool {
        let mut state = self.shared.state.lock();
        let now_ms = state.now_ms();
        state.tokens.revoke(token, now_ms)
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
    /// script runs out, [`Action::Google`].
    pub fn set_token_script(&self, steps: Vec<Step>) {
        self.shared.state.lock().token_script = steps.into();
    }

    /// Replaces the Gmail API endpoint's script, like [`set_token_script`](Self::set_token_script).
    pub fn set_api_script(&self, steps: Vec<Step>) {
        self.shared.state.lock().api_script = steps.into();
    }

    /// Moves the mock clock forward: tokens it issued expire as if that time had passed.
    pub fn advance_clock(&self, by: Duration) {
        let mut state = self.shared.state.lock();
        state.clock_offset = state.clock_offset.saturating_add(by);
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

    /// Runs `f` on what the sign-in, signing-key and service-account methods change.
    pub(crate) fn with_identity<R>(&self, f: impl FnOnce(Identity<'_>) -> R) -> R {
        let mut state = self.shared.state.lock();
        let state = &mut *state;
        f(Identity {
            config: &mut state.config,
            service_accounts: &mut state.service_accounts,
        })
    }

    /// The id_token signing keys (their own lock, not the state's).
    pub(crate) fn keys(&self) -> &Keys {
        &self.shared.keys
    }

    /// Forgets tokens, journal, scripts, counters, clock offset, sign-in codes, service
    /// accounts and runtime configuration changes (clients, rotation, refresh-token lifetime,
    /// consent); keeps the start configuration, the port and the signing keys.
    pub fn reset(&self) {
        *self.shared.state.lock() = State::new(&self.shared.initial);
    }
}
