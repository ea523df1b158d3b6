//! `serve`'s service: the mock Google behind the `mock-server` crate's bounded HTTP front end,
//! with the [admin API](admin) routed in front of it under `/__admin/`.
//!
//! The front end (limits on headers, bodies, read time and connections; a listen backlog that
//! fits them; graceful stop) is `mock_server::front`, the same one every embedded mock of
//! `mock`, `mock-all` and `worker-sim` answers through. This module adds what only a standalone
//! server needs: the admin API and its [guard], one log line per request, and the
//! counters of the report printed at shutdown. The mock is [`MockGoogle::detached`]: each
//! request goes to [`MockGoogle::answer`] in-process, with no second hop.

pub mod admin;
pub mod guard;
mod identity;
pub mod mode;
pub mod tls;

use http::{header, HeaderValue, StatusCode};
use mock_server::front::{self, Refusal, Service, Transport};
use mock_server::{Answer, JournalEntry, MockGoogle, Request};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

pub use mock_server::front::{listen, ConnectionError, Limits};

/// The path prefix reserved for the admin API.
pub const ADMIN_PREFIX: &str = "/__admin";

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

impl Service for App {
    fn call(&self, request: Request) -> Answer {
        let started = Instant::now();
        if is_admin(request.path()) {
            self.stats.admin_requests.fetch_add(1, Ordering::Relaxed);
            return admin::handle(self, &request);
        }
        self.stats.mock_requests.fetch_add(1, Ordering::Relaxed);
        let answered = self.mock.answer(&request);
        log_answer(&answered.entry, request.path(), started);
        answered.answer
    }

    fn refused(&self, refusal: Refusal, method: &http::Method, path: &str) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            %method,
            path = loggable_path(path),
            ?refusal,
            "request refused"
        );
    }
}

/// Serves `listener` over `transport` ([`front::Plain`], or [`tls::Tls`] for `--tls`) until
/// `shutdown` completes, then lets open connections finish for [`Limits::shutdown_grace`] and
/// returns what `shutdown` returned.
pub async fn run<W: Transport, T>(
    listener: TcpListener,
    transport: W,
    app: Arc<App>,
    shutdown: impl Future<Output = T>,
) -> Option<T> {
    let limits = app.limits.clone();
    front::serve_over(listener, Arc::new(transport), app, limits, shutdown).await
}

/// Serves one connection over any byte stream until the peer closes it, exactly as [`run`]
/// serves each accepted socket. For fuzzing and tests, which feed it raw request bytes through
/// an in-memory pipe.
///
/// # Errors
/// When the connection ends abnormally (a malformed request, a scripted drop).
pub async fn serve_connection<IO>(app: Arc<App>, io: IO) -> Result<(), ConnectionError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let limits = app.limits.clone();
    front::serve_connection(app, &limits, io).await
}

/// A JSON answer, sent at once.
pub(crate) fn json_answer(status: StatusCode, body: &serde_json::Value) -> Answer {
    Answer::Respond {
        status,
        headers: vec![(
            header::CONTENT_TYPE,
            HeaderValue::from_static(mock_server::wire::CONTENT_TYPE_JSON),
        )],
        body: body.to_string(),
        delay: Duration::ZERO,
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
