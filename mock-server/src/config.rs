//! What the mock Google is: its registered OAuth clients and how its tokens live and die.
//!
//! Kept apart from the server so a scenario can describe a provider (one that rotates refresh
//! tokens, an app still in "Testing" status, a deleted client) as plain data before any port is
//! opened.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use crate::error::MockError;

/// The most the mock clock may run ahead of the real one: 100 years. Further advances are
/// refused by [`MockGoogle::try_advance_clock`](crate::MockGoogle::try_advance_clock) and cut
/// to this by [`MockGoogle::advance_clock`](crate::MockGoogle::advance_clock), so every time
/// the mock computes stays far inside `i64` milliseconds.
pub const MAX_CLOCK_OFFSET: Duration =
    Duration::from_secs(100 * 365 * 24 * 60 * 60 + 25 * 24 * 60 * 60);

/// The client id registered by [`MockConfig::default`].
pub const DEFAULT_CLIENT_ID: &str = "mock-client-id.apps.googleusercontent.com";
/// The client secret registered by [`MockConfig::default`].
pub const DEFAULT_CLIENT_SECRET: &str = "mock-client-secret";
/// The account the default configuration's tokens belong to.
pub const DEFAULT_EMAIL: &str = "test-user@example.com";
/// The `sub` (Google account id) of the default configuration: 21 digits, like Google's.
pub const DEFAULT_SUBJECT: &str = "110248495921238986420";
/// `expires_in` as Google sends it in real logs.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(3599);
/// How long refresh tokens of an app in "Testing" publishing status live: seven days.
pub const TESTING_APP_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How many journal entries the mock keeps by default.
pub const DEFAULT_JOURNAL_CAPACITY: usize = 1_000_000;

/// One OAuth client known to the mock, as registered in a Google Cloud console.
///
/// An empty `client_secret` registers a public client (installed app without a secret): the
/// mock then accepts a refresh without any secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRegistration {
    /// The client id, e.g. `123-abc.apps.googleusercontent.com`.
    pub client_id: String,
    /// The client secret the token endpoint expects.
    pub client_secret: String,
    /// A deleted client answers every refresh with `deleted_client`.
    pub deleted: bool,
    /// Redirect URIs registered for sign-in. Empty: any loopback URI (`http://127.0.0.1:PORT`,
    /// `http://localhost:PORT`, `http://[::1]:PORT`, any path), as Google allows installed apps.
    pub redirect_uris: Vec<String>,
}

impl ClientRegistration {
    /// A live (not deleted) client.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            deleted: false,
            redirect_uris: Vec::new(),
        }
    }

    /// The same client with these registered redirect URIs.
    pub fn with_redirect_uris(mut self, uris: Vec<String>) -> Self {
        self.redirect_uris = uris;
        self
    }
}

impl fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRegistration")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("deleted", &self.deleted)
            .field("redirect_uris", &self.redirect_uris)
            .finish()
    }
}

/// How the mock Google behaves. Build it with struct update syntax over [`MockConfig::default`].
///
/// `Debug` is safe to print: client secrets are redacted.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Registered OAuth clients.
    pub clients: Vec<ClientRegistration>,
    /// Lifetime of issued access tokens on the mock clock, and `expires_in` of refresh responses.
    pub access_token_ttl: Duration,
    /// Google does not rotate refresh tokens. When `true`, every successful refresh returns a new
    /// `refresh_token` and the presented one becomes [`TokenStatus::Superseded`](crate::TokenStatus).
    pub rotate_refresh_tokens: bool,
    /// `Some(7 days)` models an app in "Testing" status: refresh tokens die that long after they
    /// were issued (on the mock clock). A rotated token inherits its predecessor's deadline.
    pub refresh_token_ttl: Option<Duration>,
    /// With rotation: how long a superseded refresh token still refreshes after it was
    /// superseded (on the mock clock), as providers with a rotation grace period (leeway) allow
    /// so that two workers racing on one token both succeed. Zero (the default): not at all.
    pub rotation_grace: Duration,
    /// Refresh-token reuse detection: a superseded refresh token presented after its grace
    /// window is taken as stolen, and the whole family (every token of its grant, the newest
    /// refresh token included) is revoked. Off by default (Google does not rotate).
    pub reuse_revokes_family: bool,
    /// The account the tokens belong to (tokeninfo `email`, Gmail `emailAddress`, id_token `email`).
    pub email: String,
    /// The account id (`sub`).
    pub subject: String,
    /// The journal keeps at most this many entries (the most recent ones).
    /// [`MockGoogle::token_request_count`](crate::MockGoogle::token_request_count) stays exact.
    pub journal_capacity: usize,
    /// Whether Gmail API calls are journaled (default true). Long load runs that judge only the
    /// token endpoint turn this off so memory stays flat however many jobs run.
    pub journal_api_calls: bool,
    /// `iss` of the id_tokens and `issuer` of the discovery document (default
    /// `https://accounts.google.com`, what Google's client libraries insist on).
    pub issuer: String,
    /// The RS256 key that signs id_tokens; `None` generates one when first needed.
    pub signing_key: Option<SigningKeyPem>,
    /// How the sign-in endpoint's consent step answers.
    pub consent: Consent,
    /// Google's limit of live refresh tokens per account and client
    /// ([`MAX_LIVE_REFRESH_TOKENS`](crate::MAX_LIVE_REFRESH_TOKENS)): beyond it, each new one
    /// silently kills the oldest. Off by default, because the tokens a test mints all belong to
    /// one account where a real application's belong to many.
    pub refresh_token_limit: Option<usize>,
}

/// An RSA private key in PEM (PKCS#8 or PKCS#1). `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyPem(pub String);

impl fmt::Debug for SigningKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKeyPem([redacted])")
    }
}

/// What the auto-approving consent screen of `/o/oauth2/v2/auth` does: which account signs in,
/// whether the user refuses, which requested scopes the user unticks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consent {
    /// The account that signs in (its email). `None`: `login_hint` when it is an email, else
    /// [`MockConfig::email`].
    pub account: Option<String>,
    /// The user clicks "Cancel": the redirect carries `error=access_denied`.
    pub deny: bool,
    /// Requested scopes the user does not grant (granular consent); `openid`, `email` and
    /// `profile` are always granted.
    pub withhold_scopes: Vec<String>,
    /// Device flow: how many polls of a new device code are answered `authorization_pending`
    /// before the user's answer (0: the first poll gets it).
    pub device_pending_polls: u32,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            clients: vec![ClientRegistration::new(
                DEFAULT_CLIENT_ID,
                DEFAULT_CLIENT_SECRET,
            )],
            access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            rotate_refresh_tokens: false,
            refresh_token_ttl: None,
            rotation_grace: Duration::ZERO,
            reuse_revokes_family: false,
            email: DEFAULT_EMAIL.to_string(),
            subject: DEFAULT_SUBJECT.to_string(),
            journal_capacity: DEFAULT_JOURNAL_CAPACITY,
            journal_api_calls: true,
            issuer: crate::wire::ID_TOKEN_ISSUER.to_string(),
            signing_key: None,
            consent: Consent::default(),
            refresh_token_limit: None,
        }
    }
}

impl MockConfig {
    /// The default configuration for an app whose consent screen is in "Testing" status:
    /// refresh tokens die after [`TESTING_APP_REFRESH_TOKEN_TTL`].
    pub fn testing_app() -> Self {
        Self {
            refresh_token_ttl: Some(TESTING_APP_REFRESH_TOKEN_TTL),
            ..Self::default()
        }
    }

    /// Rejects configurations the mock cannot serve faithfully.
    pub(crate) fn validate(&self) -> Result<(), MockError> {
        let mut seen = HashSet::new();
        for client in &self.clients {
            if client.client_id.is_empty() {
                return Err(MockError::InvalidConfig(
                    "a registered client has an empty client_id".to_string(),
                ));
            }
            if !seen.insert(client.client_id.as_str()) {
                return Err(MockError::InvalidConfig(format!(
                    "client_id {:?} is registered twice",
                    client.client_id
                )));
            }
        }
        if let Some(pem) = &self.signing_key {
            crate::signing::KeyRing::from_pem(&pem.0)?;
        }
        if self.issuer.is_empty() {
            return Err(MockError::InvalidConfig("the issuer is empty".to_string()));
        }
        if self.access_token_ttl.is_zero() {
            return Err(MockError::InvalidConfig(
                "access_token_ttl must be at least one second".to_string(),
            ));
        }
        let limit = MAX_CLOCK_OFFSET;
        for (name, ttl) in [
            ("access_token_ttl", Some(self.access_token_ttl)),
            ("refresh_token_ttl", self.refresh_token_ttl),
            ("rotation_grace", Some(self.rotation_grace)),
        ] {
            if ttl.is_some_and(|ttl| ttl > limit) {
                return Err(MockError::InvalidConfig(format!(
                    "{name} must be at most {} s (100 years)",
                    limit.as_secs()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_registers_the_default_client_and_google_lifetimes() {
        let config = MockConfig::default();
        assert_eq!(config.clients.len(), 1);
        assert_eq!(config.clients[0].client_id, DEFAULT_CLIENT_ID);
        assert_eq!(config.clients[0].client_secret, DEFAULT_CLIENT_SECRET);
        assert!(!config.clients[0].deleted);
        assert_eq!(config.access_token_ttl, Duration::from_secs(3599));
        assert!(!config.rotate_refresh_tokens);
        assert_eq!(config.refresh_token_ttl, None);
        assert_eq!(config.email, "test-user@example.com");
        assert_eq!(config.journal_capacity, 1_000_000);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn debug_output_never_shows_a_client_secret() {
        let printed = format!("{:?}", MockConfig::default());
        assert!(!printed.contains(DEFAULT_CLIENT_SECRET), "{printed}");
        assert!(printed.contains("[redacted]"));
    }

    #[test]
    fn token_lifetimes_beyond_a_hundred_years_are_rejected_naming_the_limit() {
        let huge = MockConfig {
            access_token_ttl: Duration::MAX,
            ..MockConfig::default()
        };
        let err = huge.validate().expect_err("too long").to_string();
        assert!(
            err.contains("access_token_ttl must be at most 3155760000 s"),
            "{err}"
        );
        let huge = MockConfig {
            refresh_token_ttl: Some(Duration::from_secs(u64::MAX)),
            ..MockConfig::default()
        };
        assert!(huge.validate().is_err());
        assert!(MockConfig::testing_app().validate().is_ok());
    }

    #[test]
    fn duplicate_client_ids_are_rejected() {
        let config = MockConfig {
            clients: vec![
                ClientRegistration::new("a", "1"),
                ClientRegistration::new("a", "2"),
            ],
            ..MockConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(MockError::InvalidConfig(_))
        ));
    }
}
