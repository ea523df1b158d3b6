//! `--mode import` on the application's own store: a new row in the application's format
//! ([`crate::app_store::AppStore::insert`]), from the same JSON shapes as on oauthtest's store.

use crate::app_store::{NewAppCredential, RowId};
use crate::error::{Error, Result};
use crate::import_format::{self, ClientDefaults};
use crate::manage::import::read_source;
use crate::report::Report;
use crate::settings::Settings;
use crate::task::ImportArgs;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::{self, Write};

/// What was imported (no secrets).
#[derive(Debug, Serialize)]
pub struct AppImportReport {
    id: RowId,
    table: String,
    cipher: String,
    #[serde(rename = "type")]
    credential_type: Option<String>,
    name: String,
    expires_at: Option<DateTime<Utc>>,
    has_client: bool,
}

/// Reads the credential named by `--file` and inserts it as a new application row.
///
/// # Errors
/// [`Error::Input`] naming the file and field; [`Error::Config`] for the config or key; the
/// application store's errors (a table that does not allow it). Nothing is written unless
/// everything succeeded.
pub async fn run(settings: &Settings, args: &ImportArgs) -> Result<AppImportReport> {
    let (source_name, bytes) = read_source(&args.file)?;
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
    let (credential, _) = import_format::parse(&bytes, &defaults, Utc::now())
        .map_err(|problem| Error::input(&source_name, problem))?;
    let (store, cipher) = settings.open_app_store(false, true).await?;
    let cipher = cipher.ok_or_else(|| Error::Usage("no cipher".into()))?;
    let cfg = store.config();
    let credential_type = cfg.type_column.as_ref().map(|_| {
        if args.credential_type.is_empty() {
            cfg.google_types.first().cloned().unwrap_or_default()
        } else {
            args.credential_type.clone()
        }
    });
    let new = NewAppCredential {
        credential_type: credential_type.clone(),
        name: Some(args.name.clone()),
        user_id: Some(args.user_id.to_string()),
    };
    let inserted = store.insert(&cipher, &new, &credential).await;
    store.close().await;
    let inserted = inserted?;
    Ok(AppImportReport {
        id: inserted.row.id.clone(),
        table: store.config().table.to_string(),
        cipher: cipher.kind().as_str().to_owned(),
        credential_type,
        name: args.name.clone(),
        expires_at: credential.expiry,
        has_client: credential.client_id.is_some(),
    })
}

impl Report for AppImportReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "Imported credential as {} row {} ({}, \"{}\"), sealed the application's way ({}).",
            self.table,
            self.id,
            self.credential_type.as_deref().unwrap_or("-"),
            self.name,
            self.cipher
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
        v["store"] = "application".into();
        v
    }
}
