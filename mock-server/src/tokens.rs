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
use rand::RngCore as _;
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
    superseded: bool,
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
                    superseded: false,
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
        } else if record.superseded {
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

    pub(crate) fn supersede(&mut self, token: &str) {
        let k = key(token);
        let Some(record) = self.refresh.get_mut(&k) else {
            return;
        };
        if record.superseded {
            return;
        }
        record.superseded = true;
        let grant = record.grant;
        let forgotten = self
            .grants
            .get_mut(&grant)
            .and_then(|g| remember(&mut g.superseded_keys, k));
        if let Some(old) = forgotten {
            self.refresh.remove(&old);
        }
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
mod tests {
    use super::*;

    fn scopes() -> Vec<String> {
        vec!["openid".to_string()]
    }

    #[test]
    fn fingerprint_is_the_first_twelve_hex_chars_of_sha256() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(fingerprint("abc"), "ba7816bf8f01");
    }

    #[test]
    fn issued_tokens_have_googles_prefixes_and_size_limits() {
        let mut store = TokenStore::default();
        let grant = store.new_grant("c", &scopes(), true);
        let refresh = store.issue_refresh(grant, None, 0);
        let access = store.issue_access(grant, Arc::from(scopes()), 10);
        assert!(refresh.starts_with("1//"));
        assert!(refresh.len() <= 512);
        assert!(access.starts_with("ya29."));
        assert!(access.len() <= 2048);
        assert_eq!(store.refresh_status(&refresh, 0), TokenStatus::Live);
        assert_eq!(store.access_status(&access, 0), TokenStatus::Live);
        assert_eq!(store.access_status(&access, 10), TokenStatus::Expired);
    }

    #[test]
    fn revoking_an_access_token_revokes_its_whole_grant() {
        let mut store = TokenStore::default();
        let grant = store.new_grant("c", &scopes(), true);
        let refresh = store.issue_refresh(grant, None, 0);
        let access = store.issue_access(grant, Arc::from(scopes()), 1_000);
        assert!(store.revoke(&access, 0));
        assert_eq!(store.refresh_status(&refresh, 0), TokenStatus::Revoked);
        assert_eq!(store.access_status(&access, 0), TokenStatus::Revoked);
        assert!(!store.revoke(&refresh, 0), "already revoked");
    }

    #[test]
    fn refresh_tokens_expire_at_their_deadline_and_unknown_tokens_are_unknown() {
        let mut store = TokenStore::default();
        let grant = store.new_grant("c", &scopes(), true);
        let refresh = store.issue_refresh(grant, Some(100), 0);
        assert_eq!(store.refresh_status(&refresh, 99), TokenStatus::Live);
        assert_eq!(store.refresh_status(&refresh, 100), TokenStatus::Expired);
        assert_eq!(store.refresh_status("1//nope", 0), TokenStatus::Unknown);
        assert!(
            !store.revoke(&refresh, 100),
            "expired tokens cannot be revoked"
        );
    }

    #[test]
    fn a_grant_keeps_its_newest_access_and_superseded_tokens_only() {
        let mut store = TokenStore::default();
        let grant = store.new_grant("c", &scopes(), true);
        let first = store.issue_access(grant, Arc::from(scopes()), 10);
        let mut last = String::new();
        for _ in 0..MAX_TOKENS_PER_GRANT {
            last = store.issue_access(grant, Arc::from(scopes()), 10);
        }
        assert_eq!(store.access.len(), MAX_TOKENS_PER_GRANT);
        assert_eq!(store.access_status(&first, 0), TokenStatus::Unknown);
        assert_eq!(store.access_status(&last, 0), TokenStatus::Live);

        let oldest = store.issue_refresh(grant, None, 0);
        store.supersede(&oldest);
        for _ in 0..MAX_TOKENS_PER_GRANT {
            let next = store.issue_refresh(grant, None, 0);
            store.supersede(&next);
        }
        let live = store.issue_refresh(grant, None, 0);
        assert_eq!(store.refresh.len(), MAX_TOKENS_PER_GRANT + 1);
        assert_eq!(store.refresh_status(&oldest, 0), TokenStatus::Unknown);
        assert_eq!(store.refresh_status(&live, 0), TokenStatus::Live);
    }

    #[test]
    fn a_refresh_token_unused_for_six_months_expires_and_use_restarts_the_clock() {
        let mut store = TokenStore::default();
        let grant = store.new_grant("c", &scopes(), true);
        let refresh = store.issue_refresh(grant, None, 0);
        let six_months = ms(UNUSED_REFRESH_TOKEN_TTL);
        assert_eq!(
            store.refresh_status(&refresh, six_months - 1),
            TokenStatus::Live
        );
        store.touch(&refresh, six_months - 1);
        assert_eq!(
            store.refresh_status(&refresh, 2 * six_months - 2),
            TokenStatus::Live
        );
        assert_eq!(
            store.refresh_status(&refresh, 2 * six_months - 1),
            TokenStatus::Expired
        );
    }

    #[test]
    fn the_hundred_and_first_refresh_token_of_an_account_and_client_revokes_the_oldest() {
        let mut store = TokenStore::default();
        let mut tokens = Vec::new();
        for _ in 0..=MAX_LIVE_REFRESH_TOKENS {
            let grant = store.new_grant("c", &scopes(), true);
            tokens.push(store.issue_refresh(grant, None, 0));
            store.limit_live_refresh_tokens(grant, MAX_LIVE_REFRESH_TOKENS);
        }
        let other = store.new_grant("other-client", &scopes(), true);
        let other_token = store.issue_refresh(other, None, 0);
        store.limit_live_refresh_tokens(other, MAX_LIVE_REFRESH_TOKENS);
        assert_eq!(store.refresh_status(&tokens[0], 0), TokenStatus::Revoked);
        assert!(tokens[1..]
            .iter()
            .all(|t| store.refresh_status(t, 0) == TokenStatus::Live));
        assert_eq!(store.refresh_status(&other_token, 0), TokenStatus::Live);
    }

    #[test]
    fn a_delayed_revocation_takes_effect_later_and_kills_the_tokens_issued_meanwhile() {
        let mut store = TokenStore::default();
        let grant = store.new_grant("c", &scopes(), true);
        let refresh = store.issue_refresh(grant, None, 0);
        assert!(store.revoke_at(&refresh, 0, 300_000));
        assert_eq!(store.refresh_status(&refresh, 299_999), TokenStatus::Live);
        // Refreshing in the window still works, as at Google.
        let meanwhile = store.issue_access(grant, Arc::from(scopes()), 3_600_000);
        assert_eq!(store.access_status(&meanwhile, 299_999), TokenStatus::Live);
        assert_eq!(
            store.refresh_status(&refresh, 300_000),
            TokenStatus::Revoked
        );
        assert_eq!(
            store.access_status(&meanwhile, 300_000),
            TokenStatus::Revoked
        );
        // A revocation that is due already is the immediate kind.
        let other = store.new_grant("c", &scopes(), true);
        let other_refresh = store.issue_refresh(other, None, 0);
        assert!(store.revoke_at(&other_refresh, 10, 5));
        assert_eq!(
            store.refresh_status(&other_refresh, 10),
            TokenStatus::Revoked
        );
    }

    #[test]
    fn revoking_a_refresh_token_revokes_the_access_tokens_of_its_grant_only() {
        let mut store = TokenStore::default();
        let grant = store.new_grant("c", &scopes(), true);
        let refresh = store.issue_refresh(grant, None, 0);
        let access = store.issue_access(grant, Arc::from(scopes()), 1_000);
        let elsewhere = store.new_grant("c", &scopes(), false);
        let other_access = store.issue_access(elsewhere, Arc::from(scopes()), 1_000);
        assert!(store.revoke(&refresh, 0));
        assert_eq!(store.access_status(&access, 0), TokenStatus::Revoked);
        assert_eq!(store.access_status(&other_access, 0), TokenStatus::Live);
    }

    #[test]
    fn debug_of_the_store_shows_counts_only() {
        let mut store = TokenStore::default();
        let grant = store.new_grant("c", &scopes(), true);
        let refresh = store.issue_refresh(grant, None, 0);
        let printed = format!("{store:?}");
        assert!(!printed.contains(&refresh));
        assert!(printed.contains("refresh_tokens: 1"), "{printed}");
    }
}
