//! The service accounts the mock's owner created: each one's public key and whether it may
//! impersonate users, and the key file handed out once. The jwt-bearer grant that checks an
//! assertion against them is [`crate::service_account`]'s; this store sits below it so the
//! per-request context ([`crate::handler::Ctx`]) can hold it.
//!
//! # Security
//! The mock keeps only each account's public key; the private key exists in the key file it
//! returned once.

use std::collections::HashMap;

use rand::RngExt as _;
use rsa::RsaPublicKey;
use serde::Serialize;

use crate::error::MockError;
use crate::journal::TOKEN_PATH;
use crate::signing;
use crate::wire::to_json;

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
pub(crate) struct ServiceAccount {
    pub(crate) unique_id: String,
    pub(crate) public: RsaPublicKey,
    pub(crate) delegation: bool,
}

/// The service accounts of one mock, by email.
#[derive(Default)]
pub(crate) struct ServiceAccounts {
    pub(crate) by_email: HashMap<String, ServiceAccount>,
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
    pub(crate) email: String,
    pub(crate) account: ServiceAccount,
}
