//! The decrypted payload, as the application wrote it, read and changed through JSON pointers.
//!
//! Reading maps the configured pointers onto a [`GoogleCredential`]; writing changes only the
//! mapped fields whose values changed, each in the shape it had (a string stays a string, an
//! array an array, a timestamp keeps its offset style and precision), so every other field stays
//! exactly as the application wrote it.

use super::config::PayloadMap;
use super::time::{parse_text_timestamp, unix_millis};
use crate::credential::GoogleCredential;
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// How `store.payload.expiry` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryFormat {
    /// RFC 3339 / ISO 8601 text (`datetime.isoformat()`, `toISOString()`).
    Rfc3339,
    /// Seconds since the Unix epoch (a number or numeric text).
    UnixS,
    /// Milliseconds since the Unix epoch (google-auth-library's `expiry_date`).
    UnixMs,
}

/// A decrypted payload. `Debug` shows nothing of it: it holds the tokens in the clear.
#[derive(Clone)]
pub(crate) struct Payload(pub(crate) Value);

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Payload([redacted])")
    }
}

/// A mapped field that does not fit: its config key and pointer, and what is wrong.
#[derive(Debug)]
pub(crate) struct FieldError {
    pub(crate) field: String,
    pub(crate) problem: String,
}

fn field_error(key: &str, pointer: &str, problem: impl Into<String>) -> FieldError {
    FieldError {
        field: format!("store.payload.{key} ({pointer})"),
        problem: problem.into(),
    }
}

/// What a read found: the credential, and the optional mapped fields the row lacks.
pub(crate) struct Mapped {
    pub(crate) secrets: GoogleCredential,
    pub(crate) missing: Vec<String>,
}

/// A JSON value's kind, for messages that must not quote it.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn token<T: From<String>>(v: &Value, key: &str, pointer: &str) -> Result<Option<T>, FieldError> {
    match v.pointer(pointer) {
        None => Err(field_error(
            key,
            pointer,
            "names no field in the payload (check the pointer against a decrypted row)",
        )),
        Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(T::from(s.clone()))),
        Some(other) => Err(field_error(
            key,
            pointer,
            format!("is {}, not a string", kind(other)),
        )),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An optional field: `None`, noted in `missing`, when its pointer names nothing.
fn optional<T: From<String>>(
    v: &Value,
    missing: &mut Vec<String>,
    key: &str,
    pointer: &Option<String>,
) -> Result<Option<T>, FieldError> {
    match pointer {
        Some(p) if v.pointer(p).is_none() => {
            missing.push(format!("store.payload.{key} ({p})"));
            Ok(None)
        }
        Some(p) => token(v, key, p),
        None => Ok(None),
    }
}

/// Reads the mapped fields. `updated_at` is the row's `updated_at_column`, for `expires_in`.
pub(crate) fn read(
    map: &PayloadMap,
    payload: &Payload,
    updated_at: Option<DateTime<Utc>>,
) -> Result<Mapped, FieldError> {
    let v = &payload.0;
    if !v.is_object() {
        return Err(FieldError {
            field: "payload".to_owned(),
            problem: format!("is {}, not a JSON object", kind(v)),
        });
    }
    let mut missing = Vec::new();
    let access_token = token(v, "access_token", &map.access_token)?;
    let refresh_token = token(v, "refresh_token", &map.refresh_token)?;
    let expiry = match (&map.expiry, &map.expires_in) {
        (Some(p), _) => read_expiry(v, p, map.expiry_format)?,
        (None, Some(p)) => match v.pointer(p) {
            None => {
                return Err(field_error(
                    "expires_in",
                    p,
                    "names no field in the payload",
                ))
            }
            Some(Value::Null) => None,
            Some(x) => {
                let secs = number(x).ok_or_else(|| {
                    field_error(
                        "expires_in",
                        p,
                        format!("is {}, not a number of seconds", kind(x)),
                    )
                })?;
                updated_at.and_then(|at| unix_millis(at.timestamp_millis() as f64 + secs * 1000.0))
            }
        },
        (None, None) => None,
    };
    let client_id = optional(v, &mut missing, "client_id", &map.client_id)?;
    let client_secret = optional(v, &mut missing, "client_secret", &map.client_secret)?;
    let scopes = match &map.scopes {
        None => Vec::new(),
        Some(p) => match v.pointer(p) {
            None => {
                missing.push(format!("store.payload.scopes ({p})"));
                Vec::new()
            }
            Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    field_error(
                        "scopes",
                        p,
                        "is an array that holds something other than strings",
                    )
                })?,
            Some(other) => {
                return Err(field_error(
                    "scopes",
                    p,
                    format!("is {}, not a string or an array of strings", kind(other)),
                ))
            }
        },
    };
    Ok(Mapped {
        secrets: GoogleCredential {
            access_token,
            refresh_token,
            expiry,
            scopes,
            token_type: "Bearer".to_owned(),
            client_id,
            client_secret,
            id_token: None,
        },
        missing,
    })
}

fn read_expiry(
    v: &Value,
    p: &str,
    format: ExpiryFormat,
) -> Result<Option<DateTime<Utc>>, FieldError> {
    let x = match v.pointer(p) {
        None => return Err(field_error("expiry", p, "names no field in the payload")),
        Some(Value::Null) => return Ok(None),
        Some(x) => x,
    };
    let parsed = match (format, x) {
        (ExpiryFormat::Rfc3339, Value::String(s)) => parse_text_timestamp(s),
        (ExpiryFormat::Rfc3339, other) => {
            return Err(field_error(
                "expiry",
                p,
                format!(
                    "is {}, but store.payload.expiry_format is rfc3339 (text)",
                    kind(other)
                ),
            ))
        }
        (ExpiryFormat::UnixS, x) => number(x).and_then(|s| unix_millis((s * 1000.0).round())),
        (ExpiryFormat::UnixMs, x) => number(x).and_then(|ms| unix_millis(ms.round())),
    };
    let name = match format {
        ExpiryFormat::Rfc3339 => "an RFC 3339 timestamp",
        ExpiryFormat::UnixS => "a number of seconds since 1970 (unix_s)",
        ExpiryFormat::UnixMs => "a number of milliseconds since 1970 (unix_ms)",
    };
    parsed.map(Some).ok_or_else(|| {
        field_error(
            "expiry",
            p,
            format!(
                "does not parse as {name} (store.payload.expiry_format); its {} value is not shown",
                kind(x)
            ),
        )
    })
}

/// Splits a JSON pointer into its unescaped tokens.
fn tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Sets the field at `pointer`, creating the objects on the way when they are missing.
pub(crate) fn set(v: &mut Value, pointer: &str, new: Value) -> Result<(), String> {
    let mut at = v;
    for t in tokens(pointer) {
        if at.is_null() {
            *at = Value::Object(serde_json::Map::new());
        }
        at = match at {
            Value::Object(m) => m.entry(t).or_insert(Value::Null),
            Value::Array(items) => {
                let i: usize = t
                    .parse()
                    .map_err(|_| "crosses an array with a non-index token".to_owned())?;
                items
                    .get_mut(i)
                    .ok_or_else(|| "names an index past the end of an array".to_owned())?
            }
            other => return Err(format!("crosses {}, which holds no fields", kind(other))),
        };
    }
    *at = new;
    Ok(())
}

fn secret_value<T: ExposeSecret<str>>(s: &Option<T>) -> Value {
    s.as_ref()
        .map_or(Value::Null, |s| Value::String(s.expose_secret().to_owned()))
}

fn same_secret<T: ExposeSecret<str>>(a: &Option<T>, b: &Option<T>) -> bool {
    a.as_ref().map(|s| s.expose_secret()) == b.as_ref().map(|s| s.expose_secret())
}

/// An RFC 3339 instant in the style of the value it replaces (offset `Z`, `+00:00` or none;
/// seconds, milliseconds or microseconds).
fn rfc3339_like(old: Option<&str>, at: DateTime<Utc>) -> String {
    let old = old.unwrap_or("2000-01-01T00:00:00Z");
    let fraction = old
        .split_once('.')
        .map_or(0, |(_, f)| f.bytes().take_while(u8::is_ascii_digit).count());
    let precision = match fraction {
        0 => SecondsFormat::Secs,
        1..=3 => SecondsFormat::Millis,
        _ => SecondsFormat::Micros,
    };
    let text = at.to_rfc3339_opts(precision, true);
    let separator = if old.contains('T') { "T" } else { " " };
    let text = text.replacen('T', separator, 1);
    if old.ends_with('Z') {
        text
    } else if old.ends_with("+00:00") || old.ends_with("-00:00") {
        format!("{}+00:00", text.trim_end_matches('Z'))
    } else if old.ends_with("+00") {
        format!("{}+00", text.trim_end_matches('Z'))
    } else {
        text.trim_end_matches('Z').to_owned()
    }
}

fn expiry_value(old: Option<&Value>, at: DateTime<Utc>, format: ExpiryFormat) -> Value {
    let as_string = matches!(old, Some(Value::String(_)));
    let n = match format {
        ExpiryFormat::Rfc3339 => {
            return Value::String(rfc3339_like(old.and_then(Value::as_str), at))
        }
        ExpiryFormat::UnixS => at.timestamp(),
        ExpiryFormat::UnixMs => at.timestamp_millis(),
    };
    if as_string {
        Value::String(n.to_string())
    } else {
        Value::from(n)
    }
}

/// Writes `new` into `payload` where it differs from `old` (what the payload held when read).
/// Only mapped fields change.
pub(crate) fn apply(
    map: &PayloadMap,
    payload: &mut Payload,
    old: &GoogleCredential,
    new: &GoogleCredential,
    now: DateTime<Utc>,
) -> Result<(), FieldError> {
    let v = &mut payload.0;
    let put = |v: &mut Value, key: &str, p: &str, x: Value| {
        set(v, p, x).map_err(|e| field_error(key, p, e))
    };
    if !same_secret(&old.access_token, &new.access_token) {
        put(
            v,
            "access_token",
            &map.access_token,
            secret_value(&new.access_token),
        )?;
    }
    if !same_secret(&old.refresh_token, &new.refresh_token) {
        put(
            v,
            "refresh_token",
            &map.refresh_token,
            secret_value(&new.refresh_token),
        )?;
    }
    if old.expiry != new.expiry {
        if let Some(p) = &map.expiry {
            let x = new.expiry.map_or(Value::Null, |at| {
                expiry_value(v.pointer(p), at, map.expiry_format)
            });
            put(v, "expiry", p, x)?;
        }
    }
    if let Some(p) = &map.expires_in {
        // Counts from the write, which sets updated_at_column to `now`.
        let x = new.expiry.map_or(Value::Null, |at| {
            Value::from((at - now).num_seconds().max(0))
        });
        if v.pointer(p) != Some(&x) {
            put(v, "expires_in", p, x)?;
        }
    }
    if old.client_id != new.client_id {
        if let Some(p) = &map.client_id {
            put(
                v,
                "client_id",
                p,
                new.client_id.clone().map_or(Value::Null, Value::String),
            )?;
        }
    }
    if !same_secret(&old.client_secret, &new.client_secret) {
        if let Some(p) = &map.client_secret {
            put(v, "client_secret", p, secret_value(&new.client_secret))?;
        }
    }
    if old.scopes != new.scopes {
        if let Some(p) = &map.scopes {
            let x = if matches!(v.pointer(p), Some(Value::Array(_))) {
                Value::from(new.scopes.clone())
            } else {
                Value::String(new.scopes.join(" "))
            };
            put(v, "scopes", p, x)?;
        }
    }
    Ok(())
}

/// A payload holding only the mapped fields, all null: what a new row (or a scrubbed row that
/// could not be decrypted) starts from.
pub(crate) fn skeleton(map: &PayloadMap) -> Payload {
    let mut v = Value::Object(serde_json::Map::new());
    let pointers = [
        Some(&map.access_token),
        Some(&map.refresh_token),
        map.expiry.as_ref(),
        map.expires_in.as_ref(),
    ];
    for p in pointers.into_iter().flatten() {
        // Validated pointers over fresh objects: setting cannot fail.
        let _ = set(&mut v, p, Value::Null);
    }
    Payload(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::AccessToken;
    use serde_json::json;

    fn n8n_map() -> PayloadMap {
        PayloadMap {
            access_token: "/oauthTokenData/access_token".into(),
            refresh_token: "/oauthTokenData/refresh_token".into(),
            expiry: Some("/oauthTokenData/expiry_date".into()),
            expiry_format: ExpiryFormat::UnixMs,
            expires_in: None,
            client_id: Some("/clientId".into()),
            client_secret: Some("/clientSecret".into()),
            scopes: Some("/oauthTokenData/scope".into()),
        }
    }

    fn row() -> Payload {
        Payload(json!({
            "clientId": "cid", "clientSecret": "PLANTED-SECRET", "other": {"keep": [1, 2]},
            "oauthTokenData": {"access_token": "PLANTED-A", "refresh_token": "PLANTED-R",
                               "expiry_date": 1_800_000_000_000_i64, "scope": "a b", "token_type": "Bearer"}
        }))
    }

    #[test]
    fn mapped_fields_are_read() {
        let m = read(&n8n_map(), &row(), None).unwrap();
        assert_eq!(m.secrets.access_token.unwrap().expose_secret(), "PLANTED-A");
        assert_eq!(m.secrets.expiry.unwrap().timestamp(), 1_800_000_000);
        assert_eq!(m.secrets.scopes, ["a", "b"]);
        assert_eq!(m.secrets.client_id.as_deref(), Some("cid"));
        assert!(m.missing.is_empty());
    }

    #[test]
    fn write_back_changes_only_mapped_fields_in_their_shape() {
        let map = n8n_map();
        let mut p = row();
        let old = read(&map, &p, None).unwrap().secrets;
        let mut new = read(&map, &p, None).unwrap().secrets;
        new.access_token = Some(AccessToken::from("NEW-A"));
        new.expiry = Some("2030-01-01T00:00:00Z".parse().unwrap());
        apply(&map, &mut p, &old, &new, Utc::now()).unwrap();
        let mut want = row().0;
        want["oauthTokenData"]["access_token"] = json!("NEW-A");
        want["oauthTokenData"]["expiry_date"] = json!(1_893_456_000_000_i64);
        assert_eq!(p.0, want);
    }

    #[test]
    fn rfc3339_expiry_keeps_the_style_it_had() {
        let at: DateTime<Utc> = "2030-01-01T00:00:00.5Z".parse().unwrap();
        assert_eq!(
            rfc3339_like(Some("2026-01-01T00:00:00.123456+00:00"), at),
            "2030-01-01T00:00:00.500000+00:00"
        );
        assert_eq!(
            rfc3339_like(Some("2026-01-01T00:00:00"), at),
            "2030-01-01T00:00:00"
        );
        assert_eq!(
            rfc3339_like(Some("2026-01-01T00:00:00.123Z"), at),
            "2030-01-01T00:00:00.500Z"
        );
        assert_eq!(rfc3339_like(None, at), "2030-01-01T00:00:00Z");
    }

    #[test]
    fn a_pointer_naming_no_field_is_an_error_naming_the_key() {
        let mut map = n8n_map();
        map.refresh_token = "/oauthTokenData/refreshToken".into();
        let e = read(&map, &row(), None).err().unwrap();
        assert!(e.field.contains("store.payload.refresh_token"), "{e:?}");
        assert!(e.problem.contains("names no field"));
    }

    #[test]
    fn unparseable_expiry_and_wrong_types_never_quote_the_value() {
        let mut p = row();
        p.0["oauthTokenData"]["expiry_date"] = json!("PLANTED-NOT-A-DATE");
        let e = read(&n8n_map(), &p, None).err().unwrap();
        assert!(e.field.contains("store.payload.expiry"), "{e:?}");
        assert!(!e.problem.contains("PLANTED"), "{e:?}");
        let mut p = row();
        p.0["oauthTokenData"]["access_token"] = json!(["PLANTED"]);
        let e = read(&n8n_map(), &p, None).err().unwrap();
        assert!(
            e.problem.contains("an array") && !e.problem.contains("PLANTED"),
            "{e:?}"
        );
        let e = read(&n8n_map(), &Payload(json!("PLANTED")), None)
            .err()
            .unwrap();
        assert!(!e.problem.contains("PLANTED"));
    }

    #[test]
    fn optional_fields_may_be_absent_and_are_reported() {
        let mut p = row();
        p.0.as_object_mut().unwrap().remove("clientSecret");
        let m = read(&n8n_map(), &p, None).unwrap();
        assert!(m.secrets.client_secret.is_none());
        assert_eq!(m.missing, ["store.payload.client_secret (/clientSecret)"]);
    }

    #[test]
    fn expires_in_counts_from_updated_at() {
        let mut map = n8n_map();
        map.expiry = None;
        map.expires_in = Some("/oauthTokenData/expires_in".into());
        let mut p = row();
        p.0["oauthTokenData"]["expires_in"] = json!(3599);
        let at: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let m = read(&map, &p, Some(at)).unwrap();
        assert_eq!(m.secrets.expiry, Some(at + chrono::Duration::seconds(3599)));
        let mut new = read(&map, &p, Some(at)).unwrap().secrets;
        new.expiry = Some(at + chrono::Duration::seconds(7200));
        apply(
            &map,
            &mut p,
            &m.secrets,
            &new,
            at + chrono::Duration::seconds(3600),
        )
        .unwrap();
        assert_eq!(p.0["oauthTokenData"]["expires_in"], json!(3600));
    }

    #[test]
    fn skeleton_holds_the_mapped_paths() {
        let s = skeleton(&n8n_map());
        assert_eq!(
            s.0,
            json!({"oauthTokenData": {"access_token": null, "refresh_token": null, "expiry_date": null}})
        );
        assert_eq!(format!("{s:?}"), "Payload([redacted])");
    }
}
