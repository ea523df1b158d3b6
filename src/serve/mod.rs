//! `serve`'s HTTP front end: accepts connections for the standalone mock Google, bounds what each
//! one may cost, routes `/__admin/` to the [admin API](admin) and everything else to the mock.
//!
//! # Why a front end of our own instead of wiremock's server
//! The embedded mock (`mock`, `mock-all`) is a wiremock server: right for a short-lived mock in a
//! test. `serve` runs for hours in front of other people's code, and wiremock 0.6's server is not
//! built for that:
//! - it keeps a clone of every request a mounted mock matched (`MountedMock::matched_requests`,
//!   not switched off by `disable_request_recording`): memory grows with every request, and the
//!   clones hold raw tokens;
//! - it reads every body whole, without a size limit, and panics the connection task when a body
//!   cannot be read;
//! - it has no read timeout, so a client that sends half a request holds its connection forever;
//! - its accept loop ends for good on the first accept error (say, out of file descriptors);
//! - it serves from one thread, each request under one write lock.
//!
//! So `serve` keeps the mock's state and Google logic (the `mock-server` crate, the very code
//! the wiremock responders call) and puts this hyper server in front of it instead: the mock is
//! [`MockGoogle::detached`] and each request goes to [`MockGoogle::answer`] in-process, with no
//! second hop. The embedded mock stays on wiremock.
//!
//! # What this layer bounds
//! - header section: [`Limits::max_header_bytes`] (hyper answers 431; a malformed request line
//!   or header gets hyper's 400), then the connection closes;
//! - body: [`Limits::max_body_bytes`], checked against `Content-Length` before reading and
//!   enforced while reading chunked bodies (413);
//! - time: the header section must arrive within [`Limits::read_timeout`] (this also closes idle
//!   keep-alive connections), and so must the body (408);
//! - connections: at most [`Limits::max_connections`] at once; more wait in the kernel's backlog,
//!   which [`listen`] makes as long as that (a burst of new connections fits).
//!
//! Each connection is its own task on the multi-threaded runtime and the mock's lock is held for
//! microseconds, so a slow client costs its own connection only. Scripted delays sleep outside
//! the lock. Memory otherwise is the mock's journal (a fixed capacity) and its token store (a
//! fixed number of tokens per grant).

pub mod admin;
pub mod mode;
pub mod tls;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use mock_server::{Answer, JournalEntry, MockGoogle};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The path prefix reserved for the admin API.
pub const ADMIN_PREFIX: &str = "/__admin";

/// What one connection may cost.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// Largest request line plus headers accepted (431 above it; at least 8192, hyper's minimum).
    pub max_header_bytes: usize,
    /// How long the header section, and then the body, may take to arrive.
    pub read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long open connections may finish their request after a shutdown signal.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            read_timeout: Duration::from_secs(10),
            max_connections: 4096,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Counters for the report printed at shutdown.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests the mock answered (or dropped, as scripted).
    pub mock_requests: AtomicU64,
    /// Admin API requests.
    pub admin_requests: AtomicU64,
    /// Requests refused by a limit (too large, too slow, unreadable).
    pub rejected: AtomicU64,
}

/// What every connection shares.
pub struct App {
    /// The mock Google, without a server of its own.
    pub mock: MockGoogle,
    /// The admin API's own state.
    pub admin: admin::Admin,
    /// Counters.
    pub stats: Stats,
    limits: Limits,
}

impl App {
    /// Puts the pieces together.
    pub fn new(mock: MockGoogle, admin: admin::Admin, limits: Limits) -> Self {
        Self {
            mock,
            admin,
            stats: Stats::default(),
            limits,
        }
    }
}

/// Listens on `address` with room for `backlog` connections waiting to be accepted.
///
/// `TcpListener::bind` asks for a backlog of 128 (std's and tokio's choice): a burst of more
/// new connections than that overflows the accept queue, and Linux then drops the handshake's
/// last ACK, so a client that sends nothing first believes it is connected while serve never
/// sees it. Found by the abuse tests (the kernel's `ListenOverflows` counter climbed while idle
/// clients were never cut off). The kernel caps `backlog` at `net.core.somaxconn`.
///
/// # Errors
/// When the socket cannot be created, bound or listened on.
pub fn listen(address: std::net::SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As TcpListener::bind does: a restarted serve can take its port back at once.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(backlog)
}

/// Returned to hyper so that it closes the connection without a response (a scripted drop).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by a scripted drop step")]
pub struct ConnectionDropped;

/// Serves `listener` until `shutdown` completes, then lets open connections finish for
/// [`Limits::shutdown_grace`] and returns what `shutdown` returned.
pub async fn run<T>(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = T>,
) -> Option<T> {
    let limits = app.limits.clone();
    let http = http_builder(&limits);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    let mut stopped_by = None;
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            reason = &mut shutdown => {
                stopped_by = Some(reason);
                break;
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before accept: keep serving.
                    tracing::warn!(error = %e, "cannot accept a connection; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            reason = &mut shutdown => {
                stopped_by = Some(reason);
                break;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let connection = connection(&http, app, stream);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("connections still open after the shutdown grace period; closing them");
        }
    }
    stopped_by
}

/// hyper's HTTP/1 settings for these limits.
fn http_builder(limits: &Limits) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    http
}

/// One connection: hyper's HTTP/1 parser in front of [`handle`].
fn connection<IO>(
    http: &http1::Builder,
    app: Arc<App>,
    io: IO,
) -> http1::Connection<
    TokioIo<IO>,
    impl hyper::service::HttpService<
        Incoming,
        ResBody = Full<Bytes>,
        Error = ConnectionDropped,
        Future: Send,
    >,
>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    http.serve_connection(
        TokioIo::new(io),
        service_fn(move |request| handle(Arc::clone(&app), request)),
    )
}

/// Serves one connection over any byte stream until the peer closes it, exactly as [`run`]
/// serves each accepted socket (same limits, same handler). For fuzzing and tests, which feed
/// it raw request bytes through an in-memory pipe.
///
/// # Errors
/// hyper's error when the connection ends abnormally (a malformed request, a scripted drop).
pub async fn serve_connection<IO>(app: Arc<App>, io: IO) -> Result<(), hyper::Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let http = http_builder(&app.limits);
    connection(&http, app, io).await
}

/// Why a request was refused before reaching the mock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejection {
    TooLarge,
    TooSlow,
    Unreadable,
}

impl Rejection {
    fn response(self, limits: &Limits) -> Response<Full<Bytes>> {
        let (status, error, description) = match self {
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                format!(
                    "The request body is larger than {} bytes.",
                    limits.max_body_bytes
                ),
            ),
            Self::TooSlow => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "The request body did not arrive within {} ms.",
                    limits.read_timeout.as_millis()
                ),
            ),
            Self::Unreadable => (
                StatusCode::BAD_REQUEST,
                "malformed_request",
                "The request body could not be read.".to_owned(),
            ),
        };
        let mut response = json_response(
            status,
            &serde_json::json!({"error": error, "error_description": description}),
        );
        // The rest of the body was not read: this connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(mock_server::wire::CONTENT_TYPE_JSON),
    );
    response
}

/// Reads the whole body within the limits.
async fn read_body(
    parts: &http::request::Parts,
    body: Incoming,
    limits: &Limits,
) -> Result<Bytes, Rejection> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limits.max_body_bytes as u64) {
        return Err(Rejection::TooLarge);
    }
    let limited = Limited::new(body, limits.max_body_bytes);
    match tokio::time::timeout(limits.read_timeout, limited.collect()).await {
        Err(_) => Err(Rejection::TooSlow),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Rejection::TooLarge),
        Ok(Err(_)) => Err(Rejection::Unreadable),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// The path, shortened for a log line (never the query: it may hold a token).
fn loggable_path(path: &str) -> &str {
    let end = path.char_indices().nth(120).map_or(path.len(), |(i, _)| i);
    &path[..end]
}

/// Whether `path` is under the admin prefix.
fn is_admin(path: &str) -> bool {
    path.strip_prefix(ADMIN_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

async fn handle(
    app: Arc<App>,
    request: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ConnectionDropped> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let body = match read_body(&parts, body, &app.limits).await {
        Ok(body) => body,
        Err(rejection) => {
            app.stats.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                method = %parts.method,
                path = loggable_path(&path),
                ?rejection,
                "request refused"
            );
            return Ok(rejection.response(&app.limits));
        }
    };
    if is_admin(&path) {
        app.stats.admin_requests.fetch_add(1, Ordering::Relaxed);
        return Ok(admin::handle(&app, &parts, &body));
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let Ok(url) = format!("http://localhost{path_and_query}").parse() else {
        app.stats.rejected.fetch_add(1, Ordering::Relaxed);
        return Ok(Rejection::Unreadable.response(&app.limits));
    };
    app.stats.mock_requests.fetch_add(1, Ordering::Relaxed);
    let answered = app.mock.answer(&wiremock::Request {
        url,
        method: parts.method,
        headers: parts.headers,
        body: body.to_vec(),
    });
    log_answer(&answered.entry, &path, started);
    match answered.answer {
        Answer::Drop => Err(ConnectionDropped),
        Answer::Respond {
            status,
            headers,
            body,
            delay,
        } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = status;
            for (name, value) in headers {
                response.headers_mut().append(name, value);
            }
            Ok(response)
        }
    }
}

/// One line per request: what was asked and answered, tokens as fingerprints only.
fn log_answer(entry: &JournalEntry, path: &str, started: Instant) {
    let status = entry
        .status
        .map_or_else(|| "dropped".to_owned(), |s| s.to_string());
    tracing::info!(
        seq = entry.seq,
        error = entry.error.as_deref().unwrap_or("-"),
        client_id = entry.client_id.as_deref().unwrap_or("-"),
        refresh_token = entry.refresh_token_fingerprint.as_deref().unwrap_or("-"),
        token = entry.token_fingerprint.as_deref().unwrap_or("-"),
        action = entry.action,
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "{} {} -> {}",
        entry.method,
        loggable_path(path),
        status
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_prefix_matches_whole_segments_only() {
        assert!(is_admin("/__admin"));
        assert!(is_admin("/__admin/requests"));
        assert!(!is_admin("/__administrator"));
        assert!(!is_admin("/token"));
    }

    #[test]
    fn loggable_path_is_cut_at_120_characters() {
        let long = format!("/{}", "é".repeat(300));
        assert_eq!(loggable_path(&long).chars().count(), 120);
        assert_eq!(loggable_path("/token"), "/token");
    }
}
