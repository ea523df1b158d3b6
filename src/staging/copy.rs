//! `--mode copy`: bring one credential (your own test account's) from another store, usually
//! production, into this one.
//!
//! The source is opened read-only (see [`Store::connect_read_only`]) and decrypted with its own
//! key (`OAUTHTEST_FROM_ENCRYPTION_KEY` or `--from-key-file`); the payload is sealed again with
//! this store's key, bound to the new row, in one transaction with its history line. One
//! credential per run, by id: copying a store wholesale would bring every user's tokens along,
//! which is exactly what staging must not hold.

use crate::credential::GoogleCredential;
use crate::crypto::CryptoError;
use crate::error::{Error, Result};
use crate::report::Report;
use crate::secret::{AccessToken, RefreshToken};
use crate::settings::{Settings, FROM_KEY_VAR};
use crate::store::{redact_url, DecryptError, HistoryEntry, NewCredential, Store};
use crate::task::CopyArgs;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::{self, Write};

/// What was copied (no secrets).
#[derive(Debug, Serialize)]
pub struct CopyReport {
    source: String,
    source_id: i64,
    source_key_id: String,
    id: i64,
    key_id: String,
    user_id: i64,
    #[serde(rename = "type")]
    credential_type: String,
    name: String,
    state: String,
    has_refresh_token: bool,
    expires_at: Option<DateTime<Utc>>,
    scopes: Vec<String>,
    /// Earlier copies of the same source credential in this store: this copy is another row.
    copied_before: Vec<i64>,
}

/// Copies credential `--credential-id` from `--from-database-url` into this store.
///
/// # Errors
/// [`Error::Usage`] when no single id or no source is given, or the source is this store;
/// [`Error::Config`] for a missing or wrong key (either store's); [`Error::Input`] when the
/// source has no such credential or it cannot be read; [`Error::Store`]. Nothing is written
/// unless everything succeeded.
pub async fn run(settings: &Settings, args: &CopyArgs) -> Result<CopyReport> {
    let id = args.credential_id.get();
    let from = args.from_database_url.as_str();
    let shown = redact_url(from);
    if from.trim() == settings.database_url.trim() {
        return Err(Error::Usage(format!(
            "--from-database-url {shown} is this store; copy reads from another one"
        )));
    }
    // Both keys before touching either database, so a missing key writes nothing.
    let source_keyring = settings.source_keyring()?;
    let keyring = settings.keyring()?;

    let source = Store::connect_read_only(from).await?;
    let row = source.get(id).await?.ok_or_else(|| {
        Error::input(
            format!("--from-database-url {shown}"),
            format!("credential {id} not found"),
        )
    })?;
    source.close().await;
    let secrets = row.decrypt(&source_keyring).map_err(|e| match e {
        DecryptError::Crypto {
            source: CryptoError::UnknownKey { key_id, current },
            ..
        } => Error::config(
            format!("{FROM_KEY_VAR} / --from-key-file"),
            format!(
                "credential {id} of the source store is sealed with key {key_id}, but the source \
                 key given is {current}"
            ),
        ),
        DecryptError::Crypto { source, .. } => Error::input(
            format!("--from-database-url {shown}"),
            format!("credential {id}: {source}"),
        ),
        other @ DecryptError::Payload { .. } => other.into(),
    })?;

    let store = settings.open_store().await?;
    let new = NewCredential {
        user_id: row.user_id,
        credential_type: row.credential_type.clone(),
        name: row.name.clone(),
    };
    let history = HistoryEntry::new(
        "copy",
        "copy",
        "ok",
        Some(format!(
            "from credential {id} of {shown}; key {} -> {}",
            row.key_id,
            keyring.current().id()
        )),
    );
    let copied_before = earlier_copies(&store, id, &shown).await?;
    let new_id = store
        .insert_with_state(&new, &secrets, row.state(), &keyring, &history)
        .await?;
    // Read it back: the copy must open with this store's key, bound to its new row.
    let tokens = |c: &GoogleCredential| {
        (
            c.refresh_token.as_ref().map(RefreshToken::fingerprint),
            c.access_token.as_ref().map(AccessToken::fingerprint),
        )
    };
    let reads_back = store
        .get(new_id)
        .await?
        .and_then(|r| r.decrypt(&keyring).ok())
        .is_some_and(|c| tokens(&c) == tokens(&secrets));
    if !reads_back {
        let _ = store.delete(&[new_id]).await;
        return Err(Error::Internal(anyhow::anyhow!(
            "the copy of credential {id} did not read back as the source credential; removed it"
        )));
    }
    store.close().await;
    Ok(CopyReport {
        source: shown,
        source_id: id,
        source_key_id: row.key_id.clone(),
        id: new_id,
        key_id: keyring.current().id().to_owned(),
        user_id: new.user_id,
        credential_type: new.credential_type,
        name: new.name,
        state: row.state().as_str().to_owned(),
        has_refresh_token: secrets.refresh_token.is_some(),
        expires_at: secrets.expiry,
        scopes: secrets.scopes.clone(),
        copied_before,
    })
}

/// The credentials of `store` that are earlier copies of credential `id` of the source `shown`,
/// found by the history line each copy writes.
async fn earlier_copies(store: &Store, id: i64, shown: &str) -> Result<Vec<i64>> {
    let mark = format!("from credential {id} of {shown};");
    let mut found = Vec::new();
    for row in store.list().await? {
        let history = store.history(row.id).await?;
        if history
            .iter()
            .any(|h| h.mode == "copy" && h.detail.as_deref().is_some_and(|d| d.starts_with(&mark)))
        {
            found.push(row.id);
        }
    }
    Ok(found)
}

impl Report for CopyReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "Copied credential {} of {} as credential {} ({}, user {}, \"{}\").",
            self.source_id, self.source, self.id, self.credential_type, self.user_id, self.name
        )?;
        writeln!(
            out,
            "Decrypted with the source key {}, re-encrypted with this store's key {}, bound to \
             the new row; it reads back intact.",
            self.source_key_id, self.key_id
        )?;
        writeln!(
            out,
            "State {}; refresh token {}.",
            self.state,
            if self.has_refresh_token {
                "present"
            } else {
                "absent"
            }
        )?;
        if !self.copied_before.is_empty() {
            let ids: Vec<String> = self.copied_before.iter().map(ToString::to_string).collect();
            writeln!(
                out,
                "Warning: credential {} of {} was copied here before (credential {}); this copy \
                 is a second row for the same source credential. Remove the one you do not want.",
                self.source_id,
                self.source,
                ids.join(", ")
            )?;
        }
        Ok(())
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self);
        v["mode"] = "copy".into();
        v
    }
}
