//! `--mode doctor` on the application's own store: every Google row decrypts with the
//! application's key and maps (the pointers in `[store.payload]` name fields that exist).
//! Read-only: the store is opened so that nothing can be written.

use crate::app_store::{AppStoreError, RowId};
use crate::check::{write_checks, Check, Status};
use crate::error::Result;
use crate::report::Report;
use crate::settings::Settings;
use serde::Serialize;
use std::io::{self, Write};

/// What `doctor` found in the application's store.
#[derive(Debug, Serialize)]
pub struct AppDoctorReport {
    config: String,
    table: String,
    cipher: String,
    rows: usize,
    checks: Vec<Check>,
}

impl AppDoctorReport {
    fn passed(&self) -> bool {
        Check::all_passed(&self.checks)
    }
}

fn row_check(
    id: &RowId,
    result: &std::result::Result<crate::app_store::AppCredential, AppStoreError>,
) -> Check {
    let name = format!("row {id}");
    match result {
        Ok(cred) if cred.secrets.refresh_token.is_none() => Check::new(
            name,
            Status::Fail,
            "decrypts and maps, but holds no refresh token (store.payload.refresh_token): it can never be refreshed",
        ),
        Ok(cred) if !cred.missing_fields.is_empty() => Check::new(
            name,
            Status::Note,
            format!(
                "decrypts and maps; optional fields it lacks: {}",
                cred.missing_fields.join(", ")
            ),
        ),
        Ok(_) => Check::new(name, Status::Pass, "decrypts and maps"),
        Err(e) => Check::new(name, Status::Fail, e.to_string()),
    }
}

/// Opens the application's store read-only and audits every Google row.
///
/// # Errors
/// [`crate::error::Error::Config`] for the config or key (a table or column that is missing, a
/// key that is unset or malformed), the database's errors.
pub async fn run(settings: &Settings) -> Result<AppDoctorReport> {
    let (store, cipher) = settings.open_app_store(true, true).await?;
    let cipher = cipher.ok_or_else(|| crate::error::Error::Usage("no cipher".into()))?;
    let cfg = store.config();
    let mut checks = vec![
        Check::new(
            "config",
            Status::Pass,
            format!(
                "{}: table {} and every configured column exist",
                cfg.file, cfg.table
            ),
        ),
        Check::new(
            "key",
            Status::Pass,
            format!(
                "{} key read{}",
                cipher.kind().as_str(),
                match cipher.old_key_count() {
                    0 => String::new(),
                    n => format!(", {n} previous key(s)"),
                }
            ),
        ),
    ];
    let audit = store.audit(&cipher).await;
    let report = match audit {
        Ok(rows) => {
            if rows.is_empty() {
                checks.push(Check::new(
                    "rows",
                    Status::Note,
                    "no Google credential rows (store.type_column / store.google_types)",
                ));
            }
            checks.extend(rows.iter().map(|(id, r)| row_check(id, r)));
            Ok(AppDoctorReport {
                config: cfg.file.clone(),
                table: cfg.table.to_string(),
                cipher: cipher.kind().as_str().to_owned(),
                rows: rows.len(),
                checks,
            })
        }
        Err(e) => Err(e.into()),
    };
    store.close().await;
    report
}

impl Report for AppDoctorReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "doctor: application store {} ({}), {} Google row(s), config {}",
            self.table, self.cipher, self.rows, self.config
        )?;
        write_checks(out, &self.checks)?;
        writeln!(out, "{}", if self.passed() { "PASS" } else { "FAIL" })
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self);
        v["mode"] = "doctor".into();
        v["store"] = "application".into();
        v["passed"] = self.passed().into();
        v
    }

    fn exit_code(&self) -> u8 {
        Check::exit_code(&self.checks)
    }
}
