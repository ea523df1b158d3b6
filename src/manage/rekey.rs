//! `--mode rekey`: re-encrypt every stored credential with the current key.
//!
//! Key rotation: put the new key in `OAUTHTEST_ENCRYPTION_KEY`, the old one in
//! `OAUTHTEST_OLD_ENCRYPTION_KEYS`, run rekey, then drop the old key. Each row is re-sealed in its
//! own transaction with a compare-and-swap on its version, so a concurrent refresh is never
//! overwritten and an interrupted rekey leaves every row readable with one of the two keys.

use crate::crypto::{EnvelopeFormat, Keyring};
use crate::error::Result;
use crate::exit_code;
use crate::report::Report;
use crate::settings::Settings;
use crate::store::HistoryEntry;
use crate::task::RekeyArgs;
use serde::Serialize;
use std::io::{self, Write};

/// A row rekey could not re-seal.
#[derive(Debug, Serialize)]
pub struct RekeyFailure {
    /// The credential.
    pub id: i64,
    /// Why (never a secret).
    pub error: String,
}

/// What rekey did.
#[derive(Debug, Serialize)]
pub struct RekeyReport {
    dry_run: bool,
    key_id: String,
    rekeyed: Vec<i64>,
    already_current: Vec<i64>,
    failed: Vec<RekeyFailure>,
}

/// Re-seals every credential not already under the current key (`--dry-run`: counts only).
///
/// # Errors
/// [`crate::error::Error::Config`] for keys; [`crate::error::Error::Store`]. Rows that cannot
/// be read or decrypted are reported in the report and left as they are, while every other row
/// is re-sealed: the run exits 1, "done, with failures" (2 would say nothing was written).
pub async fn run(settings: &Settings, args: &RekeyArgs) -> Result<RekeyReport> {
    let keyring = settings.keyring()?;
    // A dry run only reads: no file created, no migration, nothing written.
    let store = if args.dry_run {
        settings.open_store_read_only().await?
    } else {
        settings.open_store().await?
    };
    let mut report = RekeyReport {
        dry_run: args.dry_run,
        key_id: keyring.current().id().to_owned(),
        rekeyed: Vec::new(),
        already_current: Vec::new(),
        failed: Vec::new(),
    };
    let listing = store.list_all().await?;
    for bad in listing.bad {
        report.failed.push(RekeyFailure {
            id: bad.id.unwrap_or_default(),
            error: bad.to_string(),
        });
    }
    for row in listing.rows {
        let sealed_with =
            Keyring::envelope_key_id(&row.encrypted_data).unwrap_or(row.key_id.as_str());
        // An envelope sealed before store binding is re-sealed even under the current key.
        let bound = Keyring::envelope_format(&row.encrypted_data)
            .is_ok_and(|f| f == EnvelopeFormat::StoreBound);
        if sealed_with == keyring.current().id() && bound {
            // Verify it still opens: a current-key row that fails is a finding too.
            match row.decrypt(&keyring) {
                Ok(_) => report.already_current.push(row.id),
                Err(e) => report.failed.push(RekeyFailure {
                    id: row.id,
                    error: e.to_string(),
                }),
            }
            continue;
        }
        let secrets = match row.decrypt(&keyring) {
            Ok(s) => s,
            Err(e) => {
                report.failed.push(RekeyFailure {
                    id: row.id,
                    error: e.to_string(),
                });
                continue;
            }
        };
        if args.dry_run {
            report.rekeyed.push(row.id);
            continue;
        }
        let history = HistoryEntry::new(
            "rekey",
            "rekey",
            "ok",
            Some(format!("{} -> {}", row.key_id, keyring.current().id())),
        );
        if store.reseal(&row, &secrets, &keyring, &history).await? {
            report.rekeyed.push(row.id);
        } else {
            report.failed.push(RekeyFailure {
                id: row.id,
                error: format!(
                    "credential {}: changed by another writer during rekey; run rekey again",
                    row.id
                ),
            });
        }
    }
    store.close().await;
    Ok(report)
}

impl Report for RekeyReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let verb = if self.dry_run {
            "would re-encrypt"
        } else {
            "re-encrypted"
        };
        writeln!(
            out,
            "rekey{}: {verb} {} credential(s) with key {}; {} already current; {} failed.",
            if self.dry_run { " (dry run)" } else { "" },
            self.rekeyed.len(),
            self.key_id,
            self.already_current.len(),
            self.failed.len()
        )?;
        for f in &self.failed {
            writeln!(out, "  FAILED {}", f.error)?;
        }
        Ok(())
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self);
        v["mode"] = "rekey".into();
        v
    }

    fn exit_code(&self) -> u8 {
        // Done, with failures: the rows that could be re-sealed were (each in its own
        // transaction), the failed ones are as they were. 2 would claim nothing was written.
        if self.failed.is_empty() {
            exit_code::SUCCESS
        } else {
            exit_code::CHECK_FAILED
        }
    }
}
