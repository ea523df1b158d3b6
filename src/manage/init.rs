//! `--mode init`: create the store and bring its schema up to date, and nothing else.
//!
//! The read-only modes (`list`, `doctor`, previews and dry runs) never create or migrate a
//! store, so this is the one step that does it without touching a credential: a new SQLite file,
//! or oauthtest's own tables in an existing PostgreSQL database. Run it again at any time: a
//! current store is left as it is.

use crate::error::Result;
use crate::report::Report;
use crate::settings::Settings;
use crate::store::redact_url;
use std::io::{self, Write};

/// The store that is now ready.
#[derive(Debug)]
pub struct InitReport {
    url: String,
    migrations_before: usize,
    migrations: usize,
    credentials: usize,
}

/// Creates (or migrates) the configured store.
///
/// # Errors
/// [`crate::error::Error::Store`] naming the database when it cannot be reached, created or
/// migrated.
pub async fn run(settings: &Settings) -> Result<InitReport> {
    let before = match crate::store::Store::connect_without_migrating(&settings.database_url).await
    {
        Ok(store) => {
            let applied = store
                .migration_status()
                .await
                .map_or(0, |s| s.applied.len());
            store.close().await;
            applied
        }
        Err(_) => 0,
    };
    let store = settings.open_store().await?;
    let status = store.migration_status().await?;
    let credentials = store.list().await?.len();
    store.close().await;
    Ok(InitReport {
        url: redact_url(&settings.database_url),
        migrations_before: before,
        migrations: status.applied.len(),
        credentials,
    })
}

impl Report for InitReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let new = self.migrations.saturating_sub(self.migrations_before);
        writeln!(
            out,
            "Store ready at {}: {} applied{}; {}.",
            self.url,
            crate::report::count(self.migrations, "migration", "migrations"),
            if new == 0 {
                String::from(", none new")
            } else {
                format!(", {new} new")
            },
            crate::report::count(self.credentials, "credential", "credentials"),
        )
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": "init",
            "database": self.url,
            "migrations_applied": self.migrations,
            "migrations_new": self.migrations.saturating_sub(self.migrations_before),
            "credentials": self.credentials,
        })
    }
}
