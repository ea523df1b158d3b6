//! `--mode force-expire`: the flow staging guides draw, run for real on one credential.
//!
//! 1. a valid credential (active, refresh token, OAuth client);
//! 2. its expiry set in the past (payload and column, one compare-and-swap write);
//! 3. the refresh path run exactly as a worker runs it ([`crate::refresh::Engine::ensure_fresh`]
//!    must see the expired token, refresh it and store the result);
//! 4. proof that the new token works (tokeninfo, the Gmail profile).
//!
//! Each step is reported pass/fail; a failed step skips the ones after it. `--no-refresh` stops
//! after step 2, leaving the credential expired for the application's own workers to refresh.

use crate::error::Result;
use crate::refresh::EngineError;
use crate::report::Report;
use crate::settings::Settings;
use crate::staging::real::action_for;
use crate::staging::{self, Check, Snapshot, Status};
use crate::store::HistoryEntry;
use crate::task::ForceExpireArgs;
use chrono::{TimeDelta, Utc};
use serde::Serialize;
use std::io::{self, Write};

const STEP_VALID: &str = "1 valid credential";
const STEP_EXPIRE: &str = "2 expire";
const STEP_REFRESH: &str = "3 refresh as a worker";
const STEP_WORKS: &str = "4 new token works";

/// How far in the past step 2 sets the expiry: past any refresh margin's doubt.
const EXPIRED_AGO: TimeDelta = TimeDelta::minutes(1);

/// The four steps and the credential before and after (fingerprints only).
#[derive(Debug, Serialize)]
pub struct ForceExpireReport {
    credential_id: i64,
    name: String,
    no_refresh: bool,
    before: Snapshot,
    after: Option<Snapshot>,
    steps: Vec<Check>,
    /// What a person must do now, in plain words, when the credential cannot be used.
    action: Option<String>,
}

impl ForceExpireReport {
    fn passed(&self) -> bool {
        Check::all_passed(&self.steps)
    }

    fn skip_rest(&mut self, why: &str) {
        for name in [STEP_EXPIRE, STEP_REFRESH, STEP_WORKS] {
            if !self.steps.iter().any(|s| s.name == name) {
                self.steps.push(Check::new(name, Status::Skip, why));
            }
        }
    }
}

/// Runs the four steps on `--credential-id` (two with `--no-refresh`).
///
/// # Errors
/// [`Error::Usage`] without `--credential-id`; [`Error::NotFound`]; [`Error::Config`] for the
/// key; [`Error::Decrypt`] (the envelope or its payload); [`Error::Store`]. A failed step is a finding
/// in the report (exit 1).
///
/// [`Error::Config`]: crate::Error::Config
/// [`Error::Decrypt`]: crate::Error::Decrypt
/// [`Error::NotFound`]: crate::Error::NotFound
/// [`Error::Store`]: crate::Error::Store
/// [`Error::Usage`]: crate::Error::Usage
pub async fn run(settings: &Settings, args: &ForceExpireArgs) -> Result<ForceExpireReport> {
    let staging::Opened {
        id,
        keyring,
        store,
        row,
        secrets,
        before,
    } = staging::open_credential(settings, args.credential_id, staging::Access::Write).await?;
    let mut report = ForceExpireReport {
        credential_id: id,
        name: row.name.clone(),
        no_refresh: args.no_refresh,
        steps: vec![Check::fold(
            STEP_VALID,
            &staging::usability_checks(&row, &before),
        )],
        before,
        after: None,
        action: None,
    };
    if !report.passed() {
        report.skip_rest("step 1 failed");
        store.close().await;
        return Ok(report);
    }

    // 2. Expiry in the past, in the payload and in the column workers read.
    let was = report.before.expiry_text();
    let mut expired = secrets;
    expired.expiry = Some(Utc::now() - EXPIRED_AGO);
    let history = HistoryEntry::new(
        "force-expire",
        "expire",
        "ok",
        Some(format!(
            "access token expiry set 1m in the past (was: {was})"
        )),
    );
    let written = store
        .rewrite(&row, &expired, row.state(), &keyring, &history)
        .await?;
    let Some(expired_row) = store.get(id).await? else {
        return Err(crate::error::not_found(&store, id).await);
    };
    let now_expired = expired_row.expires_at.is_some_and(|e| e <= Utc::now());
    let expired_snapshot = Snapshot::new(&expired_row, &expired, settings);
    report.steps.push(match (written, now_expired) {
        (true, true) => Check::new(
            STEP_EXPIRE,
            Status::Pass,
            format!("access token expiry set 1m in the past (was: {was})"),
        ),
        (false, _) => Check::new(
            STEP_EXPIRE,
            Status::Fail,
            "another writer changed the credential meanwhile; nothing written, run again",
        ),
        (true, false) => Check::new(
            STEP_EXPIRE,
            Status::Fail,
            "written, but the stored expiry is not in the past",
        ),
    });
    if !report.passed() || args.no_refresh {
        report.skip_rest(if args.no_refresh {
            "--no-refresh"
        } else {
            "step 2 failed"
        });
        report.after = Some(staging::snapshot(&store, id, &keyring, settings).await?);
        store.close().await;
        return Ok(report);
    }

    // 3. What a worker does when it needs the token.
    let http = settings.http_client()?;
    let engine = settings.engine(http.clone(), store.clone(), keyring.clone(), "force-expire")?;
    let refreshed = engine.ensure_fresh(id).await;
    let after = staging::snapshot(&store, id, &keyring, settings).await?;
    let usable = match refreshed {
        Ok(usable) if usable.outcome == crate::exchange::code::REFRESHED => {
            let new_fp = usable.access_token.fingerprint();
            let worker = Check::new(
                "worker",
                Status::Pass,
                format!("saw the expired token and refreshed it: new access token {new_fp}"),
            );
            let stored = staging::stored_check(&expired_snapshot, &after, &new_fp);
            report
                .steps
                .push(Check::fold(STEP_REFRESH, &[worker, stored]));
            Some(usable)
        }
        Ok(_) => {
            report.steps.push(Check::new(
                STEP_REFRESH,
                Status::Fail,
                "the worker did not refresh: it took the expired token for a fresh one",
            ));
            None
        }
        Err(EngineError::Credential(e)) => return Err(e),
        Err(e) => {
            report.action = Some(action_for(&e));
            report
                .steps
                .push(Check::new(STEP_REFRESH, Status::Fail, e.to_string()));
            None
        }
    };
    report.after = Some(after);
    let Some(usable) = usable.filter(|_| report.passed()) else {
        report.skip_rest("step 3 failed");
        store.close().await;
        return Ok(report);
    };

    // 4. The new token works.
    let proof = staging::prove_token_works(
        &http,
        &settings.api,
        &usable.access_token,
        report.before.client_id.as_deref(),
        &report.before.scopes,
    )
    .await;
    report.steps.push(Check::fold(STEP_WORKS, &proof));
    store.close().await;
    Ok(report)
}

impl Report for ForceExpireReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "force-expire: credential {} \"{}\"{}",
            self.credential_id,
            self.name,
            if self.no_refresh {
                " (--no-refresh: expire only)"
            } else {
                ""
            }
        )?;
        self.before.write(out, "before")?;
        writeln!(out, "steps:")?;
        staging::write_checks(out, &self.steps)?;
        if let Some(after) = &self.after {
            after.write(out, "after")?;
        }
        if let Some(action) = &self.action {
            writeln!(out, "ACTION: {action}")?;
        }
        let passed = self
            .steps
            .iter()
            .filter(|s| s.status == Status::Pass)
            .count();
        writeln!(
            out,
            "{}: {passed} of {} steps passed",
            if self.passed() { "PASS" } else { "FAIL" },
            self.steps.len()
        )
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self);
        v["mode"] = "force-expire".into();
        v["passed"] = self.passed().into();
        v
    }

    fn exit_code(&self) -> u8 {
        Check::exit_code(&self.steps)
    }
}
