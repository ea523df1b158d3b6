//! The mock's HTTP front end: accepts connections, bounds what each one may cost, reads each
//! request whole and hands it to a [`Service`] (the mock, or a caller's service wrapping it).
//!
//! Every way of running the mock goes through here: [`MockGoogle::start`](crate::MockGoogle::start)
//! runs it on a thread of its own for a test or an embedded run, and a long-running server
//! (`oauthtest --mode serve`) runs [`serve`] on its own runtime with a service that routes its
//! admin API in front of the mock, or [`serve_over`] with a TLS [`Transport`] for `--tls`. A
//! change to wire behaviour (drops, delays, limits, graceful stop) has one home: this module.
//!
//! # What this layer bounds
//! - header section: [`Limits::max_header_bytes`] (hyper answers 431; a malformed request line
//!   or header gets hyper's 400), then the connection closes;
//! - body: [`Limits::max_body_bytes`], checked against `Content-Length` before reading and
//!   enforced while reading chunked bodies (413);
//! - time: the header section must arrive within [`Limits::read_timeout`] (this also closes idle
//!   keep-alive connections), and so must the body (408);
//! - connections: at most [`Limits::max_connections`] at once; more wait in the kernel's backlog,
//!   which [`listen`] makes as long as that (a burst of new connections fits);
//! - set-up: a [`Transport`]'s step before HTTP (a TLS handshake) must end within
//!   [`Limits::read_timeout`], in the connection's own task and under its permit.
//!
//! Nothing of a request is kept after it is answered: memory is the service's own (the mock's
//! journal has a fixed capacity, its token store a fixed number of tokens per grant). Each
//! connection is its own task, and a scripted delay sleeps in that task outside any lock, so a
//! slow client or a slow answer costs its own connection only.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::request::{Answer, Request};

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

impl Limits {
    /// The listen backlog that fits [`max_connections`](Self::max_connections).
    pub fn backlog(&self) -> u32 {
        u32::try_from(self.max_connections).unwrap_or(u32::MAX)
    }
}

/// What answers the requests a front end reads.
pub trait Service: Send + Sync + 'static {
    /// The answer to one request that arrived within the limits.
    fn call(&self, request: Request) -> Answer;

    /// Told about each request a limit refused (the front end answers it): why, its method,
    /// and its path (never the query: it may hold a token).
    fn refused(&self, _refusal: Refusal, _method: &http::Method, _path: &str) {}
}

/// Why a request was refused before reaching the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The body is larger than [`Limits::max_body_bytes`] (413).
    TooLarge,
    /// The body did not arrive within [`Limits::read_timeout`] (408).
    TooSlow,
    /// The body could not be read (400).
    Unreadable,
}

impl Refusal {
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
        let body = serde_json::json!({"error": error, "error_description": description});
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::wire::CONTENT_TYPE_JSON),
        );
        // The rest of the body was not read: this connection cannot carry another request.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// Why a connection ended abnormally (a malformed request, a scripted drop, a reset).
#[derive(Debug, thiserror::Error)]
#[error("mock-server connection ended: {0}")]
pub struct ConnectionError(#[source] hyper::Error);

/// Listens on `address` with room for `backlog` connections waiting to be accepted. Must be
/// called inside a tokio runtime, the one that will serve the listener.
///
/// `TcpListener::bind` asks for a backlog of 128 (std's and tokio's choice): a burst of more
/// new connections than that overflows the accept queue, and Linux then drops the handshake's
/// last ACK, so a client that sends nothing first believes it is connected while the server
/// never sees it. The kernel caps `backlog` at `net.core.somaxconn`.
///
/// # Errors
/// When the socket cannot be created, bound or listened on.
pub fn listen(address: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As TcpListener::bind does: a restarted server can take its port back at once.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(backlog)
}

/// Turns each accepted socket into the byte stream HTTP is read from: [`Plain`] hands the socket
/// over as it is; a TLS server does its handshake here. Whatever the transport, the connection
/// then gets the same limits, the same handling and the same graceful stop.
pub trait Transport: Send + Sync + 'static {
    /// What HTTP is read from and written to.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Wraps one accepted socket; an error (a failed handshake) closes the connection.
    fn wrap(&self, socket: TcpStream)
        -> impl Future<Output = std::io::Result<Self::Stream>> + Send;
}

/// Plain HTTP: the socket as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Transport for Plain {
    type Stream = TcpStream;

    async fn wrap(&self, socket: TcpStream) -> std::io::Result<TcpStream> {
        Ok(socket)
    }
}

/// Returned to hyper so that it closes the connection without a response (a scripted drop).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by a scripted drop step")]
struct ConnectionDropped;

/// Serves `listener` over plain HTTP with `service` until `shutdown` completes, then lets open
/// connections finish for [`Limits::shutdown_grace`] and returns what `shutdown` returned
/// (`None` if the server stopped for another reason).
pub async fn serve<S: Service, T>(
    listener: TcpListener,
    service: Arc<S>,
    limits: Limits,
    shutdown: impl Future<Output = T>,
) -> Option<T> {
    serve_over(listener, Arc::new(Plain), service, limits, shutdown).await
}

/// [`serve`] with each accepted socket wrapped by `transport` (a TLS handshake) first.
pub async fn serve_over<W: Transport, S: Service, T>(
    listener: TcpListener,
    transport: Arc<W>,
    service: Arc<S>,
    limits: Limits,
    shutdown: impl Future<Output = T>,
) -> Option<T> {
    let http = http_builder(&limits);
    let limits = Arc::new(limits);
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
                    tracing::warn!(error = %e, "mock-server cannot accept a connection; retrying");
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
        let local = stream.local_addr().ok();
        let watcher = graceful.watcher();
        let (http, transport) = (http.clone(), Arc::clone(&transport));
        let (service, limits) = (Arc::clone(&service), Arc::clone(&limits));
        tokio::spawn(async move {
            match tokio::time::timeout(limits.read_timeout, transport.wrap(stream)).await {
                Ok(Ok(io)) => {
                    let connection = connection(&http, service, limits, local, io);
                    if let Err(e) = watcher.watch(connection).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                Ok(Err(e)) => {
                    tracing::info!(error = %e, "connection set-up (TLS handshake) failed")
                }
                Err(_) => tracing::info!("connection set-up (TLS handshake) timed out"),
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

/// Serves one connection over any byte stream until the peer closes it, exactly as [`serve`]
/// serves each accepted socket (same limits, same handling). For fuzzing and tests, which feed
/// it raw request bytes through an in-memory pipe.
///
/// # Errors
/// [`ConnectionError`] when the connection ends abnormally (a malformed request, a scripted
/// drop).
pub async fn serve_connection<S, IO>(
    service: Arc<S>,
    limits: &Limits,
    io: IO,
) -> Result<(), ConnectionError>
where
    S: Service,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let http = http_builder(limits);
    connection(&http, service, Arc::new(limits.clone()), None, io)
        .await
        .map_err(ConnectionError)
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
fn connection<S, IO>(
    http: &http1::Builder,
    service: Arc<S>,
    limits: Arc<Limits>,
    local: Option<SocketAddr>,
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
    S: Service,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    http.serve_connection(
        TokioIo::new(io),
        service_fn(move |request| {
            handle(Arc::clone(&service), Arc::clone(&limits), local, request)
        }),
    )
}

/// Reads the whole body within the limits.
async fn read_body(
    parts: &http::request::Parts,
    body: Incoming,
    limits: &Limits,
) -> Result<Bytes, Refusal> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limits.max_body_bytes as u64) {
        return Err(Refusal::TooLarge);
    }
    let limited = Limited::new(body, limits.max_body_bytes);
    match tokio::time::timeout(limits.read_timeout, limited.collect()).await {
        Err(_) => Err(Refusal::TooSlow),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Refusal::TooLarge),
        Ok(Err(_)) => Err(Refusal::Unreadable),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

async fn handle<S: Service>(
    service: Arc<S>,
    limits: Arc<Limits>,
    local: Option<SocketAddr>,
    request: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ConnectionDropped> {
    let (parts, body) = request.into_parts();
    let body = match read_body(&parts, body, &limits).await {
        Ok(body) => body,
        Err(refusal) => {
            service.refused(refusal, &parts.method, parts.uri.path());
            return Ok(refusal.response(&limits));
        }
    };
    let mut request = Request::from_parts(parts, body);
    request.local_addr = local;
    match service.call(request) {
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
