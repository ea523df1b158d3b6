//! `--mode serve`: the mock Google standing alone, for applications in any language.
//!
//! Most applications are not written in Rust: on staging and in CI they point their own token URL
//! at this server. It binds the port, prints the base URL as the first line on stdout (so a
//! script can read it when `--port 0` picked a free one), serves until SIGINT or SIGTERM, then
//! lets open requests finish and prints a summary. The HTTP front end and its limits are the
//! `mock-server` crate's (`mock_server::front`); the service behind it is [`crate::serve`], the
//! admin API [`crate::serve::admin`] and who may use it [`crate::serve::guard`].

use super::guard::{exposure_warning, AdminGuard};
use super::tls::Tls;
use super::{admin::Admin, App, Limits};
use crate::error::{Error, Result};
use crate::report::Report;
use crate::scenarios::{self, setup};
use crate::serve;
use crate::settings::Settings;
use crate::task::ServeArgs;
use mock_server::front::Plain;
use mock_server::{ClientRegistration, MockConfig, MockGoogle, SigningKeyPem};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Requests the admin API can list (the latest ones): a few hundred bytes each, so a server
/// under a benchmark keeps tens of megabytes, not gigabytes.
pub const JOURNAL_CAPACITY: usize = 100_000;

/// How a serve run went, printed after it stops.
#[derive(Debug)]
pub struct ServeReport {
    url: String,
    stopped_by: &'static str,
    mock_requests: u64,
    admin_requests: u64,
    rejected: u64,
    duration_ms: u64,
}

/// Runs the server until SIGINT or SIGTERM.
///
/// # Errors
/// [`Error::Input`] for a malformed scenario file, [`Error::Usage`] for an unknown
/// `--scenario`, [`Error::Config`] when the address cannot be listened on or the client given
/// by `--client-id` cannot be registered.
pub async fn run(settings: &Settings, args: &ServeArgs) -> Result<ServeReport> {
    let scenarios = scenarios::load_all(args.scenarios_dir.as_deref())
        .map_err(|e| Error::input(e.file, e.problem))?;
    if let Some(name) = &args.scenario {
        scenarios::find(&scenarios, name)
            .map_err(|e| Error::Usage(format!("--scenario {name}: {e}")))?;
    }
    let address = SocketAddr::new(args.host, args.port);
    let limits = Limits {
        read_timeout: args.read_timeout,
        ..Limits::default()
    };
    let listener = serve::listen(address, limits.backlog()).map_err(|e| {
        Error::config(
            format!("--host {} --port {}", args.host, args.port),
            format!("cannot listen: {e}"),
        )
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Internal(anyhow::anyhow!("listener has no address: {e}")))?;
    let tls = match &args.tls_ca_file {
        None => None,
        Some(path) => Some(throwaway_tls(args, path)?),
    };
    let url = format!("{}://{local}", if tls.is_some() { "https" } else { "http" });

    let signing_key = match &args.signing_key {
        None => None,
        Some(path) => Some(SigningKeyPem(std::fs::read_to_string(path).map_err(
            |e| {
                Error::config(
                    format!("--signing-key {}", path.display()),
                    format!("cannot read it: {e}"),
                )
            },
        )?)),
    };
    let mut config = MockConfig {
        journal_capacity: JOURNAL_CAPACITY,
        issuer: args.issuer.clone(),
        signing_key,
        consent: args.consent.clone(),
        ..setup::mock_config()
    };
    if let Some(client_id) = &settings.client_id {
        let secret = settings
            .client_secret
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
            .unwrap_or_default();
        config.clients.retain(|c| &c.client_id != client_id);
        config
            .clients
            .push(ClientRegistration::new(client_id.clone(), secret));
    }
    let key_flag = args
        .signing_key
        .as_ref()
        .map(|p| format!("--signing-key {}", p.display()));
    let mock = MockGoogle::detached(config, &url).map_err(|e| {
        let message = e.to_string();
        let flag = match &key_flag {
            Some(flag) if message.contains("signing key") => flag.as_str(),
            _ => "--client-id",
        };
        Error::config(flag, message)
    })?;
    // The first key now, so the first id_token or certs request does not wait for it.
    mock.signing_key_ids()
        .map_err(|e| Error::Internal(anyhow::anyhow!("no signing key: {e}")))?;
    let admin = Admin::new(scenarios).with_guard(AdminGuard::new(
        local,
        &args.admin_allow_hosts,
        args.admin_token.as_ref(),
    ));
    if let Some(warning) = exposure_warning(args.host, args.admin_token.is_some()) {
        tracing::warn!("{warning}");
    }
    if let Some(name) = &args.scenario {
        admin
            .switch(&mock, name)
            .map_err(|e| Error::config(format!("--scenario {name}"), e.to_string()))?;
    }
    let app = Arc::new(App::new(mock, admin, limits));

    // Signal handlers first: a signal that arrives right after the URL is printed must stop the
    // server cleanly, not kill it.
    let signals = crate::signals::Signals::install()?;
    let started = Instant::now();
    {
        let mut stdout = io::stdout().lock();
        let first = match settings.format {
            crate::cli::Format::Json => {
                serde_json::json!({"mode": "serve", "event": "listening", "url": url}).to_string()
            }
            _ => url.clone(),
        };
        writeln!(stdout, "{first}")
            .and_then(|()| stdout.flush())
            .map_err(|e| Error::Internal(anyhow::anyhow!("cannot print the URL: {e}")))?;
    }
    tracing::info!(%url, "serving the mock Google");
    let stop = async move {
        let name = signals.wait().await;
        tracing::info!(signal = name, "shutting down");
        name
    };
    let stopped_by = match tls {
        None => serve::run(listener, Plain, Arc::clone(&app), stop).await,
        Some(acceptor) => serve::run(listener, Tls(acceptor), Arc::clone(&app), stop).await,
    }
    .unwrap_or("an internal stop");
    Ok(ServeReport {
        url,
        stopped_by,
        mock_requests: app.stats.mock_requests.load(Ordering::Relaxed),
        admin_requests: app.stats.admin_requests.load(Ordering::Relaxed),
        rejected: app.stats.rejected.load(Ordering::Relaxed),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// A throwaway CA for `--tls`, its certificate written to `ca_file` (whole or not at all).
fn throwaway_tls(args: &ServeArgs, ca_file: &std::path::Path) -> Result<tokio_rustls::TlsAcceptor> {
    let flag = || format!("--tls-ca-file {}", ca_file.display());
    let mut hosts = Vec::new();
    if !args.host.is_unspecified() {
        hosts.push(args.host.to_string());
    }
    let tls = mock_server::ThrowawayTls::generate(&hosts)
        .map_err(|e| Error::Internal(anyhow::anyhow!("cannot make a TLS certificate: {e}")))?;
    let acceptor = serve::tls::acceptor(&tls)
        .map_err(|e| Error::Internal(anyhow::anyhow!("rustls refused the certificate: {e}")))?;
    let dir = ca_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut staged = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| Error::config(flag(), format!("cannot write there: {e}")))?;
    staged
        .write_all(tls.ca_pem.as_bytes())
        .map_err(|e| Error::config(flag(), format!("cannot write there: {e}")))?;
    staged
        .persist(ca_file)
        .map_err(|e| Error::config(flag(), format!("cannot write there: {e}")))?;
    tracing::info!(ca_file = %ca_file.display(), "serving HTTPS; trust this CA certificate");
    Ok(acceptor)
}

impl Report for ServeReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "stopped on {} after {:.1} s: {} requests answered by the mock, {} admin requests, {} refused by a limit",
            self.stopped_by,
            self.duration_ms as f64 / 1000.0,
            self.mock_requests,
            self.admin_requests,
            self.rejected
        )
    }

    fn json_lines(&self) -> bool {
        true
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": "serve",
            "event": "stopped",
            "url": self.url,
            "stopped_by": self.stopped_by,
            "mock_requests": self.mock_requests,
            "admin_requests": self.admin_requests,
            "rejected": self.rejected,
            "duration_ms": self.duration_ms,
        })
    }
}
