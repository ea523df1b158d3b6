//! What the mock's owner controls about identity: the consent step, the signing keys, and
//! service accounts. Kept beside the server so its methods read in one place.

use crate::accounts::{ServiceAccountSpec, ServiceAccounts};
use crate::config::{Consent, MockConfig};
use crate::error::MockError;
use crate::server::MockGoogle;

/// The parts of the mock's state these methods change, borrowed under its lock.
struct Identity<'a> {
    config: &'a mut MockConfig,
    service_accounts: &'a mut ServiceAccounts,
}

/// A service-account JSON key file. `Debug` shows the account, never the private key.
pub struct ServiceAccountKey {
    /// The account's email (`client_email`).
    pub email: String,
    /// The key file, JSON, as the Cloud console downloads it.
    ///
    /// # Security
    /// Holds a private key: hand it to the code under test, never log it.
    pub json: String,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("email", &self.email)
            .field("json", &"[redacted]")
            .finish()
    }
}

impl MockGoogle {
    /// Runs `f` on what the sign-in, signing-key and service-account methods change.
    fn with_identity<R>(&self, f: impl FnOnce(Identity<'_>) -> R) -> R {
        self.with_state(|state| {
            f(Identity {
                config: &mut state.config,
                service_accounts: &mut state.service_accounts,
            })
        })
    }

    /// Sets what the consent step of `/o/oauth2/v2/auth` does from now on, until
    /// [`reset`](Self::reset).
    pub fn set_consent(&self, consent: Consent) {
        self.with_identity(|id| id.config.consent = consent);
    }

    /// Turns Google's limit of live refresh tokens per account and client on (or off) from now
    /// on (see [`MockConfig::refresh_token_limit`]), until [`reset`](Self::reset).
    pub fn set_refresh_token_limit(&self, limit: Option<usize>) {
        self.with_identity(|id| id.config.refresh_token_limit = limit);
    }

    /// What the consent step does now.
    pub fn consent(&self) -> Consent {
        self.with_identity(|id| id.config.consent.clone())
    }

    /// The published signing key ids, newest (signing) first; generates the first key if the
    /// mock has none yet (as `serve` does at start, so the first request does not wait for it).
    ///
    /// # Errors
    /// [`MockError::InvalidConfig`] when no RSA key can be generated.
    pub fn signing_key_ids(&self) -> Result<Vec<String>, MockError> {
        self.keys().with(|ring| ring.kids())
    }

    /// A new key signs id_tokens from now on; the previous one stays published (tokens it
    /// signed still verify), the one before is dropped. Returns the published ids, newest first.
    ///
    /// # Errors
    /// [`MockError::InvalidConfig`] when no RSA key can be generated.
    pub fn rotate_signing_key(&self) -> Result<Vec<String>, MockError> {
        // Generating takes a moment: under the keys' lock only, not the state lock.
        self.keys()
            .with(|ring| ring.rotate().map(|()| ring.kids()))?
    }

    /// Creates a service account (replacing one of the same email) and returns its key file,
    /// whose `token_uri` is this mock. Until [`reset`](Self::reset).
    ///
    /// # Errors
    /// [`MockError::InvalidConfig`] for a name or project id Google would refuse.
    pub fn create_service_account(
        &self,
        spec: &ServiceAccountSpec,
    ) -> Result<ServiceAccountKey, MockError> {
        let base_url = self.uri();
        let (json, pending) = ServiceAccounts::create_key(spec, &base_url)?;
        let email = format!("{}@{}.iam.gserviceaccount.com", spec.name, spec.project_id);
        self.with_identity(|id| id.service_accounts.add(pending));
        Ok(ServiceAccountKey { email, json })
    }

    /// Deletes a service account: its assertions get "account not found" from now on.
    /// Returns whether it existed.
    pub fn delete_service_account(&self, email: &str) -> bool {
        self.with_identity(|id| id.service_accounts.delete(email))
    }

    /// The issuer the id_tokens and discovery document name now.
    pub fn issuer(&self) -> String {
        self.with_identity(|id| id.config.issuer.clone())
    }
}
