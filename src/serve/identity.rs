//! The admin API's identity-provider calls: OAuth clients with redirect URIs, the sign-in's
//! consent step, service accounts and signing keys.

use super::admin::AdminError;
use http::StatusCode;
use mock_server::{ClientRegistration, Consent, MockGoogle, ServiceAccountSpec};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientBody {
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

pub(super) fn register_client(mock: &MockGoogle, body: ClientBody) -> Result<Value, AdminError> {
    for uri in &body.redirect_uris {
        if url::Url::parse(uri).is_err() {
            return Err(AdminError::bad_request(format!(
                "redirect_uris: {uri:?} is not an absolute URL"
            )));
        }
    }
    let client = ClientRegistration::new(body.client_id.clone(), body.client_secret)
        .with_redirect_uris(body.redirect_uris.clone());
    mock.register_client(client)
        .map_err(|e| AdminError::bad_request(e.to_string()))?;
    tracing::info!(client_id = %body.client_id, "admin: client registered");
    Ok(json!({"client_id": body.client_id, "redirect_uris": body.redirect_uris}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ConsentBody {
    account: Option<String>,
    deny: bool,
    withhold_scopes: Vec<String>,
    /// Read wide, so that a negative or huge value is refused by name.
    device_pending_polls: i64,
}

/// The most polls a device code may be kept waiting: a device polling every 5 s gives up after
/// its code's 30 minutes, 360 polls.
const MAX_DEVICE_PENDING_POLLS: i64 = 10_000;

pub(super) fn consent_json(c: &Consent) -> Value {
    json!({
        "account": c.account,
        "deny": c.deny,
        "withhold_scopes": c.withhold_scopes,
        "device_pending_polls": c.device_pending_polls,
    })
}

pub(super) fn set_consent(mock: &MockGoogle, body: ConsentBody) -> Result<Value, AdminError> {
    if let Some(account) = &body.account {
        if !account.contains('@') || account.chars().any(char::is_whitespace) {
            return Err(AdminError::bad_request(format!(
                "account {account:?} is not an email address"
            )));
        }
    }
    let polls = body.device_pending_polls;
    let device_pending_polls = u32::try_from(polls)
        .ok()
        .filter(|_| polls <= MAX_DEVICE_PENDING_POLLS)
        .ok_or_else(|| {
            AdminError::bad_request(format!(
                "device_pending_polls {polls} is out of range: it must be from 0 to {MAX_DEVICE_PENDING_POLLS}"
            ))
        })?;
    let consent = Consent {
        account: body.account,
        deny: body.deny,
        withhold_scopes: body.withhold_scopes,
        device_pending_polls,
    };
    let shown = consent_json(&consent);
    mock.set_consent(consent);
    tracing::info!("admin: consent set");
    Ok(shown)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ServiceAccountBody {
    name: Option<String>,
    project_id: Option<String>,
    domain_wide_delegation: bool,
}

pub(super) fn create_service_account(
    mock: &MockGoogle,
    body: ServiceAccountBody,
) -> Result<Value, AdminError> {
    let defaults = ServiceAccountSpec::default();
    let spec = ServiceAccountSpec {
        name: body.name.unwrap_or(defaults.name),
        project_id: body.project_id.unwrap_or(defaults.project_id),
        domain_wide_delegation: body.domain_wide_delegation,
    };
    let key = mock
        .create_service_account(&spec)
        .map_err(|e| AdminError::bad_request(e.to_string()))?;
    tracing::info!(email = %key.email, "admin: service account created");
    serde_json::from_str(&key.json).map_err(|e| AdminError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal",
        message: format!("the key file is not JSON: {e}"),
    })
}

pub(super) fn signing_keys(
    result: Result<Vec<String>, mock_server::MockError>,
) -> Result<Value, AdminError> {
    result
        .map(|kids| json!({"kids": kids, "signing": kids.first()}))
        .map_err(|e| AdminError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: e.to_string(),
        })
}
