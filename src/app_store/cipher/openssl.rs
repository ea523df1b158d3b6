//! OpenSSL's passphrase format, as crypto-js's `AES.encrypt(text, passphrase).toString()` and
//! n8n write it: base64 of `Salted__` ‖ salt\[8\] ‖ AES-256-CBC(PKCS#7) ciphertext, with key and IV
//! derived from passphrase and salt by `EVP_BytesToKey` (MD5, one round).
//!
//! The format has no MAC: a wrong passphrase or a changed byte is caught by the padding check
//! (and then by the payload not being JSON), which is all the format itself can do.

use aes::Aes256;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use md5::{Digest, Md5};
use zeroize::Zeroizing;

const MAGIC: &[u8] = b"Salted__";

#[derive(Debug)]
pub(super) enum OpensslError {
    /// Not this format at all.
    Malformed(&'static str),
    /// Wrong passphrase, or changed or cut.
    Failed,
}

/// `EVP_BytesToKey(MD5, salt, passphrase, count = 1)`: 32 bytes of key, 16 of IV.
fn derive(passphrase: &[u8], salt: &[u8]) -> Zeroizing<[u8; 48]> {
    let mut out = Zeroizing::new([0u8; 48]);
    let mut filled = 0;
    let mut previous: Option<Zeroizing<Vec<u8>>> = None;
    while filled < out.len() {
        let mut h = Md5::new();
        if let Some(p) = &previous {
            h.update(p.as_slice());
        }
        h.update(passphrase);
        h.update(salt);
        let block = Zeroizing::new(h.finalize().to_vec());
        let n = block.len().min(out.len() - filled);
        out[filled..filled + n].copy_from_slice(&block[..n]);
        filled += n;
        previous = Some(block);
    }
    out
}

pub(super) fn encrypt(passphrase: &str, plaintext: &[u8]) -> String {
    let salt: [u8; 8] = rand::random();
    let derived = derive(passphrase.as_bytes(), &salt);
    // Key and IV have exactly the lengths AES-256-CBC takes.
    let ciphertext = cbc::Encryptor::<Aes256>::new_from_slices(&derived[..32], &derived[32..])
        .map(|c| c.encrypt_padded_vec_mut::<Pkcs7>(plaintext))
        .unwrap_or_default();
    let mut out = Vec::with_capacity(16 + ciphertext.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&ciphertext);
    STANDARD.encode(out)
}

pub(super) fn decrypt(passphrase: &str, stored: &str) -> Result<Zeroizing<Vec<u8>>, OpensslError> {
    let compact: String = stored
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let raw = STANDARD
        .decode(compact)
        .map_err(|_| OpensslError::Malformed("the value is not base64, so not an OpenSSL Salted__ value (cipher openssl-aes-256-cbc)"))?;
    if raw.len() < 16 || &raw[..8] != MAGIC {
        return Err(OpensslError::Malformed(
            "the value does not start with Salted__ and a salt, so it is not what crypto-js AES.encrypt(text, passphrase) writes (cipher openssl-aes-256-cbc)",
        ));
    }
    let body = &raw[16..];
    if body.is_empty() || body.len() % 16 != 0 {
        return Err(OpensslError::Malformed(
            "the ciphertext is not a whole number of AES blocks: the value was cut",
        ));
    }
    let derived = derive(passphrase.as_bytes(), &raw[8..16]);
    cbc::Decryptor::<Aes256>::new_from_slices(&derived[..32], &derived[32..])
        .map_err(|_| OpensslError::Failed)?
        .decrypt_padded_vec_mut::<Pkcs7>(body)
        .map(Zeroizing::new)
        .map_err(|_| OpensslError::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_a_fresh_salt() {
        let a = encrypt("pass phrase", b"{\"x\":1}");
        assert_ne!(a, encrypt("pass phrase", b"{\"x\":1}"));
        assert!(STANDARD.decode(&a).unwrap().starts_with(MAGIC));
        assert_eq!(&decrypt("pass phrase", &a).unwrap()[..], b"{\"x\":1}");
    }

    #[test]
    fn matches_openssl_enc_md5_key_derivation() {
        // `openssl enc -aes-256-cbc -md md5 -S 0102030405060708 -k secret -P` prints this key/IV.
        let d = derive(b"secret", &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            hex::encode_upper(&d[..32]),
            "C9E5A1BD216DBE1317E230CEF48F38EE7F0E17AD64022144BCCEC4A1AA2879AB"
        );
        assert_eq!(
            hex::encode_upper(&d[32..]),
            "E24B32BBBC4EF02ECBCB6576523AD893"
        );
    }

    #[test]
    fn cut_or_foreign_values_are_named() {
        let a = encrypt("k", b"0123456789abcdef0123");
        assert!(matches!(
            decrypt("k", "not base64!"),
            Err(OpensslError::Malformed(_))
        ));
        assert!(matches!(
            decrypt("k", &STANDARD.encode(b"plain text, no magic")),
            Err(OpensslError::Malformed(_))
        ));
        let raw = STANDARD.decode(&a).unwrap();
        let cut = STANDARD.encode(&raw[..raw.len() - 5]);
        assert!(matches!(
            decrypt("k", &cut),
            Err(OpensslError::Malformed(_))
        ));
    }
}
