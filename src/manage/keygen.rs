//! `--mode keygen`: a new encryption key for `OAUTHTEST_ENCRYPTION_KEY`.
//!
//! The one place where oauthtest prints key material, because printing it is the point. The text
//! form is the bare key, so `export OAUTHTEST_ENCRYPTION_KEY=$(oauthtest --mode keygen)` works.

use crate::crypto::EncryptionKey;
use crate::report::Report;
use secrecy::ExposeSecret;
use std::io::{self, Write};

/// A freshly generated key.
#[derive(Debug)]
pub struct KeygenReport {
    key: EncryptionKey,
}

/// Generates a key.
pub fn run() -> KeygenReport {
    KeygenReport {
        key: EncryptionKey::generate(),
    }
}

impl Report for KeygenReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}", self.key.to_base64().expose_secret())
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": "keygen",
            "key": self.key.to_base64().expose_secret(),
            "key_id": self.key.id(),
        })
    }
}
