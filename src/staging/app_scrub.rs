//! `--mode scrub` on the application's own store: wipe every Google row's tokens the
//! application's way ([`crate::app_store::AppStore::scrub`]: tokens and expiry set to null,
//! every other field kept, the row marked "must reconnect"), except the `--keep` rows. Without
//! `--yes` it only shows what would be wiped.

use crate::app_store::{RowId, ScrubResult};
use crate::error::{Error, Result};
use crate::report::Report;
use crate::settings::Settings;
use crate::task::ScrubArgs;
use serde::Serialize;
use std::io::{self, Write};

/// One row and what scrub did (or would do) to it.
#[derive(Debug, Serialize)]
pub struct AppScrubRow {
    id: RowId,
    /// `kept`, `would wipe`, `wiped`, `replaced` (the payload did not decrypt).
    action: String,
    /// Why the payload was replaced, when it was.
    reason: Option<String>,
}

/// What scrub found and did in the application's table.
#[derive(Debug, Serialize)]
pub struct AppScrubReport {
    table: String,
    applied: bool,
    rows: Vec<AppScrubRow>,
}

/// Scrubs the application's Google rows (`--yes`), or shows what would be scrubbed.
///
/// # Errors
/// [`Error::Usage`] for a `--keep` id that is not a Google row; the application store's errors
/// (a row changed meanwhile stops the run: the rows before it are wiped, it and the rest are
/// not).
pub async fn run(settings: &Settings, args: &ScrubArgs<RowId>) -> Result<AppScrubReport> {
    let (store, cipher) = settings.open_app_store(!args.apply, args.apply).await?;
    let result = async {
        let rows = store.list().await?;
        for k in &args.keep {
            if !rows.iter().any(|r| &r.id == k) {
                return Err(Error::Usage(format!(
                    "--keep {k}: no Google credential row with that id in {}",
                    store.config().table
                )));
            }
        }
        let mut out = Vec::new();
        for row in rows {
            let id = row.id.clone();
            let (action, reason) = if args.keep.contains(&id) {
                ("kept", None)
            } else if !args.apply {
                ("would wipe", None)
            } else {
                let cipher = cipher
                    .as_ref()
                    .ok_or_else(|| Error::Usage("no cipher".into()))?;
                match store.scrub(cipher, &row).await? {
                    ScrubResult::TokensCleared(_) => ("wiped", None),
                    ScrubResult::Replaced { reason, .. } => ("replaced", Some(reason)),
                }
            };
            out.push(AppScrubRow {
                id,
                action: action.into(),
                reason,
            });
        }
        Ok::<_, Error>(out)
    }
    .await;
    let table = store.config().table.to_string();
    store.close().await;
    Ok(AppScrubReport {
        table,
        applied: args.apply,
        rows: result?,
    })
}

impl Report for AppScrubReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "scrub{}: application store {}",
            if self.applied {
                ""
            } else {
                " (dry run; --yes wipes)"
            },
            self.table
        )?;
        for r in &self.rows {
            match &r.reason {
                Some(why) => writeln!(out, "  row {}: {} ({why})", r.id, r.action)?,
                None => writeln!(out, "  row {}: {}", r.id, r.action)?,
            }
        }
        Ok(())
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self);
        v["mode"] = "scrub".into();
        v["store"] = "application".into();
        v
    }
}
