//! `real` and `force-expire` on the application's own store (`--store-config`).
//!
//! The same work as on oauthtest's store, on the application's row: decrypt and map it
//! ([`AppStore::load`]), refresh through the token exchange against `--token-url` (classified as
//! the engine classifies it), write the result back the application's way
//! ([`AppStore::write_back`]: only the mapped fields change, compare-and-swap on what was read,
//! so a row the application changed meanwhile is reported and left alone), mark the row "must
//! reconnect" on `invalid_grant`, then prove the new token with tokeninfo and the API.
//!
//! The application's rows have no version and no lease: a refresh that races the
//! application's own workers loses the compare-and-swap and says so (exit 2, nothing written).

use crate::app_store::{AppCredential, AppStore, Cipher, RowId};
use crate::error::{Error, Result};
use crate::exchange::{ExchangeConfig, Outcome, RefreshRequest, TokenExchanger};
use crate::report::{human_span, Report};
use crate::secret::{AccessToken, RefreshToken};
use crate::settings::Settings;
use crate::staging::{self, Check, Snapshot, Status, TokenInfo};
use crate::task::RealArgs;
use chrono::{TimeDelta, Utc};
use serde::Serialize;
use std::io::{self, Write};

/// What `real` or `force-expire` found and did on an application row (fingerprints only).
#[derive(Debug, Serialize)]
pub struct AppStagingReport {
    #[serde(skip)]
    pub(super) mode: &'static str,
    pub(super) credential_id: RowId,
    pub(super) name: String,
    /// The application's table.
    pub(super) table: String,
    /// How its rows are sealed.
    pub(super) cipher: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) dry_run: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) no_refresh: Option<bool>,
    /// force-expire's step 3 with `--trigger-cmd` / `--trigger-url`: what ran the workflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) trigger: Option<&'static str>,
    pub(super) token_url: String,
    pub(super) before: Snapshot,
    pub(super) after: Option<Snapshot>,
    /// `checks` for real, `steps` for force-expire.
    #[serde(skip)]
    pub(super) checks: Vec<Check>,
    pub(super) would: Option<String>,
    pub(super) action: Option<String>,
}

impl AppStagingReport {
    fn passed(&self) -> bool {
        Check::all_passed(&self.checks)
    }
}

/// The picture of an application row (the version is always 0: the application keeps none).
pub(super) fn snapshot(cred: &AppCredential, cipher: &Cipher, settings: &Settings) -> Snapshot {
    let s = &cred.secrets;
    let expires_at = s.expiry.or(cred.row.expiry);
    let expires_in = expires_at.map(|e| (e - Utc::now()).num_seconds());
    let (client_id, client) = staging::client_of(s, settings);
    Snapshot {
        state: if cred.needs_reconnect {
            "needs_reconnect"
        } else {
            "active"
        }
        .into(),
        version: 0,
        expires_at,
        expires_in_seconds: expires_in,
        expired: expires_in.map(|s| s <= 0),
        access_token_fingerprint: s.access_token.as_ref().map(AccessToken::fingerprint),
        refresh_token_fingerprint: s.refresh_token.as_ref().map(RefreshToken::fingerprint),
        scopes: s.scopes.clone(),
        token_type: s.token_type.clone(),
        client_id,
        client,
        client_secret_present: s.client_secret.is_some() || settings.client_secret.is_some(),
        key_id: cipher
            .key_id()
            .map_or_else(|| cipher.kind().as_str().to_owned(), str::to_owned),
    }
}

/// The checks that decide whether a refresh can be tried at all.
pub(super) fn usability(before: &Snapshot) -> Vec<Check> {
    let state = if before.state == "needs_reconnect" {
        Check::new(
            "state",
            Status::Fail,
            "the application marks it \"must reconnect\" (store.reconnect): the user must reconnect",
        )
    } else {
        Check::new("state", Status::Pass, "active")
    };
    let refresh_token = match &before.refresh_token_fingerprint {
        Some(fp) => Check::new("refresh token", Status::Pass, format!("present ({fp})")),
        None => Check::new(
            "refresh token",
            Status::Fail,
            "none in the row (store.payload.refresh_token): it can never be refreshed; the user must reconnect",
        ),
    };
    let client = match (&before.client_id, before.client) {
        (Some(id), how) => Check::new("client", Status::Pass, format!("{id} ({})", how.describe())),
        (None, _) => Check::new(
            "client",
            Status::Fail,
            "no client id in the row (store.payload.client_id) and none configured \
             (GOOGLE_CLIENT_ID / --client-id)",
        ),
    };
    vec![state, refresh_token, client]
}

pub(super) struct Opened {
    pub(super) store: AppStore,
    pub(super) cipher: Cipher,
    pub(super) cred: AppCredential,
    pub(super) report: AppStagingReport,
}

pub(super) async fn open(
    settings: &Settings,
    id: &RowId,
    read_only: bool,
    mode: &'static str,
) -> Result<Opened> {
    let (store, cipher) = settings.open_app_store(read_only, true).await?;
    let cipher = cipher.ok_or_else(|| Error::Usage("no cipher".into()))?;
    let cred = match store.load(&cipher, id).await {
        Ok(c) => c,
        Err(e) => {
            store.close().await;
            return Err(e.into());
        }
    };
    let before = snapshot(&cred, &cipher, settings);
    let report = AppStagingReport {
        mode,
        credential_id: cred.row.id.clone(),
        name: cred.row.name.clone().unwrap_or_default(),
        table: store.config().table.to_string(),
        cipher: cipher.kind().as_str().to_owned(),
        dry_run: None,
        no_refresh: None,
        trigger: None,
        token_url: settings.token_url.to_string(),
        before,
        after: None,
        checks: Vec::new(),
        would: None,
        action: None,
    };
    Ok(Opened {
        store,
        cipher,
        cred,
        report,
    })
}

/// What a refresh of an application row amounted to.
enum Refreshed {
    /// Written back; the new access token.
    Ok(AccessToken),
    /// Google refused; the check saying why and what to do.
    Failed(Check, String),
}

/// Refreshes `cred` at `--token-url` and writes the result back (compare-and-swap).
async fn refresh(
    settings: &Settings,
    http: &reqwest::Client,
    store: &AppStore,
    cipher: &Cipher,
    cred: &AppCredential,
    name: &str,
) -> Result<Refreshed> {
    let s = &cred.secrets;
    let client_id = s.client_id.clone().or_else(|| settings.client_id.clone());
    let client_secret = s.client_secret.as_ref().or(settings.client_secret.as_ref());
    let (Some(client_id), Some(refresh_token)) = (client_id, s.refresh_token.as_ref()) else {
        return Ok(Refreshed::Failed(
            Check::new(name, Status::Fail, "no refresh token or no client id"),
            "The user must reconnect, or configure the OAuth client (GOOGLE_CLIENT_ID).".into(),
        ));
    };
    let exchanger = TokenExchanger::new(
        http.clone(),
        ExchangeConfig {
            token_url: settings.token_url.clone(),
            request_timeout: settings.request_timeout(),
            ..ExchangeConfig::default()
        },
    );
    let exchange = exchanger
        .refresh(&RefreshRequest {
            client_id: &client_id,
            client_secret,
            refresh_token,
            scopes: &[],
        })
        .await;
    let attempts = exchange.attempts.len();
    let describe = |error: &str, description: Option<&str>| match description {
        Some(d) => format!("{error}: {d}"),
        None => error.to_owned(),
    };
    match exchange.outcome {
        Outcome::Refreshed(grant) => {
            let expires_at =
                Utc::now() + TimeDelta::from_std(grant.expires_in).unwrap_or(TimeDelta::zero());
            let token = grant.access_token.clone();
            let mut new = s.clone();
            new.access_token = Some(grant.access_token);
            if let Some(rt) = grant.refresh_token {
                new.refresh_token = Some(rt);
            }
            new.expiry = Some(expires_at);
            // Only a changed set of scopes is written: the same scopes in another order leave
            // the application's field as it wrote it.
            let same = |a: &[String], b: &[String]| {
                a.iter().collect::<std::collections::BTreeSet<_>>()
                    == b.iter().collect::<std::collections::BTreeSet<_>>()
            };
            if !grant.scopes.is_empty() && !same(&grant.scopes, &s.scopes) {
                new.scopes = grant.scopes;
            }
            new.token_type = grant.token_type;
            if let Some(id) = grant.id_token {
                new.id_token = Some(id);
            }
            store.write_back(cipher, cred, &new, false).await?;
            Ok(Refreshed::Ok(token))
        }
        Outcome::NeedsReconnect {
            error, description, ..
        } => {
            let detail = describe(&error, description.as_deref());
            let marked = if store.config().reconnect.is_some() {
                store.write_back(cipher, cred, s, true).await?;
                "the row is now marked \"must reconnect\" (store.reconnect)"
            } else {
                "no store.reconnect is configured, so the row is not marked"
            };
            Ok(Refreshed::Failed(
                Check::new(
                    name,
                    Status::Fail,
                    format!("the user must reconnect ({detail}); {marked}"),
                ),
                "The user must reconnect: Google no longer accepts this credential's refresh \
                 token; ask the user to sign in with Google again and grant access."
                    .into(),
            ))
        }
        other => {
            let (detail, action) = match other {
                Outcome::ClientMisconfigured { error, description } => (
                    format!("OAuth client misconfigured ({})", describe(&error, description.as_deref())),
                    "Fix the OAuth client: check GOOGLE_CLIENT_ID / GOOGLE_CLIENT_SECRET (or the \
                     client stored with the credential) against the Google Cloud console.",
                ),
                Outcome::RequestRejected { error, description } => (
                    format!("token request rejected ({})", describe(&error, description.as_deref())),
                    "The refresh did not complete; see the check above.",
                ),
                Outcome::RetryLater { reason, .. } => (
                    format!("token endpoint unavailable, retry later ({reason} after {attempts} attempt(s))"),
                    "Google's token endpoint did not answer usefully; try again later.",
                ),
                Outcome::ProtocolError { detail } => (
                    format!("malformed token response ({detail})"),
                    "The refresh did not complete; see the check above.",
                ),
                Outcome::Refreshed(_) | Outcome::NeedsReconnect { .. } => {
                    unreachable!("handled above")
                }
            };
            Ok(Refreshed::Failed(
                Check::new(name, Status::Fail, detail),
                action.into(),
            ))
        }
    }
}

/// The check that the row now holds the new token, ahead expiry, refresh token kept.
fn stored_check(after: &Snapshot, new_fp: &str, cipher: &str) -> Check {
    let mut problems = Vec::new();
    if after.access_token_fingerprint.as_deref() != Some(new_fp) {
        problems.push("the stored access token is not the new one".to_owned());
    }
    if after.refresh_token_fingerprint.is_none() {
        problems.push("the refresh token is gone".to_owned());
    }
    if after.expired != Some(false) {
        problems.push(format!(
            "the stored expiry is not ahead ({})",
            after.expiry_text()
        ));
    }
    if problems.is_empty() {
        Check::new(
            "stored",
            Status::Pass,
            format!(
                "written back into the application's row, sealed the application's way ({cipher})"
            ),
        )
    } else {
        Check::new("stored", Status::Fail, problems.join("; "))
    }
}

/// Refreshes, re-reads the row and proves the new token: the checks, and the row after.
pub(super) async fn refresh_and_prove(
    settings: &Settings,
    o: &Opened,
    name: &str,
) -> Result<(Vec<Check>, Option<String>, Snapshot)> {
    let http = settings.http_client()?;
    let result = refresh(settings, &http, &o.store, &o.cipher, &o.cred, name).await?;
    let after_cred = o.store.load(&o.cipher, &o.cred.row.id).await?;
    let after = snapshot(&after_cred, &o.cipher, settings);
    Ok(match result {
        Refreshed::Ok(token) => {
            let fp = token.fingerprint();
            let kept = match (
                &o.report.before.refresh_token_fingerprint,
                &after.refresh_token_fingerprint,
            ) {
                (Some(a), Some(b)) if a == b => "refresh token kept",
                (_, Some(_)) => "refresh token rotated",
                (_, None) => "refresh token missing",
            };
            let mut checks = vec![
                Check::new(
                    name,
                    Status::Pass,
                    format!(
                        "Google issued access token {fp}, {}; {kept}",
                        after.expiry_text()
                    ),
                ),
                stored_check(&after, &fp, &o.report.cipher),
            ];
            checks.extend(
                staging::prove_token_works(
                    &http,
                    &settings.api,
                    &token,
                    o.report.before.client_id.as_deref(),
                    &o.report.before.scopes,
                )
                .await,
            );
            (checks, None, after)
        }
        Refreshed::Failed(check, action) => (vec![check], Some(action), after),
    })
}

/// `--mode real` on an application row.
///
/// # Errors
/// [`Error::Config`] for the config or key; the application store's errors (not found, not
/// Google, does not decrypt or map, changed meanwhile), exit 2 with nothing written.
pub async fn real(settings: &Settings, args: &RealArgs<RowId>) -> Result<AppStagingReport> {
    let mut o = open(settings, &args.credential_id, args.dry_run, "real").await?;
    o.report.dry_run = Some(args.dry_run);
    let before = o.report.before.clone();
    if args.dry_run {
        let mut checks = vec![Check::new(
            "decrypt",
            Status::Pass,
            format!(
                "the row decrypts ({}) and maps (store.payload)",
                o.report.cipher
            ),
        )];
        checks.extend(usability(&before));
        checks.push(Check::new(
            "access token",
            Status::Note,
            match &before.access_token_fingerprint {
                Some(fp) => format!("{fp}, {}", before.expiry_text()),
                None => "none stored (a refresh will issue one)".into(),
            },
        ));
        if args.check_token {
            let http = settings.http_client()?;
            checks.push(match &o.cred.secrets.access_token {
                None => Check::new("tokeninfo", Status::Skip, "no access token stored"),
                Some(token) => match staging::token_info(&http, &settings.api, token).await {
                    TokenInfo::Rejected(status) => Check::new(
                        "tokeninfo",
                        Status::Note,
                        format!("Google does not accept the current access token (HTTP {status})"),
                    ),
                    info => staging::audience_and_scopes(
                        &info,
                        before.client_id.as_deref(),
                        &before.scopes,
                    ),
                },
            });
        }
        let blocked = checks.iter().any(Check::failed);
        o.report.would =
            Some(if blocked {
                "nothing: a real run would stop before any token request (see FAIL above)".into()
            } else {
                format!(
                "refresh at {} ({}), write the new token back into {} row {} (compare-and-swap), \
                 then verify it with tokeninfo",
                settings.token_url, before.expiry_text(), o.report.table, o.report.credential_id
            )
            });
        o.report.checks = checks;
        o.store.close().await;
        return Ok(o.report);
    }
    let pre = usability(&before);
    if pre.iter().any(Check::failed) {
        o.report.checks = pre;
        o.report.action = Some("The user must reconnect, or the OAuth client be configured; this credential cannot be refreshed.".into());
        o.store.close().await;
        return Ok(o.report);
    }
    let outcome = refresh_and_prove(settings, &o, "refresh").await;
    o.store.close().await;
    let (checks, action, after) = outcome?;
    o.report.checks = checks;
    o.report.action = action;
    o.report.after = Some(after);
    Ok(o.report)
}

fn write_snapshot(out: &mut dyn Write, s: &Snapshot, label: &str) -> io::Result<()> {
    let fp = |f: &Option<String>| f.clone().unwrap_or_else(|| "none".into());
    writeln!(out, "{label}:")?;
    writeln!(out, "  state          {}", s.state)?;
    writeln!(
        out,
        "  access token   {} ({})",
        fp(&s.access_token_fingerprint),
        s.expiry_text()
    )?;
    writeln!(out, "  refresh token  {}", fp(&s.refresh_token_fingerprint))?;
    writeln!(
        out,
        "  client         {} ({}{})",
        s.client_id.as_deref().unwrap_or("none"),
        s.client.describe(),
        if s.client_secret_present {
            ", secret present"
        } else {
            ", no secret"
        }
    )
}

impl Report for AppStagingReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let flag = match (self.dry_run, self.no_refresh) {
            (Some(true), _) => " (dry run)",
            (_, Some(true)) => " (--no-refresh)",
            _ => "",
        };
        writeln!(
            out,
            "{}{flag}: {} row {} \"{}\" ({}), token endpoint {}",
            self.mode, self.table, self.credential_id, self.name, self.cipher, self.token_url
        )?;
        write_snapshot(out, &self.before, "before")?;
        writeln!(
            out,
            "{}:",
            if self.mode == "real" {
                "checks"
            } else {
                "steps"
            }
        )?;
        staging::write_checks(out, &self.checks)?;
        if let Some(after) = &self.after {
            write_snapshot(out, after, "after")?;
        }
        if let Some(would) = &self.would {
            writeln!(out, "a real run would: {would}")?;
        }
        if let Some(action) = &self.action {
            writeln!(out, "ACTION: {action}")?;
        }
        if !self.passed() {
            return writeln!(out, "FAIL");
        }
        let left = self
            .after
            .as_ref()
            .and_then(|a| a.expires_in_seconds)
            .filter(|s| *s > 0)
            .map_or_else(String::new, |s| {
                format!(" (new token expires in {})", human_span(s))
            });
        match (self.mode, self.dry_run, self.no_refresh) {
            (_, Some(true), _) => writeln!(out, "PASS: the credential can be refreshed"),
            (_, _, Some(true)) => writeln!(
                out,
                "PASS: expired; the application's workers must refresh it"
            ),
            _ if self.trigger.is_some() => writeln!(
                out,
                "PASS: the application refreshed it and stored a working token{left}"
            ),
            _ => writeln!(out, "PASS: refreshed and verified{left}"),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self);
        v["mode"] = self.mode.into();
        v["store"] = "application".into();
        v[if self.mode == "real" {
            "checks"
        } else {
            "steps"
        }] = serde_json::json!(self.checks);
        v["passed"] = self.passed().into();
        v
    }

    fn exit_code(&self) -> u8 {
        Check::exit_code(&self.checks)
    }
}
