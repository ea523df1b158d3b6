//! AES-256-GCM with a raw key, in the layout the application uses: nonce length (12 or 16),
//! the order of nonce, tag and ciphertext, their text encoding, and the nonce and tag in columns
//! of their own where the application keeps them so.

use super::Sealed;
use crate::app_store::config::{GcmEncoding, GcmOrder, StoreConfig};
use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use zeroize::Zeroizing;

const TAG_LEN: usize = 16;

/// Reads a 32-byte key written as 64 hex digits or as base64 (either alphabet).
pub(super) fn parse_key(text: &str) -> Result<Zeroizing<[u8; 32]>, &'static str> {
    let text = text.trim();
    let bytes = Zeroizing::new(
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| "is not hex")?
        } else {
            [
                STANDARD,
                URL_SAFE,
                URL_SAFE_NO_PAD,
                base64::engine::general_purpose::STANDARD_NO_PAD,
            ]
            .iter()
            .find_map(|e| e.decode(text).ok())
            .ok_or("is neither 64 hex digits nor base64 of 32 bytes (an AES-256 key)")?
        },
    );
    if bytes.len() != 32 {
        return Err(
            "does not hold 32 bytes: an AES-256 key is 64 hex digits or 32 bytes in base64",
        );
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&bytes);
    Ok(key)
}

pub(super) struct Gcm {
    keys: Vec<Zeroizing<[u8; 32]>>,
    nonce_len: usize,
    order: GcmOrder,
    encoding: GcmEncoding,
    iv_apart: bool,
    tag_apart: bool,
}

pub(super) enum GcmError {
    Malformed(String),
    Failed,
}

impl GcmError {
    pub(super) fn message(&self, keys: &str) -> String {
        match self {
            GcmError::Malformed(why) => why.clone(),
            GcmError::Failed => format!(
                "AES-256-GCM authentication failed with {keys}: a wrong key, a wrong layout (store.gcm_*), or the value was changed or cut"
            ),
        }
    }
}

impl Gcm {
    pub(super) fn new(cfg: &StoreConfig, keys: Vec<Zeroizing<[u8; 32]>>) -> Self {
        Self {
            keys,
            nonce_len: cfg.gcm_nonce_len,
            order: cfg.gcm_order,
            encoding: cfg.gcm_encoding,
            iv_apart: cfg.iv_column.is_some(),
            tag_apart: cfg.tag_column.is_some(),
        }
    }

    fn encode(&self, bytes: &[u8]) -> String {
        match self.encoding {
            GcmEncoding::Base64 => STANDARD.encode(bytes),
            GcmEncoding::Base64Url => URL_SAFE_NO_PAD.encode(bytes),
            GcmEncoding::Hex => hex::encode(bytes),
        }
    }

    fn decode(&self, what: &str, text: &str) -> Result<Vec<u8>, GcmError> {
        let text = text.trim();
        let decoded = match self.encoding {
            GcmEncoding::Base64 => STANDARD.decode(text).ok(),
            GcmEncoding::Base64Url => URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .ok()
                .or_else(|| URL_SAFE.decode(text).ok()),
            GcmEncoding::Hex => hex::decode(text).ok(),
        };
        let name = match self.encoding {
            GcmEncoding::Base64 => "base64",
            GcmEncoding::Base64Url => "base64url",
            GcmEncoding::Hex => "hex",
        };
        decoded.ok_or_else(|| {
            GcmError::Malformed(format!("the {what} is not {name} (store.gcm_encoding)"))
        })
    }

    /// Seals with the current key and a fresh random nonce.
    pub(super) fn encrypt(&self, plaintext: &[u8]) -> Sealed {
        let key = &self.keys[0];
        let nonce: Vec<u8> = (0..self.nonce_len).map(|_| rand::random::<u8>()).collect();
        // Encryption fails only for plaintexts over 64 GiB.
        let mut sealed = match self.nonce_len {
            16 => AesGcm::<Aes256, U16>::new(key.as_slice().into())
                .encrypt(nonce.as_slice().into(), plaintext),
            _ => AesGcm::<Aes256, U12>::new(key.as_slice().into())
                .encrypt(nonce.as_slice().into(), plaintext),
        }
        .unwrap_or_default();
        let tag = sealed.split_off(sealed.len().saturating_sub(TAG_LEN));
        let ciphertext = sealed;
        let mut data = Vec::new();
        if !self.iv_apart {
            data.extend_from_slice(&nonce);
        }
        match self.order {
            GcmOrder::NonceCiphertextTag => {
                data.extend_from_slice(&ciphertext);
                if !self.tag_apart {
                    data.extend_from_slice(&tag);
                }
            }
            GcmOrder::NonceTagCiphertext => {
                if !self.tag_apart {
                    data.extend_from_slice(&tag);
                }
                data.extend_from_slice(&ciphertext);
            }
        }
        Sealed {
            data: self.encode(&data),
            iv: self.iv_apart.then(|| self.encode(&nonce)),
            tag: self.tag_apart.then(|| self.encode(&tag)),
        }
    }

    /// Opens with each configured key in turn.
    pub(super) fn decrypt(&self, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, GcmError> {
        let data = self.decode("value", &sealed.data)?;
        let apart = |what: &str, column: &Option<String>| -> Result<Vec<u8>, GcmError> {
            let text = column
                .as_deref()
                .ok_or_else(|| GcmError::Malformed(format!("the {what} column is empty")))?;
            self.decode(what, text)
        };
        let mut rest = data.as_slice();
        let nonce = if self.iv_apart {
            apart("nonce (store.iv_column)", &sealed.iv)?
        } else {
            if rest.len() < self.nonce_len {
                return Err(GcmError::Malformed(
                    "the value is too short to hold a nonce: it was cut".into(),
                ));
            }
            let (n, r) = rest.split_at(self.nonce_len);
            rest = r;
            n.to_vec()
        };
        if nonce.len() != self.nonce_len {
            return Err(GcmError::Malformed(format!(
                "the nonce is {} bytes, not {} (store.gcm_nonce_len)",
                nonce.len(),
                self.nonce_len
            )));
        }
        let (ciphertext, tag) = if self.tag_apart {
            (rest.to_vec(), apart("tag (store.tag_column)", &sealed.tag)?)
        } else if rest.len() < TAG_LEN {
            return Err(GcmError::Malformed(
                "the value is too short to hold a tag: it was cut".into(),
            ));
        } else {
            match self.order {
                GcmOrder::NonceCiphertextTag => {
                    let (c, t) = rest.split_at(rest.len() - TAG_LEN);
                    (c.to_vec(), t.to_vec())
                }
                GcmOrder::NonceTagCiphertext => {
                    let (t, c) = rest.split_at(TAG_LEN);
                    (c.to_vec(), t.to_vec())
                }
            }
        };
        if tag.len() != TAG_LEN {
            return Err(GcmError::Malformed(format!(
                "the tag is {} bytes, not 16",
                tag.len()
            )));
        }
        let mut joined = ciphertext;
        joined.extend_from_slice(&tag);
        self.keys
            .iter()
            .find_map(|key| {
                match self.nonce_len {
                    16 => AesGcm::<Aes256, U16>::new(key.as_slice().into())
                        .decrypt(nonce.as_slice().into(), joined.as_slice()),
                    _ => AesGcm::<Aes256, U12>::new(key.as_slice().into())
                        .decrypt(nonce.as_slice().into(), joined.as_slice()),
                }
                .ok()
            })
            .map(Zeroizing::new)
            .ok_or(GcmError::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gcm(nonce_len: usize, order: GcmOrder, encoding: GcmEncoding, apart: bool) -> Gcm {
        Gcm {
            keys: vec![parse_key(&"ab".repeat(32)).unwrap()],
            nonce_len,
            order,
            encoding,
            iv_apart: apart,
            tag_apart: apart,
        }
    }

    #[test]
    fn every_layout_round_trips_and_rejects_a_changed_byte() {
        for nonce_len in [12, 16] {
            for order in [GcmOrder::NonceCiphertextTag, GcmOrder::NonceTagCiphertext] {
                for encoding in [
                    GcmEncoding::Base64,
                    GcmEncoding::Base64Url,
                    GcmEncoding::Hex,
                ] {
                    for apart in [false, true] {
                        let g = gcm(nonce_len, order, encoding, apart);
                        let sealed = g.encrypt(b"{\"a\":1}");
                        assert_eq!(sealed.iv.is_some(), apart);
                        assert_eq!(&g.decrypt(&sealed).ok().unwrap()[..], b"{\"a\":1}");
                        let mut raw = g.decode("value", &sealed.data).ok().unwrap();
                        let i = nonce_len.min(raw.len() - 1);
                        raw[i] ^= 1;
                        let tampered = Sealed {
                            data: g.encode(&raw),
                            ..sealed.clone()
                        };
                        assert!(
                            g.decrypt(&tampered).is_err(),
                            "{nonce_len} {order:?} {encoding:?} {apart}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_order_is_what_it_says() {
        let a = gcm(12, GcmOrder::NonceCiphertextTag, GcmEncoding::Hex, false);
        let b = gcm(12, GcmOrder::NonceTagCiphertext, GcmEncoding::Hex, false);
        let sealed = a.encrypt(b"payload");
        assert!(b.decrypt(&sealed).is_err());
        let raw = hex::decode(&sealed.data).unwrap();
        let (nonce, rest) = raw.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        let swapped = Sealed {
            data: hex::encode([nonce, tag, ct].concat()),
            iv: None,
            tag: None,
        };
        assert_eq!(&b.decrypt(&swapped).ok().unwrap()[..], b"payload");
    }

    #[test]
    fn keys_are_hex_or_base64_of_32_bytes() {
        assert!(parse_key(&"0f".repeat(32)).is_ok());
        assert!(parse_key(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(parse_key(&URL_SAFE_NO_PAD.encode([0xfbu8; 32])).is_ok());
        assert!(parse_key(&STANDARD.encode([7u8; 16])).is_err());
        assert!(parse_key("not a key").is_err());
    }

    #[test]
    fn a_cut_value_is_named_as_cut() {
        let g = gcm(12, GcmOrder::NonceCiphertextTag, GcmEncoding::Base64, false);
        let short = Sealed {
            data: STANDARD.encode([0u8; 20]),
            iv: None,
            tag: None,
        };
        assert!(matches!(g.decrypt(&short), Err(GcmError::Malformed(m)) if m.contains("cut")));
    }
}
