//! What a sign-in leaves behind between requests: authorization codes and past consents
//! (`/o/oauth2/v2/auth` and the `authorization_code` grant, in [`crate::authorize`]) and device
//! codes (the device flow, in [`crate::device`]). Plain stores, below the handlers that fill
//! and read them, so the per-request context ([`crate::handler::Ctx`]) can hold them.
//!
//! Codes are stored as SHA-256 digests, as tokens are.

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};

use crate::tokens::Account;

/// Codes kept at most; expired ones are dropped first.
pub(crate) const MAX_CODES: usize = 10_000;

/// Codes kept at most.
pub(crate) const MAX_DEVICE_CODES: usize = 10_000;

/// What a code is stored by: its SHA-256 digest.
pub(crate) type Key = [u8; 32];

/// The digest `code` is stored by.
pub(crate) fn key(code: &str) -> Key {
    Sha256::digest(code.as_bytes()).into()
}

/// An authorization code, until it is exchanged or expires.
pub(crate) struct CodeRecord {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) account: Account,
    pub(crate) offline: bool,
    pub(crate) prompt_consent: bool,
    pub(crate) nonce: Option<String>,
    /// `(method, challenge)`.
    pub(crate) challenge: Option<(String, String)>,
    pub(crate) expires_at_ms: i64,
    pub(crate) used: bool,
}

/// What one account granted one client before.
#[derive(Default)]
pub(crate) struct PriorConsent {
    pub(crate) scopes: Vec<String>,
    pub(crate) refresh_token_issued: bool,
}

/// Codes issued and consents given, forgotten by [`reset`](crate::MockGoogle::reset).
#[derive(Default)]
pub(crate) struct SignIn {
    pub(crate) codes: HashMap<Key, CodeRecord>,
    pub(crate) consents: HashMap<(String, String), PriorConsent>,
    /// The device flow's codes.
    pub(crate) devices: DeviceCodes,
}

impl SignIn {
    /// Keeps `record` under `code`, dropping used and expired codes when full.
    pub(crate) fn insert(&mut self, code: &str, record: CodeRecord, now_ms: i64) {
        if self.codes.len() >= MAX_CODES {
            self.codes
                .retain(|_, r| !r.used && r.expires_at_ms > now_ms);
        }
        if self.codes.len() < MAX_CODES {
            self.codes.insert(key(code), record);
        }
    }
}

/// A device code and what the user answered.
pub(crate) struct DeviceRecord {
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    /// `None`: the user refused.
    pub(crate) account: Option<Account>,
    pub(crate) expires_at_ms: i64,
    pub(crate) used: bool,
    /// Polls still to be answered `authorization_pending` before the user's answer.
    pub(crate) pending_polls: u32,
    /// Seconds a device must wait between polls.
    pub(crate) interval_secs: i64,
    /// The last poll, on the mock clock.
    pub(crate) last_poll_ms: Option<i64>,
}

/// Device codes issued, by digest.
#[derive(Default)]
pub(crate) struct DeviceCodes {
    pub(crate) codes: HashMap<Key, DeviceRecord>,
}
