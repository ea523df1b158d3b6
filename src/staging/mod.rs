//! What the staging modes (`real`, `force-expire`) share: a before/after picture of a credential
//! that shows tokens as fingerprints only, pass/fail checks, and the proof that an access token
//! works (tokeninfo says it is ours with the scopes we expect; a harmless Gmail read succeeds).

pub mod app;
pub mod app_copy;
pub mod app_force_expire;
pub mod app_scrub;
pub mod copy;
pub mod force_expire;
pub mod real;
pub mod scrub;
mod trigger;

use crate::credential::GoogleCredential;
use crate::crypto::Keyring;
use crate::error::Result;
use crate::google_api::{self, ApiEndpoints, ApiResult};
use crate::report::human_span;
use crate::secret::{AccessToken, RefreshToken};
use crate::settings::Settings;
use crate::store::{CredentialRow, CredentialState, Store};
use crate::task::CredentialId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::sync::Arc;

/// Scopes any one of which lets a token read the Gmail profile (`users.getProfile`).
const GMAIL_PROFILE_SCOPES: &[&str] = &[
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.readonly",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.compose",
    "https://www.googleapis.com/auth/gmail.metadata",
];

/// Whether `scopes` allow the Gmail profile call.
pub fn allows_gmail_profile(scopes: &[String]) -> bool {
    scopes
        .iter()
        .any(|s| GMAIL_PROFILE_SCOPES.contains(&s.as_str()))
}

/// Where the OAuth client used for a credential comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSource {
    /// Stored inside the credential.
    Stored,
    /// `GOOGLE_CLIENT_ID` / `--client-id`.
    Configured,
    /// Nowhere: the credential cannot be refreshed.
    None,
}

impl ClientSource {
    /// Where the client comes from, in words.
    pub fn describe(self) -> &'static str {
        match self {
            ClientSource::Stored => "stored with the credential",
            ClientSource::Configured => "from GOOGLE_CLIENT_ID / --client-id",
            ClientSource::None => "not configured",
        }
    }
}

/// The client id a refresh of `secrets` would use, and where it comes from (the same rule as
/// the refresh engine: the credential's own, else the configured one).
pub fn client_of(
    secrets: &GoogleCredential,
    settings: &Settings,
) -> (Option<String>, ClientSource) {
    match (&secrets.client_id, &settings.client_id) {
        (Some(id), _) => (Some(id.clone()), ClientSource::Stored),
        (None, Some(id)) => (Some(id.clone()), ClientSource::Configured),
        (None, None) => (None, ClientSource::None),
    }
}

/// A credential as the staging modes show it: never a token, only fingerprints.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// `active` or `needs_reconnect`.
    pub state: String,
    /// The row version.
    pub version: i64,
    /// When the access token expires (the column workers read).
    pub expires_at: Option<DateTime<Utc>>,
    /// Seconds until then (negative once expired).
    pub expires_in_seconds: Option<i64>,
    /// Whether the access token has expired.
    pub expired: Option<bool>,
    /// Fingerprint of the access token, if one is stored.
    pub access_token_fingerprint: Option<String>,
    /// Fingerprint of the refresh token, if one is stored.
    pub refresh_token_fingerprint: Option<String>,
    /// Granted scopes as stored.
    pub scopes: Vec<String>,
    /// Usually `Bearer`.
    pub token_type: String,
    /// The OAuth client a refresh would use.
    pub client_id: Option<String>,
    /// Where that client comes from.
    pub client: ClientSource,
    /// Whether a client secret is available (stored or configured).
    pub client_secret_present: bool,
    /// The key that sealed the envelope.
    pub key_id: String,
}

impl Snapshot {
    /// The picture of `row`, whose decrypted payload is `secrets`.
    pub fn new(row: &CredentialRow, secrets: &GoogleCredential, settings: &Settings) -> Self {
        let expires_in = row.expires_at.map(|e| (e - Utc::now()).num_seconds());
        let (client_id, client) = client_of(secrets, settings);
        Self {
            state: row.state.clone(),
            version: row.version,
            expires_at: row.expires_at,
            expires_in_seconds: expires_in,
            expired: expires_in.map(|s| s <= 0),
            access_token_fingerprint: secrets.access_token.as_ref().map(AccessToken::fingerprint),
            refresh_token_fingerprint: secrets
                .refresh_token
                .as_ref()
                .map(RefreshToken::fingerprint),
            scopes: secrets.scopes.clone(),
            token_type: secrets.token_type.clone(),
            client_id,
            client,
            client_secret_present: secrets.client_secret.is_some()
                || settings.client_secret.is_some(),
            key_id: row.key_id.clone(),
        }
    }

    /// `expires in 59m`, `expired 3m ago`, `no expiry stored`.
    pub fn expiry_text(&self) -> String {
        match self.expires_in_seconds {
            None => "no expiry stored".into(),
            Some(s) if s > 0 => format!("expires in {}", human_span(s)),
            Some(s) => format!("expired {} ago", human_span(s)),
        }
    }

    /// Writes the picture as indented lines under `label`.
    ///
    /// # Errors
    /// The writer's I/O errors.
    pub fn write(&self, out: &mut dyn Write, label: &str) -> io::Result<()> {
        let fp = |f: &Option<String>| f.clone().unwrap_or_else(|| "none".into());
        writeln!(out, "{label}:")?;
        writeln!(
            out,
            "  state          {} (version {})",
            self.state, self.version
        )?;
        writeln!(
            out,
            "  access token   {} ({})",
            fp(&self.access_token_fingerprint),
            self.expiry_text()
        )?;
        writeln!(
            out,
            "  refresh token  {}",
            fp(&self.refresh_token_fingerprint)
        )?;
        writeln!(
            out,
            "  scopes         {}",
            if self.scopes.is_empty() {
                "none stored".into()
            } else {
                self.scopes.join(" ")
            }
        )?;
        writeln!(
            out,
            "  client         {} ({}{})",
            self.client_id.as_deref().unwrap_or("none"),
            self.client.describe(),
            if self.client_secret_present {
                ", secret present"
            } else {
                ", no secret"
            }
        )
    }
}

/// The check that the refreshed token was written back as a worker would: sealed, version
/// bumped, active, refresh token still there.
pub fn stored_check(before: &Snapshot, after: &Snapshot, new_fp: &str) -> Check {
    let mut problems = Vec::new();
    if after.access_token_fingerprint.as_deref() != Some(new_fp) {
        problems.push("the stored access token is not the new one".to_owned());
    }
    if after.refresh_token_fingerprint.is_none() {
        problems.push("the refresh token is gone".to_owned());
    }
    if after.version <= before.version {
        problems.push(format!("version did not move ({})", after.version));
    }
    if after.expired != Some(false) {
        problems.push(format!(
            "the stored expiry is not ahead ({})",
            after.expiry_text()
        ));
    }
    if after.state != CredentialState::Active.as_str() {
        problems.push(format!("state is {}", after.state));
    }
    if problems.is_empty() {
        Check::new(
            "stored",
            Status::Pass,
            format!(
                "sealed with key {} (version {} -> {}), recorded in the history",
                after.key_id, before.version, after.version
            ),
        )
    } else {
        Check::new("stored", Status::Fail, problems.join("; "))
    }
}

/// The checks that decide whether a refresh can even be tried: the credential is active, holds
/// a refresh token, and has an OAuth client.
pub fn usability_checks(row: &CredentialRow, before: &Snapshot) -> Vec<Check> {
    let state = match row.state() {
        CredentialState::Active => Check::new("state", Status::Pass, "active"),
        CredentialState::NeedsReconnect => Check::new(
            "state",
            Status::Fail,
            format!(
                "needs_reconnect (last outcome: {}): the user must reconnect",
                row.last_refresh_outcome.as_deref().unwrap_or("none")
            ),
        ),
    };
    let refresh_token = match &before.refresh_token_fingerprint {
        Some(fp) => Check::new("refresh token", Status::Pass, format!("present ({fp})")),
        None => Check::new(
            "refresh token",
            Status::Fail,
            "none stored: the credential can never be refreshed; the user must reconnect",
        ),
    };
    let client = match &before.client_id {
        Some(id) => Check::new(
            "client",
            Status::Pass,
            format!("{id} ({})", before.client.describe()),
        ),
        None => Check::new(
            "client",
            Status::Fail,
            "no client id stored with the credential and none configured \
             (GOOGLE_CLIENT_ID / --client-id)",
        ),
    };
    vec![state, refresh_token, client]
}

/// A stored credential opened by a staging mode: keys, store, its row, secrets and snapshot.
pub struct Opened {
    /// `--credential-id`.
    pub id: i64,
    /// The keyring.
    pub keyring: Arc<Keyring>,
    /// The store.
    pub store: Arc<Store>,
    /// The row as read.
    pub row: CredentialRow,
    /// Its decrypted payload.
    pub secrets: GoogleCredential,
    /// The picture of it before the mode does anything.
    pub before: Snapshot,
}

/// What a staging mode will do to the store it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Refresh and write back: the store is migrated first, as for any mode that writes.
    Write,
    /// Only look (`real --dry-run`): opened read-only, nothing created, no migration run.
    ReadOnly,
}

/// Opens credential `id`: key, store, row, decrypted payload, snapshot.
///
/// # Errors
/// [`Error::NotFound`]; [`Error::Config`] for the
/// key; [`Error::Decrypt`] (the envelope or its payload); [`Error::Store`] (with [`Access::ReadOnly`],
/// also when no oauthtest store exists at the URL).
///
/// [`Error::Config`]: crate::Error::Config
/// [`Error::Decrypt`]: crate::Error::Decrypt
/// [`Error::NotFound`]: crate::Error::NotFound
/// [`Error::Store`]: crate::Error::Store
pub async fn open_credential(
    settings: &Settings,
    id: CredentialId,
    access: Access,
) -> Result<Opened> {
    let id = id.get();
    let keyring = Arc::new(settings.keyring()?);
    let store = Arc::new(match access {
        Access::Write => settings.open_store().await?,
        Access::ReadOnly => Store::connect_read_only(&settings.database_url).await?,
    });
    let Some(row) = store.get(id).await? else {
        return Err(crate::error::not_found(&store, id).await);
    };
    let secrets = row.decrypt(&keyring)?;
    let before = Snapshot::new(&row, &secrets, settings);
    Ok(Opened {
        id,
        keyring,
        store,
        row,
        secrets,
        before,
    })
}

/// The picture of credential `id` as stored now.
///
/// # Errors
/// [`Error::NotFound`], [`Error::Decrypt`], [`Error::Store`].
///
/// [`Error::Decrypt`]: crate::Error::Decrypt
/// [`Error::NotFound`]: crate::Error::NotFound
/// [`Error::Store`]: crate::Error::Store
pub async fn snapshot(
    store: &Store,
    id: i64,
    keyring: &Keyring,
    settings: &Settings,
) -> Result<Snapshot> {
    let Some(row) = store.get(id).await? else {
        return Err(crate::error::not_found(store, id).await);
    };
    Ok(Snapshot::new(&row, &row.decrypt(keyring)?, settings))
}

pub use crate::check::{write_checks, Check, Status};

/// What tokeninfo said about an access token.
#[derive(Debug, Clone)]
pub enum TokenInfo {
    /// Google knows the token and it is live.
    Live {
        /// The client it was issued to.
        audience: Option<String>,
        /// Its scopes.
        scopes: Vec<String>,
        /// Seconds it has left, as Google counts.
        expires_in: Option<i64>,
    },
    /// tokeninfo answered with an error status: the token is expired, revoked or unknown.
    Rejected(u16),
    /// No usable answer.
    NoAnswer(String),
}

/// Asks tokeninfo about `token`.
pub async fn token_info(
    http: &reqwest::Client,
    api: &ApiEndpoints,
    token: &AccessToken,
) -> TokenInfo {
    let text = |v: &serde_json::Value, field: &str| v[field].as_str().map(str::to_owned);
    match google_api::tokeninfo(http, api, token).await {
        Ok(v) => TokenInfo::Live {
            audience: text(&v, "aud"),
            scopes: text(&v, "scope")
                .map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            expires_in: text(&v, "expires_in").and_then(|s| s.parse().ok()),
        },
        Err(ApiResult::Status(status)) => TokenInfo::Rejected(status),
        Err(ApiResult::NoResponse(reason)) => TokenInfo::NoAnswer(reason),
    }
}

/// The tokeninfo check of a live token: issued to `client_id`, with exactly `scopes` (when
/// any are stored to compare with).
pub fn audience_and_scopes(info: &TokenInfo, client_id: Option<&str>, scopes: &[String]) -> Check {
    const NAME: &str = "tokeninfo";
    let TokenInfo::Live {
        audience,
        scopes: granted,
        expires_in,
    } = info
    else {
        return match info {
            TokenInfo::Rejected(status) => Check::new(
                NAME,
                Status::Fail,
                format!("tokeninfo rejected the token (HTTP {status}): Google does not accept it"),
            ),
            TokenInfo::NoAnswer(reason) => Check::new(
                NAME,
                Status::Fail,
                format!("tokeninfo gave no usable answer ({reason})"),
            ),
            TokenInfo::Live { .. } => unreachable!("matched above"),
        };
    };
    let mut problems = Vec::new();
    match (audience.as_deref(), client_id) {
        (Some(aud), Some(ours)) if aud == ours => {}
        (aud, ours) => problems.push(format!(
            "audience is {}, not our client {}",
            aud.unwrap_or("missing"),
            ours.unwrap_or("(none configured)")
        )),
    }
    let want: BTreeSet<&str> = scopes.iter().map(String::as_str).collect();
    let got: BTreeSet<&str> = granted.iter().map(String::as_str).collect();
    let scope_note = if want.is_empty() {
        format!("no scopes stored to compare; Google reports {}", got.len())
    } else if want == got {
        format!("scopes unchanged ({})", got.len())
    } else {
        let lost: Vec<_> = want.difference(&got).copied().collect();
        let gained: Vec<_> = got.difference(&want).copied().collect();
        problems.push(format!(
            "scopes changed (missing: {}; new: {})",
            if lost.is_empty() {
                "none".into()
            } else {
                lost.join(" ")
            },
            if gained.is_empty() {
                "none".into()
            } else {
                gained.join(" ")
            }
        ));
        String::new()
    };
    let left = expires_in.map_or_else(String::new, |s| {
        format!("; Google says it expires in {}", human_span(s))
    });
    if problems.is_empty() {
        Check::new(
            NAME,
            Status::Pass,
            format!("audience is our client; {scope_note}{left}"),
        )
    } else {
        Check::new(NAME, Status::Fail, problems.join("; "))
    }
}

/// The harmless read that proves `token` works: the Gmail profile, when `scopes` allow it.
pub async fn gmail_profile(
    http: &reqwest::Client,
    api: &ApiEndpoints,
    token: &AccessToken,
    scopes: &[String],
) -> Check {
    const NAME: &str = "gmail profile";
    if !allows_gmail_profile(scopes) {
        return Check::new(
            NAME,
            Status::Skip,
            "the granted scopes do not allow reading the Gmail profile",
        );
    }
    match google_api::call_profile(http, api, token).await {
        ApiResult::Status(200) => Check::new(NAME, Status::Pass, "HTTP 200: the token works"),
        ApiResult::Status(401) => Check::new(
            NAME,
            Status::Fail,
            "HTTP 401: the API rejected the token as invalid",
        ),
        ApiResult::Status(status) => {
            Check::new(NAME, Status::Fail, format!("HTTP {status} from the API"))
        }
        ApiResult::NoResponse(reason) => Check::new(
            NAME,
            Status::Fail,
            format!("no answer from the API ({reason})"),
        ),
    }
}

/// Proves a new access token works: tokeninfo (ours, scopes as before), then the Gmail profile
/// with the scopes Google reports (or the stored ones, when tokeninfo said nothing).
pub async fn prove_token_works(
    http: &reqwest::Client,
    api: &ApiEndpoints,
    token: &AccessToken,
    client_id: Option<&str>,
    scopes_before: &[String],
) -> Vec<Check> {
    let info = token_info(http, api, token).await;
    let tokeninfo = audience_and_scopes(&info, client_id, scopes_before);
    let scopes = match &info {
        TokenInfo::Live { scopes, .. } if !scopes.is_empty() => scopes.as_slice(),
        _ => scopes_before,
    };
    let profile = gmail_profile(http, api, token, scopes).await;
    vec![tokeninfo, profile]
}
