//! `--mode scrub`: after a production dump is restored into staging, wipe every credential's
//! tokens except the ones named with `--keep`, and mark them needs_reconnect.
//!
//! Staging must not hold real users' tokens. Each scrubbed row gets a new envelope, sealed with
//! this store's key, holding the payload without its tokens (access, refresh and ID token and
//! their expiry; the client and scopes stay, so the row still says what it was for), and is
//! marked needs_reconnect with no refresh token. A row this store's key cannot open (it came
//! sealed with production's key) is scrubbed all the same: its envelope is replaced by an empty
//! payload. Each row is written in its own transaction, compare-and-swap on its version, with a
//! history line; a row changed meanwhile is reported, not overwritten.
//!
//! Without `--yes` (or with `--dry-run`) it only shows what it would do.

use crate::credential::GoogleCredential;
use crate::crypto::Keyring;
use crate::error::{Error, Result};
use crate::exit_code;
use crate::report::Report;
use crate::settings::Settings;
use crate::store::{CredentialRow, CredentialState, HistoryEntry};
use crate::task::ScrubArgs;
use serde::Serialize;
use std::io::{self, Write};

/// One credential scrub wiped (or would wipe).
#[derive(Debug, Serialize)]
pub struct Scrubbed {
    id: i64,
    name: String,
    user_id: i64,
    /// What was in it: `access token`, `refresh token`, `ID token`, or `unreadable payload`.
    wiped: Vec<String>,
}

/// A credential scrub could not wipe.
#[derive(Debug, Serialize)]
pub struct ScrubFailure {
    id: i64,
    error: String,
}

/// What scrub did, or would do.
#[derive(Debug, Serialize)]
pub struct ScrubReport {
    applied: bool,
    key_id: String,
    scrubbed: Vec<Scrubbed>,
    kept: Vec<i64>,
    already_clean: Vec<i64>,
    failed: Vec<ScrubFailure>,
}

/// The payload a scrubbed credential keeps: no token, no expiry; client and scopes as they were
/// (nothing at all when the old payload could not be read).
fn without_tokens(old: Option<GoogleCredential>) -> GoogleCredential {
    match old {
        Some(old) => GoogleCredential {
            access_token: None,
            refresh_token: None,
            expiry: None,
            id_token: None,
            ..old
        },
        None => GoogleCredential {
            access_token: None,
            refresh_token: None,
            expiry: None,
            scopes: Vec::new(),
            token_type: "Bearer".into(),
            client_id: None,
            client_secret: None,
            id_token: None,
        },
    }
}

/// What `row` holds that scrub would wipe; empty when it is already clean.
fn to_wipe(row: &CredentialRow, decrypted: Option<&GoogleCredential>) -> Vec<String> {
    let Some(c) = decrypted else {
        let sealed_with = Keyring::envelope_key_id(&row.encrypted_data).unwrap_or("?");
        return vec![format!(
            "unreadable payload (sealed with key {sealed_with}, not this store's)"
        )];
    };
    let mut wipe: Vec<String> = [
        (c.access_token.is_some(), "access token"),
        (c.refresh_token.is_some(), "refresh token"),
        (c.id_token.is_some(), "ID token"),
    ]
    .into_iter()
    .filter(|(present, _)| *present)
    .map(|(_, what)| what.to_owned())
    .collect();
    if wipe.is_empty() && (row.state() != CredentialState::NeedsReconnect || row.has_refresh_token)
    {
        wipe.push("state".to_owned());
    }
    wipe
}

/// Scrubs every credential not named by `--keep` (only shows the plan without `--yes`).
///
/// # Errors
/// [`Error::Usage`] when a `--keep` id names no credential (nothing is changed then);
/// [`Error::Config`] for the key; [`Error::Store`]. A row that changed during the scrub is
/// reported in the report (exit 1).
pub async fn run(settings: &Settings, args: &ScrubArgs) -> Result<ScrubReport> {
    let keyring = settings.keyring()?;
    let apply = args.apply;
    // The preview only reads: no file created, no migration, nothing written.
    let store = if apply {
        settings.open_store().await?
    } else {
        settings.open_store_read_only().await?
    };
    let rows = store.list().await?;
    let keep: Vec<i64> = args.keep.iter().map(|k| k.get()).collect();
    if let Some(missing) = keep.iter().find(|k| !rows.iter().any(|r| r.id == **k)) {
        return Err(Error::Usage(format!(
            "--keep {missing}: no credential has this id; nothing was scrubbed"
        )));
    }
    let mut report = ScrubReport {
        applied: apply,
        key_id: keyring.current().id().to_owned(),
        scrubbed: Vec::new(),
        kept: Vec::new(),
        already_clean: Vec::new(),
        failed: Vec::new(),
    };
    for row in rows {
        if keep.contains(&row.id) {
            report.kept.push(row.id);
            continue;
        }
        let decrypted = row.decrypt(&keyring).ok();
        let wiped = to_wipe(&row, decrypted.as_ref());
        if wiped.is_empty() {
            report.already_clean.push(row.id);
            continue;
        }
        if apply {
            let history = HistoryEntry::new(
                "scrub",
                "scrub",
                CredentialState::NeedsReconnect.as_str(),
                Some(format!("wiped: {}", wiped.join(", "))),
            );
            let written = store
                .rewrite(
                    &row,
                    &without_tokens(decrypted),
                    CredentialState::NeedsReconnect,
                    &keyring,
                    &history,
                )
                .await?;
            if !written {
                report.failed.push(ScrubFailure {
                    id: row.id,
                    error: format!(
                        "credential {}: changed by another writer during scrub; nothing \
                         written, run scrub again",
                        row.id
                    ),
                });
                continue;
            }
        }
        report.scrubbed.push(Scrubbed {
            id: row.id,
            name: row.name.clone(),
            user_id: row.user_id,
            wiped,
        });
    }
    store.close().await;
    Ok(report)
}

impl Report for ScrubReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let (head, verb) = if self.applied {
            ("scrub", "scrubbed")
        } else {
            ("scrub (preview, nothing changed)", "would scrub")
        };
        writeln!(
            out,
            "{head}: {} {}, {} kept, {} already clean, {} failed.",
            crate::report::count(self.scrubbed.len(), "credential", "credentials"),
            if self.applied {
                "wiped and marked needs_reconnect"
            } else {
                "to wipe and mark needs_reconnect"
            },
            self.kept.len(),
            self.already_clean.len(),
            self.failed.len()
        )?;
        for s in &self.scrubbed {
            writeln!(
                out,
                "  {verb} {} \"{}\" (user {}): {}",
                s.id,
                s.name,
                s.user_id,
                s.wiped.join(", ")
            )?;
        }
        for id in &self.kept {
            writeln!(out, "  keep {id}")?;
        }
        for f in &self.failed {
            writeln!(out, "  FAILED {}", f.error)?;
        }
        if !self.applied && !self.scrubbed.is_empty() {
            writeln!(out, "Run again with --yes to do it.")?;
        }
        Ok(())
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self);
        v["mode"] = "scrub".into();
        v
    }

    fn exit_code(&self) -> u8 {
        if self.failed.is_empty() {
            exit_code::SUCCESS
        } else {
            exit_code::CHECK_FAILED
        }
    }
}
