//! `serve`'s options as Google's identity provider: who issues the id_tokens and with which key,
//! what the sign-in's consent step does, and HTTPS.

use std::path::PathBuf;

/// The options `--mode serve` takes (clap ids), these and the others.
pub const SERVE_TAKES: &[&str] = &[
    "client_id",
    "client_secret",
    "scenario",
    "scenarios",
    "port",
    "host",
    "read_timeout_ms",
    "admin_token",
    "admin_allow_host",
    "issuer",
    "signing_key",
    "tls",
    "tls_ca_file",
    "consent",
];

/// Flattened into [`Cli`](super::Cli); each is checked against `Mode::takes` like any option.
#[derive(Debug, Clone, clap::Args)]
pub struct IdentityArgs {
    /// serve: the `iss` of its id_tokens and the `issuer` of its discovery document. Google's
    /// client libraries accept only Google's own, the default.
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://accounts.google.com",
        help_heading = "Serve"
    )]
    pub issuer: String,

    /// serve: an RSA private key in PEM (PKCS#8 or PKCS#1, at least 2048 bits) to sign
    /// id_tokens with, instead of one generated at start (so tokens verify across restarts).
    #[arg(long, value_name = "PATH", help_heading = "Serve")]
    pub signing_key: Option<PathBuf>,

    /// serve: what the sign-in's auto-approving consent step does: allow (the default), deny
    /// (redirect with error=access_denied), or an email address (that account signs in).
    /// POST /__admin/consent changes it at run time.
    #[arg(long, value_name = "allow|deny|EMAIL", help_heading = "Serve")]
    pub consent: Option<String>,

    /// serve: HTTPS instead of HTTP, with a certificate (for localhost, 127.0.0.1, ::1 and
    /// --host) from a CA made for this run, whose certificate is written to --tls-ca-file.
    #[arg(long, help_heading = "Serve")]
    pub tls: bool,

    /// serve --tls: where to write the CA certificate clients must trust (SSL_CERT_FILE,
    /// REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS); default oauthtest-ca.pem.
    #[arg(long, value_name = "PATH", help_heading = "Serve")]
    pub tls_ca_file: Option<PathBuf>,
}
