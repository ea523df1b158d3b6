//! The HTTP side of the exchange: the one reqwest client, and the function `oauth2` sends
//! through, which also keeps a copy of the raw response.
//!
//! `oauth2` reports a non-200 answer without its status or headers and a non-JSON error page as
//! a bare parse error, so the function handed to it records status, headers and body in a
//! [`Captured`] that classification reads afterwards. Transport failures become a
//! [`TransportError`] whose message never holds a URL or a body.

use std::error::Error as StdError;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use oauth2::{HttpRequest, HttpResponse};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;

use super::ExchangeError;

/// A token response is a few kilobytes; anything past this is not one.
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024;

/// Builds the HTTP client for the token endpoint: total timeout per request, redirects off
/// (a token endpoint that redirects is misconfigured, and following a redirect would resend
/// the credentials elsewhere), rustls for TLS.
///
/// Build it once and share it (`reqwest::Client` is a cheap handle to one connection pool).
///
/// # Errors
///
/// [`ExchangeError::HttpClient`] when reqwest cannot build the client.
pub fn build_http_client(timeout: Duration) -> Result<reqwest::Client, ExchangeError> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("oauthtest/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(ExchangeError::HttpClient)
}

/// The raw response of one try, as far as it arrived.
///
/// # Security
///
/// `body` holds the token response: this type has no `Debug` and is dropped right after
/// classification.
pub(crate) struct Captured {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Captured {
    /// The media type of the response (`text/html`), without parameters.
    pub(crate) fn media_type(&self) -> Option<String> {
        let value = self.headers.get(CONTENT_TYPE)?;
        let text = value.to_str().ok()?;
        let media = text.split(';').next().unwrap_or(text).trim();
        Some(media.to_ascii_lowercase())
    }

    /// `true` when the Content-Type is JSON (`application/json`, `…+json`).
    pub(crate) fn media_type_is_json(&self) -> bool {
        self.media_type()
            .is_some_and(|m| m == "application/json" || m.ends_with("+json"))
    }

    /// The raw `Retry-After` header, if any.
    pub(crate) fn retry_after(&self) -> Option<&str> {
        self.headers.get(RETRY_AFTER)?.to_str().ok()
    }
}

/// Why no complete response arrived. Messages hold neither a URL nor a body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    /// The request could not be turned into a reqwest request.
    #[error("could not build the HTTP request: {0}")]
    Build(String),
    /// No complete response within the request timeout.
    #[error("no complete response within {0:?}")]
    Timeout(Duration),
    /// The connection could not be made.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The connection broke before a complete response (reset, closed, bad framing).
    #[error("connection failed before a complete response: {0}")]
    Interrupted(String),
    /// The body went on past [`MAX_BODY_BYTES`].
    #[error("response body longer than {0} bytes")]
    TooLarge(usize),
}

impl TransportError {
    fn from_reqwest(error: reqwest::Error, timeout: Duration) -> Self {
        let error = error.without_url();
        if error.is_timeout() {
            TransportError::Timeout(timeout)
        } else if error.is_builder() {
            TransportError::Build(root_cause(&error))
        } else if error.is_connect() {
            TransportError::Connect(root_cause(&error))
        } else {
            TransportError::Interrupted(root_cause(&error))
        }
    }
}

/// The innermost cause's message ("Connection refused (os error 111)"), which says more than
/// reqwest's "error sending request" and never carries the URL.
fn root_cause(error: &(dyn StdError + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

fn keep(cell: &Mutex<Option<Captured>>, captured: Captured) {
    *cell.lock().unwrap_or_else(PoisonError::into_inner) = Some(captured);
}

/// Sends one request built by `oauth2` and returns the response to it, keeping a copy in `cell`.
///
/// The status and headers are kept as soon as they arrive, so a body that breaks off still
/// leaves the status behind.
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn send_capturing(
    http: &reqwest::Client,
    timeout: Duration,
    request: HttpRequest,
    cell: &Mutex<Option<Captured>>,
) -> Result<HttpResponse, TransportError> {
    let mut request = reqwest::Request::try_from(request)
        .map_err(|e| TransportError::Build(root_cause(&e.without_url())))?;
    *request.timeout_mut() = Some(timeout);

    let mut response = http
        .execute(request)
        .await
        .map_err(|e| TransportError::from_reqwest(e, timeout))?;
    let status = response.status();
    let headers = response.headers().clone();
    keep(
        cell,
        Captured {
            status,
            headers: headers.clone(),
            body: Vec::new(),
        },
    );

    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| TransportError::from_reqwest(e, timeout))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(TransportError::TooLarge(MAX_BODY_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
    let (http_response, captured) = complete(status, headers, body);
    keep(cell, captured);
    Ok(http_response)
}

/// One complete response as `oauth2` is handed it, and the copy classification reads.
pub(crate) fn complete(
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
) -> (HttpResponse, Captured) {
    let captured = Captured {
        status,
        headers: headers.clone(),
        body: body.clone(),
    };
    let mut http_response = HttpResponse::new(body);
    *http_response.status_mut() = status;
    *http_response.headers_mut() = headers;
    (http_response, captured)
}
