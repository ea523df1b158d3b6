//! Refresh-token families, as providers that rotate refresh tokens keep them: a grace window in
//! which a superseded token still refreshes (two workers racing on one token both succeed), and
//! reuse detection, where an old token presented after that window revokes the whole family.
//! Google does neither (it does not rotate); the scenarios that reproduce lost rotations,
//! killed workers and stale write-backs need both.

use std::time::Duration;

use crate::server::MockGoogle;

impl MockGoogle {
    /// Sets how long a superseded refresh token still refreshes (see
    /// [`MockConfig::rotation_grace`](crate::MockConfig::rotation_grace)), until
    /// [`reset`](Self::reset).
    pub fn set_rotation_grace(&self, grace: Duration) {
        self.with_state(|state| state.config.rotation_grace = grace);
    }

    /// Turns refresh-token reuse detection on or off (see
    /// [`MockConfig::reuse_revokes_family`](crate::MockConfig::reuse_revokes_family)), until
    /// [`reset`](Self::reset).
    pub fn set_reuse_revokes_family(&self, on: bool) {
        self.with_state(|state| state.config.reuse_revokes_family = on);
    }

    /// Uses a live refresh token as another client's successful refresh would, with rotation:
    /// the token is superseded now (its grace window starts) and its successor is returned,
    /// held by nobody but the caller. `None` when the token is not live.
    ///
    /// # Security
    /// The returned string is a credential for this mock only; do not log it.
    pub fn rotate_refresh_token(&self, token: &str) -> Option<String> {
        self.with_state(|state| {
            let now_ms = state.now_ms();
            state.tokens.rotate(token, now_ms)
        })
    }

    /// An access token of the same grant as a live `refresh_token`, valid for the configured
    /// access-token lifetime, as another deployment's refresh with it would get (nothing is
    /// journaled, no rotation). `None` when the refresh token is neither live nor superseded.
    ///
    /// # Security
    /// The returned string is a credential for this mock only; do not log it.
    pub fn issue_access_token_if_usable(&self, refresh_token: &str) -> Option<String> {
        self.with_state(|state| {
            let now_ms = state.now_ms();
            let status = state.tokens.refresh_status(refresh_token, now_ms);
            if !matches!(
                status,
                crate::TokenStatus::Live | crate::TokenStatus::Superseded
            ) {
                return None;
            }
            let view = state.tokens.refresh_view(refresh_token)?;
            let (grant, scopes) = (view.grant_id, std::sync::Arc::clone(&view.grant.scopes));
            let ttl = i64::try_from(state.config.access_token_ttl.as_millis()).unwrap_or(i64::MAX);
            Some(
                state
                    .tokens
                    .issue_access(grant, scopes, now_ms.saturating_add(ttl)),
            )
        })
    }
}
