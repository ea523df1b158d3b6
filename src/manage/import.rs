//! `--mode import`: encrypt and store a credential from a JSON file or stdin.
//!
//! This is the "encryption utility" staging guides ask for when a test credential is inserted by
//! hand: it reads the shapes in [`crate::import_format`], seals the payload with the current key,
//! bound to the new row, and prints the new id.

use crate::error::{Error, Result};
use crate::import_format::{self, ClientDefaults, Shape, MAX_IMPORT_BYTES};
use crate::report::Report;
use crate::settings::Settings;
use crate::store::{HistoryEntry, NewCredential};
use crate::task::ImportArgs;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::{self, Read, Write};
use std::path::Path;

/// What was imported (no secrets).
#[derive(Debug, Serialize)]
pub struct ImportReport {
    id: i64,
    user_id: i64,
    #[serde(rename = "type")]
    credential_type: String,
    name: String,
    shape: Shape,
    expires_at: Option<DateTime<Utc>>,
    scopes: Vec<String>,
    has_client: bool,
    key_id: String,
}

/// Reads, encrypts and stores the credential named by `--file`.
///
/// # Errors
/// [`Error::Input`] naming the file and field; [`Error::Config`] for a missing or bad key;
/// [`Error::Store`]. Nothing is written unless everything succeeded.
pub async fn run(settings: &Settings, args: &ImportArgs) -> Result<ImportReport> {
    let path = args.file.as_path();
    let (source_name, bytes) = read_source(path)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::input(
            &source_name,
            "empty; expected a JSON token response or an authorized_user file",
        ));
    }
    let defaults = ClientDefaults {
        client_id: settings.client_id.clone(),
        client_secret: settings.client_secret.clone(),
    };
    let (credential, shape) = import_format::parse(&bytes, &defaults, Utc::now())
        .map_err(|problem| Error::input(&source_name, problem))?;
    // Check the key before touching the database, so a bad key writes nothing.
    let keyring = settings.keyring()?;
    let store = settings.open_store().await?;
    let new = NewCredential {
        user_id: args.user_id,
        credential_type: args.credential_type.clone(),
        name: args.name.clone(),
    };
    let history = HistoryEntry::new(
        "import",
        "import",
        "ok",
        Some(format!("from {source_name} ({shape:?})")),
    );
    let id = store.insert(&new, &credential, &keyring, &history).await?;
    store.close().await;
    Ok(ImportReport {
        id,
        user_id: new.user_id,
        credential_type: new.credential_type,
        name: new.name,
        shape,
        expires_at: credential.expiry,
        scopes: credential.scopes.clone(),
        has_client: credential.client_id.is_some(),
        key_id: keyring.current().id().to_owned(),
    })
}

pub(crate) fn read_source(path: &Path) -> Result<(String, Vec<u8>)> {
    let mut bytes = Vec::new();
    let limit = MAX_IMPORT_BYTES as u64 + 1;
    if path == Path::new("-") {
        io::stdin()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::input("stdin", format!("cannot read: {e}")))?;
        Ok(("stdin".into(), bytes))
    } else {
        let name = path.display().to_string();
        std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut bytes))
            .map_err(|e| Error::input(&name, format!("cannot read: {e}")))?;
        Ok((name, bytes))
    }
}

impl Report for ImportReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "Imported credential {} ({}, user {}, \"{}\") from a {}.",
            self.id,
            self.credential_type,
            self.user_id,
            self.name,
            match self.shape {
                Shape::PlaygroundTokenResponse => "Playground token response",
                Shape::AuthorizedUser => "authorized_user file",
                Shape::GoogleAuthCredentials => "google-auth credentials file",
            }
        )?;
        if !self.has_client {
            writeln!(
                out,
                "Note: no client id stored with it; refreshes will use GOOGLE_CLIENT_ID / --client-id."
            )?;
        }
        Ok(())
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self);
        v["mode"] = "import".into();
        v
    }
}
