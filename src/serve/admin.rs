//! The admin API of `serve`, under `/__admin/`: what a test in any language needs to drive the
//! mock without a Rust handle on it.
//!
//! | method and path | what it does |
//! |---|---|
//! | `GET /__admin` | lists these endpoints |
//! | `GET /__admin/scenarios` | the scenarios it knows (shipped plus `--scenarios DIR`) |
//! | `GET /__admin/scenario` | the scenario in force and the credential it minted |
//! | `POST /__admin/scenario` `{"name": "…"}` | resets, then applies the scenario; returns its credential |
//! | `POST /__admin/reset` | forgets tokens, journal, scripts, clock and scenario |
//! | `GET /__admin/requests?endpoint=token&since=N&limit=L` | the journal as JSON, a page of at most `L` (default 1,000, at most 10,000) entries after request `N`; `more` and `next_since` say where the next page starts |
//! | `GET /__admin/clock` | the mock clock |
//! | `POST /__admin/clock` `{"advance_seconds": N}` | moves the mock clock forward (at most 100 years ahead of the real clock in all) |
//! | `POST /__admin/refresh-tokens` `{"client_id", "client_secret", "scopes"}` (all optional) | mints a refresh token, as a consent flow would |
//! | `POST /__admin/token-status` `{"refresh_token"}` or `{"access_token"}` | where that token stands now: `live`, `superseded`, `revoked`, `expired` or `unknown` (the token itself is not echoed) |
//! | `POST /__admin/clients` `{"client_id", "client_secret", "redirect_uris"}` | registers (or replaces) an OAuth client, with its sign-in redirect URIs |
//! | `GET /__admin/consent`, `POST /__admin/consent` `{"account", "deny", "withhold_scopes", "device_pending_polls"}` | what the sign-in's auto-approving consent step does |
//! | `GET /__admin/signing-keys` | the published id_token key ids, signing one first |
//! | `POST /__admin/signing-keys/rotate` | a new key signs; the previous one stays published |
//! | `POST /__admin/service-accounts` `{"name", "project_id", "domain_wide_delegation"}` (all optional) | creates a service account; answers its JSON key file, `token_uri` this server |
//! | `DELETE /__admin/service-accounts/EMAIL` | deletes it: its assertions get "account not found" |
//!
//! Admin requests are not journaled: the journal is what the application did. Each one first
//! passes the [guard](super::guard): a Host naming this server, `Content-Type:
//! application/json` on everything but GET and HEAD, and the bearer token when `--admin-token`
//! is set.
//!
//! # Security
//! The answers hold tokens and client secrets of this mock: that is their purpose. They are
//! never logged; the log says which operation ran and nothing it returned.

use super::guard::AdminGuard;
use super::identity::{
    consent_json, create_service_account, register_client, set_consent, signing_keys, ClientBody,
    ConsentBody, ServiceAccountBody,
};
use super::{json_answer, App};
use crate::scenarios::setup::{self, SeededCredential};
use crate::scenarios::{self, Scenario};
use http::{header, HeaderValue, Method, StatusCode};
use mock_server::{
    fingerprint, Answer, ClientRegistration, Endpoint, JournalEntry, MockGoogle, Request,
    DEFAULT_CLIENT_ID,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::Duration;

/// Journal entries one `GET /__admin/requests` returns unless `limit` says otherwise.
const DEFAULT_PAGE: usize = 1000;
/// The most it returns: a page is built in memory, so its size bounds what one request costs
/// (a whole journal of 100,000 entries took half a gigabyte).
const MAX_PAGE: usize = 10_000;

/// The scope a minted refresh token gets when none is asked for.
const DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/gmail.readonly";

/// The admin API's state: the scenarios it can apply, the one in force, and who may ask.
pub struct Admin {
    scenarios: Vec<Scenario>,
    /// Serialises admin operations and remembers the scenario in force with its credential.
    current: Mutex<Option<Current>>,
    guard: AdminGuard,
}

struct Current {
    name: String,
    credential: SeededCredential,
}

/// Why an admin request failed: an HTTP status and a message naming what was wrong.
#[derive(Debug)]
pub struct AdminError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl AdminError {
    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "bad_admin_request",
            message: message.into(),
        }
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Admin {
    /// An admin API over these scenarios, with none in force, accepting loopback Hosts on any
    /// port and no token ([`AdminGuard::default`]); see [`with_guard`](Self::with_guard).
    pub fn new(scenarios: Vec<Scenario>) -> Self {
        Self {
            scenarios,
            current: Mutex::new(None),
            guard: AdminGuard::default(),
        }
    }

    /// The same API, asking `guard` who may use it.
    #[must_use]
    pub fn with_guard(mut self, guard: AdminGuard) -> Self {
        self.guard = guard;
        self
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        // A panic while holding the lock cannot leave `Current` half-written; keep serving.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Resets `mock`, then applies the scenario called `name`. Returns the credential it minted,
    /// as the admin API shows it.
    ///
    /// # Errors
    /// An unknown name (the message lists the known ones), or a scenario whose scripts the mock
    /// cannot run.
    pub fn switch(&self, mock: &MockGoogle, name: &str) -> Result<Value, AdminError> {
        let scenario = scenarios::find(&self.scenarios, name)
            .map_err(|e| AdminError::bad_request(format!("{name:?}: {e}")))?;
        let mut current = self.current();
        mock.reset();
        *current = None;
        let credential = setup::apply(scenario, mock).map_err(|problem| AdminError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "scenario_failed",
            message: format!("scenario {name}: {problem}"),
        })?;
        let shown = scenario_json(&scenario.name, &credential);
        *current = Some(Current {
            name: scenario.name.clone(),
            credential,
        });
        tracing::info!(scenario = %name, "admin: scenario applied");
        Ok(shown)
    }

    fn reset(&self, mock: &MockGoogle) -> Value {
        let mut current = self.current();
        mock.reset();
        *current = None;
        tracing::info!("admin: state reset");
        json!({"reset": true, "scenario": null})
    }

    fn shown_current(&self) -> Value {
        match &*self.current() {
            Some(c) => scenario_json(&c.name, &c.credential),
            None => json!({"scenario": null, "credential": null}),
        }
    }

    fn list(&self) -> Value {
        let list: Vec<Value> = self
            .scenarios
            .iter()
            .map(|s| json!({"name": s.name, "description": s.description}))
            .collect();
        json!({ "scenarios": list })
    }
}

fn scenario_json(name: &str, c: &SeededCredential) -> Value {
    json!({
        "scenario": name,
        "credential": {
            "client_id": c.client_id,
            "client_secret": c.client_secret.expose_secret(),
            "refresh_token": c.refresh_token.expose_secret(),
            "access_token": c.access_token.as_ref().map(|t| t.expose_secret().to_owned()),
            "access_token_expires_at": c.expiry.map(|e| e.timestamp()),
            "scopes": c.scopes,
        },
    })
}

/// The journal entry as the admin API shows it.
pub fn entry_json(e: &JournalEntry) -> Value {
    json!({
        "seq": e.seq,
        "endpoint": e.endpoint.name(),
        "method": e.method,
        "mock_time_unix": e.mock_time_unix,
        "elapsed_ms": u64::try_from(e.elapsed.as_millis()).unwrap_or(u64::MAX),
        "grant_type": e.grant_type,
        "client_id": e.client_id,
        "client_auth": e.client_auth.name(),
        "refresh_token_fingerprint": e.refresh_token_fingerprint,
        "refresh_token_status": e.refresh_token_status.map(|s| s.name()),
        "issued_refresh_token_fingerprint": e.issued_refresh_token_fingerprint,
        "token_fingerprint": e.token_fingerprint,
        "status": e.status,
        "action": e.action,
        "error": e.error,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchBody {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    advance_seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    refresh_token: Option<String>,
    access_token: Option<String>,
}

/// Where one token stands now; answers its fingerprint, never the token.
fn token_status(mock: &MockGoogle, body: StatusBody) -> Result<Value, AdminError> {
    let (kind, token) = match (body.refresh_token, body.access_token) {
        (Some(t), None) => ("refresh_token", t),
        (None, Some(t)) => ("access_token", t),
        _ => {
            return Err(AdminError::bad_request(
                "give exactly one of refresh_token and access_token",
            ))
        }
    };
    let status = if kind == "refresh_token" {
        mock.refresh_token_status(&token)
    } else {
        mock.access_token_status(&token)
    };
    Ok(json!({"token": kind, "fingerprint": fingerprint(&token), "status": status.name()}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct MintBody {
    client_id: Option<String>,
    client_secret: Option<String>,
    scopes: Option<Vec<String>>,
}

/// `%40` and friends in a path segment.
fn percent_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Parses a JSON body; an empty body reads as `{}`.
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, AdminError> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(text)
        .map_err(|e| AdminError::bad_request(format!("the JSON body does not fit: {e}")))
}

fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn requests(mock: &MockGoogle, query: Option<&str>) -> Result<Value, AdminError> {
    let query: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    for (key, _) in &query {
        if !matches!(key.as_str(), "endpoint" | "since" | "limit") {
            return Err(AdminError::bad_request(format!(
                "unknown query parameter {key:?}; expected endpoint, since or limit"
            )));
        }
    }
    let endpoint = match query_value(&query, "endpoint") {
        None => None,
        Some(name) => Some(Endpoint::from_name(name).ok_or_else(|| {
            let names: Vec<_> = Endpoint::ALL.iter().map(|e| e.name()).collect();
            AdminError::bad_request(format!(
                "endpoint={name:?} is unknown; expected one of {}",
                names.join(", ")
            ))
        })?),
    };
    let since = match query_value(&query, "since") {
        None => 0,
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| AdminError::bad_request(format!("since={v:?} is not a request number")))?,
    };
    let limit = match query_value(&query, "limit") {
        None => DEFAULT_PAGE,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                AdminError::bad_request(format!("limit={v:?} is not a number from 1 to {MAX_PAGE}"))
            })?,
    };
    // One more than asked for says whether there are more.
    let mut page = mock.journal_page(since, limit + 1, |e| {
        endpoint.is_none_or(|want| e.endpoint == want)
    });
    let more = page.len() > limit;
    page.truncate(limit);
    let entries: Vec<Value> = page.iter().map(entry_json).collect();
    Ok(json!({
        "count": entries.len(),
        "token_requests_total": mock.token_request_count(),
        "more": more,
        "next_since": if more { page.last().map(|e| e.seq) } else { None },
        "requests": entries,
    }))
}

fn mint(mock: &MockGoogle, body: MintBody) -> Result<Value, AdminError> {
    let client_id = body
        .client_id
        .unwrap_or_else(|| DEFAULT_CLIENT_ID.to_owned());
    if let Some(secret) = body.client_secret {
        mock.register_client(ClientRegistration::new(client_id.clone(), secret))
            .map_err(|e| AdminError::bad_request(e.to_string()))?;
    }
    let scopes = body
        .scopes
        .unwrap_or_else(|| vec![DEFAULT_SCOPE.to_owned()]);
    let refresh_token = mock.issue_refresh_token(&client_id, &scopes);
    tracing::info!(client_id = %client_id, "admin: refresh token minted");
    Ok(json!({
        "client_id": client_id,
        "refresh_token": refresh_token,
        "scopes": scopes,
    }))
}

const INDEX: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/__admin/scenarios",
        "the scenarios this server knows",
    ),
    (
        "GET",
        "/__admin/scenario",
        "the scenario in force and its credential",
    ),
    (
        "POST",
        "/__admin/scenario",
        "{\"name\": …}: reset, then apply a scenario",
    ),
    (
        "POST",
        "/__admin/reset",
        "forget tokens, journal, scripts, clock and scenario",
    ),
    (
        "GET",
        "/__admin/requests",
        "the requests received, a page at a time; ?endpoint=token|tokeninfo|revoke|api|discovery|authorize|userinfo|other&since=N&limit=L (default 1000, at most 10000; more and next_since say where the next page starts)",
    ),
    ("GET", "/__admin/clock", "the mock clock"),
    (
        "POST",
        "/__admin/clock",
        "{\"advance_seconds\": N}: move the mock clock forward",
    ),
    (
        "POST",
        "/__admin/refresh-tokens",
        "{\"client_id\", \"client_secret\", \"scopes\"} (all optional): mint a refresh token",
    ),
    (
        "POST",
        "/__admin/token-status",
        "{\"refresh_token\"} or {\"access_token\"}: live, superseded, revoked, expired or unknown",
    ),
    (
        "POST",
        "/__admin/clients",
        "{\"client_id\", \"client_secret\", \"redirect_uris\"}: register an OAuth client",
    ),
    (
        "GET, POST",
        "/__admin/consent",
        "{\"account\", \"deny\", \"withhold_scopes\", \"device_pending_polls\"}: what the sign-in's consent step does",
    ),
    ("GET", "/__admin/signing-keys", "the published id_token key ids"),
    (
        "POST",
        "/__admin/signing-keys/rotate",
        "a new key signs id_tokens; the previous one stays published",
    ),
    (
        "POST",
        "/__admin/service-accounts",
        "{\"name\", \"project_id\", \"domain_wide_delegation\"} (all optional): create a service account; answers its JSON key file",
    ),
    (
        "DELETE",
        "/__admin/service-accounts/EMAIL",
        "delete a service account",
    ),
];

fn not_allowed(allow: &'static str) -> Answer {
    let mut answer = json_answer(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"error": "method_not_allowed", "error_description": format!("use {allow}")}),
    );
    if let Answer::Respond { headers, .. } = &mut answer {
        headers.push((header::ALLOW, HeaderValue::from_static(allow)));
    }
    answer
}

/// Moves the mock clock, within [`mock_server::MAX_CLOCK_OFFSET`] of the real one.
fn advance_clock(mock: &MockGoogle, body: ClockBody) -> Result<Value, AdminError> {
    let seconds = body.advance_seconds;
    mock.try_advance_clock(Duration::from_secs(seconds))
        .map_err(|e| {
            AdminError::bad_request(format!("advance_seconds {seconds} is out of range: {e}"))
        })?;
    tracing::info!(seconds, "admin: clock advanced");
    Ok(json!({"advanced_seconds": seconds, "now_unix": mock.now_unix()}))
}

/// Answers one admin request.
pub fn handle(app: &App, request: &Request) -> Answer {
    let mock = &app.mock;
    let admin = &app.admin;
    if let Err(refused) = admin.guard.check(request) {
        tracing::info!(
            method = %request.method,
            code = refused.code,
            "admin: request refused"
        );
        let mut answer = json_answer(
            refused.status,
            &json!({"error": refused.code, "error_description": refused.message}),
        );
        if refused.status == StatusCode::UNAUTHORIZED {
            if let Answer::Respond { headers, .. } = &mut answer {
                headers.push((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"oauthtest admin\""),
                ));
            }
        }
        return answer;
    }
    let body = &request.body[..];
    let path = request.path().trim_end_matches('/');
    let method = &request.method;
    let result: Result<(StatusCode, Value), AdminError> = match path {
        "/__admin" => match *method {
            Method::GET => {
                let list: Vec<Value> = INDEX
                    .iter()
                    .map(|(m, p, what)| json!({"method": m, "path": p, "what": what}))
                    .collect();
                Ok((StatusCode::OK, json!({ "endpoints": list })))
            }
            _ => return not_allowed("GET"),
        },
        "/__admin/scenarios" => match *method {
            Method::GET => Ok((StatusCode::OK, admin.list())),
            _ => return not_allowed("GET"),
        },
        "/__admin/scenario" => match *method {
            Method::GET => Ok((StatusCode::OK, admin.shown_current())),
            Method::POST => parse::<SwitchBody>(body)
                .and_then(|b| admin.switch(mock, &b.name))
                .map(|v| (StatusCode::OK, v)),
            _ => return not_allowed("GET, POST"),
        },
        "/__admin/reset" => match *method {
            Method::POST => Ok((StatusCode::OK, admin.reset(mock))),
            _ => return not_allowed("POST"),
        },
        "/__admin/requests" => match *method {
            Method::GET => requests(mock, request.query()).map(|v| (StatusCode::OK, v)),
            _ => return not_allowed("GET"),
        },
        "/__admin/clock" => match *method {
            Method::GET => Ok((StatusCode::OK, json!({"now_unix": mock.now_unix()}))),
            Method::POST => parse::<ClockBody>(body)
                .and_then(|b| advance_clock(mock, b))
                .map(|v| (StatusCode::OK, v)),
            _ => return not_allowed("GET, POST"),
        },
        "/__admin/refresh-tokens" => match *method {
            Method::POST => parse::<MintBody>(body)
                .and_then(|b| mint(mock, b))
                .map(|v| (StatusCode::CREATED, v)),
            _ => return not_allowed("POST"),
        },
        "/__admin/token-status" => match *method {
            Method::POST => parse::<StatusBody>(body)
                .and_then(|b| token_status(mock, b))
                .map(|v| (StatusCode::OK, v)),
            _ => return not_allowed("POST"),
        },
        "/__admin/clients" => match *method {
            Method::POST => parse::<ClientBody>(body)
                .and_then(|b| register_client(mock, b))
                .map(|v| (StatusCode::CREATED, v)),
            _ => return not_allowed("POST"),
        },
        "/__admin/consent" => match *method {
            Method::GET => Ok((StatusCode::OK, consent_json(&mock.consent()))),
            Method::POST => parse::<ConsentBody>(body)
                .and_then(|b| set_consent(mock, b))
                .map(|v| (StatusCode::OK, v)),
            _ => return not_allowed("GET, POST"),
        },
        "/__admin/signing-keys" => match *method {
            Method::GET => signing_keys(mock.signing_key_ids()).map(|v| (StatusCode::OK, v)),
            _ => return not_allowed("GET"),
        },
        "/__admin/signing-keys/rotate" => match *method {
            Method::POST => {
                let rotated = signing_keys(mock.rotate_signing_key());
                tracing::info!("admin: signing key rotated");
                rotated.map(|v| (StatusCode::OK, v))
            }
            _ => return not_allowed("POST"),
        },
        "/__admin/service-accounts" => match *method {
            Method::POST => parse::<ServiceAccountBody>(body)
                .and_then(|b| create_service_account(mock, b))
                .map(|v| (StatusCode::CREATED, v)),
            _ => return not_allowed("POST"),
        },
        p if p.starts_with("/__admin/service-accounts/") => match *method {
            Method::DELETE => {
                let raw = &p["/__admin/service-accounts/".len()..];
                let email = percent_decode(raw);
                if mock.delete_service_account(&email) {
                    tracing::info!(email = %email, "admin: service account deleted");
                    Ok((StatusCode::OK, json!({"deleted": email})))
                } else {
                    Err(AdminError {
                        status: StatusCode::NOT_FOUND,
                        code: "not_found",
                        message: format!("no service account {email}"),
                    })
                }
            }
            _ => return not_allowed("DELETE"),
        },
        _ => Err(AdminError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: format!("no admin endpoint at {path}; GET /__admin lists them"),
        }),
    };
    match result {
        Ok((status, value)) => json_answer(status, &value),
        Err(e) => json_answer(
            e.status,
            &json!({"error": e.code, "error_description": e.message}),
        ),
    }
}
