//! The shapes of Google's token-endpoint JSON as `oauth2` reads them, and the `oauth2` client
//! type built from them.
//!
//! `oauth2`'s `BasicClient` reads neither `id_token` (returned with the `openid` scope) nor
//! `error_subtype` (Google's `invalid_rapt`), so the client here uses its own token-extras and
//! error types.

use std::fmt;

use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    EndpointNotSet, EndpointSet, ErrorResponse, ExtraTokenFields, StandardRevocableToken,
    StandardTokenResponse,
};
use serde::{Deserialize, Serialize};

/// Fields of Google's token response beyond RFC 6749's.
///
/// # Security
///
/// Holds the ID token: `Debug` is redacted by hand (`oauth2` requires `Debug` on this type).
#[derive(Deserialize, Serialize)]
pub(crate) struct GoogleTokenFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id_token: Option<String>,
}

impl fmt::Debug for GoogleTokenFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleTokenFields")
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl ExtraTokenFields for GoogleTokenFields {}

/// Google's OAuth error body: RFC 6749's fields plus `error_subtype`.
///
/// Holds only what the server chose to say; never one of our secrets unless the server echoed
/// it, which classification scrubs.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct GoogleErrorResponse {
    pub(crate) error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error_subtype: Option<String>,
}

impl fmt::Display for GoogleErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(description) = &self.error_description {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

impl ErrorResponse for GoogleErrorResponse {}

/// A successful token response as `oauth2` parses it.
pub(crate) type GoogleTokenResponse = StandardTokenResponse<GoogleTokenFields, BasicTokenType>;

/// An `oauth2` client with only the token endpoint set.
pub(crate) type GoogleClient = oauth2::Client<
    GoogleErrorResponse,
    GoogleTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;
