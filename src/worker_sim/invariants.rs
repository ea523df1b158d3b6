//! The invariants a worker pool must keep, judged from the mock Google's own journal and the
//! store afterwards, not from the workers' own counters.

use super::{margin_for, Behaviour, ProcessTotals, Rig, SimConfig};
use crate::error::Result;
use crate::exchange::code;
use crate::report::{count, count_u64};
use crate::store::CredentialState;
use mock_server::{Endpoint, TokenStatus};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// One invariant and whether it held.
#[derive(Debug, Clone, Serialize)]
pub struct Invariant {
    /// What it says.
    pub name: &'static str,
    /// Whether it held.
    pub held: bool,
    /// The evidence.
    pub detail: String,
}

/// A token request as the mock saw it, for the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelinePoint {
    /// Milliseconds since the mock started.
    pub at_ms: u64,
    /// Which credential (index).
    pub credential: usize,
    /// HTTP status, or 0 when the connection was dropped.
    pub status: u16,
}

/// The verdict on a run.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    /// Every invariant.
    pub invariants: Vec<Invariant>,
    /// Token requests the mock received.
    pub token_requests: usize,
    /// Successful refreshes (200) the mock answered.
    pub successful_refreshes: usize,
    /// Successful refreshes made while the previous token was still fresh.
    pub duplicate_refreshes: usize,
    /// Successful refreshes per expiry (1.00 when coordination holds).
    pub refreshes_per_expiry: f64,
    /// Token requests over time (at most 5,000 points).
    pub timeline: Vec<TimelinePoint>,
}

impl Judgement {
    /// Whether every invariant held.
    pub fn held(&self) -> bool {
        self.invariants.iter().all(|i| i.held)
    }
}

/// Judges a finished run. `revoked` holds the credentials whose users revoked access mid-run.
///
/// # Errors
/// [`crate::Error::Store`] when the store cannot be read.
pub async fn judge(
    rig: &Rig,
    config: &SimConfig,
    totals: &ProcessTotals,
    revoked: &HashSet<i64>,
) -> Result<Judgement> {
    let index: HashMap<&str, usize> = rig
        .credentials
        .iter()
        .enumerate()
        .map(|(i, c)| (c.client_id.as_str(), i))
        .collect();
    let journal = rig.mock.journal();
    let token_entries: Vec<_> = journal
        .iter()
        .filter(|e| e.endpoint == Endpoint::Token)
        .collect();
    let mut invariants = Vec::new();

    // 1. Exactly one refresh per credential per expiry.
    let fresh_for = config
        .token_ttl
        .saturating_sub(margin_for(config.token_ttl))
        .saturating_sub(Duration::from_millis(50));
    let mut last_success: HashMap<usize, Duration> = HashMap::new();
    let (mut successes, mut duplicates) = (0usize, 0usize);
    for e in &token_entries {
        let Some(&i) = e.client_id.as_deref().and_then(|c| index.get(c)) else {
            continue;
        };
        if e.status == Some(200) {
            successes += 1;
            if let Some(prev) = last_success.get(&i) {
                if e.elapsed.saturating_sub(*prev) < fresh_for {
                    duplicates += 1;
                }
            }
            last_success.insert(i, e.elapsed);
        }
    }
    let expiries = successes.saturating_sub(duplicates);
    let per_expiry = if expiries == 0 {
        0.0
    } else {
        successes as f64 / expiries as f64
    };
    invariants.push(Invariant {
        name: "one refresh per credential per expiry",
        held: duplicates == 0,
        detail: format!(
            "{} for {} ({per_expiry:.2} per expiry); {duplicates} made while the previous token \
             was still fresh",
            count(successes, "successful refresh", "successful refreshes"),
            count(expiries, "expiry", "expiries"),
        ),
    });

    // 2. Jobs fail only the way the behaviour allows.
    let allowed: &[&str] = match config.behaviour {
        Behaviour::Success | Behaviour::Rotation => &[],
        Behaviour::InvalidGrantMidRun => &[code::NEEDS_RECONNECT],
        Behaviour::ServerErrorBurst => &[code::RETRY_LATER],
    };
    let unexpected: Vec<String> = totals
        .failures_by_outcome
        .iter()
        .filter(|(k, _)| !allowed.contains(&k.as_str()))
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    invariants.push(Invariant {
        name: if allowed.is_empty() {
            "no job fails"
        } else {
            "jobs fail only as the scenario allows"
        },
        held: unexpected.is_empty(),
        detail: if unexpected.is_empty() {
            format!(
                "{} succeeded, {} failed ({:?})",
                count_u64(totals.jobs_succeeded, "job", "jobs"),
                totals.jobs_failed,
                totals.failures_by_outcome
            )
        } else {
            format!("unexpected failures: {}", unexpected.join(", "))
        },
    });

    // 3. After invalid_grant: marked once, no further token request, fast failure.
    // Each of the run's rows is read by id: a store shared with other runs (or the
    // application) may hold rows that do not read, and those are not this run's to judge.
    let mut by_id: HashMap<i64, crate::store::CredentialRow> = HashMap::new();
    let mut unreadable: HashMap<i64, String> = HashMap::new();
    for cred in &rig.credentials {
        match rig.store.get(cred.id).await {
            Ok(Some(row)) => {
                by_id.insert(cred.id, row);
            }
            Ok(None) => {}
            Err(crate::store::StoreError::BadRow { row, .. }) => {
                unreadable.insert(cred.id, row.problem);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if config.behaviour == Behaviour::InvalidGrantMidRun {
        let mut after_invalid = 0usize;
        let mut marked_wrong = Vec::new();
        let mut not_marked = Vec::new();
        for cred in rig.credentials.iter().filter(|c| revoked.contains(&c.id)) {
            let mut seen_invalid = false;
            for e in token_entries
                .iter()
                .filter(|e| e.client_id.as_deref() == Some(cred.client_id.as_str()))
            {
                if seen_invalid {
                    after_invalid += 1;
                }
                if e.error.as_deref() == Some("invalid_grant") {
                    seen_invalid = true;
                }
            }
            let history = rig.store.history(cred.id).await?;
            let marks = history
                .iter()
                .filter(|h| h.outcome == code::NEEDS_RECONNECT)
                .count();
            let state = by_id.get(&cred.id).map(|r| r.state());
            if seen_invalid && (marks != 1 || state != Some(CredentialState::NeedsReconnect)) {
                marked_wrong.push(format!("{} ({marks} marks)", cred.id));
            }
            if !seen_invalid && state == Some(CredentialState::NeedsReconnect) {
                not_marked.push(cred.id.to_string());
            }
        }
        invariants.push(Invariant {
            name: "no token request after invalid_grant",
            held: after_invalid == 0,
            detail: format!(
                "{after_invalid} token requests for credentials already answered invalid_grant"
            ),
        });
        invariants.push(Invariant {
            name: "invalid_grant marks needs_reconnect exactly once",
            held: marked_wrong.is_empty() && not_marked.is_empty(),
            detail: if marked_wrong.is_empty() && not_marked.is_empty() {
                format!(
                    "{} revoked; failed reconnect jobs took at most {} ms",
                    count(revoked.len(), "credential", "credentials"),
                    totals.reconnect_failure_max_us / 1000
                )
            } else {
                format!("wrongly marked: {marked_wrong:?}; marked without invalid_grant: {not_marked:?}")
            },
        });
    }

    // 4. Rotation: no superseded refresh token ever presented.
    if config.behaviour == Behaviour::Rotation {
        let superseded = token_entries
            .iter()
            .filter(|e| e.refresh_token_status == Some(TokenStatus::Superseded))
            .count();
        invariants.push(Invariant {
            name: "no request presents a superseded refresh token",
            held: superseded == 0,
            detail: format!("{superseded} token requests presented a superseded refresh token"),
        });
    }

    // 5. Nothing lost: every active credential decrypts and holds the live refresh token.
    let mut lost = Vec::new();
    for cred in &rig.credentials {
        if let Some(why) = unreadable.get(&cred.id) {
            lost.push(format!("{}: the row cannot be read: {why}", cred.id));
            continue;
        }
        let Some(row) = by_id.get(&cred.id) else {
            lost.push(format!("{}: row missing", cred.id));
            continue;
        };
        if row.state() != CredentialState::Active {
            if !revoked.contains(&cred.id) {
                lost.push(format!(
                    "{}: marked {} without being revoked",
                    cred.id, row.state
                ));
            }
            continue;
        }
        match row.decrypt(&rig.keyring) {
            Err(e) => lost.push(e.to_string()),
            Ok(s) => {
                let refresh = s
                    .refresh_token
                    .as_ref()
                    .map(|t| rig.mock.refresh_token_status(t.expose_secret()));
                if refresh != Some(TokenStatus::Live) {
                    lost.push(format!("{}: stored refresh token is {refresh:?}", cred.id));
                }
                let access = s
                    .access_token
                    .as_ref()
                    .map(|t| rig.mock.access_token_status(t.expose_secret()));
                if !matches!(access, Some(TokenStatus::Live | TokenStatus::Expired)) {
                    lost.push(format!("{}: stored access token is {access:?}", cred.id));
                }
            }
        }
    }
    invariants.push(Invariant {
        name: "no token lost: stored tokens are the live ones",
        held: lost.is_empty(),
        detail: if lost.is_empty() {
            format!(
                "{} checked against the mock",
                count(rig.credentials.len(), "credential", "credentials")
            )
        } else {
            lost.into_iter().take(10).collect::<Vec<_>>().join("; ")
        },
    });

    let step = (token_entries.len() / 5000).max(1);
    let timeline = token_entries
        .iter()
        .step_by(step)
        .filter_map(|e| {
            let credential = *e.client_id.as_deref().and_then(|c| index.get(c))?;
            Some(TimelinePoint {
                at_ms: u64::try_from(e.elapsed.as_millis()).unwrap_or(u64::MAX),
                credential,
                status: e.status.unwrap_or(0),
            })
        })
        .collect();
    Ok(Judgement {
        invariants,
        token_requests: rig.mock.token_request_count(),
        successful_refreshes: successes,
        duplicate_refreshes: duplicates,
        refreshes_per_expiry: per_expiry,
        timeline,
    })
}
