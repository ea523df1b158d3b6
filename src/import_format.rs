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
//!
//! Refused rather than guessed at: a key given twice (which one would win?), a key one typo away
//! from a field we read (`client_secert` would otherwise be ignored and the import succeed
//! without its secret), a `type` other than `authorized_user` (a service account key is no
//! user's credential), and tokens that are empty or hold control characters (NUL, CR, LF: no
//! token Google issues has one, and they break headers and logs).

use crate::credential::{json_error_position, GoogleCredential};
use crate::secret::{AccessToken, ClientSecret, IdToken, RefreshToken};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
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
    pub client_secret: Option<ClientSecret>,
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
    let top: TopLevel = serde_json::from_slice(bytes)
        .map_err(|e| format!("is not valid JSON ({})", json_error_position(&e)))?;
    let obj = match top {
        TopLevel::Object { map, duplicate } => {
            if let Some(key) = duplicate {
                return Err(format!(
                    "gives {} more than once; each field may appear once",
                    shown_key(&key)
                ));
            }
            map
        }
        TopLevel::Other => {
            return Err(
                "is not a JSON object; expected a token response or an authorized_user file".into(),
            )
        }
    };
    let obj = &obj;
    check_keys(obj)?;
    let fields = Fields(obj);

    let kind = fields.string("type")?;
    match kind {
        None | Some("authorized_user") => {}
        Some(other) => {
            let what = match other {
                "service_account" => {
                    "a service account key, which is not a user's OAuth \
                                      credential (it has no refresh token to test)"
                }
                "external_account" | "external_account_authorized_user" => {
                    "a workload identity federation file, not a user's OAuth credential"
                }
                "impersonated_service_account" => {
                    "an impersonated service account, not a user's OAuth credential"
                }
                _ => "not a type oauthtest imports",
            };
            // A type's value is a word like service_account; anything else is not quoted.
            let plain =
                other.len() <= 40 && other.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            let shown = if plain { other } else { "an unknown value" };
            return Err(format!(
                "field type is {shown}: {what}; expected authorized_user, or a token response"
            ));
        }
    }
    for name in TOKEN_FIELDS {
        fields.token(name)?;
    }

    let (shape, access_token, expiry) = if kind == Some("authorized_user") {
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
        .map(ClientSecret::from)
        .or_else(|| defaults.client_secret.clone());

    Ok((
        GoogleCredential {
            access_token: access_token.map(AccessToken::from),
            refresh_token: Some(RefreshToken::from(refresh_token)),
            expiry,
            scopes,
            token_type: fields.string("token_type")?.unwrap_or("Bearer").to_owned(),
            client_id,
            client_secret,
            id_token: fields.string("id_token")?.map(IdToken::from),
        },
        shape,
    ))
}

/// Fields holding a token or a client's identity: never empty, never a control character.
const TOKEN_FIELDS: &[&str] = &[
    "access_token",
    "token",
    "refresh_token",
    "id_token",
    "client_id",
    "client_secret",
];

/// Every field of the three shapes (read or knowingly ignored); a key one typo away from one of
/// the fields we read is refused as a misspelling.
const KNOWN_FIELDS: &[&str] = &[
    "access_token",
    "refresh_token",
    "expires_in",
    "scope",
    "scopes",
    "token_type",
    "id_token",
    "type",
    "client_id",
    "client_secret",
    "token",
    "expiry",
    "token_uri",
    "universe_domain",
    "quota_project_id",
    "account",
    "refresh_token_expires_in",
    "rapt_token",
    "trust_boundary",
    "expires_at",
];

/// The fields we read, which a misspelling must not silently replace.
const READ_FIELDS: &[&str] = &[
    "access_token",
    "refresh_token",
    "expires_in",
    "scope",
    "scopes",
    "token_type",
    "id_token",
    "type",
    "client_id",
    "client_secret",
    "token",
    "expiry",
];

/// A key as an error may show it: only keys that look like field names are quoted (a hostile
/// file could use a token as a key).
fn shown_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= 40
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain
        && KNOWN_FIELDS
            .iter()
            .any(|k| strsim::levenshtein(k, key) <= 3)
    {
        format!("field {key}")
    } else {
        "a field".into()
    }
}

/// Refuses a key that is not a known field but is one typo (or a case or separator change)
/// away from a field we read.
fn check_keys(obj: &Map<String, Value>) -> Result<(), String> {
    let normal = |k: &str| -> String {
        k.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect()
    };
    for key in obj.keys() {
        if KNOWN_FIELDS.contains(&key.as_str()) {
            continue;
        }
        // One typo in a short name, two in a longer one: `time` is not a misspelled `type`.
        let near = READ_FIELDS.iter().find(|field| {
            let allowed = if field.len() <= 5 { 1 } else { 2 };
            normal(key) == normal(field) || strsim::damerau_levenshtein(key, field) <= allowed
        });
        if let Some(field) = near {
            return Err(format!(
                "has {}, which oauthtest does not read: did you mean {field}? (fix the name; a \
                 misspelled field would be ignored)",
                shown_key(key)
            ));
        }
    }
    Ok(())
}

/// The top level of an import, with the first key given twice (serde_json keeps the last one
/// silently).
enum TopLevel {
    Object {
        map: Map<String, Value>,
        duplicate: Option<String>,
    },
    Other,
}

impl<'de> serde::Deserialize<'de> for TopLevel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TopLevel;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<TopLevel, A::Error> {
                let mut map = Map::new();
                let mut duplicate = None;
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&key) && duplicate.is_none() {
                        duplicate = Some(key.clone());
                    }
                    map.insert(key, value);
                }
                Ok(TopLevel::Object { map, duplicate })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<TopLevel, A::Error> {
                while access.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(TopLevel::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_unit<E>(self) -> Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    /// A token field: absent or null is fine (the shapes decide what is required), but present
    /// it must be a non-empty string of printable characters.
    fn token(&self, name: &str) -> Result<(), String> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(()),
            Some(Value::String(s)) if s.trim().is_empty() => Err(format!(
                "field {name} is empty; remove it or give the value Google issued"
            )),
            Some(Value::String(s)) if s.trim().chars().any(char::is_control) => Err(format!(
                "field {name} holds a control character (NUL, CR, LF or another); a token is \
                 one line of printable text, so the file was damaged or pasted with a line break"
            )),
            Some(Value::String(s)) if s.trim().chars().any(char::is_whitespace) => Err(format!(
                "field {name} holds a space inside it; a token has none"
            )),
            Some(Value::String(_)) => Ok(()),
            Some(_) => Err(format!("field {name} is not a string")),
        }
    }

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
            client_secret: Some(ClientSecret::from("csecret")),
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
    fn hostile_inputs_are_refused_naming_the_field_and_never_the_value() {
        let playground = |extra: &str| {
            format!(
                r#"{{"access_token":"ya29.PLANTED","expires_in":3599,"refresh_token":"1//PLANTED"{extra}}}"#
            )
        };
        for (json, want) in [
            (
                r#"{"access_token":"ya29.PLANTED","expires_in":3599,"refresh_token":"1//PLA\u0000NTED"}"#
                    .to_owned(),
                "field refresh_token holds a control character",
            ),
            (
                r#"{"access_token":"ya29.PLA\r\nNTED","expires_in":3599,"refresh_token":"1//PLANTED"}"#
                    .to_owned(),
                "field access_token holds a control character",
            ),
            (
                r#"{"access_token":"","expires_in":3599,"refresh_token":"1//PLANTED"}"#.to_owned(),
                "field access_token is empty",
            ),
            (
                r#"{"type":"service_account","client_id":"c","refresh_token":"1//PLANTED","private_key":"PLANTED"}"#
                    .to_owned(),
                "field type is service_account: a service account key",
            ),
            (playground(r#","refresh_token":"1//PLANTED-2""#), "gives field refresh_token more than once"),
            (
                r#"{"type":"authorized_user","client_id":"c","client_secert":"PLANTED","refresh_token":"1//PLANTED"}"#
                    .to_owned(),
                "has field client_secert, which oauthtest does not read: did you mean client_secret?",
            ),
            (playground(r#","clientSecret":"PLANTED""#), "did you mean client_secret?"),
            (playground(r#","ya29.PLANTED":1,"ya29.PLANTED":2"#), "gives a field more than once"),
        ] {
            let err = parse(json.as_bytes(), &ClientDefaults::default(), now()).unwrap_err();
            assert!(err.contains(want), "{json} → {err}");
            assert!(!err.contains("PLANTED"), "{json} → {err}");
        }
        // Near names that are not misspellings of a field we read are left alone.
        for extra in [
            r#","time":1"#,
            r#","expires_at":"x""#,
            r#","universe_domain":"g""#,
        ] {
            assert!(parse(
                playground(extra).as_bytes(),
                &ClientDefaults::default(),
                now()
            )
            .is_ok());
        }
    }

    #[test]
    fn unknown_shapes_and_non_objects_are_refused() {
        for json in [r#"{"foo":1}"#, "[1,2]", "\"ya29\""] {
            assert!(parse(json.as_bytes(), &ClientDefaults::default(), now()).is_err());
        }
    }
}
