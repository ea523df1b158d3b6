//! Service accounts: key files handed out by the mock's owner, and the jwt-bearer grant that
//! trades a signed assertion for an access token.
//!
//! Every Google client library does the same with a service-account key file: it signs a JWT
//! (`iss` the account's email, `aud` the key file's `token_uri`, `scope`, `iat`, `exp` an hour
//! later, `sub` the user to impersonate under domain-wide delegation) and posts it with
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`. The mock checks what Google checks,
//! in its order, and answers Google's error bodies.
//!
//! # Security
//! The mock keeps only each account's public key; the private key exists in the key file it
//! returned once.

use std::collections::HashMap;
use std::sync::Arc;

use rand::Rng as _;
use rsa::RsaPublicKey;
use serde::Serialize;

use crate::google::{ms, Ctx, Reply};
use crate::incoming::Incoming;
use crate::journal::{LEGACY_TOKEN_PATHS, TOKEN_PATH};
use crate::oidc::{self, IdTokenFor};
use crate::signing::{self, verify_rs256, JwtParts};
use crate::tokens::Account;
use crate::wire::{self, to_json};
use crate::MockError;

/// The grant type of a service-account assertion.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long an assertion may live (`exp - iat`).
const MAX_LIFETIME_SECS: i64 = 3600;
/// Clock difference tolerated between the signer and the mock clock.
const CLOCK_SKEW_SECS: i64 = 300;
/// Audiences Google accepts besides this server's own token URLs.
const GOOGLE_AUDIENCES: [&str; 3] = [
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
];

/// What to create with [`MockGoogle::create_service_account`](crate::MockGoogle::create_service_account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountSpec {
    /// The account's name: the part of its email before `@`.
    pub name: String,
    /// The Google Cloud project (the email's domain is `PROJECT.iam.gserviceaccount.com`).
    pub project_id: String,
    /// Whether domain-wide delegation is granted (an assertion with `sub` impersonates a user).
    pub domain_wide_delegation: bool,
}

impl Default for ServiceAccountSpec {
    fn default() -> Self {
        Self {
            name: "mock-service-account".to_string(),
            project_id: "mock-project".to_string(),
            domain_wide_delegation: false,
        }
    }
}

/// A service account as the mock knows it: no private key.
struct ServiceAccount {
    unique_id: String,
    public: RsaPublicKey,
    delegation: bool,
}

/// The service accounts of one mock, by email.
#[derive(Default)]
pub(crate) struct ServiceAccounts {
    by_email: HashMap<String, ServiceAccount>,
}

/// A service-account JSON key file, as the Cloud console downloads it.
#[derive(Serialize)]
struct KeyFile<'a> {
    #[serde(rename = "type")]
    type_: &'static str,
    project_id: &'a str,
    private_key_id: &'a str,
    private_key: &'a str,
    client_email: &'a str,
    client_id: &'a str,
    auth_uri: String,
    token_uri: String,
    auth_provider_x509_cert_url: String,
    client_x509_cert_url: String,
    universe_domain: &'static str,
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl ServiceAccounts {
    /// Creates (or replaces) an account and returns its key file, JSON, whose `token_uri` is
    /// `base_url`'s token endpoint. The RSA key is generated here, outside any lock the caller
    /// should hold.
    ///
    /// # Errors
    /// [`MockError::InvalidConfig`] for a name or project that Google would refuse.
    pub(crate) fn create_key(
        spec: &ServiceAccountSpec,
        base_url: &str,
    ) -> Result<(String, PendingAccount), MockError> {
        for (what, value) in [("name", &spec.name), ("project_id", &spec.project_id)] {
            if !valid_label(value) {
                return Err(MockError::InvalidConfig(format!(
                    "service account {what} {value:?} must be 1 to 63 lower-case letters, digits or '-'"
                )));
            }
        }
        let email = format!("{}@{}.iam.gserviceaccount.com", spec.name, spec.project_id);
        let private = signing::generate_rsa()?;
        let pem = signing::private_pem(&private)?;
        let mut rng = rand::rng();
        let unique_id: String = std::iter::once('1')
            .chain((0..20).map(|_| char::from(b'0' + rng.random_range(0..10u8))))
            .collect();
        let key_id: String = (0..40)
            .map(|_| char::from_digit(rng.random_range(0..16u32), 16).unwrap_or('0'))
            .collect();
        let file = to_json(&KeyFile {
            type_: "service_account",
            project_id: &spec.project_id,
            private_key_id: &key_id,
            private_key: &pem,
            client_email: &email,
            client_id: &unique_id,
            auth_uri: format!("{base_url}/o/oauth2/auth"),
            token_uri: format!("{base_url}{TOKEN_PATH}"),
            auth_provider_x509_cert_url: format!("{base_url}/oauth2/v1/certs"),
            client_x509_cert_url: format!(
                "{base_url}/robot/v1/metadata/x509/{}",
                email.replace('@', "%40")
            ),
            universe_domain: "googleapis.com",
        });
        Ok((
            file,
            PendingAccount {
                email,
                account: ServiceAccount {
                    unique_id,
                    public: private.to_public_key(),
                    delegation: spec.domain_wide_delegation,
                },
            },
        ))
    }

    /// Registers an account made by [`create_key`](Self::create_key).
    pub(crate) fn add(&mut self, pending: PendingAccount) {
        self.by_email.insert(pending.email, pending.account);
    }

    /// Deletes an account: its assertions get "account not found". Returns whether it existed.
    pub(crate) fn delete(&mut self, email: &str) -> bool {
        self.by_email.remove(email).is_some()
    }
}

/// An account whose key file exists but that is not registered yet.
pub(crate) struct PendingAccount {
    email: String,
    account: ServiceAccount,
}

#[derive(Serialize)]
struct AccessTokenOnly<'a> {
    access_token: &'a str,
    expires_in: u64,
    token_type: &'static str,
}

#[derive(Serialize)]
struct IdTokenOnly<'a> {
    id_token: &'a str,
}

fn invalid_grant(description: &str) -> Reply {
    Reply::token_error(400, wire::INVALID_GRANT, description)
}

/// `POST /token` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`.
pub(crate) fn jwt_bearer(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    use wire::*;
    let Some(assertion) = request.form_value("assertion") else {
        return Reply::token_error(400, INVALID_REQUEST, &missing_parameter("assertion"));
    };
    let Some(parts) = JwtParts::split(assertion) else {
        return invalid_grant(DESC_INVALID_JWT_SIGNATURE);
    };
    let claim = |name: &str| parts.claims.get(name).and_then(serde_json::Value::as_str);
    let Some(email) = claim("iss") else {
        return invalid_grant(DESC_ACCOUNT_NOT_FOUND);
    };
    let Some(account) = ctx.service_accounts.by_email.get(email) else {
        return invalid_grant(DESC_ACCOUNT_NOT_FOUND);
    };
    if !verify_rs256(&account.public, &parts) {
        return invalid_grant(DESC_INVALID_JWT_SIGNATURE);
    }
    let own = |path: &str| format!("{}{path}", ctx.base_url);
    let audience_ok = claim("aud").is_some_and(|aud| {
        GOOGLE_AUDIENCES.contains(&aud)
            || aud == own(TOKEN_PATH)
            || LEGACY_TOKEN_PATHS.iter().any(|p| aud == own(p))
    });
    if !audience_ok {
        return invalid_grant(DESC_JWT_AUDIENCE);
    }
    let now = ctx.now_ms.div_euclid(1000);
    let number = |name: &str| parts.claims.get(name).and_then(serde_json::Value::as_i64);
    let timely = match (number("iat"), number("exp")) {
        (Some(iat), Some(exp)) => {
            exp > iat
                && exp - iat <= MAX_LIFETIME_SECS
                && iat <= now + CLOCK_SKEW_SECS
                && exp > now - CLOCK_SKEW_SECS
        }
        _ => false,
    };
    if !timely {
        return invalid_grant(DESC_JWT_NOT_SHORT_LIVED);
    }
    let scope = claim("scope").filter(|s| !s.trim().is_empty());
    let target_audience = claim("target_audience").filter(|s| !s.is_empty());
    if scope.is_none() && target_audience.is_none() {
        return Reply::token_error(400, INVALID_SCOPE, DESC_INVALID_SA_SCOPE);
    }
    let subject = claim("sub").filter(|sub| *sub != email);
    if subject.is_some() && !account.delegation {
        return Reply::token_error(401, UNAUTHORIZED_CLIENT, DESC_DELEGATION_DENIED);
    }
    let owner = match subject {
        Some(user) => Account::for_email(user),
        None => Account {
            email: email.into(),
            sub: account.unique_id.as_str().into(),
        },
    };
    let unique_id = account.unique_id.clone();

    if let (None, Some(audience)) = (scope, target_audience) {
        // An id_token for calling a service (Cloud Run, IAP): `aud` is the target audience.
        return match oidc::id_token(
            ctx,
            &IdTokenFor {
                client_id: audience,
                account: &owner,
                access_token: None,
                nonce: None,
            },
        ) {
            Some(id_token) => Reply::token_json(
                200,
                to_json(&IdTokenOnly {
                    id_token: &id_token,
                }),
            ),
            None => {
                Reply::token_json(500, INTERNAL_FAILURE_BODY.to_string()).error(INTERNAL_FAILURE)
            }
        };
    }
    let scopes: Vec<String> = scope
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let grant = ctx.tokens.new_grant(&unique_id, &scopes, false);
    ctx.tokens.set_account(grant, owner);
    let ttl = ctx.config.access_token_ttl;
    let access_token =
        ctx.tokens
            .issue_access(grant, Arc::from(scopes.as_slice()), ctx.now_ms + ms(ttl));
    Reply::token_json(
        200,
        to_json(&AccessTokenOnly {
            access_token: &access_token,
            expires_in: ttl.as_secs(),
            token_type: TOKEN_TYPE,
        }),
    )
}
