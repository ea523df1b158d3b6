//! What the mock's owner controls about revocation: revoking now or after a delay, and access
//! tokens minted in a refresh token's grant, so that a revocation reaches both.
//!
//! Google groups the tokens of one consent in a grant: revoking a refresh token invalidates its
//! access tokens, and revoking an access token revokes its refresh token. And a revocation may
//! take a while to reach every server: until then the tokens keep working, refreshing included.

use std::sync::Arc;
use std::time::Duration;

use crate::handler::ms;
use crate::server::MockGoogle;

impl MockGoogle {
    /// Revokes a live access or refresh token and, as Google does, every token of its grant
    /// (revoking an access token also kills its refresh token). Returns `false` when there was
    /// nothing live to revoke.
    pub fn revoke(&self, token: &str) -> bool {
        self.with_tokens(|tokens, now_ms| tokens.revoke(token, now_ms))
    }

    /// Revokes a live access or refresh token's grant `delay` from now on the mock clock, as a
    /// revocation that takes a while to reach every Google server: until then its tokens work
    /// and refreshing issues new ones; from then on all of them, those new ones included, are
    /// revoked. Returns `false` when there was nothing live to revoke.
    pub fn revoke_after(&self, token: &str, delay: Duration) -> bool {
        self.with_tokens(|tokens, now_ms| {
            tokens.revoke_at(token, now_ms, now_ms.saturating_add(ms(delay)))
        })
    }

    /// Mints an access token in the grant of `refresh_token`, with its scopes, valid for `ttl`
    /// on the mock clock: the access token a consent or a refresh gave along with it, so that
    /// revoking either one kills the other. `None` when the refresh token is unknown.
    ///
    /// # Security
    /// The returned string is a credential for this mock only; do not log it.
    pub fn issue_access_token_for(&self, refresh_token: &str, ttl: Duration) -> Option<String> {
        self.with_tokens(|tokens, now_ms| {
            let (grant, scopes) = tokens
                .refresh_view(refresh_token)
                .map(|view| (view.grant_id, Arc::clone(&view.grant.scopes)))?;
            Some(tokens.issue_access(grant, scopes, now_ms.saturating_add(ms(ttl))))
        })
    }
}
