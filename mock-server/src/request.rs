//! The request the mock reads (what its HTTP front end received, already within its limits)
//! and the [`Answer`] it gives back.
//!
//! The mock's logic needs four things of a request: its method, its path and query, its headers
//! and its whole body. [`Request`] holds exactly those (and the address it arrived on), so the
//! same logic answers requests from this crate's own front end ([`crate::front`]) and from a
//! caller's server handing them to [`MockGoogle::answer`](crate::MockGoogle::answer).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

/// One HTTP request, whole.
///
/// # Security
/// The query, headers and body may hold tokens and client secrets: `Debug` shows the method,
/// the path and sizes only.
#[derive(Clone)]
#[non_exhaustive]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target; only its path and query are read.
    pub uri: Uri,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// The local address of the connection it arrived on, when there was a socket.
    pub local_addr: Option<SocketAddr>,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: Method, uri: Uri) -> Self {
        Self {
            method,
            uri,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            local_addr: None,
        }
    }

    /// A request from the parts hyper (or any `http` server) hands over, and the body read.
    pub fn from_parts(parts: http::request::Parts, body: Bytes) -> Self {
        Self {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
            local_addr: None,
        }
    }

    /// Adds a header (keeping others of the same name).
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the local address the request arrived on.
    #[must_use]
    pub fn with_local_addr(mut self, address: SocketAddr) -> Self {
        self.local_addr = Some(address);
        self
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The query string, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path())
            .field("headers", &self.headers.len())
            .field("body", &format_args!("[{} bytes]", self.body.len()))
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

/// How the mock answers one request given to [`MockGoogle::answer`](crate::MockGoogle::answer) (or a [`Service`](crate::front::Service)).
pub enum Answer {
    /// Send this response, `delay` from now.
    Respond {
        /// The status.
        status: http::StatusCode,
        /// The headers, in order.
        headers: Vec<(http::HeaderName, http::HeaderValue)>,
        /// The body. It may hold a freshly issued token: do not log it.
        body: String,
        /// How long to hold the answer back (a scripted delay).
        delay: Duration,
    },
    /// Close the connection without any response (a scripted [`Action::Drop`](crate::Action::Drop)).
    Drop,
}

impl fmt::Debug for Answer {
    /// Bodies may hold tokens: shown by length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Respond {
                status,
                headers,
                body,
                delay,
            } => f
                .debug_struct("Respond")
                .field("status", status)
                .field("headers", &headers.len())
                .field("body", &format_args!("[{} bytes]", body.len()))
                .field("delay", delay)
                .finish(),
            Self::Drop => f.write_str("Drop"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_neither_the_query_nor_headers_nor_the_body() {
        let request = Request::new(
            Method::POST,
            "/token?access_token=ya29.in-the-query"
                .parse()
                .expect("uri"),
        )
        .with_header(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer ya29.in-a-header"),
        )
        .with_body("refresh_token=1%2F%2Fin-the-body");
        let printed = format!("{request:?}");
        for secret in ["in-the-query", "in-a-header", "in-the-body"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("/token"), "{printed}");
        assert_eq!(request.query(), Some("access_token=ya29.in-the-query"));
    }
}
