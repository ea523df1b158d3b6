//! Reading a request the way Google does: form fields, query parameters, Basic and Bearer auth.
//!
//! Parsing is done once per request, before the state lock is taken, and kept apart from the
//! endpoint logic so that the RFC 6749 details (Basic credentials are form-urlencoded before
//! being base64-encoded) live in one place.

use crate::journal::{ClientAuth, Endpoint};
use crate::request::Request;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;

/// A request, decoded.
pub(crate) struct Incoming {
    pub(crate) endpoint: Endpoint,
    pub(crate) method: String,
    pub(crate) path: String,
    query: Vec<(String, String)>,
    form: Vec<(String, String)>,
    authorization: Option<String>,
}

/// Client credentials as presented to the token endpoint.
pub(crate) struct ClientCredentials {
    pub(crate) id: Option<String>,
    pub(crate) secret: Option<String>,
    pub(crate) auth: ClientAuth,
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Decodes one `application/x-www-form-urlencoded` value: `+` is a space, `%XX` a byte.
fn form_decode(value: &str) -> String {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

impl Incoming {
    pub(crate) fn parse(request: &Request) -> Self {
        let endpoint = Endpoint::from_path(request.path());
        let query = form_urlencoded::parse(request.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let form = form_urlencoded::parse(&request.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let authorization = request
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Self {
            endpoint,
            method: request.method.as_str().to_string(),
            path: request.path().to_string(),
            query,
            form,
            authorization,
        }
    }

    pub(crate) fn is(&self, method: &str) -> bool {
        self.method.eq_ignore_ascii_case(method)
    }

    /// A non-empty form field (first occurrence).
    pub(crate) fn form_value(&self, name: &str) -> Option<&str> {
        first(&self.form, name)
    }

    /// A non-empty form field, else a non-empty query parameter.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        first(&self.form, name).or_else(|| first(&self.query, name))
    }

    fn auth_credentials(&self, scheme: &str) -> Option<&str> {
        let value = self.authorization.as_deref()?.trim();
        let (given, rest) = value.split_once(' ')?;
        given
            .eq_ignore_ascii_case(scheme)
            .then(|| rest.trim())
            .filter(|rest| !rest.is_empty())
    }

    /// The token of `Authorization: Bearer …`.
    pub(crate) fn bearer_token(&self) -> Option<&str> {
        self.auth_credentials("Bearer")
    }

    /// Client credentials: HTTP Basic (RFC 6749 2.3.1) when present and well formed, else the
    /// `client_id` / `client_secret` form fields.
    pub(crate) fn client_credentials(&self) -> ClientCredentials {
        if let Some((id, secret)) = self.basic_credentials() {
            let non_empty = |s: String| Some(s).filter(|s| !s.is_empty());
            return ClientCredentials {
                id: non_empty(id),
                secret: non_empty(secret),
                auth: ClientAuth::Basic,
            };
        }
        let id = self.form_value("client_id").map(str::to_string);
        let auth = if id.is_some() {
            ClientAuth::Body
        } else {
            ClientAuth::None
        };
        ClientCredentials {
            id,
            secret: self.form_value("client_secret").map(str::to_string),
            auth,
        }
    }

    fn basic_credentials(&self) -> Option<(String, String)> {
        let encoded = self.auth_credentials("Basic")?;
        let decoded = STANDARD
            .decode(encoded)
            .or_else(|_| STANDARD_NO_PAD.decode(encoded))
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some((form_decode(id), form_decode(secret)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Request {
        let mut request = Request::new(
            method.parse().expect("valid method"),
            url.parse().expect("valid url"),
        );
        for (k, v) in headers {
            request = request.with_header(
                http::HeaderName::from_bytes(k.as_bytes()).expect("valid name"),
                http::HeaderValue::from_str(v).expect("valid value"),
            );
        }
        request.with_body(body.to_owned())
    }

    #[test]
    fn basic_credentials_are_base64_then_form_decoded() {
        // id "my id", secret "s3:cr+t" → form-encoded "my+id:s3%3Acr%2Bt"
        let header = format!("Basic {}", STANDARD.encode("my+id:s3%3Acr%2Bt"));
        let incoming = Incoming::parse(&request(
            "POST",
            "http://localhost/token",
            &[("authorization", &header)],
            "grant_type=refresh_token",
        ));
        let creds = incoming.client_credentials();
        assert_eq!(creds.auth, ClientAuth::Basic);
        assert_eq!(creds.id.as_deref(), Some("my id"));
        assert_eq!(creds.secret.as_deref(), Some("s3:cr+t"));
    }

    #[test]
    fn body_credentials_are_used_without_basic_auth() {
        let incoming = Incoming::parse(&request(
            "POST",
            "http://localhost/token",
            &[],
            "client_id=abc&client_secret=x%26y",
        ));
        let creds = incoming.client_credentials();
        assert_eq!(creds.auth, ClientAuth::Body);
        assert_eq!(creds.id.as_deref(), Some("abc"));
        assert_eq!(creds.secret.as_deref(), Some("x&y"));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_params_fall_back_to_the_query() {
        let incoming = Incoming::parse(&request(
            "GET",
            "http://localhost/tokeninfo?access_token=ya29.q",
            &[("authorization", "bearer ya29.h")],
            "",
        ));
        assert_eq!(incoming.bearer_token(), Some("ya29.h"));
        assert_eq!(incoming.param("access_token"), Some("ya29.q"));
        assert_eq!(incoming.endpoint, Endpoint::TokenInfo);
    }
}
