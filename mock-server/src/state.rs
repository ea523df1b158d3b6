//! The mock's state and its decision per request: which script step applies, Google's logic
//! under one short-lived lock, the journal entry, and a reply checked to be sendable.
//!
//! The lock is a `parking_lot::Mutex` taken only inside [`Shared::decide`] and the handle's
//! methods, never across an `.await`: the front end sleeps a scripted delay after the lock is
//! released.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::accounts::ServiceAccounts;
use crate::config::{MockConfig, MAX_CLOCK_OFFSET};
use crate::google;
use crate::handler::{Ctx, Reply};
use crate::incoming::Incoming;
use crate::journal::{
    ClientAuth, Endpoint, JournalEntry, ACTION_DROPPED, ACTION_GOOGLE, ACTION_SCRIPTED,
};
use crate::request::Request;
use crate::script::{Action, Step};
use crate::sign_in::SignIn;
use crate::signing::Keys;
use crate::tokens::{fingerprint, TokenStore};

/// Everything that changes while the mock runs.
pub(crate) struct State {
    /// The behaviour now: the start configuration plus runtime changes (deleted or added
    /// clients, rotation, refresh-token lifetime).
    pub(crate) config: MockConfig,
    pub(crate) tokens: TokenStore,
    pub(crate) token_script: VecDeque<Step>,
    pub(crate) api_script: VecDeque<Step>,
    pub(crate) clock_offset: Duration,
    pub(crate) journal: VecDeque<JournalEntry>,
    pub(crate) next_seq: u64,
    pub(crate) token_requests: usize,
    pub(crate) sign_in: SignIn,
    pub(crate) service_accounts: ServiceAccounts,
}

impl State {
    pub(crate) fn new(config: &MockConfig) -> Self {
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
    pub(crate) fn now_ms(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let offset = self.clock_offset.min(MAX_CLOCK_OFFSET);
        i64::try_from(real.saturating_add(offset).as_millis()).unwrap_or(i64::MAX)
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
            issued_refresh_token_fingerprint: None,
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

/// What the front end's service and the handle share.
pub(crate) struct Shared {
    /// The configuration the mock started with;
    /// [`MockGoogle::reset`](crate::MockGoogle::reset) returns to it.
    pub(crate) initial: MockConfig,
    pub(crate) started: Instant,
    pub(crate) base_url: String,
    pub(crate) state: Mutex<State>,
    /// The id_token signing keys: kept across resets.
    pub(crate) keys: Keys,
}

/// What the mock decided for one request: a reply (already checked to be sendable) or a
/// dropped connection, and the journal entry recorded for it.
pub(crate) struct Decision {
    pub(crate) reply: Option<Sendable>,
    pub(crate) delay: Duration,
    pub(crate) entry: JournalEntry,
}

impl Shared {
    pub(crate) fn new(config: MockConfig, base_url: String) -> Self {
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

    /// Takes the next script step of the request's endpoint, runs it and journals the outcome.
    pub(crate) fn decide(&self, request: &Request) -> Decision {
        let incoming = Incoming::parse(request);
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let step = state
            .script_mut(incoming.endpoint)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(Step::google);
        if !step.advance_clock.is_zero() {
            state.clock_offset = state
                .clock_offset
                .saturating_add(step.advance_clock)
                .min(MAX_CLOCK_OFFSET);
        }
        let now_ms = state.now_ms();
        let mut entry = state.begin_entry(&incoming, now_ms, self.started.elapsed());
        if step.action == Action::Drop {
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
            // A Drop step returned above.
            Action::Google | Action::Drop => (google::answer(&mut ctx, &incoming), ACTION_GOOGLE),
            Action::Respond {
                status,
                headers,
                body,
            } => (Reply::canned(*status, headers, body), ACTION_SCRIPTED),
            Action::RevokeThenGoogle => {
                google::revoke_presented_token(&mut ctx, &incoming);
                (google::answer(&mut ctx, &incoming), ACTION_SCRIPTED)
            }
        };
        let sendable = Sendable::from_reply(reply);
        entry.action = action;
        entry.status = Some(sendable.status.as_u16());
        entry.error = sendable.error.clone();
        if incoming.endpoint == Endpoint::Token && entry.status == Some(200) {
            entry.issued_refresh_token_fingerprint = issued_refresh_token(&sendable.body);
        }
        state.record(entry.clone(), &self.initial);
        Decision {
            reply: Some(sendable),
            delay: step.delay,
            entry,
        }
    }
}

/// The fingerprint of the `refresh_token` a token-endpoint answer's body hands out, if any
/// (Google's own answer or a scripted one).
fn issued_refresh_token(body: &str) -> Option<String> {
    if !body.contains("\"refresh_token\"") {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_str(body).ok()?;
    answer.get("refresh_token")?.as_str().map(fingerprint)
}

/// A reply whose status and headers are valid HTTP.
pub(crate) struct Sendable {
    pub(crate) status: http::StatusCode,
    pub(crate) headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub(crate) body: String,
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
