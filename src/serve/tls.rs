//! `serve --tls`: the same server over HTTPS, with a certificate from a throwaway CA.
//!
//! Each accepted socket gets a TLS handshake, then exactly what a plain connection gets: the
//! accept loop, limits, timeouts and graceful stop are `mock_server::front`'s, which runs this
//! module's [`Tls`] transport before HTTP (bounded by
//! [`Limits::read_timeout`](super::Limits::read_timeout)).
//! The CA certificate is written to a file the test trusts (`SSL_CERT_FILE`,
//! `REQUESTS_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`); no client needs an "insecure" switch.

use mock_server::front::Transport;
use mock_server::ThrowawayTls;
use std::future::Future;
use std::io;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{crypto, ServerConfig};
use tokio_rustls::server::TlsStream;
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

/// The TLS [`Transport`] of `mock_server::front`: each accepted socket's handshake, within
/// [`Limits::read_timeout`](super::Limits::read_timeout), then what a plain socket gets.
#[derive(Clone)]
pub struct Tls(pub TlsAcceptor);

impl Transport for Tls {
    type Stream = TlsStream<TcpStream>;

    fn wrap(&self, socket: TcpStream) -> impl Future<Output = io::Result<Self::Stream>> + Send {
        self.0.accept(socket)
    }
}
