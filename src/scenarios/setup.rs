//! Putting a mock Google into the state a scenario describes, and minting the credential the
//! scenario says the application stored.
//!
//! Three things start from that same state: the embedded engine run (`mock`, `mock-all`), the
//! user's own code (`mock-all --target-cmd`) and the standalone server (`serve`, at start and on
//! `POST /__admin/scenario`). Keeping the setup in one place is what lets one scenario file serve
//! all three.

use super::{AccessSetup, ClientSetup, RefreshSetup, Scenario};
use crate::secret::{AccessToken, ClientSecret, RefreshToken};
use chrono::{DateTime, TimeDelta, Utc};
use mock_server::{
    ClientRegistration, MockConfig, MockGoogle, TokenStatus, DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET, MAX_LIVE_REFRESH_TOKENS, TESTING_APP_REFRESH_TOKEN_TTL,
};
use std::fmt;
use std::time::Duration;

/// A second registered client, owner of the `other_client` refresh token.
pub const OTHER_CLIENT_ID: &str = "other-client.apps.googleusercontent.com";
const OTHER_CLIENT_SECRET: &str = "other-secret";
/// The client id a scenario with `client = "unknown"` hands out.
pub const UNKNOWN_CLIENT_ID: &str = "unknown-client.apps.googleusercontent.com";

/// The configuration every scenario's mock starts from: Google's defaults, the default client
/// and [`OTHER_CLIENT_ID`]. A scenario's own behaviour is applied by [`apply`].
pub fn mock_config() -> MockConfig {
    let mut config = MockConfig::default();
    config.clients.push(ClientRegistration::new(
        OTHER_CLIENT_ID,
        OTHER_CLIENT_SECRET,
    ));
    config
}

/// The credential a scenario says the application stored, minted at its mock.
pub struct SeededCredential {
    /// The OAuth client id.
    pub client_id: String,
    /// The client secret (a wrong one for `client = "wrong_secret"`).
    pub client_secret: ClientSecret,
    /// The refresh token (revoked, unknown or another client's, as the scenario says).
    pub refresh_token: RefreshToken,
    /// The stored access token, if the scenario stores one.
    pub access_token: Option<AccessToken>,
    /// When the stored access token expires, as the application believes.
    pub expiry: Option<DateTime<Utc>>,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// The access tokens other deployments sharing the credential hold (`[mock]
    /// other_deployments`).
    pub other_deployments: Vec<AccessToken>,
}

/// What became of the other deployments' access tokens (`[mock] other_deployments`): `None`
/// while all still work, else the failure to report (a client that revoked a token, or reused
/// an old refresh token under reuse detection, killed the grant for every deployment).
pub fn other_deployments_failure(tokens: &[AccessToken], mock: &MockGoogle) -> Option<String> {
    let dead = tokens
        .iter()
        .filter(|t| mock.access_token_status(t.expose_secret()) != TokenStatus::Live)
        .count();
    (dead > 0).then(|| {
        format!(
            "other deployments: expected their {} access token(s) to keep working, but {dead} no longer work (the shared grant was revoked)",
            tokens.len()
        )
    })
}

impl fmt::Debug for SeededCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededCredential")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expiry", &self.expiry)
            .field("scopes", &self.scopes)
            .field("other_deployments", &self.other_deployments.len())
            .finish()
    }
}

/// Applies `scenario` to `mock`: rotation and refresh-token lifetime, the client's state, the
/// stored credential, the clock, then the token and API scripts. `mock` should be fresh (just
/// started from [`mock_config`], or reset).
///
/// # Errors
/// A step of the scenario's scripts that does not describe a mock step.
pub fn apply(scenario: &Scenario, mock: &MockGoogle) -> Result<SeededCredential, String> {
    let token_steps = super::mock_steps(&scenario.token)?;
    let api_steps = super::mock_steps(&scenario.api)?;
    mock.set_rotate_refresh_tokens(scenario.mock.rotate_refresh_tokens);
    mock.set_rotation_grace(Duration::from_millis(scenario.mock.rotation_grace_ms));
    mock.set_reuse_revokes_family(scenario.mock.reuse_revokes_family);
    mock.set_refresh_token_ttl(
        scenario
            .mock
            .testing_app
            .then_some(TESTING_APP_REFRESH_TOKEN_TTL),
    );

    let setup = &scenario.credential;
    let scopes = setup.scopes.clone();
    if scopes.iter().any(|s| s == "openid") {
        // The id_token signing key now, not while the client waits for its first refresh.
        mock.signing_key_ids()
            .map_err(|e| format!("no id_token signing key: {e}"))?;
    }
    if scenario.mock.newer_consents > 0 {
        mock.set_refresh_token_limit(Some(MAX_LIVE_REFRESH_TOKENS));
    }
    let refresh_token = match setup.refresh_token {
        RefreshSetup::Live | RefreshSetup::Revoked => {
            mock.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes)
        }
        RefreshSetup::Unknown => format!("1//unknown-{}", uuid::Uuid::new_v4().simple()),
        RefreshSetup::OtherClient => mock.issue_refresh_token(OTHER_CLIENT_ID, &scopes),
        RefreshSetup::RotatedElsewhere => {
            let token = mock.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes);
            // The successor went to a worker that is gone, or was overwritten: nobody holds it.
            let _ = mock.rotate_refresh_token(&token);
            token
        }
    };
    let other_deployments = (0..scenario.mock.other_deployments)
        .filter_map(|_| mock.issue_access_token_if_usable(&refresh_token))
        .map(AccessToken::from)
        .collect();
    let (client_id, client_secret) = match setup.client {
        ClientSetup::Registered => (DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        ClientSetup::Unknown => (UNKNOWN_CLIENT_ID, "x"),
        ClientSetup::WrongSecret => (DEFAULT_CLIENT_ID, "wrong-secret"),
        ClientSetup::Deleted => {
            mock.set_client_deleted(DEFAULT_CLIENT_ID, true);
            (DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        }
    };
    for _ in 0..scenario.mock.newer_consents {
        // The user signs in again elsewhere; these tokens are not the application's.
        let _ = mock.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes);
    }
    let now = Utc::now();
    // The stored access token came with the stored refresh token (one grant, as at Google:
    // revoking either kills the other), unless that refresh token is not this client's.
    let mint = |ttl: Duration| match setup.refresh_token {
        RefreshSetup::Live | RefreshSetup::Revoked | RefreshSetup::RotatedElsewhere => mock
            .issue_access_token_for(&refresh_token, ttl)
            .ok_or_else(|| "the seeded refresh token is unknown to the mock".to_string()),
        RefreshSetup::Unknown | RefreshSetup::OtherClient => {
            Ok(mock.issue_access_token(DEFAULT_CLIENT_ID, &scopes, ttl))
        }
    };
    let (access_token, expiry) = match setup.access_token {
        AccessSetup::Valid | AccessSetup::Revoked => (
            Some(mint(Duration::from_secs(3600))?),
            Some(now + TimeDelta::seconds(3600)),
        ),
        AccessSetup::Expired => (
            Some(mint(Duration::ZERO)?),
            Some(now - TimeDelta::seconds(60)),
        ),
        AccessSetup::None => (None, None),
    };
    // The user's revocation: through the refresh token, or the application's own "disconnect"
    // through the access token; now, or after the scenario's delay.
    let revoked = match (setup.refresh_token, setup.access_token, &access_token) {
        (_, AccessSetup::Revoked, Some(access)) => Some(access.as_str()),
        (RefreshSetup::Revoked, ..) => Some(refresh_token.as_str()),
        _ => None,
    };
    if let Some(token) = revoked {
        let delay = Duration::from_secs(scenario.mock.revocation_delay_seconds);
        if !mock.revoke_after(token, delay) {
            return Err("the seeded token could not be revoked".to_string());
        }
    }
    if scenario.mock.advance_clock_hours > 0 {
        mock.advance_clock(Duration::from_secs(
            scenario.mock.advance_clock_hours.saturating_mul(3600),
        ));
    }
    mock.set_token_script(token_steps);
    mock.set_api_script(api_steps);
    Ok(SeededCredential {
        client_id: client_id.to_owned(),
        client_secret: ClientSecret::from(client_secret),
        refresh_token: RefreshToken::from(refresh_token),
        access_token: access_token.map(AccessToken::from),
        expiry,
        scopes,
        other_deployments,
    })
}
