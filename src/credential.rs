//! What a stored Google credential holds once decrypted, and its JSON form inside the envelope.
//!
//! The payload is the JSON object staging databases already keep encrypted for a Google
//! credential: `access_token`, `refresh_token`, `expiry` (RFC 3339), `scopes`, `token_type`, and
//! optionally `client_id` / `client_secret` / `id_token`.
//!
//! # Security
//! Every token and the client secret has its own type from [`crate::secret`] (an access token
//! cannot be passed where a refresh token is wanted); `Debug` prints presence only. The
//! serialized form exists only inside [`GoogleCredential::to_payload`], in a zeroizing buffer.

use crate::secret::{AccessToken, ClientSecret, IdToken, RefreshToken, REDACTED};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroizing;

/// The decrypted contents of a credential row.
#[derive(Clone)]
pub struct GoogleCredential {
    /// The current access token, if one was ever issued.
    pub access_token: Option<AccessToken>,
    /// The refresh token; without one the credential can never be refreshed.
    pub refresh_token: Option<RefreshToken>,
    /// When the access token expires.
    pub expiry: Option<DateTime<Utc>>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Usually `Bearer`.
    pub token_type: String,
    /// The OAuth client the refresh token was issued to, when the credential carries it.
    pub client_id: Option<String>,
    /// That client's secret.
    pub client_secret: Option<ClientSecret>,
    /// The last OpenID Connect ID token, when the `openid` scope was granted.
    pub id_token: Option<IdToken>,
}

impl fmt::Debug for GoogleCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |present: bool| if present { REDACTED } else { "none" };
        f.debug_struct("GoogleCredential")
            .field("access_token", &shown(self.access_token.is_some()))
            .field("refresh_token", &shown(self.refresh_token.is_some()))
            .field("expiry", &self.expiry)
            .field("scopes", &self.scopes)
            .field("token_type", &self.token_type)
            .field("client_id", &self.client_id)
            .field("client_secret", &shown(self.client_secret.is_some()))
            .field("id_token", &shown(self.id_token.is_some()))
            .finish()
    }
}

#[derive(Serialize)]
struct PayloadOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    expiry: Option<DateTime<Utc>>,
    scopes: &'a [String],
    token_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
}

#[derive(Deserialize)]
struct PayloadIn {
    access_token: Option<AccessToken>,
    refresh_token: Option<RefreshToken>,
    #[serde(default)]
    expiry: Option<DateTime<Utc>>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default = "bearer")]
    token_type: String,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    id_token: Option<IdToken>,
}

fn bearer() -> String {
    "Bearer".to_owned()
}

impl GoogleCredential {
    /// The JSON payload that goes inside the envelope.
    pub fn to_payload(&self) -> Zeroizing<Vec<u8>> {
        let out = PayloadOut {
            access_token: self.access_token.as_ref().map(|s| s.expose_secret()),
            refresh_token: self.refresh_token.as_ref().map(|s| s.expose_secret()),
            expiry: self.expiry,
            scopes: &self.scopes,
            token_type: &self.token_type,
            client_id: self.client_id.as_deref(),
            client_secret: self.client_secret.as_ref().map(|s| s.expose_secret()),
            id_token: self.id_token.as_ref().map(|s| s.expose_secret()),
        };
        // Serializing plain strings, options and a timestamp into memory cannot fail.
        Zeroizing::new(serde_json::to_vec(&out).unwrap_or_default())
    }

    /// Reads a decrypted payload.
    ///
    /// # Errors
    /// A description of what is wrong; it never quotes payload content, because serde's own
    /// messages can echo a token that sits in a field of the wrong type.
    pub fn from_payload(bytes: &[u8]) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("not JSON ({})", e.classify_name()))?;
        if !value.is_object() {
            return Err("not a JSON object".to_owned());
        }
        for (field, want_string) in [
            ("access_token", true),
            ("refresh_token", true),
            ("expiry", true),
            ("token_type", true),
            ("client_id", true),
            ("client_secret", true),
            ("id_token", true),
            ("scopes", false),
        ] {
            match value.get(field) {
                None | Some(serde_json::Value::Null) => {}
                Some(v) if want_string && !v.is_string() => {
                    return Err(format!("field {field} is not a string"))
                }
                Some(v)
                    if !want_string
                        && !v
                            .as_array()
                            .is_some_and(|a| a.iter().all(|s| s.is_string())) =>
                {
                    return Err(format!("field {field} is not a list of strings"))
                }
                _ => {}
            }
        }
        let p: PayloadIn = serde_json::from_value(value)
            .map_err(|_| "field expiry is not an RFC 3339 timestamp".to_owned())?;
        Ok(Self {
            access_token: p.access_token,
            refresh_token: p.refresh_token,
            expiry: p.expiry,
            scopes: p.scopes,
            token_type: p.token_type,
            client_id: p.client_id,
            client_secret: p.client_secret,
            id_token: p.id_token,
        })
    }
}

/// serde_json's error category, without the message (which may quote input).
trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

/// Where a JSON syntax error is, as `line L, column C`, without quoting input.
pub fn json_error_position(e: &serde_json::Error) -> String {
    format!(
        "{} at line {}, column {}",
        e.classify_name(),
        e.line(),
        e.column()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GoogleCredential {
        GoogleCredential {
            access_token: Some(AccessToken::from("ya29.PLANTED-ACCESS")),
            refresh_token: Some(RefreshToken::from("1//PLANTED-REFRESH")),
            expiry: Some("2030-01-01T00:00:00Z".parse().unwrap()),
            scopes: vec!["https://www.googleapis.com/auth/gmail.readonly".into()],
            token_type: "Bearer".into(),
            client_id: Some("cid.apps.googleusercontent.com".into()),
            client_secret: Some(ClientSecret::from("PLANTED-CLIENT-SECRET")),
            id_token: None,
        }
    }

    #[test]
    fn payload_round_trips() {
        let c = GoogleCredential::from_payload(&sample().to_payload()).unwrap();
        assert_eq!(
            c.refresh_token.unwrap().expose_secret(),
            "1//PLANTED-REFRESH"
        );
        assert_eq!(
            c.access_token.unwrap().expose_secret(),
            "ya29.PLANTED-ACCESS"
        );
        assert_eq!(
            c.client_secret.unwrap().expose_secret(),
            "PLANTED-CLIENT-SECRET"
        );
        assert_eq!(c.scopes.len(), 1);
        assert_eq!(c.expiry, sample().expiry);
    }

    #[test]
    fn debug_shows_presence_not_secrets() {
        let shown = format!("{:?}", sample());
        assert!(!shown.contains("PLANTED"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn bad_payload_errors_never_quote_the_payload() {
        for bad in [
            br#"{"refresh_token": 12, "access_token":"ya29.PLANTED"}"#.as_slice(),
            br#"{"expiry": "ya29.PLANTED"}"#,
            br#"{"scopes": "ya29.PLANTED"}"#,
            br#"ya29.PLANTED"#,
            br#"["ya29.PLANTED"]"#,
        ] {
            let err = GoogleCredential::from_payload(bad).unwrap_err();
            assert!(!err.contains("PLANTED"), "{err}");
        }
    }
}
