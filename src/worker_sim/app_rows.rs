//! `worker-sim --credential-id N` on the application's own store (`--store-config`):
//! oauthtest's simulated workers doing jobs on the application's existing rows against
//! `--token-url` (a running `serve`, or Google), through the same engine as on oauthtest's
//! store ([`crate::refresh::AppRows`]: the lease in oauthtest's own `oauthtest_app_leases`,
//! write-backs the application's way, compare-and-swap). Judged as worker-sim on oauthtest's own
//! rows is: one refresh per expiry, no superseded refresh token presented, nothing after
//! `invalid_grant`, no job failing.

use super::external::{external_config, on_rows, served_journal};
use super::mode::WorkerSimReport;
use crate::app_store::RowId;
use crate::error::{Error, Result};
use crate::refresh::AppRows;
use crate::settings::Settings;
use crate::task::WorkerSimExternalArgs;
use crate::worker_sim::engine_on;
use std::collections::HashSet;
use std::sync::Arc;

/// Runs the workers on the application's rows `args.credential_ids`.
///
/// # Errors
/// A row that is missing, not a Google credential or does not decrypt and map (exit 2, naming
/// it; nothing written); the database, the lease table, serve's journal.
pub async fn run(
    settings: &Settings,
    args: &WorkerSimExternalArgs<RowId>,
) -> Result<WorkerSimReport> {
    let (store, cipher) = settings.open_app_store(false, true).await?;
    let cipher = cipher.ok_or_else(|| Error::Usage("no cipher".into()))?;
    // Every row is read before any job runs: a bad id or a row that does not decrypt is
    // named at once, with nothing written.
    let mut clients = HashSet::new();
    for id in &args.credential_ids {
        match store.load(&cipher, id).await {
            Ok(cred) => clients.extend(
                cred.secrets
                    .client_id
                    .clone()
                    .or_else(|| settings.client_id.clone()),
            ),
            Err(e) => {
                store.close().await;
                return Err(e.into());
            }
        }
    }
    let journal = served_journal(settings, args.admin_token.clone()).await?;
    let config = external_config(settings, args, args.credential_ids.len());
    let rows = AppRows::new(store, cipher).await?;
    let engine = Arc::new(engine_on(
        rows,
        settings.token_url.as_str(),
        settings.api.clone(),
        &config,
        (settings.client_id.clone(), settings.client_secret.clone()),
    )?);
    let report = on_rows(
        &config,
        false,
        engine.clone(),
        args.credential_ids.clone(),
        journal,
        &clients,
    )
    .await;
    engine.backend().store().close().await;
    report
}
