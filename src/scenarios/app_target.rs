//! `mock` / `mock-all --target-cmd` with a store config: each scenario's credential is put into
//! the application's own table as a temporary row, CMD is told its id, and afterwards the
//! application's row, re-read through the store adapter, is judged against the scenario's
//! `expect.outcome`, `expect.state` and `expect.refresh_token`.
//!
//! What the row must show (see docs/scenarios.md):
//! - `expect.state`: the reconnect mark of `[store.reconnect]` set exactly when the scenario
//!   expects `needs_reconnect` (a config without `[store.reconnect]` cannot show it: a scenario
//!   that expects it fails, saying so);
//! - `expect.outcome`: `refreshed` means a new access token the mock issued and that still works
//!   is stored, with an expiry in the future; `needs_reconnect` means marked, with no new access
//!   token; every other outcome means the row's tokens are left as they were (no bogus token
//!   written from a 200 without `access_token`, none wiped on a 503);
//! - `expect.refresh_token`: `kept` is the refresh token it started with, `rotated` is the new
//!   one the mock returned (saved, and live), and whenever the credential stays active its
//!   refresh token must still be live at the mock, so the next job can recover.
//!
//! The row is named `oauthtest scenario NAME (temporary, run …)` where the table has a name
//! column, registered with [`crate::temp_rows`] and deleted afterwards on every path out: a
//! failed run, an error, SIGINT or SIGTERM.
//!
//! # Security
//! Tokens are compared and shown as fingerprints; no value of the row is printed.

use super::run::ScenarioResult;
use super::setup::SeededCredential;
use super::Scenario;
use crate::app_store::{AppCredential, AppStore, Cipher, NewAppCredential, RowId};
use crate::credential::GoogleCredential;
use crate::error::{Error, Result};
use crate::exchange::code;
use crate::settings::Settings;
use chrono::Utc;
use mock_server::{fingerprint, MockGoogle, TokenStatus};
use secrecy::ExposeSecret;
use std::fmt;

/// The application's table, connected, with its cipher: where `--target-cmd`'s scenarios put
/// their credentials.
pub struct AppTarget {
    store: AppStore,
    cipher: Cipher,
    /// The database URL as given (with its password: the clean-up must reconnect).
    url: String,
    /// `user_column` of the temporary rows.
    user_id: String,
}

impl fmt::Debug for AppTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppTarget({:?})", self.store)
    }
}

/// How the application's row stands after CMD, as an outcome word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Observed {
    /// A new access token, live at the mock.
    Refreshed,
    /// Marked "must reconnect".
    NeedsReconnect,
    /// A new access token the mock does not take (not issued, expired or revoked), or the
    /// access token removed.
    UnusableToken,
    /// The access token as it was seeded.
    Unchanged,
}

impl Observed {
    fn name(self) -> &'static str {
        match self {
            Observed::Refreshed => "refreshed",
            Observed::NeedsReconnect => "needs_reconnect",
            Observed::UnusableToken => "unusable_token_stored",
            Observed::Unchanged => "unchanged",
        }
    }
}

fn same<T: ExposeSecret<str>>(a: Option<&T>, b: Option<&T>) -> bool {
    a.map(|s| s.expose_secret()) == b.map(|s| s.expose_secret())
}

fn shown<T: ExposeSecret<str>>(token: Option<&T>) -> String {
    token.map_or_else(|| "none".into(), |t| fingerprint(t.expose_secret()))
}

impl AppTarget {
    /// Connects to the application's store (`--store-config`, `--database-url`) and loads its
    /// key.
    ///
    /// # Errors
    /// [`Error::Config`] for the config or key, [`Error::Store`] for the database.
    pub async fn open(settings: &Settings, user_id: i64) -> Result<Self> {
        let (store, cipher) = settings.open_app_store(false, true).await?;
        let cipher = cipher.ok_or_else(|| Error::Usage("the store config has no cipher".into()))?;
        Ok(Self {
            store,
            cipher,
            url: settings.database_url.clone(),
            user_id: user_id.to_string(),
        })
    }

    /// Closes the connection pool.
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// Writes `seeded` into the application's table as a temporary row of `scenario`'s, sealed
    /// the application's way; returns its id.
    ///
    /// # Errors
    /// Why the row could not be written (no secret).
    pub async fn seed(
        &self,
        scenario: &Scenario,
        seeded: &SeededCredential,
    ) -> std::result::Result<RowId, String> {
        let cfg = self.store.config();
        let secrets = GoogleCredential {
            access_token: seeded.access_token.clone(),
            refresh_token: Some(seeded.refresh_token.clone()),
            expiry: seeded.expiry,
            scopes: seeded.scopes.clone(),
            token_type: "Bearer".into(),
            client_id: Some(seeded.client_id.clone()),
            client_secret: Some(seeded.client_secret.clone()),
            id_token: None,
        };
        let new = NewAppCredential {
            credential_type: cfg
                .type_column
                .as_ref()
                .and_then(|_| cfg.google_types.first().cloned()),
            name: Some(crate::temp_rows::name(&format!(
                "oauthtest scenario {}",
                scenario.name
            ))),
            user_id: Some(self.user_id.clone()),
        };
        let _writing = crate::temp_rows::writing().map_err(|e| e.to_string())?;
        crate::temp_rows::expect_app(&self.url, cfg);
        let inserted = self
            .store
            .insert(&self.cipher, &new, &secrets)
            .await
            .map_err(|e| {
                format!("cannot put the scenario's credential into the application's table: {e}")
            })?;
        crate::temp_rows::register_app(&self.url, cfg, &inserted.row.id);
        Ok(inserted.row.id)
    }

    /// Deletes the temporary row `id`.
    pub async fn remove(&self, id: &RowId) {
        match self.store.delete(std::slice::from_ref(id)).await {
            Ok(_) => crate::temp_rows::release_app(&self.url, self.store.config(), id),
            // Still registered: the binary's clean-up tries again.
            Err(e) => tracing::warn!(error = %e, row = %id, "cannot remove a temporary row"),
        }
    }

    /// Re-reads row `id` and judges it: failures into `result.failures`, what it shows into
    /// `result.steps`, the outcome it shows into `result.outcome`. `initial_live`: whether the
    /// seeded refresh token was live at the mock before CMD ran.
    pub async fn judge(
        &self,
        id: &RowId,
        scenario: &Scenario,
        seeded: &SeededCredential,
        initial_live: bool,
        mock: &MockGoogle,
        result: &mut ScenarioResult,
    ) {
        let cred = match self.store.load(&self.cipher, id).await {
            Ok(cred) => cred,
            Err(e) => {
                result.outcome = "unreadable_row".into();
                result
                    .failures
                    .push(format!("application row {id}: cannot be read back: {e}"));
                return;
            }
        };
        let has_mark = self.store.config().reconnect.is_some();
        let observed = observe(&cred, seeded, mock);
        result.outcome = observed.name().into();
        result.steps.push(describe(id, &cred, mock, has_mark));
        result.failures.extend(judge_row(
            scenario,
            seeded,
            initial_live,
            &cred,
            observed,
            mock,
            has_mark,
        ));
    }
}

fn observe(cred: &AppCredential, seeded: &SeededCredential, mock: &MockGoogle) -> Observed {
    let stored = cred.secrets.access_token.as_ref();
    if cred.needs_reconnect {
        Observed::NeedsReconnect
    } else if same(stored, seeded.access_token.as_ref()) {
        Observed::Unchanged
    } else if stored
        .is_some_and(|t| mock.access_token_status(t.expose_secret()) == TokenStatus::Live)
    {
        Observed::Refreshed
    } else {
        Observed::UnusableToken
    }
}

/// The row after CMD, as one step line (fingerprints and statuses only).
fn describe(id: &RowId, cred: &AppCredential, mock: &MockGoogle, has_mark: bool) -> String {
    let s = &cred.secrets;
    let access = s
        .access_token
        .as_ref()
        .map_or("-", |t| mock.access_token_status(t.expose_secret()).name());
    let refresh = s
        .refresh_token
        .as_ref()
        .map_or("-", |t| mock.refresh_token_status(t.expose_secret()).name());
    let expiry = s.expiry.or(cred.row.expiry).map_or_else(
        || "none".into(),
        |e| format!("{:+}s", (e - Utc::now()).num_seconds()),
    );
    format!(
        "application row {id} afterwards: access token {} ({}), expiry {expiry}, refresh token {} ({}), reconnect mark {}",
        shown(s.access_token.as_ref()),
        access,
        shown(s.refresh_token.as_ref()),
        refresh,
        match (has_mark, cred.needs_reconnect) {
            (false, _) => "not configured",
            (true, true) => "set",
            (true, false) => "not set",
        }
    )
}

/// Every expectation the row breaks, as `field: expected X, got Y (why)`.
fn judge_row(
    scenario: &Scenario,
    seeded: &SeededCredential,
    initial_live: bool,
    cred: &AppCredential,
    observed: Observed,
    mock: &MockGoogle,
    has_mark: bool,
) -> Vec<String> {
    let expect = &scenario.expect;
    let mut failures = Vec::new();
    let marked = cred.needs_reconnect;
    match (expect.state.as_str(), has_mark, marked) {
        ("needs_reconnect", false, _) => failures.push(
            "state: expected needs_reconnect, but the store config has no [store.reconnect] to read it from (add the column or pointer your application marks; docs/app-store.md)".into(),
        ),
        ("needs_reconnect", true, false) => failures.push(
            "state: expected needs_reconnect, got active (the row is not marked for reconnection)".into(),
        ),
        ("active", _, true) => failures.push(
            "state: expected active, got needs_reconnect (the row was marked for reconnection)".into(),
        ),
        _ => {}
    }

    let outcome = expect.outcome.as_str();
    let got = observed.name();
    match outcome {
        code::REFRESHED if observed != Observed::Refreshed => failures.push(format!(
            "outcome: expected refreshed (a new, working access token stored), got {got}{}",
            if observed == Observed::Unchanged {
                " (the refreshed access token was not written back)"
            } else {
                ""
            }
        )),
        code::NEEDS_RECONNECT
            if matches!(observed, Observed::Refreshed | Observed::UnusableToken) =>
        {
            failures.push(format!(
                "outcome: expected needs_reconnect (no new access token), got {got}"
            ));
        }
        code::NEEDS_RECONNECT => {}
        _ if outcome != code::REFRESHED
            && !matches!(observed, Observed::Unchanged | Observed::NeedsReconnect) =>
        {
            failures.push(format!(
                "outcome: expected {outcome} (the row's tokens left as they were), got {got}"
            ));
        }
        _ => {}
    }
    let wants_success = outcome == code::REFRESHED || expect.api_call == "succeeded";
    if wants_success {
        let expiry = cred.secrets.expiry.or(cred.row.expiry);
        if expiry.is_none_or(|e| e <= Utc::now()) {
            failures.push(format!(
                "stored expiry: expected in the future, got {}",
                expiry.map_or_else(|| "none".into(), |e| e.to_rfc3339())
            ));
        }
    }

    let stored = cred.secrets.refresh_token.as_ref();
    let initial = Some(&seeded.refresh_token);
    let status = stored.map(|t| mock.refresh_token_status(t.expose_secret()));
    let mut live_checked = false;
    match expect.refresh_token.as_deref() {
        Some("kept") if !same(stored, initial) => failures.push(format!(
            "refresh_token: expected kept, got {}",
            if stored.is_some() {
                "another one"
            } else {
                "none (removed)"
            }
        )),
        Some("rotated") if same(stored, initial) => {
            live_checked = true;
            failures.push(
                "refresh_token: expected rotated, got kept (the rotated refresh token was not saved)"
                    .into(),
            );
        }
        Some("rotated") if status != Some(TokenStatus::Live) => {
            live_checked = true;
            failures.push(format!(
                "refresh_token: expected the rotated one saved, got {}",
                status.map_or("none (removed)", TokenStatus::name)
            ));
        }
        _ => {}
    }
    let stays_active = expect.state == "active" && outcome != code::NEEDS_RECONNECT;
    if stays_active && !live_checked && initial_live && status != Some(TokenStatus::Live) {
        failures.push(format!(
            "stored refresh token: expected live at the mock (so the next job can recover), got {}",
            status.map_or("none (removed)", TokenStatus::name)
        ));
    }
    failures
}
