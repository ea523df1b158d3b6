//! The JSON shapes users actually have a Google credential in, read into a [`GoogleCredential`].
//!
//! - The OAuth 2.0 Playground's token response (what staging guides tell people to paste):
//!   `access_token`, `refresh_token`, `expires_in`, `scope`, `token_type`, maybe `id_token`.
//!   It carries no client, so the client id/secret come from flags or the environment.
//! - Google's `authorized_user` file (what `gcloud auth application-default login` writes):
//!   `type`, `client_id`, `client_secret`, `refresh_token`; no access token.
//! - google-auth's `Credentials.to_json()` (Python): `token`, `refresh_token`, `client_id`,
//!   `client_secret`, `scopes`, `expiry`.
//!
//! A pure function of its input, so it can be fuzzed. Errors name the field at fault and never
//! quote a value: serde's own messages are not used because they can echo a token.

use crate::credential::{json_error_position, GoogleCredential};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use secrecy::SecretString;
use serde_json::{Map, Value};

/// Which shape an import was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// The OAuth 2.0 Playground's token response.
    PlaygroundTokenResponse,
    /// Google's `authorized_user` JSON.
    AuthorizedUser,
    /// google-auth's `Credentials.to_json()`.
    GoogleAuthCredentials,
}

/// The client to attach when the JSON carries none.
#[derive(Debug, Default)]
pub struct ClientDefaults {
    /// From `--client-id` / `GOOGLE_CLIENT_ID`.
    pub client_id: Option<String>,
    /// From `--client-secret` / `GOOGLE_CLIENT_SECRET`.
    pub client_secret: Option<SecretString>,
}

/// Largest import accepted: real files are a few kilobytes.
pub const MAX_IMPORT_BYTES: usize = 1 << 20;

/// Reads `bytes` as one of the known shapes; `now` anchors `expires_in`.
///
/// # Errors
/// A description naming the field at fault, without quoting any value.
pub fn parse(
    bytes: &[u8],
    defaults: &ClientDefaults,
    now: DateTime<Utc>,
) -> Result<(GoogleCredential, Shape), String> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(format!(
            "is {} bytes; a credential file is at most {MAX_IMPORT_BYTES}",
            bytes.len()
        ));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("is not valid JSON ({})", json_error_position(&e)))?;
    let obj = value
        .as_object()
        .ok_or("is not a JSON object; expected a token response or an authorized_user file")?;
    let fields = Fields(obj);

    let (shape, access_token, expiry) = if fields.string("type")? == Some("authorized_user") {
        (Shape::AuthorizedUser, None, None)
    } else if obj.contains_key("token") {
        let expiry = fields
            .string("expiry")?
            .map(|s| parse_timestamp(s).ok_or("field expiry is not an ISO 8601 timestamp"))
            .transpose()?;
        (
            Shape::GoogleAuthCredentials,
            fields.string("token")?,
            expiry,
        )
    } else if obj.contains_key("access_token") {
        let expiry = match obj.get("expires_in") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let secs = v
                    .as_i64()
                    .filter(|s| (0..=10 * 365 * 86_400).contains(s))
                    .ok_or("field expires_in is not a number of seconds")?;
                Some(now + TimeDelta::seconds(secs))
            }
        };
        (
            Shape::PlaygroundTokenResponse,
            fields.string("access_token")?,
            expiry,
        )
    } else if obj.contains_key("refresh_token") && obj.contains_key("client_id") {
        (Shape::AuthorizedUser, None, None)
    } else {
        return Err(
            "is not a shape oauthtest knows: expected an OAuth 2.0 Playground token \
                    response (access_token, refresh_token, expires_in) or an authorized_user \
                    file (type, client_id, client_secret, refresh_token)"
                .into(),
        );
    };

    let refresh_token = fields.string("refresh_token")?.ok_or(
        "has no refresh_token: without one the credential can never be refreshed (authorize \
         with access_type=offline to get one)",
    )?;
    let scopes = match obj.get("scopes") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or("field scopes is not a list of strings")?,
        Some(Value::Null) | None => fields
            .string("scope")?
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        Some(_) => return Err("field scopes is not a list of strings".into()),
    };
    let client_id = fields
        .string("client_id")?
        .map(str::to_owned)
        .or_else(|| defaults.client_id.clone());
    let client_secret = fields
        .string("client_secret")?
        .map(SecretString::from)
        .or_else(|| defaults.client_secret.clone());

    Ok((
        GoogleCredential {
            access_token: access_token.map(SecretString::from),
            refresh_token: Some(SecretString::from(refresh_token)),
            expiry,
            scopes,
            token_type: fields.string("token_type")?.unwrap_or("Bearer").to_owned(),
            client_id,
            client_secret,
            id_token: fields.string("id_token")?.map(SecretString::from),
        },
        shape,
    ))
}

struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    /// A string field; absent, null and empty all read as `None`.
    fn string(&self, name: &str) -> Result<Option<&str>, String> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim())),
            Some(_) => Err(format!("field {name} is not a string")),
        }
    }
}

/// RFC 3339, or google-auth's naive UTC ISO form (`2024-05-01T12:34:56.789012`, maybe with `Z`).
fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn parse_ok(json: &str, defaults: &ClientDefaults) -> (GoogleCredential, Shape) {
        parse(json.as_bytes(), defaults, now()).unwrap()
    }

    #[test]
    fn playground_response_takes_client_from_defaults() {
        let defaults = ClientDefaults {
            client_id: Some("cid".into()),
            client_secret: Some(SecretString::from("csecret")),
        };
        let (c, shape) = parse_ok(
            r#"{"access_token":"ya29.a","expires_in":3599,"refresh_token":"1//r",
                "scope":"openid https://www.googleapis.com/auth/gmail.readonly","token_type":"Bearer",
                "id_token":"eyJ.x.y"}"#,
            &defaults,
        );
        assert_eq!(shape, Shape::PlaygroundTokenResponse);
        assert_eq!(c.expiry, Some(now() + TimeDelta::seconds(3599)));
        assert_eq!(c.scopes.len(), 2);
        assert_eq!(c.client_id.as_deref(), Some("cid"));
        assert_eq!(c.client_secret.unwrap().expose_secret(), "csecret");
        assert!(c.id_token.is_some());
    }

    #[test]
    fn authorized_user_file_has_no_access_token_and_its_own_client() {
        let defaults = ClientDefaults {
            client_id: Some("other".into()),
            client_secret: None,
        };
        let (c, shape) = parse_ok(
            r#"{"client_id":"cid.apps.googleusercontent.com","client_secret":"s",
                "refresh_token":"1//r","type":"authorized_user","universe_domain":"googleapis.com"}"#,
            &defaults,
        );
        assert_eq!(shape, Shape::AuthorizedUser);
        assert!(c.access_token.is_none());
        assert!(c.expiry.is_none());
        assert_eq!(
            c.client_id.as_deref(),
            Some("cid.apps.googleusercontent.com")
        );
    }

    #[test]
    fn google_auth_to_json_reads_naive_expiry_and_scope_list() {
        let (c, shape) = parse_ok(
            r#"{"token":"ya29.t","refresh_token":"1//r","token_uri":"https://oauth2.googleapis.com/token",
                "client_id":"cid","client_secret":"s","scopes":["a","b"],
                "expiry":"2026-01-01T01:00:00.123456Z"}"#,
            &ClientDefaults::default(),
        );
        assert_eq!(shape, Shape::GoogleAuthCredentials);
        assert_eq!(c.scopes, vec!["a", "b"]);
        assert_eq!(c.expiry.unwrap().timestamp(), now().timestamp() + 3600);
    }

    #[test]
    fn missing_refresh_token_is_refused() {
        let err = parse(
            br#"{"access_token":"ya29.PLANTED","expires_in":3599}"#,
            &ClientDefaults::default(),
            now(),
        )
        .unwrap_err();
        assert!(err.contains("no refresh_token"), "{err}");
        assert!(!err.contains("PLANTED"));
    }

    #[test]
    fn errors_name_the_field_and_never_quote_values() {
        for (json, field) in [
            (
                r#"{"access_token":"ya29.PLANTED","refresh_token":7}"#,
                "refresh_token",
            ),
            (
                r#"{"access_token":"ya29.PLANTED","refresh_token":"1//x","expires_in":"ya29.PLANTED"}"#,
                "expires_in",
            ),
            (
                r#"{"token":"ya29.PLANTED","refresh_token":"1//x","expiry":"ya29.PLANTED"}"#,
                "expiry",
            ),
            (
                r#"{"token":"x","refresh_token":"1//x","scopes":["ya29.PLANTED",3]}"#,
                "scopes",
            ),
            (
                r#"{"type":"authorized_user","client_id":"c","refresh_token":{"a":"ya29.PLANTED"}}"#,
                "refresh_token",
            ),
        ] {
            let err = parse(json.as_bytes(), &ClientDefaults::default(), now()).unwrap_err();
            assert!(err.contains(field), "{json} → {err}");
            assert!(!err.contains("PLANTED"), "{json} → {err}");
        }
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        let err = parse(
            b"{\n  \"access_token\": ,\n}",
            &ClientDefaults::default(),
            now(),
        )
        .unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn unknown_shapes_and_non_objects_are_refused() {
        for json in [r#"{"foo":1}"#, "[1,2]", "\"ya29\""] {
            assert!(parse(json.as_bytes(), &ClientDefaults::default(), now()).is_err());
        }
    }
}
