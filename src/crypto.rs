//! AES-256-GCM envelopes for stored credentials.
//!
//! A credential's secrets are stored as one text value, the *envelope*:
//!
//! ```text
//! otv2.<key id: 16 hex>.<base64url(nonce[12] ‖ ciphertext ‖ tag[16])>
//! ```
//!
//! - `otv2` versions the format; `otv1` envelopes, written before store binding, are still read.
//! - The key id names the key that encrypted it (a digest of the key, never the key), so keys can
//!   rotate: reads try the key the envelope names among the current and previous keys, writes
//!   always use the current key.
//! - The associated data binds the envelope to its store, its row and the row's version
//!   (`oauthtest/v2/store/<store id>/credential/<id>/version/<version>/<key id>`; see [`Binding`]):
//!   an envelope copied onto another row or from another store, or an older envelope of the same
//!   row put back (a rollback), fails authentication, as does any changed byte. `otv1` bound the
//!   row's id only (`oauthtest/v1/credential/<id>/<key id>`); every write now seals `otv2`.
//! - Every write draws a fresh random 96-bit nonce.
//!
//! # Security
//! Keys live in [`secrecy::SecretBox`] and print as their id only; plaintext buffers are zeroized.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// Length of an AES-256 key in bytes.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The format every write seals.
const ENVELOPE_VERSION: &str = "otv2";
/// The format written before store and version binding; still read.
const LEGACY_ENVELOPE_VERSION: &str = "otv1";

/// What an envelope is bound to: the store (its id, kept in `oauthtest_store`), the credential
/// row and the row's version (the version the write leaves the row at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    /// The store's id.
    pub store_id: &'a str,
    /// The credential row's id.
    pub credential_id: i64,
    /// The row's version.
    pub version: i64,
}

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The value is empty.
    #[error("is empty; generate a key with `oauthtest --mode keygen`")]
    Empty,
    /// The value is not base64.
    #[error("is not valid base64 (expected 32 random bytes in base64, as `oauthtest --mode keygen` prints)")]
    NotBase64,
    /// The value decodes to the wrong number of bytes.
    #[error("decodes to {0} bytes; an AES-256 key is exactly 32 bytes")]
    WrongLength(usize),
}

/// Why an envelope could not be decrypted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Not an envelope of a format this version reads.
    #[error("encrypted_data is not an oauthtest envelope ({0})")]
    Malformed(&'static str),
    /// A store-bound envelope, read where the store's id is unknown.
    #[error("encrypted_data is bound to its store, but this store has no id (oauthtest_store is missing: its migrations are not current)")]
    NoStoreId,
    /// Encrypted with a key that is not configured.
    #[error("encrypted with key {key_id}, which is not among the configured keys (current: {current}); set OAUTHTEST_ENCRYPTION_KEY, or list the old key in OAUTHTEST_OLD_ENCRYPTION_KEYS")]
    UnknownKey {
        /// The id the envelope names.
        key_id: String,
        /// The id of the current key.
        current: String,
    },
    /// The key is right but authentication failed.
    #[error("encrypted_data failed authentication with key {key_id}: it was tampered with, truncated, or copied from another row or store, or it is an older envelope of this row put back")]
    AuthenticationFailed {
        /// The id of the key that was tried.
        key_id: String,
    },
}

/// An AES-256 key with its public id.
pub struct EncryptionKey {
    id: String,
    key: SecretBox<[u8; KEY_LEN]>,
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey(id={}, [redacted])", self.id)
    }
}

impl EncryptionKey {
    /// Draws a new random key from the operating system's generator.
    pub fn generate() -> Self {
        let key = Aes256Gcm::generate_key(OsRng);
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(key.as_slice());
        Self::from_bytes(bytes)
    }

    /// Reads a key from base64 (standard or URL-safe alphabet, padded or not).
    ///
    /// # Errors
    /// [`KeyError`] when the value is empty, not base64 or not 32 bytes; the message never
    /// contains the value.
    pub fn from_base64(value: &str) -> Result<Self, KeyError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(KeyError::Empty);
        }
        let decoded = Zeroizing::new(
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(value).ok())
                .ok_or(KeyError::NotBase64)?,
        );
        if decoded.len() != KEY_LEN {
            return Err(KeyError::WrongLength(decoded.len()));
        }
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(&decoded);
        Ok(Self::from_bytes(bytes))
    }

    fn from_bytes(mut bytes: [u8; KEY_LEN]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"oauthtest key id v1\0");
        hasher.update(bytes);
        let digest = hasher.finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let key = SecretBox::new(Box::new(bytes));
        zeroize::Zeroize::zeroize(&mut bytes);
        Self { id, key }
    }

    /// The key's public id: 16 hex digits of a domain-separated SHA-256 of the key.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key in standard base64, for `--mode keygen` only.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(STANDARD.encode(self.key.expose_secret()))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.key.expose_secret()))
    }
}

/// The current key, which encrypts, and the previous ones, which only decrypt.
#[derive(Debug)]
pub struct Keyring {
    current: EncryptionKey,
    previous: Vec<EncryptionKey>,
}

/// The associated data that bound an `otv1` envelope to one credential row.
fn associated_data(credential_id: i64, key_id: &str) -> Vec<u8> {
    format!("oauthtest/v1/credential/{credential_id}/{key_id}").into_bytes()
}

/// The associated data that binds an `otv2` envelope to its store, row and version.
fn bound_associated_data(binding: &Binding<'_>, key_id: &str) -> Vec<u8> {
    format!(
        "oauthtest/v2/store/{}/credential/{}/version/{}/{key_id}",
        binding.store_id, binding.credential_id, binding.version
    )
    .into_bytes()
}

/// Which format an envelope is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeFormat {
    /// `otv1`: bound to the row's id only (written before store binding).
    RowBound,
    /// `otv2`: bound to the store, the row and its version.
    StoreBound,
}

impl Keyring {
    /// A keyring whose current key is `current`; `previous` keys can still decrypt.
    pub fn new(current: EncryptionKey, previous: Vec<EncryptionKey>) -> Self {
        let previous = previous
            .into_iter()
            .filter(|k| k.id != current.id)
            .collect();
        Self { current, previous }
    }

    /// The key that encrypts.
    pub fn current(&self) -> &EncryptionKey {
        &self.current
    }

    /// The previous keys, which only decrypt.
    pub fn previous(&self) -> &[EncryptionKey] {
        &self.previous
    }

    /// Whether `key_id` names a configured key (current or previous).
    pub fn knows(&self, key_id: &str) -> bool {
        self.find(key_id).is_some()
    }

    fn find(&self, key_id: &str) -> Option<&EncryptionKey> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.id == key_id)
    }

    /// Seals `plaintext` with the current key, bound to `binding` (an `otv2` envelope).
    pub fn seal(&self, binding: &Binding<'_>, plaintext: &[u8]) -> String {
        let aad = bound_associated_data(binding, &self.current.id);
        self.seal_with(ENVELOPE_VERSION, &aad, plaintext)
    }

    /// Encrypts `plaintext` for the credential row `credential_id` with the current key, in the
    /// legacy `otv1` format (bound to the row's id only). Kept to test reading old stores.
    pub fn encrypt(&self, credential_id: i64, plaintext: &[u8]) -> String {
        let aad = associated_data(credential_id, &self.current.id);
        self.seal_with(LEGACY_ENVELOPE_VERSION, &aad, plaintext)
    }

    fn seal_with(&self, tag: &str, aad: &[u8], plaintext: &[u8]) -> String {
        let key = &self.current;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = key
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // AES-GCM encryption fails only for plaintexts over 64 GiB.
            .unwrap_or_else(|_| unreachable!("AES-GCM refuses only plaintexts over 64 GiB"));
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(nonce.as_slice());
        sealed.extend_from_slice(&ciphertext);
        format!("{tag}.{}.{}", key.id, URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Which format an envelope is in, without decrypting it.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] when `envelope` is not an envelope.
    pub fn envelope_format(envelope: &str) -> Result<EnvelopeFormat, CryptoError> {
        parse_envelope(envelope).map(|(format, _, _)| format)
    }

    /// The id of the key an envelope names, without decrypting it.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] when `envelope` is not an envelope.
    pub fn envelope_key_id(envelope: &str) -> Result<&str, CryptoError> {
        parse_envelope(envelope).map(|(_, key_id, _)| key_id)
    }

    /// Opens an envelope stored on the row `binding` names: an `otv2` envelope must be bound to
    /// exactly this store, row and version; an `otv1` envelope to this row.
    ///
    /// # Errors
    /// [`CryptoError`] when the envelope is malformed, names an unknown key, or fails
    /// authentication (another row, another store, an older version, tampering, truncation);
    /// [`CryptoError::NoStoreId`] for an `otv2` envelope when `binding` is `None`.
    pub fn open(
        &self,
        binding: Option<&Binding<'_>>,
        credential_id: i64,
        envelope: &str,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (format, key_id, _) = parse_envelope(envelope)?;
        let aad = match format {
            EnvelopeFormat::RowBound => associated_data(credential_id, key_id),
            EnvelopeFormat::StoreBound => {
                bound_associated_data(binding.ok_or(CryptoError::NoStoreId)?, key_id)
            }
        };
        self.open_with(envelope, &aad)
    }

    /// Decrypts a legacy `otv1` envelope stored on the credential row `credential_id` (an
    /// `otv2` envelope needs its [`Binding`]: [`Keyring::open`]).
    ///
    /// # Errors
    /// [`CryptoError`] when the envelope is malformed, names an unknown key, or fails
    /// authentication (wrong row, tampering, truncation); [`CryptoError::NoStoreId`] for `otv2`.
    pub fn decrypt(
        &self,
        credential_id: i64,
        envelope: &str,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open(None, credential_id, envelope)
    }

    fn open_with(&self, envelope: &str, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (_, key_id, body) = parse_envelope(envelope)?;
        let key = self.find(key_id).ok_or_else(|| CryptoError::UnknownKey {
            key_id: key_id.to_owned(),
            current: self.current.id.clone(),
        })?;
        let sealed = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CryptoError::Malformed("its body is not base64url"))?;
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed(
                "it is too short to hold a nonce and a tag",
            ));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        key.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::AuthenticationFailed {
                key_id: key_id.to_owned(),
            })
    }
}

fn parse_envelope(envelope: &str) -> Result<(EnvelopeFormat, &str, &str), CryptoError> {
    let mut parts = envelope.trim().splitn(3, '.');
    let version = parts.next().unwrap_or_default();
    let format = match version {
        ENVELOPE_VERSION => EnvelopeFormat::StoreBound,
        LEGACY_ENVELOPE_VERSION => EnvelopeFormat::RowBound,
        "" => return Err(CryptoError::Malformed("it is empty")),
        _ => {
            return Err(CryptoError::Malformed(
                "it does not start with the version tag otv2 (or otv1)",
            ))
        }
    };
    let key_id = parts
        .next()
        .filter(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(CryptoError::Malformed("its key id is missing or malformed"))?;
    let body = parts
        .next()
        .filter(|b| !b.is_empty())
        .ok_or(CryptoError::Malformed("its ciphertext is missing"))?;
    Ok((format, key_id, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> Keyring {
        Keyring::new(EncryptionKey::generate(), vec![])
    }

    #[test]
    fn round_trip_decrypts_what_was_encrypted() {
        let ring = keyring();
        let env = ring.encrypt(7, b"hello");
        assert!(env.starts_with(&format!("otv1.{}.", ring.current().id())));
        assert_eq!(&ring.decrypt(7, &env).unwrap()[..], b"hello");
    }

    fn bound(store_id: &str, credential_id: i64, version: i64) -> Binding<'_> {
        Binding {
            store_id,
            credential_id,
            version,
        }
    }

    #[test]
    fn sealed_envelope_opens_only_with_its_store_row_and_version() {
        let ring = keyring();
        let env = ring.seal(&bound("store-a", 7, 3), b"secret");
        assert!(env.starts_with("otv2."));
        assert_eq!(
            &ring.open(Some(&bound("store-a", 7, 3)), 7, &env).unwrap()[..],
            b"secret"
        );
        for other in [
            bound("store-b", 7, 3),
            bound("store-a", 8, 3),
            bound("store-a", 7, 2),
            bound("store-a", 7, 4),
        ] {
            assert!(
                matches!(
                    ring.open(Some(&other), other.credential_id, &env),
                    Err(CryptoError::AuthenticationFailed { .. })
                ),
                "{other:?}"
            );
        }
        assert_eq!(ring.open(None, 7, &env), Err(CryptoError::NoStoreId));
    }

    #[test]
    fn legacy_row_bound_envelopes_are_still_read() {
        let ring = keyring();
        let env = ring.encrypt(7, b"old");
        assert_eq!(
            Keyring::envelope_format(&env).unwrap(),
            EnvelopeFormat::RowBound
        );
        assert_eq!(
            &ring.open(Some(&bound("store-a", 7, 9)), 7, &env).unwrap()[..],
            b"old"
        );
        assert!(ring.open(Some(&bound("store-a", 8, 9)), 8, &env).is_err());
    }

    #[test]
    fn every_write_uses_a_fresh_nonce() {
        let ring = keyring();
        assert_ne!(ring.encrypt(1, b"same"), ring.encrypt(1, b"same"));
    }

    #[test]
    fn envelope_copied_to_another_row_fails_authentication() {
        let ring = keyring();
        let env = ring.encrypt(1, b"secret");
        assert!(matches!(
            ring.decrypt(2, &env),
            Err(CryptoError::AuthenticationFailed { .. })
        ));
    }

    #[test]
    fn any_flipped_byte_fails_authentication() {
        let ring = keyring();
        let env = ring.encrypt(1, b"secret payload");
        let (head, body) = env.rsplit_once('.').unwrap();
        let mut sealed = URL_SAFE_NO_PAD.decode(body).unwrap();
        for i in 0..sealed.len() {
            sealed[i] ^= 0x01;
            let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&sealed));
            assert!(ring.decrypt(1, &tampered).is_err(), "byte {i} flipped");
            sealed[i] ^= 0x01;
        }
    }

    #[test]
    fn truncated_envelope_is_reported_not_accepted() {
        let ring = keyring();
        let env = ring.encrypt(1, b"secret payload");
        for cut in [5, 22, env.len() - 3] {
            assert!(ring.decrypt(1, &env[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn wrong_key_is_named_as_unknown() {
        let env = keyring().encrypt(1, b"x");
        let other = keyring();
        match other.decrypt(1, &env) {
            Err(CryptoError::UnknownKey { key_id, current }) => {
                assert_ne!(key_id, current);
            }
            other => panic!("expected UnknownKey, got {other:?}"),
        }
    }

    #[test]
    fn previous_keys_decrypt_and_current_key_encrypts() {
        use secrecy::ExposeSecret;
        let old = EncryptionKey::generate();
        let old_b64 = old.to_base64().expose_secret().to_owned();
        let env = Keyring::new(old, vec![]).encrypt(3, b"x");
        let new = EncryptionKey::generate();
        let new_id = new.id().to_owned();
        let old_again = EncryptionKey::from_base64(&old_b64).unwrap();
        let ring = Keyring::new(new, vec![old_again]);
        assert_eq!(&ring.decrypt(3, &env).unwrap()[..], b"x");
        assert!(ring.encrypt(3, b"y").contains(&new_id));
    }

    #[test]
    fn key_ids_are_stable_across_base64_round_trips() {
        use secrecy::ExposeSecret;
        let key = EncryptionKey::generate();
        let again = EncryptionKey::from_base64(key.to_base64().expose_secret()).unwrap();
        assert_eq!(key.id(), again.id());
        let env = Keyring::new(key, vec![]).encrypt(9, b"payload");
        let ring = Keyring::new(EncryptionKey::generate(), vec![again]);
        assert_eq!(&ring.decrypt(9, &env).unwrap()[..], b"payload");
    }

    #[test]
    fn malformed_keys_are_rejected_with_reasons() {
        assert_eq!(
            EncryptionKey::from_base64("  ").unwrap_err(),
            KeyError::Empty
        );
        assert_eq!(
            EncryptionKey::from_base64("***").unwrap_err(),
            KeyError::NotBase64
        );
        assert_eq!(
            EncryptionKey::from_base64(&STANDARD.encode([1u8; 16])).unwrap_err(),
            KeyError::WrongLength(16)
        );
        assert!(EncryptionKey::from_base64(&URL_SAFE_NO_PAD.encode([0xfbu8; 32])).is_ok());
    }

    #[test]
    fn debug_output_never_shows_key_bytes() {
        let key = EncryptionKey::generate();
        use secrecy::ExposeSecret;
        let b64 = key.to_base64().expose_secret().to_owned();
        let ring = Keyring::new(key, vec![]);
        let shown = format!("{ring:?}");
        assert!(!shown.contains(&b64));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn malformed_envelopes_are_described() {
        let ring = keyring();
        for (env, want) in [
            ("", "empty"),
            ("v0.0011223344556677.abc", "version"),
            ("otv3.0011223344556677.abc", "otv2"),
            ("otv1.zz.abc", "key id"),
            ("otv1.0011223344556677.", "ciphertext"),
        ] {
            let err = ring.decrypt(1, env).unwrap_err().to_string();
            assert!(err.contains(want), "{env:?} → {err}");
        }
    }
}
