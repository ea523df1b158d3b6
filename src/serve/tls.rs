//! `serve --tls`: the same server over HTTPS, with a certificate from a throwaway CA.
//!
//! Each accepted socket gets a TLS handshake (bounded by [`Limits::read_timeout`]), then exactly
//! what a plain connection gets, through [`super::serve_connection`]: same limits, same handler.
//! The CA certificate is written to a file the test trusts (`SSL_CERT_FILE`,
//! `REQUESTS_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`); no client needs an "insecure" switch.

use super::{serve_connection, App, Limits};
use mock_server::ThrowawayTls;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{crypto, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// rustls' server configuration for a throwaway certificate: TLS 1.2 and 1.3, HTTP/1.1.
///
/// # Errors
/// rustls' reason, when it refuses the certificate or key.
pub fn acceptor(tls: &ThrowawayTls) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(tls.certificate_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(tls.private_key_der.clone())),
        )
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `listener` over TLS until `shutdown` completes, then lets open connections finish for
/// [`Limits::shutdown_grace`] and returns what `shutdown` returned.
pub async fn run<T>(
    listener: TcpListener,
    app: Arc<App>,
    acceptor: TlsAcceptor,
    limits: Limits,
    shutdown: impl Future<Output = T>,
) -> Option<T> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    let mut stopped_by = None;
    loop {
        while connections.try_join_next().is_some() {}
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
        let acceptor = acceptor.clone();
        let handshake = limits.read_timeout;
        connections.spawn(async move {
            match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    if let Err(e) = serve_connection(app, tls).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                Ok(Err(e)) => tracing::info!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::info!("TLS handshake timed out"),
            }
            drop(permit);
        });
    }
    drop(listener);
    let finished = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
        connections.abort_all();
    }
    stopped_by
}
