//! `--mode copy`: bring one credential (your own test account's) from another store, usually
//! production, into this one.
//!
//! The source is opened read-only (see [`Store::connect_read_only`]) and decrypted with its own
//! key (`OAUTHTEST_FROM_ENCRYPTION_KEY` or `--from-key-file`); the payload is sealed again with
//! this store's key, bound to the new row, in one transaction with its history line. One
//! credential per run, by id: copying a store wholesale would bring every user's tokens along,
//! which is exactly what staging must not hold.

use crate::credential::GoogleCredential;
use crate::crypto::{CryptoError, Keyring};
use crate::error::{Error, Result};
use crate::report::Report;
use crate::secret::{AccessToken, RefreshToken};
use crate::settings::{Settings, FROM_KEY_VAR};
use crate::store::{
    redact_url, CredentialRow, CredentialState, DecryptError, HistoryEntry, NewCredential, Store,
};
use crate::task::{CopyArgs, CopySource};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::{self, Write};

/// What was copied (no secrets). Ids are integers for oauthtest's store, text for an
/// application's.
#[derive(Debug, Serialize)]
pub struct CopyReport {
    pub(super) source: String,
    /// The source's application table, when the source is an application store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) source_table: Option<String>,
    pub(super) source_id: serde_json::Value,
    pub(super) source_key_id: String,
    /// The destination's application table, when the destination is an application store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) table: Option<String>,
    pub(super) id: serde_json::Value,
    pub(super) key_id: String,
    pub(super) user_id: serde_json::Value,
    #[serde(rename = "type")]
    pub(super) credential_type: String,
    pub(super) name: String,
    pub(super) state: String,
    pub(super) has_refresh_token: bool,
    pub(super) expires_at: Option<DateTime<Utc>>,
    pub(super) scopes: Vec<String>,
    /// Earlier copies of the same source credential in this store: this copy is another row.
    pub(super) copied_before: Vec<i64>,
}

/// Copies credential `--credential-id` from `--from-database-url` into this store. Either
/// side may be an application store (`--from-store-config`, `--store-config`): see
/// [`super::app_copy`].
///
/// # Errors
/// [`Error::Usage`] when no single id or no source is given, or the source is this store;
/// [`Error::Config`] for a missing or wrong key (either store's); [`Error::Input`] when the
/// source has no such credential or it cannot be read; [`Error::Store`]. Nothing is written
/// unless everything succeeded.
pub async fn run(settings: &Settings, args: &CopyArgs) -> Result<CopyReport> {
    let id = match (&args.source, &settings.app_store) {
        (CopySource::Native(id), None) => id.get(),
        _ => return super::app_copy::run(settings, args).await,
    };
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
    let (row, secrets) = read_native(&source_keyring, from, id).await?;
    let new = NewCredential {
        user_id: row.user_id,
        credential_type: row.credential_type.clone(),
        name: row.name.clone(),
    };
    let (new_id, copied_before) = write_native(
        settings,
        &keyring,
        &new,
        &secrets,
        row.state(),
        format!(
            "from credential {id} of {shown}; key {} -> {}",
            row.key_id,
            keyring.current().id()
        ),
        &format!("from credential {id} of {shown};"),
    )
    .await?;
    Ok(CopyReport {
        source: shown,
        source_table: None,
        source_id: id.into(),
        source_key_id: row.key_id.clone(),
        table: None,
        id: new_id.into(),
        key_id: keyring.current().id().to_owned(),
        user_id: new.user_id.into(),
        credential_type: new.credential_type,
        name: new.name,
        state: row.state().as_str().to_owned(),
        has_refresh_token: secrets.refresh_token.is_some(),
        expires_at: secrets.expiry,
        scopes: secrets.scopes.clone(),
        copied_before,
    })
}

/// Credential `id` of oauthtest's store at `from`, opened read-only and decrypted with the
/// source's key.
///
/// # Errors
/// [`Error::Input`] when there is no such credential or it does not decrypt; [`Error::Config`]
/// when it is sealed with a key other than the source key given.
pub(super) async fn read_native(
    source_keyring: &Keyring,
    from: &str,
    id: i64,
) -> Result<(CredentialRow, GoogleCredential)> {
    let shown = redact_url(from);
    let source = Store::connect_read_only(from).await?;
    let row = source.get(id).await?.ok_or_else(|| {
        Error::input(
            format!("--from-database-url {shown}"),
            format!("credential {id} not found"),
        )
    })?;
    source.close().await;
    let secrets = row.decrypt(source_keyring).map_err(|e| match e {
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
    Ok((row, secrets))
}

/// Inserts `secrets` as a new row of this run's oauthtest store, with a `copy` history line
/// (`detail`, which starts with `mark`), and reads it back; returns its id and the earlier
/// copies of the same source (rows whose copy line starts with `mark`).
///
/// # Errors
/// [`Error::Store`]; [`Error::Internal`] when the copy does not read back (it is removed).
pub(super) async fn write_native(
    settings: &Settings,
    keyring: &Keyring,
    new: &NewCredential,
    secrets: &GoogleCredential,
    state: CredentialState,
    detail: String,
    mark: &str,
) -> Result<(i64, Vec<i64>)> {
    let store = settings.open_store().await?;
    let history = HistoryEntry::new("copy", "copy", "ok", Some(detail));
    let copied_before = store.credentials_with_history("copy", mark).await?;
    let new_id = store
        .insert_with_state(new, secrets, state, keyring, &history)
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
        .and_then(|r| r.decrypt(keyring).ok())
        .is_some_and(|c| tokens(&c) == tokens(secrets));
    if !reads_back {
        let _ = store.delete(&[new_id]).await;
        return Err(Error::Internal(anyhow::anyhow!(
            "the copy did not read back as the source credential; removed it"
        )));
    }
    store.close().await;
    Ok((new_id, copied_before))
}

/// An id as people read it: a string without its quotes.
fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Report for CopyReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let table = |t: &Option<String>| {
            t.as_ref()
                .map_or_else(String::new, |t| format!(" table {t}"))
        };
        writeln!(
            out,
            "Copied credential {} of {}{} as credential {}{} ({}, user {}, \"{}\").",
            plain(&self.source_id),
            self.source,
            table(&self.source_table),
            plain(&self.id),
            table(&self.table),
            self.credential_type,
            plain(&self.user_id),
            self.name
        )?;
        writeln!(
            out,
            "Decrypted with the source key {}, re-encrypted with this store's key {}; it reads \
             back intact.",
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
