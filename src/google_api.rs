//! The Google API calls that prove an access token works: the Gmail profile (a harmless read)
//! and tokeninfo.
//!
//! # Security
//! Functions taking a token take an [`AccessToken`] (never a refresh token) and skip it in spans; errors carry statuses and reasons, never tokens.

use crate::secret::AccessToken;
use std::time::Duration;

/// Google's tokeninfo endpoint, the default [`ApiEndpoints::tokeninfo_url`].
pub const GOOGLE_TOKENINFO_URL: &str = "https://oauth2.googleapis.com/tokeninfo";
/// The Gmail profile call, the default [`ApiEndpoints::profile_url`].
pub const GMAIL_PROFILE_URL: &str = "https://gmail.googleapis.com/gmail/v1/users/me/profile";

/// Where the API calls go; each URL is overridable so tests and `serve` can stand in for Google.
#[derive(Debug, Clone)]
pub struct ApiEndpoints {
    /// `GET` with a bearer token; 200 means the token works.
    pub profile_url: String,
    /// tokeninfo (`?access_token=`).
    pub tokeninfo_url: String,
}

impl Default for ApiEndpoints {
    fn default() -> Self {
        Self {
            profile_url: GMAIL_PROFILE_URL.into(),
            tokeninfo_url: GOOGLE_TOKENINFO_URL.into(),
        }
    }
}

/// What an API call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiResult {
    /// An HTTP status came back.
    Status(u16),
    /// No response: timeout, refused, reset.
    NoResponse(String),
}

impl ApiResult {
    /// Whether the token was accepted.
    pub fn ok(&self) -> bool {
        matches!(self, ApiResult::Status(200))
    }

    /// Whether the API said the token is not valid (so a refresh might help).
    pub fn unauthorized(&self) -> bool {
        matches!(self, ApiResult::Status(401))
    }
}

/// Calls the profile endpoint with `token`.
#[tracing::instrument(skip_all)]
pub async fn call_profile(
    http: &reqwest::Client,
    endpoints: &ApiEndpoints,
    token: &AccessToken,
) -> ApiResult {
    let sent = http
        .get(&endpoints.profile_url)
        .bearer_auth(token.expose_secret())
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match sent {
        Ok(resp) => ApiResult::Status(resp.status().as_u16()),
        Err(e) => ApiResult::NoResponse(describe(&e)),
    }
}

/// Calls tokeninfo for `token`; returns its JSON on 200.
#[tracing::instrument(skip_all)]
pub async fn tokeninfo(
    http: &reqwest::Client,
    endpoints: &ApiEndpoints,
    token: &AccessToken,
) -> Result<serde_json::Value, ApiResult> {
    let sent = http
        .get(&endpoints.tokeninfo_url)
        .query(&[("access_token", token.expose_secret())])
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().as_u16() == 200 => resp
            .json()
            .await
            .map_err(|_| ApiResult::NoResponse("tokeninfo body is not JSON".into())),
        Ok(resp) => Err(ApiResult::Status(resp.status().as_u16())),
        Err(e) => Err(ApiResult::NoResponse(describe(&e))),
    }
}

/// A reqwest error without its URL (which, for tokeninfo, holds the token).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}
