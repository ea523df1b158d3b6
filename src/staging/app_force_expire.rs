//! `force-expire` on the application's own store (`--store-config`): expire the row (a
//! write-back with an expiry in the past), then, unless `--no-refresh`, refresh it as a worker
//! would and prove the new token, in the four steps `force-expire` reports on oauthtest's store.

use super::app::{open, refresh_and_prove, snapshot, usability, AppStagingReport, Opened};
use super::trigger::{self, STEP_TRIGGER};
use crate::app_store::RowId;
use crate::error::Result;
use crate::settings::Settings;
use crate::staging::{Check, Snapshot, Status};
use crate::task::{ForceExpireArgs, TriggerArgs};
use chrono::{TimeDelta, Utc};

pub(super) const STEP_VALID: &str = "1 valid credential";
pub(super) const STEP_EXPIRE: &str = "2 expire";
pub(super) const STEP_REFRESH: &str = "3 refresh as a worker";
pub(super) const STEP_WORKS: &str = "4 new token works";

/// How far in the past `force-expire` sets the expiry.
const EXPIRED_AGO: TimeDelta = TimeDelta::minutes(1);

/// `--mode force-expire` on an application row: expire it (a write-back with a past expiry),
/// then, unless `--no-refresh`, refresh it as a worker would and prove the new token.
///
/// # Errors
/// As [`super::app::real`].
pub async fn force_expire(
    settings: &Settings,
    args: &ForceExpireArgs<RowId>,
) -> Result<AppStagingReport> {
    let mut o = open(settings, &args.credential_id, false, "force-expire").await?;
    o.report.no_refresh = Some(args.no_refresh);
    o.report.trigger = args.trigger.as_ref().map(TriggerArgs::describe);
    let pre = usability(&o.report.before);
    let failed = pre.iter().any(Check::failed);
    o.report.checks.push(Check::fold(STEP_VALID, &pre));
    if failed {
        o.report.step_skipped("step 1 failed");
        o.store.close().await;
        return Ok(o.report);
    }
    let was = o.report.before.expiry_text();
    let mut expired = o.cred.secrets.clone();
    expired.expiry = Some(Utc::now() - EXPIRED_AGO);
    let written = match o
        .store
        .write_back(&o.cipher, &o.cred, &expired, false)
        .await
    {
        Ok(w) => w,
        Err(e) => {
            o.store.close().await;
            return Err(e.into());
        }
    };
    let expired_snapshot = snapshot(&written, &o.cipher, settings);
    o.report
        .checks
        .push(if expired_snapshot.expired == Some(true) {
            Check::new(
                STEP_EXPIRE,
                Status::Pass,
                format!(
                    "access token expiry set 1m in the past in the application's row (was: {was})"
                ),
            )
        } else {
            Check::new(
                STEP_EXPIRE,
                Status::Fail,
                "the row's expiry is not in the past after the write",
            )
        });
    if args.no_refresh {
        o.report.checks.push(Check::new(
            STEP_REFRESH,
            Status::Skip,
            "--no-refresh: left expired for the application's own workers to refresh",
        ));
        o.report
            .checks
            .push(Check::new(STEP_WORKS, Status::Skip, "--no-refresh"));
        o.report.after = Some(expired_snapshot);
        o.store.close().await;
        return Ok(o.report);
    }
    if let Some(trigger) = &args.trigger {
        let checks = triggered(settings, &mut o, trigger, &expired_snapshot).await;
        o.store.close().await;
        checks?;
        return Ok(o.report);
    }
    o.cred = written;
    let outcome = refresh_and_prove(settings, &o, "refresh").await;
    o.store.close().await;
    let (checks, action, after) = outcome?;
    let (refresh_checks, works): (Vec<_>, Vec<_>) = checks
        .into_iter()
        .partition(|c| c.name == "refresh" || c.name == "stored");
    o.report
        .checks
        .push(Check::fold(STEP_REFRESH, &refresh_checks));
    if works.is_empty() {
        o.report.step_skipped("the refresh failed");
    } else {
        o.report.checks.push(Check::fold(STEP_WORKS, &works));
    }
    o.report.action = action;
    o.report.after = Some(after);
    Ok(o.report)
}

/// Steps 3 and 4 with `--trigger-cmd` / `--trigger-url`: the application's workflow refreshes
/// the expired row, then the row is read back and judged.
async fn triggered(
    settings: &Settings,
    o: &mut Opened,
    args: &TriggerArgs,
    expired: &Snapshot,
) -> Result<()> {
    let secrets = trigger::secrets_of(o);
    let ran = trigger::run(settings, args, o.cred.row.id.as_str(), &secrets).await;
    let (step, output): (Vec<_>, Vec<_>) = ran.into_iter().partition(|c| c.status != Status::Note);
    o.report.checks.push(Check::fold(STEP_TRIGGER, &step));
    o.report.checks.extend(output);
    let after_cred = o.store.load(&o.cipher, &o.cred.row.id).await?;
    let after = snapshot(&after_cred, &o.cipher, settings);
    let works = trigger::verify(settings, o, expired, &after_cred, &after).await;
    o.report.checks.push(Check::fold(STEP_WORKS, &works));
    if after.state == "needs_reconnect" {
        o.report.action = Some(
            "The user must reconnect: the application marked the credential after its refresh \
             was refused; ask the user to sign in with Google again and grant access."
                .into(),
        );
    }
    o.report.after = Some(after);
    Ok(())
}

impl AppStagingReport {
    pub(super) fn step_skipped(&mut self, why: &str) {
        let third = if self.trigger.is_some() {
            STEP_TRIGGER
        } else {
            STEP_REFRESH
        };
        for name in [STEP_EXPIRE, third, STEP_WORKS] {
            if !self.checks.iter().any(|s| s.name == name) {
                self.checks.push(Check::new(name, Status::Skip, why));
            }
        }
    }
}
