//! worker-sim against a token endpoint given by URL (`--token-url` of a running `serve`, or the
//! mock of a `--target-cmd` run): the invariants judged from the mock's own journal, which holds
//! every request every process made, not from what one process counted.
//!
//! A run on several machines points each machine's worker-sim (or the application's workers) at
//! one `serve`; each run reads serve's `GET /__admin/requests` journal from where it was when
//! the run started to where it is when the run ends, so it judges every process that used the
//! mock meanwhile. Token requests are told apart by the refresh token they present (its
//! fingerprint), followed through rotation: a request that presents the refresh token an
//! earlier answer issued is the same credential's.
//!
//! # Security
//! The journal holds fingerprints only, never a token; the admin token is sent as a bearer
//! header and never shown.

use super::invariants::{Invariant, Judgement, TimelinePoint};
use super::margin_for;
use crate::report::count;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use url::Url;

/// Journal entries asked for per page (serve's largest page).
const PAGE: usize = 10_000;

/// A token request as serve's journal shows it (`/__admin/requests`).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenEntry {
    /// Position among all requests serve received.
    pub seq: u64,
    /// Real time since serve started, in ms.
    pub elapsed_ms: u64,
    /// The client presented.
    pub client_id: Option<String>,
    /// Fingerprint of the refresh token presented.
    pub refresh_token_fingerprint: Option<String>,
    /// That token's status when the request arrived (`live`, `superseded`, `revoked`, …).
    pub refresh_token_status: Option<String>,
    /// Fingerprint of the refresh token the answer issued (a rotation); absent from the journal
    /// of a serve older than this field.
    #[serde(default)]
    pub issued_refresh_token_fingerprint: Option<String>,
    /// The HTTP status answered (`None`: the connection was dropped).
    pub status: Option<u16>,
    /// The error code answered.
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    requests: Vec<TokenEntry>,
    more: bool,
    next_since: Option<u64>,
}

/// serve's admin journal, reached from its token URL.
pub struct ServedJournal {
    client: reqwest::Client,
    requests_url: Url,
    admin_token: Option<SecretString>,
}

/// Why the journal could not be read.
#[derive(Debug)]
pub enum JournalError {
    /// The endpoint has no oauthtest journal (not a `serve`: Google, another mock).
    NotServe(String),
    /// serve answered, but refused or failed (an admin token missing or wrong).
    Refused(String),
}

impl ServedJournal {
    /// The journal of the `serve` whose token endpoint is `token_url`.
    pub fn new(token_url: &Url, admin_token: Option<SecretString>, timeout: Duration) -> Self {
        let mut requests_url = token_url.clone();
        requests_url.set_path("/__admin/requests");
        requests_url.set_query(None);
        let client = crate::exchange::build_http_client(timeout).unwrap_or_default();
        Self {
            client,
            requests_url,
            admin_token,
        }
    }

    async fn page(&self, since: u64, token_only: bool) -> Result<Page, JournalError> {
        let mut url = self.requests_url.clone();
        url.query_pairs_mut()
            .append_pair("since", &since.to_string())
            .append_pair("limit", &PAGE.to_string());
        if token_only {
            url.query_pairs_mut().append_pair("endpoint", "token");
        }
        let mut request = self.client.get(url);
        if let Some(token) = &self.admin_token {
            request = request.bearer_auth(token.expose_secret());
        }
        let where_ = format!("GET {}", self.requests_url);
        let response = request
            .send()
            .await
            .map_err(|e| JournalError::NotServe(format!("{where_}: {e}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(JournalError::Refused(format!(
                "{where_} answered {status}: serve wants its admin token (--admin-token or \
                 OAUTHTEST_ADMIN_TOKEN)"
            )));
        }
        if !status.is_success() {
            return Err(JournalError::NotServe(format!(
                "{where_} answered {status}"
            )));
        }
        response
            .json::<Page>()
            .await
            .map_err(|e| JournalError::NotServe(format!("{where_}: not serve's journal ({e})")))
    }

    /// The number of the last request serve has journaled (0 when none): where this run's part
    /// of the journal starts.
    ///
    /// # Errors
    /// [`JournalError`] when the journal cannot be read.
    pub async fn last_seq(&self) -> Result<u64, JournalError> {
        let mut since = 0;
        loop {
            let page = self.page(since, false).await?;
            let last = page.requests.last().map_or(since, |e| e.seq);
            match (page.more, page.next_since) {
                (true, Some(next)) if next > since => since = next,
                _ => return Ok(last.max(since)),
            }
        }
    }

    /// Every token request journaled after request `since`.
    ///
    /// # Errors
    /// [`JournalError`] when the journal cannot be read.
    pub async fn token_requests_since(&self, since: u64) -> Result<Vec<TokenEntry>, JournalError> {
        let mut out = Vec::new();
        let mut since = since;
        loop {
            let page = self.page(since, true).await?;
            out.extend(page.requests);
            match (page.more, page.next_since) {
                (true, Some(next)) if next > since => since = next,
                _ => return Ok(out),
            }
        }
    }
}

impl TokenEntry {
    /// An embedded mock's journal entry, as serve's admin API would show it.
    pub fn from_journal(e: &mock_server::JournalEntry) -> Self {
        Self {
            seq: e.seq,
            elapsed_ms: u64::try_from(e.elapsed.as_millis()).unwrap_or(u64::MAX),
            client_id: e.client_id.clone(),
            refresh_token_fingerprint: e.refresh_token_fingerprint.clone(),
            refresh_token_status: e.refresh_token_status.map(|s| s.name().to_owned()),
            issued_refresh_token_fingerprint: e.issued_refresh_token_fingerprint.clone(),
            status: e.status,
            error: e.error.clone(),
        }
    }
}

/// The verdict the journal gives on the token requests of `clients` (all requests when
/// empty), tokens living `token_ttl`: one refresh per expiry, none after `invalid_grant`, no
/// superseded refresh token presented. A credential is the refresh token it first presented
/// and every token rotation issued it since, so a refresh made with a token rotated a moment
/// ago is a duplicate too.
pub fn judge_journal(
    entries: &[TokenEntry],
    clients: &HashSet<String>,
    token_ttl: Duration,
) -> Judgement {
    let ours: Vec<&TokenEntry> = entries
        .iter()
        .filter(|e| clients.is_empty() || e.client_id.as_ref().is_some_and(|c| clients.contains(c)))
        .collect();
    let fresh_for = token_ttl
        .saturating_sub(margin_for(token_ttl))
        .saturating_sub(Duration::from_millis(50));
    let fresh_ms = u64::try_from(fresh_for.as_millis()).unwrap_or(u64::MAX);
    let mut last_success: HashMap<&str, u64> = HashMap::new();
    let mut refused: HashSet<&str> = HashSet::new();
    // Each refresh token a rotation issued, to the first token of its credential.
    let mut credential_of: HashMap<&str, &str> = HashMap::new();
    // The credential of each of `ours`, for the timeline.
    let mut credentials = Vec::with_capacity(ours.len());
    let (mut successes, mut duplicates, mut after_invalid, mut superseded) = (0, 0, 0, 0);
    for e in &ours {
        let presented = e.refresh_token_fingerprint.as_deref().unwrap_or("");
        let credential = credential_of.get(presented).copied().unwrap_or(presented);
        credentials.push(credential);
        if refused.contains(presented) {
            after_invalid += 1;
        }
        if e.refresh_token_status.as_deref() == Some("superseded") {
            superseded += 1;
        }
        if e.status == Some(200) {
            successes += 1;
            if let Some(prev) = last_success.get(credential) {
                if e.elapsed_ms.saturating_sub(*prev) < fresh_ms {
                    duplicates += 1;
                }
            }
            last_success.insert(credential, e.elapsed_ms);
            if let Some(issued) = e.issued_refresh_token_fingerprint.as_deref() {
                if !presented.is_empty() && issued != presented {
                    credential_of.insert(issued, credential);
                }
            }
        }
        if e.error.as_deref() == Some("invalid_grant") {
            refused.insert(presented);
        }
    }
    let expiries = successes - duplicates;
    let mut index: HashMap<&str, usize> = HashMap::new();
    let step = (ours.len() / 5000).max(1);
    let timeline = ours
        .iter()
        .zip(&credentials)
        .step_by(step)
        .map(|(e, credential)| {
            let next = index.len();
            TimelinePoint {
                at_ms: e.elapsed_ms,
                credential: *index.entry(credential).or_insert(next),
                status: e.status.unwrap_or(0),
            }
        })
        .collect();
    let invariants = vec![
        Invariant {
            name: "one refresh per credential per expiry",
            held: duplicates == 0,
            detail: format!(
                "{} of {} in the journal for {}; {duplicates} made while the previous token was \
                 still fresh",
                count(successes, "successful refresh", "successful refreshes"),
                count(ours.len(), "token request", "token requests"),
                count(expiries, "expiry", "expiries"),
            ),
        },
        Invariant {
            name: "no token request after invalid_grant",
            held: after_invalid == 0,
            detail: format!(
                "{after_invalid} token requests presented a refresh token already answered \
                 invalid_grant ({} answered so)",
                count(refused.len(), "token was", "tokens were")
            ),
        },
        Invariant {
            name: "no request presents a superseded refresh token",
            held: superseded == 0,
            detail: format!("{superseded} token requests presented a superseded refresh token"),
        },
    ];
    Judgement {
        invariants,
        token_requests: ours.len(),
        successful_refreshes: successes,
        duplicate_refreshes: duplicates,
        refreshes_per_expiry: if expiries == 0 {
            0.0
        } else {
            successes as f64 / expiries as f64
        },
        timeline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, at: u64, token: &str, status: u16, error: Option<&str>) -> TokenEntry {
        TokenEntry {
            seq,
            elapsed_ms: at,
            client_id: Some("c".into()),
            refresh_token_fingerprint: Some(token.into()),
            refresh_token_status: Some(if status == 200 { "live" } else { "revoked" }.into()),
            issued_refresh_token_fingerprint: None,
            status: Some(status),
            error: error.map(str::to_owned),
        }
    }

    fn broken(judgement: &Judgement) -> Vec<&'static str> {
        judgement
            .invariants
            .iter()
            .filter(|i| !i.held)
            .map(|i| i.name)
            .collect()
    }

    #[test]
    fn the_journal_judges_duplicates_retries_after_invalid_grant_and_other_clients_apart() {
        let ttl = Duration::from_secs(60);
        let ok = [entry(1, 0, "a", 200, None), entry(2, 10, "b", 200, None)];
        assert!(broken(&judge_journal(&ok, &HashSet::new(), ttl)).is_empty());
        let storm = [entry(1, 0, "a", 200, None), entry(2, 30, "a", 200, None)];
        assert_eq!(
            broken(&judge_journal(&storm, &HashSet::new(), ttl)),
            ["one refresh per credential per expiry"]
        );
        // A refresh after the token's life is not a duplicate.
        let later = [
            entry(1, 0, "a", 200, None),
            entry(2, 59_000, "a", 200, None),
        ];
        assert!(broken(&judge_journal(&later, &HashSet::new(), ttl)).is_empty());
        let retried = [
            entry(1, 0, "a", 400, Some("invalid_grant")),
            entry(2, 5, "a", 400, Some("invalid_grant")),
        ];
        assert_eq!(
            broken(&judge_journal(&retried, &HashSet::new(), ttl)),
            ["no token request after invalid_grant"]
        );
        // Another client's storm is not this run's.
        let others: HashSet<String> = ["d".to_owned()].into();
        assert!(broken(&judge_journal(&storm, &others, ttl)).is_empty());
    }

    fn rotated(mut e: TokenEntry, issued: &str) -> TokenEntry {
        e.issued_refresh_token_fingerprint = Some(issued.into());
        e
    }

    #[test]
    fn under_rotation_a_refresh_with_the_token_just_issued_is_a_duplicate() {
        let ttl = Duration::from_secs(60);
        // Each refresh presents the token the previous one issued.
        let storm = [
            rotated(entry(1, 0, "a", 200, None), "b"),
            rotated(entry(2, 30, "b", 200, None), "c"),
            rotated(entry(3, 60, "c", 200, None), "d"),
        ];
        let judged = judge_journal(&storm, &HashSet::new(), ttl);
        assert_eq!(broken(&judged), ["one refresh per credential per expiry"]);
        assert_eq!(judged.duplicate_refreshes, 2);
        // One credential in the timeline, not three tokens.
        assert!(judged.timeline.iter().all(|p| p.credential == 0));
        // The same chain, once per token lifetime: each refresh is the expiry's one.
        let spaced = [
            rotated(entry(1, 0, "a", 200, None), "b"),
            rotated(entry(2, 59_000, "b", 200, None), "c"),
            rotated(entry(3, 118_000, "c", 200, None), "d"),
        ];
        assert!(broken(&judge_journal(&spaced, &HashSet::new(), ttl)).is_empty());
        // Two credentials rotating at the same moment are two refreshes, not a duplicate.
        let two = [
            rotated(entry(1, 0, "a", 200, None), "b"),
            rotated(entry(2, 5, "x", 200, None), "y"),
        ];
        assert!(broken(&judge_journal(&two, &HashSet::new(), ttl)).is_empty());
    }
}
