//! AES-256-GCM envelopes for stored credentials.
//!
//! A credential's secrets are stored as one text value, the *envelope*:
//!
//! ```text
//! otv1.<key id: 16 hex>.<base64url(nonce[12] ‖ ciphertext ‖ tag[16])>
//! ```
//!
//! - `otv1` versions the format, so a later format can be read beside this one.
//! - The key id names the key that encrypted it (a digest of the key, never the key), so keys can
//!   rotate: reads try the key the envelope names among the current and previous keys, writes
//!   always use the current key.
//! - The associated data binds the envelope to its row (`oauthtest/v1/credential/<id>/<key id>`):
//!   an envelope copied onto another row fails authentication, as does any changed byte.
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
const ENVELOPE_VERSION: &str = "otv1";

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
    /// Encrypted with a key that is not configured.
    #[error("encrypted with key {key_id}, which is not among the configured keys (current: {current}); set OAUTHTEST_ENCRYPTION_KEY, or list the old key in OAUTHTEST_OLD_ENCRYPTION_KEYS")]
    UnknownKey {
        /// The id the envelope names.
        key_id: String,
        /// The id of the current key.
        current: String,
    },
    /// The key is right but authentication failed.
    #[error("encrypted_data failed authentication with key {key_id}: it was tampered with, truncated, or copied from another row")]
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

/// The associated data that binds an envelope to one credential row.
fn associated_data(credential_id: i64, key_id: &str) -> Vec<u8> {
    format!("oauthtest/v1/credential/{credential_id}/{key_id}").into_bytes()
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

    /// Encrypts `plaintext` for the credential row `credential_id` with the current key.
    pub fn encrypt(&self, credential_id: i64, plaintext: &[u8]) -> String {
        let key = &self.current;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = associated_data(credential_id, &key.id);
        let ciphertext = key
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            // AES-GCM encryption fails only for plaintexts over 64 GiB.
            .unwrap_or_else(|_| unreachable!("AES-GCM refuses only plaintexts over 64 GiB"));
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(nonce.as_slice());
        sealed.extend_from_slice(&ciphertext);
        format!(
            "{ENVELOPE_VERSION}.{}.{}",
            key.id,
            URL_SAFE_NO_PAD.encode(sealed)
        )
    }

    /// The id of the key an envelope names, without decrypting it.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] when `envelope` is not an envelope.
    pub fn envelope_key_id(envelope: &str) -> Result<&str, CryptoError> {
        parse_envelope(envelope).map(|(key_id, _)| key_id)
    }

    /// Decrypts an envelope stored on the credential row `credential_id`.
    ///
    /// # Errors
    /// [`CryptoError`] when the envelope is malformed, names an unknown key, or fails
    /// authentication (wrong row, tampering, truncation).
    pub fn decrypt(
        &self,
        credential_id: i64,
        envelope: &str,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (key_id, body) = parse_envelope(envelope)?;
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
        let aad = associated_data(credential_id, key_id);
        key.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::AuthenticationFailed {
                key_id: key_id.to_owned(),
            })
    }
}

fn parse_envelope(envelope: &str) -> Result<(&str, &str), CryptoError> {
    let mut parts = envelope.trim().splitn(3, '.');
    let version = parts.next().unwrap_or_default();
    if version != ENVELOPE_VERSION {
        return Err(if version.is_empty() {
            CryptoError::Malformed("it is empty")
        } else {
            CryptoError::Malformed("it does not start with the version tag otv1")
        });
    }
    let key_id = parts
        .next()
        .filter(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(CryptoError::Malformed("its key id is missing or malformed"))?;
    let body = parts
        .next()
        .filter(|b| !b.is_empty())
        .ok_or(CryptoError::Malformed("its ciphertext is missing"))?;
    Ok((key_id, body))
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
            ("otv1.zz.abc", "key id"),
            ("otv1.0011223344556677.", "ciphertext"),
        ] {
            let err = ring.decrypt(1, env).unwrap_err().to_string();
            assert!(err.contains(want), "{env:?} → {err}");
        }
    }
}
