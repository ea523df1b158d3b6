//! `--mode real`: refresh one stored credential against Google itself, the manual check a team
//! runs on staging with its own test account.
//!
//! The refresh goes through the same [`crate::refresh::Engine`] a worker uses (lease, fenced
//! write-back, history line), pointed at `--token-url` (Google's by default). The new token is
//! then proven: tokeninfo must say it was issued to our client with the scopes stored before, and
//! one harmless read (the Gmail profile, when the scopes allow) must succeed. `invalid_grant`
//! leaves the credential marked needs_reconnect and says so in plain words.
//!
//! `--dry-run` decrypts and reports, changing nothing and sending no token request;
//! `--check-token` adds one read-only tokeninfo call with the current access token.

use crate::error::Result;
use crate::refresh::EngineError;
use crate::report::{human_span, Report};
use crate::settings::Settings;
use crate::staging::{self, Check, Snapshot, Status, TokenInfo};
use crate::store::{CredentialRow, CredentialState};
use crate::task::RealArgs;
use serde::Serialize;
use std::io::{self, Write};

/// What `real` found and did (fingerprints only, never a token).
#[derive(Debug, Serialize)]
pub struct RealReport {
    credential_id: i64,
    name: String,
    dry_run: bool,
    token_url: String,
    before: Snapshot,
    after: Option<Snapshot>,
    checks: Vec<Check>,
    /// Dry run: what a real run would do.
    would: Option<String>,
    /// What a person must do now, in plain words, when the credential cannot be used.
    action: Option<String>,
}

impl RealReport {
    fn passed(&self) -> bool {
        Check::all_passed(&self.checks)
    }
}

/// Refreshes credential `--credential-id` and proves the new token works; with `--dry-run`,
/// only reports.
///
/// # Errors
/// [`Error::Usage`] without `--credential-id`; [`Error::NotFound`]; [`Error::Config`] for the
/// key; [`Error::Decrypt`] (the envelope or its payload) for a credential that cannot be read;
/// [`Error::Store`]. A refresh or check that fails is a finding in the report (exit 1), not an
/// error.
///
/// [`Error::Config`]: crate::Error::Config
/// [`Error::Decrypt`]: crate::Error::Decrypt
/// [`Error::NotFound`]: crate::Error::NotFound
/// [`Error::Store`]: crate::Error::Store
/// [`Error::Usage`]: crate::Error::Usage
pub async fn run(settings: &Settings, args: &RealArgs) -> Result<RealReport> {
    let access = if args.dry_run {
        staging::Access::ReadOnly
    } else {
        staging::Access::Write
    };
    let staging::Opened {
        id,
        keyring,
        store,
        row,
        secrets,
        before,
    } = staging::open_credential(settings, args.credential_id, access).await?;
    let mut report = RealReport {
        credential_id: id,
        name: row.name.clone(),
        dry_run: args.dry_run,
        token_url: settings.token_url.to_string(),
        before,
        after: None,
        checks: Vec::new(),
        would: None,
        action: None,
    };
    let http = settings.http_client()?;
    if args.dry_run {
        dry_run(settings, args, &row, &secrets, &http, &mut report).await;
        store.close().await;
        return Ok(report);
    }

    let engine = settings.engine(http.clone(), store.clone(), keyring.clone(), "real")?;
    let refreshed = engine.refresh(id, row.version).await;
    let after = staging::snapshot(&store, id, &keyring, settings).await?;
    match refreshed {
        Ok(usable) => {
            let new_fp = usable.access_token.fingerprint();
            let kept = match (
                &report.before.refresh_token_fingerprint,
                &after.refresh_token_fingerprint,
            ) {
                (Some(a), Some(b)) if a == b => "refresh token kept",
                (_, Some(_)) => "refresh token rotated",
                (_, None) => "refresh token missing",
            };
            report.checks.push(if usable.outcome == crate::exchange::code::REFRESHED {
                Check::new(
                    "refresh",
                    Status::Pass,
                    format!(
                        "Google issued access token {new_fp}, {}; {kept}",
                        after.expiry_text()
                    ),
                )
            } else {
                Check::new(
                    "refresh",
                    Status::Note,
                    format!("another worker refreshed it just now (token {new_fp}); verifying that token"),
                )
            });
            report
                .checks
                .push(staging::stored_check(&report.before, &after, &new_fp));
            report.checks.extend(
                staging::prove_token_works(
                    &http,
                    &settings.api,
                    &usable.access_token,
                    report.before.client_id.as_deref(),
                    &report.before.scopes,
                )
                .await,
            );
        }
        Err(EngineError::Credential(e)) => return Err(e),
        Err(e) => {
            report.action = Some(action_for(&e));
            report
                .checks
                .push(Check::new("refresh", Status::Fail, e.to_string()));
        }
    }
    report.after = Some(after);
    store.close().await;
    Ok(report)
}

/// What a person must do after a failed refresh, in plain words.
pub(crate) fn action_for(e: &EngineError) -> String {
    match e {
        EngineError::NeedsReconnect { .. } | EngineError::NoRefreshToken(_) => {
            "The user must reconnect: Google no longer accepts this credential's refresh token. \
             It is marked needs_reconnect and no refresh will be tried again; ask the user to \
             sign in with Google again and grant access."
                .into()
        }
        EngineError::ClientMisconfigured { .. } => {
            "Fix the OAuth client: check GOOGLE_CLIENT_ID / GOOGLE_CLIENT_SECRET (or the client \
             stored with the credential) against the Google Cloud console."
                .into()
        }
        EngineError::RetryLater { .. } => {
            "Google's token endpoint did not answer usefully; try again later.".into()
        }
        _ => "The refresh did not complete; see the check above.".into(),
    }
}

/// `--dry-run`: every check that needs no token request, and what a real run would do.
async fn dry_run(
    settings: &Settings,
    args: &RealArgs,
    row: &CredentialRow,
    secrets: &crate::credential::GoogleCredential,
    http: &reqwest::Client,
    report: &mut RealReport,
) {
    let before = &report.before;
    let mut checks = vec![Check::new(
        "decrypt",
        Status::Pass,
        format!("payload decrypts with key {}", before.key_id),
    )];
    checks.extend(staging::usability_checks(row, before));
    if !before.client_secret_present {
        checks.push(Check::new(
            "client secret",
            Status::Note,
            "none stored or configured (GOOGLE_CLIENT_SECRET); Google refuses a refresh \
             without one unless the client has no secret",
        ));
    }
    checks.push(Check::new(
        "access token",
        Status::Note,
        match &before.access_token_fingerprint {
            Some(fp) => format!("{fp}, {}", before.expiry_text()),
            None => "none stored (a refresh will issue one)".into(),
        },
    ));
    if args.check_token {
        checks.push(match &secrets.access_token {
            None => Check::new("tokeninfo", Status::Skip, "no access token stored"),
            Some(token) => {
                let info = staging::token_info(http, &settings.api, token).await;
                match info {
                    TokenInfo::Rejected(status) => Check::new(
                        "tokeninfo",
                        Status::Note,
                        format!(
                            "Google does not accept the current access token (HTTP {status}): \
                             expired or revoked; a real run would refresh it"
                        ),
                    ),
                    _ => staging::audience_and_scopes(
                        &info,
                        before.client_id.as_deref(),
                        &before.scopes,
                    ),
                }
            }
        });
    }
    let blocked = checks.iter().any(Check::failed);
    report.would = Some(if blocked {
        "nothing: a real run would stop before any token request (see FAIL above)".into()
    } else {
        format!(
            "refresh at {} ({}), verify the new token with tokeninfo{}, then store it \
             (version {} -> {}) and record it in the history",
            settings.token_url,
            before.expiry_text(),
            if staging::allows_gmail_profile(&before.scopes) {
                " and the Gmail profile"
            } else {
                ""
            },
            before.version,
            before.version + 1
        )
    });
    if blocked && (row.state() == CredentialState::NeedsReconnect || !row.has_refresh_token) {
        report.action = Some(
            "The user must reconnect: sign in with Google again and grant access; this \
             credential cannot be refreshed."
                .into(),
        );
    }
    report.checks = checks;
}

impl Report for RealReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "real{}: credential {} \"{}\", token endpoint {}",
            if self.dry_run { " (dry run)" } else { "" },
            self.credential_id,
            self.name,
            self.token_url
        )?;
        self.before.write(out, "before")?;
        writeln!(out, "checks:")?;
        staging::write_checks(out, &self.checks)?;
        if let Some(after) = &self.after {
            after.write(out, "after")?;
        }
        if let Some(would) = &self.would {
            writeln!(out, "a real run would: {would}")?;
        }
        if let Some(action) = &self.action {
            writeln!(out, "ACTION: {action}")?;
        }
        let verdict = match (self.passed(), self.dry_run) {
            (true, true) => "PASS: the credential can be refreshed".to_owned(),
            (true, false) => {
                let left = self
                    .after
                    .as_ref()
                    .and_then(|a| a.expires_in_seconds)
                    .map_or_else(String::new, |s| {
                        format!(" (new token expires in {})", human_span(s))
                    });
                format!("PASS: refreshed and verified{left}")
            }
            (false, _) => "FAIL".to_owned(),
        };
        writeln!(out, "{verdict}")
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self);
        v["mode"] = "real".into();
        v["passed"] = self.passed().into();
        v
    }

    fn exit_code(&self) -> u8 {
        Check::exit_code(&self.checks)
    }
}
