//! `--mode copy` between application stores: from an application's store into oauthtest's,
//! from oauthtest's into an application's, and from one application's store into another's
//! (production's table into staging's).
//!
//! The source is an application store when `--from-store-config FILE` describes it: its row is
//! read through the adapter ([`AppStore`], opened read-only) and decrypted with the key that
//! file names. The destination is an application store when this run has a store config
//! (`--store-config`, `./oauthtest.toml`, `OAUTHTEST_STORE_CONFIG`): the copy is a new row in
//! that table, sealed the application's way with its key ([`AppStore::insert_copy`] keeps every
//! field of an application payload, [`AppStore::insert`] writes the mapped fields of one from
//! oauthtest's store). Everything is read and decrypted before anything is written, and the
//! write is one INSERT whose value was checked to decrypt again, so a failure leaves nothing.
//!
//! Earlier copies are found only in oauthtest's own store (by its history line): an
//! application's table keeps no history of oauthtest's.

use super::copy::{read_native, write_native, CopyReport};
use crate::app_store::{AppCredential, AppStore, Cipher, NewAppCredential, StoreConfig};
use crate::credential::GoogleCredential;
use crate::error::{Error, Result};
use crate::settings::Settings;
use crate::store::{redact_url, CredentialState, NewCredential};
use crate::task::{CopyArgs, CopySource};

/// The source credential, read and decrypted.
struct Read {
    secrets: GoogleCredential,
    /// The application row it came from (its whole payload), for an application source.
    app: Option<AppCredential>,
    table: Option<String>,
    id: serde_json::Value,
    credential_type: Option<String>,
    name: Option<String>,
    user_id: Option<String>,
    needs_reconnect: bool,
    key_id: String,
    /// How the copy's history line names the source.
    described: String,
}

fn cipher_key(cipher: &Cipher) -> String {
    cipher
        .key_id()
        .map_or_else(|| cipher.kind().as_str().to_owned(), str::to_owned)
}

/// Copies between stores of which at least one is an application's.
///
/// # Errors
/// As [`super::copy::run`]; an application row that does not decrypt with the source's key is
/// an [`Error::Input`] naming the table and row.
pub async fn run(settings: &Settings, args: &CopyArgs) -> Result<CopyReport> {
    let from = args.from_database_url.as_str();
    let shown = redact_url(from);
    let same_db = from.trim() == settings.database_url.trim();
    let source_config = match &args.source {
        CopySource::App { config, .. } => Some(StoreConfig::load(config)?),
        CopySource::Native(_) => None,
    };
    match (&source_config, &settings.app_store) {
        (Some(config), Some(here))
            if same_db && config.table.to_string() == here.table.to_string() =>
        {
            return Err(Error::Usage(format!(
                "--from-database-url {shown} with --from-store-config names this run's own table \
                 {}; copy reads from another one",
                here.table
            )));
        }
        _ => {}
    }
    // Every key before touching a database, so a missing key writes nothing.
    let source_keyring = match &args.source {
        CopySource::Native(_) => Some(settings.source_keyring()?),
        CopySource::App { .. } => None,
    };
    let source_cipher = match &source_config {
        Some(config) => Some(Cipher::from_config(config, &crate::app_store::process_env)?),
        None => None,
    };
    let read = match (&args.source, source_keyring, source_cipher) {
        (CopySource::Native(id), Some(keyring), _) => {
            let (row, secrets) = read_native(&keyring, from, id.get()).await?;
            Read {
                secrets,
                app: None,
                table: None,
                id: id.get().into(),
                credential_type: Some(row.credential_type.clone()),
                name: Some(row.name.clone()),
                user_id: Some(row.user_id.to_string()),
                needs_reconnect: row.state() == CredentialState::NeedsReconnect,
                key_id: row.key_id.clone(),
                described: format!("credential {id} of {shown}"),
            }
        }
        (CopySource::App { id, .. }, _, Some(cipher)) => {
            let Some(config) = &source_config else {
                unreachable!("the source config was read above")
            };
            read_app(config, &cipher, from, id, &shown).await?
        }
        _ => unreachable!("a key or cipher was built for the source above"),
    };
    match &settings.app_store {
        None => into_native(settings, read, &shown).await,
        Some(cfg) => into_app(settings, cfg, read, &shown).await,
    }
}

async fn read_app(
    config: &StoreConfig,
    cipher: &Cipher,
    from: &str,
    id: &crate::app_store::RowId,
    shown: &str,
) -> Result<Read> {
    let source = AppStore::connect_read_only(config.clone(), from).await?;
    let loaded = source.load(cipher, id).await;
    source.close().await;
    let cred = loaded?;
    Ok(Read {
        secrets: cred.secrets.clone(),
        table: Some(config.table.to_string()),
        id: id.as_str().into(),
        credential_type: cred.row.credential_type.clone(),
        name: cred.row.name.clone(),
        user_id: cred.row.user_id.clone(),
        needs_reconnect: cred.needs_reconnect,
        key_id: cipher_key(cipher),
        described: format!("{} row {id} of {shown}", config.table),
        app: Some(cred),
    })
}

/// Into oauthtest's own store: a new row sealed with this store's key.
async fn into_native(settings: &Settings, read: Read, shown: &str) -> Result<CopyReport> {
    let keyring = settings.keyring()?;
    let new = NewCredential {
        // An application's user id that is not an integer (a UUID) has no place here: 0.
        user_id: read
            .user_id
            .as_deref()
            .and_then(|u| u.trim().parse().ok())
            .unwrap_or(0),
        credential_type: read
            .credential_type
            .clone()
            .unwrap_or_else(|| "gmailOAuth2".to_owned()),
        name: read
            .name
            .clone()
            .unwrap_or_else(|| format!("copy of {}", read.described)),
    };
    let state = if read.needs_reconnect {
        CredentialState::NeedsReconnect
    } else {
        CredentialState::Active
    };
    let (new_id, copied_before) = write_native(
        settings,
        &keyring,
        &new,
        &read.secrets,
        state,
        format!(
            "from {}; key {} -> {}",
            read.described,
            read.key_id,
            keyring.current().id()
        ),
        &format!("from {};", read.described),
    )
    .await?;
    Ok(report(
        read,
        shown,
        None,
        new_id.into(),
        keyring.current().id().to_owned(),
        (new.user_id.into(), new.credential_type, new.name),
        state,
        copied_before,
    ))
}

/// Into the application's store this run is pointed at: a new row sealed its way.
async fn into_app(
    settings: &Settings,
    cfg: &StoreConfig,
    read: Read,
    shown: &str,
) -> Result<CopyReport> {
    let (store, cipher) = settings.open_app_store(false, true).await?;
    let Some(cipher) = cipher else {
        unreachable!("open_app_store builds the cipher when asked")
    };
    let credential_type = match (&cfg.type_column, &read.credential_type) {
        (None, _) => None,
        (Some(_), Some(t)) if cfg.google_types.contains(t) => Some(t.clone()),
        (Some(_), _) => cfg.google_types.first().cloned(),
    };
    let new = NewAppCredential {
        credential_type,
        name: read.name.clone(),
        user_id: read.user_id.clone(),
    };
    let written = match &read.app {
        Some(from) => store.insert_copy(&cipher, from, &new).await,
        None => {
            store
                .insert_marked(&cipher, &new, &read.secrets, read.needs_reconnect)
                .await
        }
    };
    store.close().await;
    let written = written?;
    let state = if written.needs_reconnect || read.needs_reconnect {
        CredentialState::NeedsReconnect
    } else {
        CredentialState::Active
    };
    Ok(report(
        read,
        shown,
        Some(cfg.table.to_string()),
        written.row.id.as_str().into(),
        cipher_key(&cipher),
        (
            written
                .row
                .user_id
                .clone()
                .map_or(serde_json::Value::Null, Into::into),
            written.row.credential_type.clone().unwrap_or_default(),
            written.row.name.clone().unwrap_or_default(),
        ),
        state,
        Vec::new(),
    ))
}

#[allow(clippy::too_many_arguments)]
fn report(
    read: Read,
    shown: &str,
    table: Option<String>,
    id: serde_json::Value,
    key_id: String,
    (user_id, credential_type, name): (serde_json::Value, String, String),
    state: CredentialState,
    copied_before: Vec<i64>,
) -> CopyReport {
    CopyReport {
        source: shown.to_owned(),
        source_table: read.table,
        source_id: read.id,
        source_key_id: read.key_id,
        table,
        id,
        key_id,
        user_id,
        credential_type,
        name,
        state: state.as_str().to_owned(),
        has_refresh_token: read.secrets.refresh_token.is_some(),
        expires_at: read.secrets.expiry,
        scopes: read.secrets.scopes.clone(),
        copied_before,
    }
}
