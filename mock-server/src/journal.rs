//! The journal: what the mock received and how it answered, in order, without any raw token.
//!
//! Scenarios prove behaviour from the outside: "the app refreshed once, with Basic auth, and did
//! not retry the `invalid_grant`". That needs a record of every request, but not the requests
//! themselves (they hold tokens, and a long run would keep them all): the journal keeps only
//! what a verdict needs, with tokens reduced to [`fingerprint`](crate::fingerprint)s, and at
//! most [`MockConfig::journal_capacity`](crate::MockConfig::journal_capacity) entries.

use std::time::Duration;

use crate::tokens::TokenStatus;

/// `JournalEntry::action` of a request answered by the stateful Google logic.
pub const ACTION_GOOGLE: &str = "google";
/// `JournalEntry::action` of a request answered by a script step (a canned answer or
/// [`Action::RevokeThenGoogle`](crate::Action::RevokeThenGoogle)).
pub const ACTION_SCRIPTED: &str = "scripted";
/// `JournalEntry::action` of a request whose connection was closed without an answer.
pub const ACTION_DROPPED: &str = "dropped";

/// Which endpoint a request hit, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/token`, and Google's legacy token paths `/o/oauth2/token` and `/oauth2/v4/token`
    Token,
    /// `/tokeninfo` (also `/oauth2/v3/tokeninfo`)
    TokenInfo,
    /// `/revoke`
    Revoke,
    /// `/gmail/v1/users/me/profile`
    Api,
    /// OpenID discovery: `/.well-known/openid-configuration`, the key set it points to,
    /// `/oauth2/v3/certs`, and the same keys as certificates, `/oauth2/v1/certs`.
    Discovery,
    /// Sign-in: `/o/oauth2/v2/auth` (also the older `/o/oauth2/auth`), and the device flow's
    /// `/device/code`.
    Authorize,
    /// OpenID userinfo: `/v1/userinfo` and `/oauth2/v3/userinfo`.
    UserInfo,
    /// Any other path (answered 404).
    Other,
}

/// Path of the token endpoint.
pub(crate) const TOKEN_PATH: &str = "/token";
/// Path of the tokeninfo endpoint.
pub(crate) const TOKENINFO_PATH: &str = "/tokeninfo";
/// Path of the revoke endpoint.
pub(crate) const REVOKE_PATH: &str = "/revoke";
/// Path of the Gmail profile call.
pub(crate) const API_PATH: &str = "/gmail/v1/users/me/profile";
/// Path of the OpenID discovery document.
pub(crate) const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Path of the JSON Web Key Set the discovery document names.
pub(crate) const CERTS_PATH: &str = "/oauth2/v3/certs";
/// Path of the same keys as a map from key id to certificate PEM.
pub(crate) const PEM_CERTS_PATH: &str = "/oauth2/v1/certs";
/// Path of the sign-in (authorization) endpoint.
pub(crate) const AUTHORIZE_PATH: &str = "/o/oauth2/v2/auth";
/// Path of the device flow's code endpoint.
pub(crate) const DEVICE_CODE_PATH: &str = "/device/code";
/// Path of the userinfo endpoint the discovery document names.
pub(crate) const USERINFO_PATH: &str = "/v1/userinfo";
/// Google's legacy token paths, still used by older clients.
pub(crate) const LEGACY_TOKEN_PATHS: [&str; 2] = ["/o/oauth2/token", "/oauth2/v4/token"];

impl Endpoint {
    pub(crate) fn from_path(path: &str) -> Self {
        match path {
            TOKEN_PATH | "/o/oauth2/token" | "/oauth2/v4/token" => Self::Token,
            TOKENINFO_PATH | "/oauth2/v3/tokeninfo" => Self::TokenInfo,
            REVOKE_PATH => Self::Revoke,
            API_PATH => Self::Api,
            DISCOVERY_PATH | CERTS_PATH | PEM_CERTS_PATH => Self::Discovery,
            AUTHORIZE_PATH | "/o/oauth2/auth" | DEVICE_CODE_PATH => Self::Authorize,
            USERINFO_PATH | "/oauth2/v3/userinfo" => Self::UserInfo,
            _ => Self::Other,
        }
    }

    /// Every endpoint, in the order of [`Endpoint::name`]'s documentation.
    pub const ALL: [Endpoint; 8] = [
        Self::Token,
        Self::TokenInfo,
        Self::Revoke,
        Self::Api,
        Self::Discovery,
        Self::Authorize,
        Self::UserInfo,
        Self::Other,
    ];

    /// A short stable name: `token`, `tokeninfo`, `revoke`, `api`, `discovery`, `authorize`,
    /// `userinfo` or `other`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::TokenInfo => "tokeninfo",
            Self::Revoke => "revoke",
            Self::Api => "api",
            Self::Discovery => "discovery",
            Self::Authorize => "authorize",
            Self::UserInfo => "userinfo",
            Self::Other => "other",
        }
    }

    /// The endpoint a [`name`](Self::name) stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// How the client presented its credentials to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAuth {
    /// `client_id` (and `client_secret`) as form fields.
    Body,
    /// `Authorization: Basic` (RFC 6749 section 2.3.1). Wins when both are sent.
    Basic,
    /// No client id at all, or not a token-endpoint request.
    None,
}

impl ClientAuth {
    /// A short stable name: `body`, `basic` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Body => "body",
            Self::Basic => "basic",
            Self::None => "none",
        }
    }
}

/// One request the mock received. Holds fingerprints, never raw tokens, so `Debug` is safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Position among all requests since start (or [`reset`](crate::MockGoogle::reset)),
    /// starting at 1. Gaps at the front mean the journal reached its capacity.
    pub seq: u64,
    /// The mock clock when the request arrived, unix seconds.
    pub mock_time_unix: i64,
    /// Real time since the server started.
    pub elapsed: Duration,
    /// Which endpoint, by path.
    pub endpoint: Endpoint,
    /// HTTP method.
    pub method: String,
    /// `grant_type` form field (token endpoint).
    pub grant_type: Option<String>,
    /// The client id presented (token endpoint), from Basic auth or the body.
    pub client_id: Option<String>,
    /// How the client authenticated (token endpoint).
    pub client_auth: ClientAuth,
    /// Fingerprint of the `refresh_token` form field (token endpoint).
    pub refresh_token_fingerprint: Option<String>,
    /// The presented refresh token's status when the request arrived, before it was handled.
    pub refresh_token_status: Option<TokenStatus>,
    /// Fingerprint of the refresh token a token-endpoint 200 handed out (an authorization-code
    /// exchange, a rotation): with [`refresh_token_fingerprint`](Self::refresh_token_fingerprint)
    /// it links a credential's requests across rotations.
    pub issued_refresh_token_fingerprint: Option<String>,
    /// Fingerprint of the token presented to tokeninfo (`access_token`), revoke (`token`) or the
    /// API (bearer).
    pub token_fingerprint: Option<String>,
    /// Status sent; `None` when the connection was dropped.
    pub status: Option<u16>,
    /// [`ACTION_GOOGLE`], [`ACTION_SCRIPTED`] or [`ACTION_DROPPED`].
    pub action: &'static str,
    /// The error code answered: the `error` field of a token-endpoint body (also parsed out of
    /// canned JSON bodies), `invalid_token` for tokeninfo, revoke and API rejections,
    /// `method_not_allowed`, `not_found`, or `invalid_script` for an unusable canned step.
    pub error: Option<String>,
}
