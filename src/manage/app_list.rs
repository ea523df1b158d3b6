//! `--mode list` on the application's own store (`--store-config`): its Google rows and their
//! state, never a secret.
//!
//! The columns (`type_column`, `name_column`, `user_column`, `expiry_column`, the reconnect
//! column) need no key. When the expiry is only inside the encrypted payload, `list` decrypts
//! each row if the application's key is available, and otherwise lists the rows and says that
//! the expiry needs the key.

use crate::app_store::{AppRow, AppStore, Cipher, RowId};
use crate::error::Result;
use crate::report::{human_span, write_table, Report};
use crate::settings::Settings;
use crate::task::ListArgs;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::{self, Write};

/// One application row as `list` shows it.
#[derive(Debug, Serialize)]
pub struct AppRowView {
    /// The row's id.
    pub id: RowId,
    /// `type_column`.
    #[serde(rename = "type")]
    pub credential_type: Option<String>,
    /// `name_column`.
    pub name: Option<String>,
    /// `user_column`.
    pub user_id: Option<String>,
    /// `active`, `needs_reconnect`, or `unreadable` (the payload does not decrypt or map).
    pub state: String,
    /// When the access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Seconds until then (negative once expired).
    pub expires_in_seconds: Option<i64>,
    /// Whether the access token has expired.
    pub expired: Option<bool>,
    /// Whether a refresh token is in the row (`None` without the key).
    pub has_refresh_token: Option<bool>,
    /// Why the row could not be read, when it could not (never a secret).
    pub problem: Option<String>,
    /// `updated_at_column`.
    pub updated_at: Option<DateTime<Utc>>,
}

/// What `list` found in the application's table.
#[derive(Debug)]
pub struct AppListReport {
    table: String,
    cipher: String,
    /// Set when the expiry is only in the payload and the key is not available.
    needs_key: Option<String>,
    credentials: Vec<AppRowView>,
}

fn view(row: &AppRow, now: DateTime<Utc>) -> AppRowView {
    let expires_in = row.expiry.map(|e| (e - now).num_seconds());
    AppRowView {
        id: row.id.clone(),
        credential_type: row.credential_type.clone(),
        name: row.name.clone(),
        user_id: row.user_id.clone(),
        state: if row.reconnect_marked == Some(true) {
            "needs_reconnect"
        } else {
            "active"
        }
        .into(),
        expires_at: row.expiry,
        expires_in_seconds: expires_in,
        expired: expires_in.map(|s| s <= 0),
        has_refresh_token: None,
        problem: None,
        updated_at: row.updated_at,
    }
}

async fn decrypted(
    store: &AppStore,
    cipher: &Cipher,
    row: AppRow,
    now: DateTime<Utc>,
) -> AppRowView {
    let mut v = view(&row, now);
    match store.open(cipher, row).await {
        Ok(cred) => {
            let expiry = cred.secrets.expiry.or(v.expires_at);
            let expires_in = expiry.map(|e| (e - now).num_seconds());
            v.expires_at = expiry;
            v.expires_in_seconds = expires_in;
            v.expired = expires_in.map(|s| s <= 0);
            v.has_refresh_token = Some(cred.secrets.refresh_token.is_some());
            if cred.needs_reconnect {
                v.state = "needs_reconnect".into();
            }
        }
        Err(e) => {
            v.state = "unreadable".into();
            v.problem = Some(e.to_string());
        }
    }
    v
}

/// Lists the application's Google rows, or one of them.
///
/// # Errors
/// [`crate::error::Error::Config`] for the config, the application store's errors for the
/// database and an unknown `--credential-id`.
pub async fn run(settings: &Settings, args: &ListArgs<RowId>) -> Result<AppListReport> {
    let (store, _) = settings.open_app_store(true, false).await?;
    let cfg = store.config();
    let (cipher, needs_key) = if cfg.list_needs_key() {
        match Cipher::from_config(cfg, &crate::app_store::process_env) {
            Ok(c) => (Some(c), None),
            Err(e) => (
                None,
                Some(format!(
                    "the expiry is only inside the encrypted payload (no store.expiry_column): \
                     list needs the application's key to show it ({e})"
                )),
            ),
        }
    } else {
        (None, None)
    };
    let rows = match &args.credential_id {
        Some(id) => store.get(id).await.map(|r| vec![r]),
        None => store.list().await,
    };
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            store.close().await;
            return Err(e.into());
        }
    };
    let now = Utc::now();
    let mut credentials = Vec::new();
    for row in rows {
        credentials.push(match &cipher {
            Some(c) => decrypted(&store, c, row, now).await,
            None => view(&row, now),
        });
    }
    let report = AppListReport {
        table: cfg.table.to_string(),
        cipher: cfg.cipher.as_str().to_owned(),
        needs_key,
        credentials,
    };
    store.close().await;
    Ok(report)
}

fn expiry_text(v: &AppRowView, needs_key: bool) -> String {
    match v.expires_in_seconds {
        None if needs_key => "needs the key".into(),
        None => "unknown".into(),
        Some(s) if s > 0 => format!("expires in {}", human_span(s)),
        Some(s) => format!("expired {} ago", human_span(s)),
    }
}

impl Report for AppListReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "application store: table {} ({})",
            self.table, self.cipher
        )?;
        if self.credentials.is_empty() {
            writeln!(out, "No Google credentials in {}.", self.table)?;
        } else {
            let rows: Vec<Vec<String>> = self
                .credentials
                .iter()
                .map(|c| {
                    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                    vec![
                        c.id.to_string(),
                        opt(&c.user_id),
                        opt(&c.credential_type),
                        opt(&c.name),
                        c.state.clone(),
                        expiry_text(c, self.needs_key.is_some()),
                    ]
                })
                .collect();
            write_table(
                out,
                &["ID", "USER", "TYPE", "NAME", "STATE", "ACCESS TOKEN"],
                &rows,
            )?;
            for c in &self.credentials {
                if let Some(p) = &c.problem {
                    writeln!(out, "row {}: {p}", c.id)?;
                }
            }
        }
        if let Some(n) = &self.needs_key {
            writeln!(out, "note: {n}")?;
        }
        Ok(())
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": "list",
            "store": "application",
            "table": self.table,
            "cipher": self.cipher,
            "needs_key": self.needs_key,
            "credentials": self.credentials,
        })
    }
}
