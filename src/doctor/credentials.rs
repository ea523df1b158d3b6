//! The `credentials` check: every stored row reads, decrypts with the configured keys, and agrees
//! with what its envelope says (counts and ids only, never a value).

use crate::check::{Check, Status};
use crate::crypto::{CryptoError, EnvelopeFormat, Keyring};
use crate::report::join_numbers;
use crate::settings::OLD_KEYS_VAR;
use crate::store::{CredentialState, DecryptError, MigrationStatus, Store, StoreError};
use std::collections::BTreeMap;

/// Every stored credential decrypts with the configured keys (counts and ids only).
pub(super) async fn check_credentials(
    store: Option<&Store>,
    status: Option<&Result<MigrationStatus, StoreError>>,
    keyring: Option<&Keyring>,
) -> Check {
    const CHECK: &str = "credentials";
    let Some(store) = store else {
        return Check::new(CHECK, Status::Skip, "not checked: no database");
    };
    if matches!(status, Some(Ok(s)) if !s.ledger_exists) {
        return Check::new(CHECK, Status::Skip, "not checked: no oauthtest store yet");
    }
    let Some(keyring) = keyring else {
        return Check::new(CHECK, Status::Skip, "not checked: the key did not load");
    };
    let listing = match store.list_all().await {
        Ok(listing) => listing,
        Err(e) => {
            return Check::new(CHECK, Status::Fail, e.to_string())
                .with_fix("make the migrations current first (see migrations)")
        }
    };
    // Temporary rows are sealed with their run's throwaway key: the temporary_rows check's.
    let rows: Vec<_> = listing
        .rows
        .iter()
        .filter(|r| !crate::temp_rows::is_temporary(&r.name))
        .collect();
    let total = rows.len() + listing.bad.len();
    if total == 0 {
        return Check::new(CHECK, Status::Pass, "no credentials stored");
    }
    let mut failed: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut disagree: Vec<String> = Vec::new();
    let mut on_previous_key = Vec::new();
    let mut row_bound = Vec::new();
    let mut needs_reconnect = 0;
    for row in &rows {
        match row.decrypt(keyring) {
            Ok(secrets) => {
                let sealed_with = Keyring::envelope_key_id(&row.encrypted_data).unwrap_or("?");
                if sealed_with != keyring.current().id() {
                    on_previous_key.push(row.id);
                }
                if sealed_with != row.key_id {
                    disagree.push(format!(
                        "{} (key_id column says {}, the envelope was sealed with {sealed_with})",
                        row.id, row.key_id
                    ));
                }
                if secrets.refresh_token.is_some() != row.has_refresh_token {
                    disagree.push(format!(
                        "{} (has_refresh_token column says {}, the envelope {} one)",
                        row.id,
                        row.has_refresh_token,
                        if secrets.refresh_token.is_some() {
                            "holds"
                        } else {
                            "holds no"
                        }
                    ));
                }
                if Keyring::envelope_format(&row.encrypted_data)
                    .is_ok_and(|f| f == EnvelopeFormat::RowBound)
                {
                    row_bound.push(row.id);
                }
                if row.state() == CredentialState::NeedsReconnect {
                    needs_reconnect += 1;
                }
            }
            Err(e) => {
                let why = match e {
                    DecryptError::Crypto {
                        source: CryptoError::UnknownKey { key_id, .. },
                        ..
                    } => format!("sealed with key {key_id}, which is not configured"),
                    DecryptError::Crypto {
                        source: CryptoError::AuthenticationFailed { .. },
                        ..
                    } => "failed authentication: tampered with, truncated, copied from another \
                          row or store, or an older envelope put back"
                        .to_owned(),
                    DecryptError::Crypto {
                        source: CryptoError::NoStoreId,
                        ..
                    } => "bound to its store, but this store has no id yet (migrations)".to_owned(),
                    DecryptError::Crypto {
                        source: CryptoError::Malformed(_),
                        ..
                    } => "not an oauthtest envelope".to_owned(),
                    DecryptError::Payload { .. } => {
                        "decrypted, but the payload is not a Google credential".to_owned()
                    }
                };
                failed.entry(why).or_default().push(row.id);
            }
        }
    }
    let undecryptable: usize = failed.values().map(Vec::len).sum();
    if undecryptable + listing.bad.len() + disagree.len() > 0 {
        let mut problems = Vec::new();
        if undecryptable > 0 {
            let detail: Vec<_> = failed
                .iter()
                .map(|(why, list)| format!("{} ({why})", join_numbers(list)))
                .collect();
            problems.push(format!(
                "{undecryptable} of {total} credentials do not decrypt with the configured keys: {}",
                detail.join("; ")
            ));
        }
        if !listing.bad.is_empty() {
            let detail: Vec<_> = listing
                .bad
                .iter()
                .map(|b| match b.id {
                    Some(id) => format!("{id} ({})", b.problem),
                    None => format!("? ({})", b.problem),
                })
                .collect();
            problems.push(format!(
                "{} of {total} credential rows cannot be read: {}",
                listing.bad.len(),
                detail.join("; ")
            ));
        }
        if !disagree.is_empty() {
            problems.push(format!(
                "{} disagree with their envelope: {}",
                disagree.len(),
                disagree.join("; ")
            ));
        }
        return Check::new(CHECK, Status::Fail, problems.join("; ")).with_fix(format!(
            "if you still have the key that sealed them, add it to {OLD_KEYS_VAR} and run \
             `oauthtest --mode rekey`; otherwise their users must reconnect; rows restored from \
             production: `oauthtest --mode scrub`; a row that cannot be read or disagrees with \
             its envelope was changed outside oauthtest: delete it and import the credential again"
        ));
    }
    let mut message = format!(
        "{} of {} credentials decrypt with the configured keys",
        rows.len(),
        rows.len()
    );
    if needs_reconnect > 0 {
        message.push_str(&format!("; {needs_reconnect} need reconnecting"));
    }
    let mut fixes = Vec::new();
    if !on_previous_key.is_empty() {
        message.push_str(&format!(
            "; {} still sealed with a previous key: {}",
            on_previous_key.len(),
            join_numbers(&on_previous_key)
        ));
        fixes.push(format!(
            "run `oauthtest --mode rekey`, then drop the old key from {OLD_KEYS_VAR}"
        ));
    }
    if !row_bound.is_empty() {
        message.push_str(&format!(
            "; {} sealed before store binding (otv1, a rollback would not be detected): {}",
            row_bound.len(),
            join_numbers(&row_bound)
        ));
        if on_previous_key.is_empty() {
            fixes.push("run `oauthtest --mode rekey` to bind them to this store".to_owned());
        }
    }
    if fixes.is_empty() {
        return Check::new(CHECK, Status::Pass, message);
    }
    Check::new(CHECK, Status::Warn, message).with_fix(fixes.join("; "))
}
