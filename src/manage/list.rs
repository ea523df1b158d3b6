//! `--mode list`: the stored Google credentials and their state, never a secret.
//!
//! Reads only columns kept beside the envelope, so it needs no key and cannot leak one. With
//! `--credential-id`, shows that credential and its history.

use crate::error::Result;
use crate::report::{human_span, write_table, Report};
use crate::settings::Settings;
use crate::store::{BackendKind, BadRow, CredentialRow, HistoryRow};
use crate::task::ListArgs;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::{self, Write};

/// One credential as `list` shows it.
#[derive(Debug, Serialize)]
pub struct CredentialView {
    /// Row id.
    pub id: i64,
    /// Owning user.
    pub user_id: i64,
    /// Credential type.
    #[serde(rename = "type")]
    pub credential_type: String,
    /// Name.
    pub name: String,
    /// `active` or `needs_reconnect`.
    pub state: String,
    /// When the access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Seconds until expiry (negative once expired).
    pub expires_in_seconds: Option<i64>,
    /// Whether the access token has expired.
    pub expired: Option<bool>,
    /// Whether a refresh token is stored.
    pub has_refresh_token: bool,
    /// When a refresh last completed.
    pub last_refresh_at: Option<DateTime<Utc>>,
    /// Its outcome.
    pub last_refresh_outcome: Option<String>,
    /// The key that sealed the envelope.
    pub key_id: String,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl CredentialView {
    fn new(row: &CredentialRow, now: DateTime<Utc>) -> Self {
        let expires_in = row.expires_at.map(|e| (e - now).num_seconds());
        Self {
            id: row.id,
            user_id: row.user_id,
            credential_type: row.credential_type.clone(),
            name: row.name.clone(),
            state: row.state.clone(),
            expires_at: row.expires_at,
            expires_in_seconds: expires_in,
            expired: expires_in.map(|s| s <= 0),
            has_refresh_token: row.has_refresh_token,
            last_refresh_at: row.last_refresh_at,
            last_refresh_outcome: row.last_refresh_outcome.clone(),
            key_id: row.key_id.clone(),
            updated_at: row.updated_at,
        }
    }

    fn expiry_text(&self) -> String {
        match self.expires_in_seconds {
            None => "unknown".into(),
            Some(s) if s > 0 => format!("expires in {}", human_span(s)),
            Some(s) => format!("expired {} ago", human_span(s)),
        }
    }
}

/// What `list` found.
#[derive(Debug)]
pub struct ListReport {
    backend: BackendKind,
    credentials: Vec<CredentialView>,
    unreadable: Vec<BadRow>,
    history: Option<Vec<HistoryRow>>,
}

/// Lists credentials, or one with its history.
///
/// # Errors
/// [`Error::Store`]; [`Error::NotFound`] for an unknown `--credential-id`.
///
/// [`Error::NotFound`]: crate::Error::NotFound
/// [`Error::Store`]: crate::Error::Store
pub async fn run(settings: &Settings, args: &ListArgs) -> Result<ListReport> {
    let store = settings.open_store_read_only().await?;
    let now = Utc::now();
    let (rows, unreadable, history) = match args.credential_id.map(|id| id.get()) {
        Some(id) => {
            let Some(row) = store.get(id).await? else {
                return Err(crate::error::not_found(&store, id).await);
            };
            (vec![row], Vec::new(), Some(store.history(id).await?))
        }
        None => {
            // A row that cannot be read is shown by id with what is wrong; the rest are listed.
            let listing = store.list_all().await?;
            (listing.rows, listing.bad, None)
        }
    };
    let report = ListReport {
        backend: store.kind(),
        credentials: rows.iter().map(|r| CredentialView::new(r, now)).collect(),
        unreadable,
        history,
    };
    store.close().await;
    Ok(report)
}

impl Report for ListReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        for bad in &self.unreadable {
            writeln!(
                out,
                "UNREADABLE {bad} (`oauthtest --mode doctor` checks the whole store)"
            )?;
        }
        if self.credentials.is_empty() && !self.unreadable.is_empty() {
            return Ok(());
        }
        if self.credentials.is_empty() {
            return writeln!(
                out,
                "No credentials stored. Add one with: oauthtest --mode import --file token.json"
            );
        }
        let rows: Vec<Vec<String>> = self
            .credentials
            .iter()
            .map(|c| {
                vec![
                    c.id.to_string(),
                    c.user_id.to_string(),
                    c.credential_type.clone(),
                    c.name.clone(),
                    c.state.clone(),
                    c.expiry_text(),
                    if c.has_refresh_token { "yes" } else { "no" }.into(),
                    c.last_refresh_at.map_or_else(
                        || "never".into(),
                        |at| {
                            let outcome = c.last_refresh_outcome.as_deref().unwrap_or("?");
                            format!("{} ({outcome})", at.format("%Y-%m-%d %H:%M:%SZ"))
                        },
                    ),
                ]
            })
            .collect();
        write_table(
            out,
            &[
                "ID",
                "USER",
                "TYPE",
                "NAME",
                "STATE",
                "ACCESS TOKEN",
                "REFRESH TOKEN",
                "LAST REFRESH",
            ],
            &rows,
        )?;
        if let Some(history) = &self.history {
            writeln!(out, "\nHistory:")?;
            if history.is_empty() {
                writeln!(out, "  (none)")?;
            }
            for h in history {
                writeln!(
                    out,
                    "  {}  {:<12} {:<10} {:<16} {}",
                    h.at.format("%Y-%m-%d %H:%M:%SZ"),
                    h.mode,
                    h.action,
                    h.outcome,
                    h.detail.as_deref().unwrap_or("")
                )?;
            }
        }
        Ok(())
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "mode": "list",
            "backend": self.backend,
            "credentials": self.credentials,
            "unreadable": self.unreadable,
        });
        if let Some(h) = &self.history {
            v["history"] = serde_json::json!(h);
        }
        v
    }
}
