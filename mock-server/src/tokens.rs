//! The token store: which tokens the mock issued, to whom, for what, and whether they still work.
//!
//! Google's answers depend on token history (revoked, superseded by rotation, past the 7-day
//! "Testing" deadline), so the mock must remember every token it issued. Tokens are grouped in
//! grants, as Google does: revoking any token of a grant (an access token or its refresh token)
//! revokes the whole grant. The store is keyed by SHA-256 digests, so it never holds a raw token
//! after issuing it, and a million entries stay small.
//!
//! A long-running mock (`oauthtest --mode serve` under a benchmark) refreshes one grant millions
//! of times; so each grant remembers at most [`MAX_TOKENS_PER_GRANT`] access tokens and as many
//! superseded refresh tokens, forgetting the oldest first. A forgotten token is
//! [`TokenStatus::Unknown`]: a client still presenting its 1001st-newest access token gets the
//! same 401 as for an expired one.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};

use crate::wire;

/// Where a token stands, as far as Google is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenStatus {
    /// Works.
    Live,
    /// A refresh token replaced by rotation (only with `rotate_refresh_tokens`).
    Superseded,
    /// Revoked, directly or through another token of its grant.
    Revoked,
    /// Past its lifetime on the mock clock.
    Expired,
    /// Never issued by this mock (or forgotten by a reset).
    Unknown,
}

impl TokenStatus {
    /// A short stable name: `live`, `superseded`, `revoked`, `expired` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Superseded => "superseded",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Unknown => "unknown",
        }
    }
}

/// Identifies a token without revealing it: the first 12 hex characters of its SHA-256.
pub fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(12);
    for byte in digest.iter().take(6) {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// A refresh token unused this long stops working, as Google's do after six months.
pub const UNUSED_REFRESH_TOKEN_TTL: std::time::Duration =
    std::time::Duration::from_secs(183 * 24 * 60 * 60);
/// Live refresh tokens one Google account may hold for one client; the oldest dies silently
/// beyond (see [`MockConfig::refresh_token_limit`](crate::MockConfig::refresh_token_limit)).
pub const MAX_LIVE_REFRESH_TOKENS: usize = 100;

fn ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// How many access tokens (and, separately, superseded refresh tokens) one grant keeps.
pub const MAX_TOKENS_PER_GRANT: usize = 1_000;

type Key = [u8; 32];

fn key(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

fn random_part(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The Google account (or service account) a grant belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    /// `email`
    pub(crate) email: Arc<str>,
    /// `sub`: the account's stable numeric id.
    pub(crate) sub: Arc<str>,
}

impl Account {
    /// An account for `email`, its `sub` 21 digits derived from the address (stable across runs,
    /// different per address, shaped like Google's).
    pub(crate) fn for_email(email: &str) -> Self {
        let digest = Sha256::digest(email.to_ascii_lowercase().as_bytes());
        let mut sub = String::from("1");
        for byte in digest.iter().take(20) {
            sub.push(char::from(b'0' + byte % 10));
        }
        Self {
            email: Arc::from(email),
            sub: Arc::from(sub),
        }
    }
}

/// A consent: one client, one account, one set of scopes.
pub(crate) struct Grant {
    pub(crate) client_id: Arc<str>,
    pub(crate) scopes: Arc<[String]>,
    revoked: bool,
    /// A revocation Google has accepted but not applied yet: from this time on the mock clock
    /// the grant is revoked (see [`TokenStore::revoke_at`]).
    revoked_from_ms: Option<i64>,
    /// Whether the grant has a refresh token (tokeninfo's `access_type`).
    pub(crate) offline: bool,
    /// Whose grant it is; `None` for the configured default account.
    pub(crate) account: Option<Account>,
    /// Its access tokens, oldest first (at most [`MAX_TOKENS_PER_GRANT`]).
    access_keys: VecDeque<Key>,
    /// Its superseded refresh tokens, oldest first (at most [`MAX_TOKENS_PER_GRANT`]).
    superseded_keys: VecDeque<Key>,
}

/// Appends `key` to `keys`; returns the oldest key when that makes one too many.
fn remember(keys: &mut VecDeque<Key>, key: Key) -> Option<Key> {
    keys.push_back(key);
    if keys.len() > MAX_TOKENS_PER_GRANT {
        keys.pop_front()
    } else {
        None
    }
}

struct RefreshRecord {
    grant: u64,
    /// When rotation superseded it, on the mock clock.
    superseded_at_ms: Option<i64>,
    expires_at_ms: Option<i64>,
    /// Issued or last used to refresh, on the mock clock.
    last_used_ms: i64,
}

struct AccessRecord {
    grant: u64,
    scopes: Arc<[String]>,
    expires_at_ms: i64,
}

/// What the token endpoint needs to know about a presented refresh token.
pub(crate) struct RefreshView<'a> {
    pub(crate) grant_id: u64,
    pub(crate) grant: &'a Grant,
    pub(crate) expires_at_ms: Option<i64>,
}

/// What tokeninfo and the API need to know about a live access token.
pub(crate) struct AccessView<'a> {
    pub(crate) grant: &'a Grant,
    pub(crate) scopes: &'a Arc<[String]>,
    pub(crate) expires_at_ms: i64,
}

#[derive(Default)]
pub(crate) struct TokenStore {
    grants: HashMap<u64, Grant>,
    refresh: HashMap<Key, RefreshRecord>,
    access: HashMap<Key, AccessRecord>,
    next_grant: u64,
    /// Grants with a refresh token, oldest first, per client and account (`sub`; empty for the
    /// configured default account).
    offline_grants: HashMap<(Arc<str>, Arc<str>), VecDeque<u64>>,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore")
            .field("grants", &self.grants.len())
            .field("refresh_tokens", &self.refresh.len())
            .field("access_tokens", &self.access.len())
            .finish()
    }
}

impl TokenStore {
    pub(crate) fn new_grant(&mut self, client_id: &str, scopes: &[String], offline: bool) -> u64 {
        let id = self.next_grant;
        self.next_grant += 1;
        self.grants.insert(
            id,
            Grant {
                client_id: Arc::from(client_id),
                scopes: Arc::from(scopes),
                revoked: false,
                revoked_from_ms: None,
                offline,
                account: None,
                access_keys: VecDeque::new(),
                superseded_keys: VecDeque::new(),
            },
        );
        id
    }

    /// Gives `grant` to `account` (signed-in users, service accounts).
    pub(crate) fn set_account(&mut self, grant: u64, account: Account) {
        if let Some(g) = self.grants.get_mut(&grant) {
            g.account = Some(account);
        }
    }

    /// Issues a refresh token for `grant`, shaped like Google's (`1//0` + 96 url-safe chars).
    pub(crate) fn issue_refresh(
        &mut self,
        grant: u64,
        expires_at_ms: Option<i64>,
        now_ms: i64,
    ) -> String {
        loop {
            let token = format!("{}0{}", wire::REFRESH_TOKEN_PREFIX, random_part(72));
            let k = key(&token);
            if self.refresh.contains_key(&k) {
                continue;
            }
            self.refresh.insert(
                k,
                RefreshRecord {
                    grant,
                    superseded_at_ms: None,
                    expires_at_ms,
                    last_used_ms: now_ms,
                },
            );
            return token;
        }
    }

    /// Issues an access token for `grant`, shaped like Google's (`ya29.a0` + 200 url-safe chars).
    pub(crate) fn issue_access(
        &mut self,
        grant: u64,
        scopes: Arc<[String]>,
        expires_at_ms: i64,
    ) -> String {
        loop {
            let token = format!("{}a0{}", wire::ACCESS_TOKEN_PREFIX, random_part(150));
            let k = key(&token);
            if self.access.contains_key(&k) {
                continue;
            }
            self.access.insert(
                k,
                AccessRecord {
                    grant,
                    scopes,
                    expires_at_ms,
                },
            );
            let forgotten = self
                .grants
                .get_mut(&grant)
                .and_then(|g| remember(&mut g.access_keys, k));
            if let Some(old) = forgotten {
                self.access.remove(&old);
            }
            return token;
        }
    }

    fn grant_revoked(&self, grant: u64, now_ms: i64) -> bool {
        self.grants
            .get(&grant)
            .is_none_or(|g| g.revoked || g.revoked_from_ms.is_some_and(|at| now_ms >= at))
    }

    pub(crate) fn refresh_status(&self, token: &str, now_ms: i64) -> TokenStatus {
        let Some(record) = self.refresh.get(&key(token)) else {
            return TokenStatus::Unknown;
        };
        if self.grant_revoked(record.grant, now_ms) {
            TokenStatus::Revoked
        } else if record.superseded_at_ms.is_some() {
            TokenStatus::Superseded
        } else if record.expires_at_ms.is_some_and(|at| now_ms >= at)
            || now_ms.saturating_sub(record.last_used_ms) >= ms(UNUSED_REFRESH_TOKEN_TTL)
        {
            TokenStatus::Expired
        } else {
            TokenStatus::Live
        }
    }

    pub(crate) fn access_status(&self, token: &str, now_ms: i64) -> TokenStatus {
        let Some(record) = self.access.get(&key(token)) else {
            return TokenStatus::Unknown;
        };
        if self.grant_revoked(record.grant, now_ms) {
            TokenStatus::Revoked
        } else if now_ms >= record.expires_at_ms {
            TokenStatus::Expired
        } else {
            TokenStatus::Live
        }
    }

    pub(crate) fn refresh_view(&self, token: &str) -> Option<RefreshView<'_>> {
        let record = self.refresh.get(&key(token))?;
        let grant = self.grants.get(&record.grant)?;
        Some(RefreshView {
            grant_id: record.grant,
            grant,
            expires_at_ms: record.expires_at_ms,
        })
    }

    /// The access token's record, only while it is live.
    pub(crate) fn live_access(&self, token: &str, now_ms: i64) -> Option<AccessView<'_>> {
        if self.access_status(token, now_ms) != TokenStatus::Live {
            return None;
        }
        let record = self.access.get(&key(token))?;
        let grant = self.grants.get(&record.grant)?;
        Some(AccessView {
            grant,
            scopes: &record.scopes,
            expires_at_ms: record.expires_at_ms,
        })
    }

    /// Records a successful refresh with `token`: its six months start again.
    pub(crate) fn touch(&mut self, token: &str, now_ms: i64) {
        if let Some(record) = self.refresh.get_mut(&key(token)) {
            record.last_used_ms = now_ms;
        }
    }

    /// Counts `grant` (which has a refresh token) against its account's limit for its client:
    /// beyond `limit` live ones, the oldest grant is revoked, silently.
    pub(crate) fn limit_live_refresh_tokens(&mut self, grant: u64, limit: usize) {
        let Some(g) = self.grants.get(&grant) else {
            return;
        };
        let sub = g
            .account
            .as_ref()
            .map_or_else(|| Arc::from(""), |a| Arc::clone(&a.sub));
        let owned = self
            .offline_grants
            .entry((Arc::clone(&g.client_id), sub))
            .or_default();
        owned.push_back(grant);
        let grants = &mut self.grants;
        owned.retain(|id| grants.get(id).is_some_and(|g| !g.revoked));
        while owned.len() > limit {
            if let Some(oldest) = owned.pop_front().and_then(|id| grants.get_mut(&id)) {
                oldest.revoked = true;
            }
        }
    }

    pub(crate) fn supersede(&mut self, token: &str, now_ms: i64) {
        let k = key(token);
        let Some(record) = self.refresh.get_mut(&k) else {
            return;
        };
        if record.superseded_at_ms.is_some() {
            return;
        }
        record.superseded_at_ms = Some(now_ms);
        let grant = record.grant;
        let forgotten = self
            .grants
            .get_mut(&grant)
            .and_then(|g| remember(&mut g.superseded_keys, k));
        if let Some(old) = forgotten {
            self.refresh.remove(&old);
        }
    }

    /// Whether `token` was superseded less than `grace` ago, its grant neither revoked nor past
    /// its deadline: within a rotation grace window it still refreshes.
    pub(crate) fn superseded_within(
        &self,
        token: &str,
        now_ms: i64,
        grace: std::time::Duration,
    ) -> bool {
        let Some(record) = self.refresh.get(&key(token)) else {
            return false;
        };
        let Some(at) = record.superseded_at_ms else {
            return false;
        };
        !self.grant_revoked(record.grant, now_ms)
            && record
                .expires_at_ms
                .is_none_or(|deadline| now_ms < deadline)
            && now_ms.saturating_sub(at) < ms(grace)
    }

    /// Revokes the whole family of a known refresh token, whatever its status: every access and
    /// refresh token of its grant, the newest included (reuse detection). Returns whether there
    /// was a family to revoke.
    pub(crate) fn revoke_family(&mut self, token: &str) -> bool {
        let grant = self.refresh.get(&key(token)).map(|r| r.grant);
        match grant.and_then(|id| self.grants.get_mut(&id)) {
            Some(grant) if !grant.revoked => {
                grant.revoked = true;
                true
            }
            _ => false,
        }
    }

    /// Rotates a live refresh token as a successful refresh with it would: it is superseded now
    /// and its successor (same grant, same deadline) is returned. `None` when it is not live.
    pub(crate) fn rotate(&mut self, token: &str, now_ms: i64) -> Option<String> {
        if self.refresh_status(token, now_ms) != TokenStatus::Live {
            return None;
        }
        let record = self.refresh.get(&key(token))?;
        let (grant, expires_at_ms) = (record.grant, record.expires_at_ms);
        self.touch(token, now_ms);
        self.supersede(token, now_ms);
        Some(self.issue_refresh(grant, expires_at_ms, now_ms))
    }

    /// Revokes the grant of a live access or refresh token. Returns whether anything was live to
    /// revoke; unknown, expired, superseded and already revoked tokens give `false`.
    pub(crate) fn revoke(&mut self, token: &str, now_ms: i64) -> bool {
        self.revoke_at(token, now_ms, now_ms)
    }

    /// Revokes the grant of a live access or refresh token from `at_ms` on the mock clock, as
    /// Google does when a revocation takes a while to reach every server: until then its tokens
    /// keep working (and refreshing issues new ones), from then on every token of the grant,
    /// including those issued in between, is revoked. An earlier revocation of the same grant
    /// wins. Returns whether anything was live to revoke, as [`revoke`](Self::revoke).
    pub(crate) fn revoke_at(&mut self, token: &str, now_ms: i64, at_ms: i64) -> bool {
        let k = key(token);
        let grant = if self.refresh_status(token, now_ms) == TokenStatus::Live {
            self.refresh.get(&k).map(|r| r.grant)
        } else if self.access_status(token, now_ms) == TokenStatus::Live {
            self.access.get(&k).map(|r| r.grant)
        } else {
            None
        };
        match grant.and_then(|id| self.grants.get_mut(&id)) {
            Some(grant) if at_ms <= now_ms => {
                grant.revoked = true;
                true
            }
            Some(grant) => {
                grant.revoked_from_ms = Some(grant.revoked_from_ms.map_or(at_ms, |t| t.min(at_ms)));
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;
