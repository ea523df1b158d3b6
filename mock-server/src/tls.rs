//! A throwaway certificate authority and a server certificate it signed, for serving the mock
//! over HTTPS.
//!
//! Some clients refuse plain-HTTP token URLs (oauthlib, unless told to be insecure; the `oauth2`
//! crate for revocation URLs), and a test should not have to switch verification off to reach the
//! mock. So the mock makes a CA of its own for each run: the test trusts that CA's certificate
//! (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`) and nothing else changes.
//! The CA's private key is dropped once the server certificate is signed: nothing else can ever
//! be signed by it.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::error::MockError;

/// The server side of a throwaway CA: its certificate (to trust) and the server's certificate
/// and key (to serve with).
pub struct ThrowawayTls {
    /// The CA certificate, PEM: what a client must trust.
    pub ca_pem: String,
    /// The server certificate, DER, signed by the CA.
    pub certificate_der: Vec<u8>,
    /// The server certificate's private key, PKCS#8 DER.
    ///
    /// # Security
    /// A private key: give it to the TLS server only.
    pub private_key_der: Vec<u8>,
}

impl fmt::Debug for ThrowawayTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrowawayTls")
            .field("ca_pem", &format_args!("[{} bytes]", self.ca_pem.len()))
            .field("private_key_der", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl ThrowawayTls {
    /// A new CA and a server certificate for `hosts` (DNS names or IP addresses; `localhost`,
    /// `127.0.0.1` and `::1` are always included).
    ///
    /// # Errors
    /// [`MockError::InvalidConfig`] for a host that cannot be a certificate name.
    pub fn generate(hosts: &[String]) -> Result<Self, MockError> {
        let invalid = |e: rcgen::Error| MockError::InvalidConfig(format!("TLS certificate: {e}"));
        let ca_key = KeyPair::generate().map_err(invalid)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(invalid)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.distinguished_name
            .push(DnType::CommonName, "oauthtest throwaway CA");
        let ca_certificate = ca.self_signed(&ca_key).map_err(invalid)?;

        let mut names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        for host in hosts {
            if !names.contains(host) {
                names.push(host.clone());
            }
        }
        let server_key = KeyPair::generate().map_err(invalid)?;
        let mut server = CertificateParams::new(names).map_err(invalid)?;
        server.is_ca = IsCa::ExplicitNoCa;
        server.use_authority_key_identifier_extension = true;
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server
            .distinguished_name
            .push(DnType::CommonName, "oauthtest mock Google");
        let server_certificate = server
            .signed_by(&server_key, &ca_certificate, &ca_key)
            .map_err(invalid)?;
        Ok(Self {
            ca_pem: ca_certificate.pem(),
            certificate_der: server_certificate.der().to_vec(),
            private_key_der: server_key.serialize_der(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_and_a_server_certificate_are_made_and_debug_hides_the_key() {
        let tls = ThrowawayTls::generate(&["mock.internal".to_string()]).expect("made");
        assert!(tls.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!tls.certificate_der.is_empty());
        let shown = format!("{tls:?}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
