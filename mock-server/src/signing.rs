//! The mock's RS256 signing keys: what signs its id_tokens and what it publishes to verify them.
//!
//! A client verifies a Google id_token against the keys Google publishes, as a JSON Web Key Set
//! (`/oauth2/v3/certs`) or as a map from key id to an X.509 certificate in PEM
//! (`/oauth2/v1/certs`, what google-auth's `verify_oauth2_token` and Node's `verifyIdToken` fetch).
//! Google publishes two keys at a time and rotates them; so does this ring: after a
//! [`rotate`](KeyRing::rotate) the new key signs and the previous one stays published, so tokens
//! signed before the rotation still verify, while tokens signed two rotations ago no longer do.
//!
//! The same PKCS#1 v1.5 / SHA-256 code verifies the assertions that service accounts sign
//! ([`verify_rs256`]).
//!
//! # Security
//! Private keys never leave this module except as the PEM of a service-account key file (whose
//! purpose is to be handed out); no `Debug` here prints key material.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::error::MockError;
use crate::wire::to_json;

/// RSA modulus size of generated keys, as Google's.
const KEY_BITS: usize = 2048;
/// How many keys the ring publishes: the signing one and the one before it.
const PUBLISHED: usize = 2;

/// A fresh 2048-bit RSA key.
pub(crate) fn generate_rsa() -> Result<RsaPrivateKey, MockError> {
    RsaPrivateKey::new(&mut rsa::rand_core::OsRng, KEY_BITS)
        .map_err(|e| MockError::InvalidConfig(format!("cannot generate an RSA key: {e}")))
}

/// A private key as PKCS#8 PEM (a `PRIVATE KEY` block), as service-account key files
/// carry it.
pub(crate) fn private_pem(key: &RsaPrivateKey) -> Result<String, MockError> {
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|e| MockError::InvalidConfig(format!("cannot encode an RSA key: {e}")))
}

/// 40 hex characters derived from the public key, shaped like Google's key ids.
fn key_id(public: &RsaPublicKey) -> String {
    let digest = Sha256::digest(public.n().to_bytes_be());
    digest.iter().take(20).map(|b| format!("{b:02x}")).collect()
}

/// One signing key with everything published about it.
pub(crate) struct RingKey {
    kid: String,
    signer: SigningKey<Sha256>,
    /// Base64url of the modulus and exponent (the JWK's `n` and `e`).
    n: String,
    e: String,
    /// A self-signed X.509 certificate holding the public key, in PEM.
    certificate_pem: String,
}

impl fmt::Debug for RingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl RingKey {
    fn new(private: RsaPrivateKey) -> Result<Self, MockError> {
        let public = private.to_public_key();
        let pem = private_pem(&private)?;
        let certificate_pem = self_signed_certificate(&pem)?;
        Ok(Self {
            kid: key_id(&public),
            n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            signer: SigningKey::<Sha256>::new(private),
            certificate_pem,
        })
    }
}

/// The certificate `/oauth2/v1/certs` publishes for a key, as Google does (self-signed, its
/// common name the key's purpose).
fn self_signed_certificate(private_pem: &str) -> Result<String, MockError> {
    let invalid = |e: rcgen::Error| MockError::InvalidConfig(format!("cannot certify a key: {e}"));
    let key_pair = rcgen::KeyPair::from_pem_and_sign_algo(private_pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(invalid)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(invalid)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "accounts.google.com");
    Ok(params.self_signed(&key_pair).map_err(invalid)?.pem())
}

/// The keys of one server, newest (signing) first.
#[derive(Debug)]
pub(crate) struct KeyRing {
    keys: Vec<Arc<RingKey>>,
}

#[derive(Serialize)]
struct JwtHeader<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
}

#[derive(Serialize)]
struct Jwk<'a> {
    kty: &'static str,
    alg: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
    kid: &'a str,
    n: &'a str,
    e: &'a str,
}

#[derive(Serialize)]
struct Jwks<'a> {
    keys: Vec<Jwk<'a>>,
}

impl KeyRing {
    /// A ring with one freshly generated key.
    #[cfg(test)]
    pub(crate) fn generate() -> Result<Self, MockError> {
        Ok(Self {
            keys: vec![Arc::new(RingKey::new(generate_rsa()?)?)],
        })
    }

    /// A ring whose signing key is read from PEM (PKCS#8 `PRIVATE KEY` or PKCS#1
    /// `RSA PRIVATE KEY`).
    ///
    /// # Errors
    /// [`MockError::InvalidConfig`] naming what is wrong with the PEM (never quoting it).
    pub(crate) fn from_pem(pem: &str) -> Result<Self, MockError> {
        let private = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|e| {
                MockError::InvalidConfig(format!(
                    "the signing key is not an RSA private key in PEM (PKCS#8 or PKCS#1): {e}"
                ))
            })?;
        if private.size() * 8 < KEY_BITS {
            return Err(MockError::InvalidConfig(format!(
                "the signing key has {} bits; RS256 needs at least {KEY_BITS}",
                private.size() * 8
            )));
        }
        Ok(Self {
            keys: vec![Arc::new(RingKey::new(private)?)],
        })
    }

    /// The key id that signs now.
    #[cfg(test)]
    pub(crate) fn current_kid(&self) -> &str {
        self.keys.first().map_or("", |k| k.kid.as_str())
    }

    /// Every published key id, newest first.
    pub(crate) fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.kid.clone()).collect()
    }

    /// A new key signs from now on; the previous one stays published, older ones are dropped.
    pub(crate) fn rotate(&mut self) -> Result<(), MockError> {
        self.keys
            .insert(0, Arc::new(RingKey::new(generate_rsa()?)?));
        self.keys.truncate(PUBLISHED);
        Ok(())
    }

    /// A compact JWS of `claims`, signed RS256 with the current key.
    pub(crate) fn sign<T: Serialize>(&self, claims: &T) -> String {
        let Some(key) = self.keys.first() else {
            return String::new();
        };
        let header = to_json(&JwtHeader {
            alg: "RS256",
            kid: &key.kid,
            typ: "JWT",
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(to_json(claims))
        );
        let signature = key.signer.sign(signing_input.as_bytes()).to_bytes();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// Verifies a JWS this ring signed (with any published key), returning its claims.
    pub(crate) fn verify(&self, jwt: &str) -> Option<serde_json::Value> {
        let parts = JwtParts::split(jwt)?;
        let kid = parts.header.get("kid").and_then(|k| k.as_str())?;
        let key = self.keys.iter().find(|k| k.kid == kid)?;
        let public = key.signer.as_ref().to_public_key();
        verify_rs256(&public, &parts).then_some(parts.claims)
    }

    /// `/oauth2/v3/certs`: the JSON Web Key Set.
    pub(crate) fn jwks(&self) -> String {
        to_json(&Jwks {
            keys: self
                .keys
                .iter()
                .map(|k| Jwk {
                    kty: "RSA",
                    alg: "RS256",
                    use_: "sig",
                    kid: &k.kid,
                    n: &k.n,
                    e: &k.e,
                })
                .collect(),
        })
    }

    /// `/oauth2/v1/certs`: `{kid: certificate PEM}`.
    pub(crate) fn pem_map(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .keys
            .iter()
            .map(|k| (k.kid.clone(), k.certificate_pem.clone().into()))
            .collect();
        to_json(&map)
    }
}

/// The first signing key of every mock in this process that is not given one: generating a
/// 2048-bit RSA key takes from half a second to seconds on a loaded machine, too long to pay
/// per mock (a `mock-all` run starts one per scenario) or inside a request (the client's
/// timeout would fire). [`warm_up`] starts making it in the background when a mock starts; the
/// first id_token waits for it only if it is not ready yet. Rotation makes keys of the mock's own.
static FIRST_KEY: std::sync::OnceLock<Result<Arc<RingKey>, String>> = std::sync::OnceLock::new();

fn first_key() -> Result<Arc<RingKey>, MockError> {
    FIRST_KEY
        .get_or_init(|| {
            generate_rsa()
                .and_then(RingKey::new)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(MockError::InvalidConfig)
}

/// Starts making the process's first signing key in the background, once.
pub(crate) fn warm_up() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("mock-signing-key".to_string())
            .spawn(|| {
                let _ = first_key();
            });
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "no warm-up thread; the key is made when first needed");
        }
    });
}

/// A server's key ring: the process's first key (see [`FIRST_KEY`]) unless loaded from PEM at
/// start, then keys of its own as it rotates. Survives [`reset`](crate::MockGoogle::reset):
/// Google's keys do not change when a test starts over.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    ring: parking_lot::Mutex<Option<KeyRing>>,
}

impl Keys {
    /// Keys loaded from PEM now, or generated when first needed.
    pub(crate) fn new(pem: Option<&str>) -> Result<Self, MockError> {
        let ring = pem.map(KeyRing::from_pem).transpose()?;
        Ok(Self {
            ring: parking_lot::Mutex::new(ring),
        })
    }

    /// Runs `f` on the ring, generating its first key if there is none yet.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut KeyRing) -> R) -> Result<R, MockError> {
        let mut ring = self.ring.lock();
        if ring.is_none() {
            *ring = Some(KeyRing {
                keys: vec![first_key()?],
            });
        }
        match ring.as_mut() {
            Some(ring) => Ok(f(ring)),
            None => Err(MockError::InvalidConfig("no signing key".to_string())),
        }
    }
}

/// A JWS split into its parts, header and claims decoded.
pub(crate) struct JwtParts {
    pub(crate) header: serde_json::Value,
    pub(crate) claims: serde_json::Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl JwtParts {
    /// Splits and decodes `header.claims.signature`; `None` when it is not a JWS.
    pub(crate) fn split(jwt: &str) -> Option<Self> {
        let mut parts = jwt.split('.');
        let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let decode_json = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .filter(serde_json::Value::is_object)
        };
        Some(Self {
            header: decode_json(header)?,
            claims: decode_json(claims)?,
            signing_input: format!("{header}.{claims}"),
            signature: URL_SAFE_NO_PAD
                .decode(signature.trim_end_matches('='))
                .ok()?,
        })
    }
}

/// Whether `parts` carries a valid RS256 signature by `public` (and says `alg` RS256).
pub(crate) fn verify_rs256(public: &RsaPublicKey, parts: &JwtParts) -> bool {
    if parts.header.get("alg").and_then(|a| a.as_str()) != Some("RS256") {
        return false;
    }
    let Ok(signature) = Signature::try_from(parts.signature.as_slice()) else {
        return false;
    };
    VerifyingKey::<Sha256>::new(public.clone())
        .verify(parts.signing_input.as_bytes(), &signature)
        .is_ok()
}

/// Google's `at_hash`: base64url of the left half of SHA-256 of the access token.
pub(crate) fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_signed_token_verifies_until_its_key_is_rotated_out_twice() {
        let mut ring = KeyRing::generate().expect("key");
        let first_kid = ring.current_kid().to_string();
        assert_eq!(first_kid.len(), 40);
        let token = ring.sign(&json!({"sub": "1"}));
        assert_eq!(ring.verify(&token).expect("verifies")["sub"], "1");

        ring.rotate().expect("rotate");
        assert_ne!(ring.current_kid(), first_kid);
        assert_eq!(ring.kids().len(), 2);
        assert!(
            ring.verify(&token).is_some(),
            "the previous key stays published"
        );
        ring.rotate().expect("rotate");
        assert!(ring.verify(&token).is_none(), "two rotations drop the key");
    }

    #[test]
    fn a_tampered_token_or_another_algorithm_does_not_verify() {
        let ring = KeyRing::generate().expect("key");
        let token = ring.sign(&json!({"sub": "1"}));
        let (input, _) = token.rsplit_once('.').expect("three parts");
        let forged_claims = URL_SAFE_NO_PAD.encode(r#"{"sub":"2"}"#);
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = &forged_claims;
        assert!(ring.verify(&parts.join(".")).is_none());
        assert!(ring.verify(&format!("{input}.AAAA")).is_none());
        assert!(ring.verify("not-a-jwt").is_none());
    }

    #[test]
    fn published_keys_carry_the_current_kid_in_both_formats() {
        let ring = KeyRing::generate().expect("key");
        let jwks: serde_json::Value = serde_json::from_str(&ring.jwks()).expect("json");
        assert_eq!(jwks["keys"][0]["kid"], ring.current_kid());
        assert_eq!(jwks["keys"][0]["alg"], "RS256");
        assert_eq!(jwks["keys"][0]["e"], "AQAB");
        let pems: serde_json::Value = serde_json::from_str(&ring.pem_map()).expect("json");
        let pem = pems[ring.current_kid()].as_str().expect("a PEM");
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    }

    #[test]
    fn a_pem_key_is_loaded_and_a_bad_one_is_refused_without_quoting_it() {
        let pem = private_pem(&generate_rsa().expect("key")).expect("pem");
        let ring = KeyRing::from_pem(&pem).expect("loads");
        assert!(!ring.current_kid().is_empty());
        // Not a key, though shaped like one (built here so no scanner mistakes it for one).
        let bad = format!(
            "-----BEGIN {0}-----\nc2VjcmV0\n-----END {0}-----\n",
            "PRIVATE KEY"
        );
        let err = KeyRing::from_pem(&bad).expect_err("refused").to_string();
        assert!(err.contains("not an RSA private key"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // sha256("abc") starts ba7816bf8f01cfea414140de5dae2223
        assert_eq!(
            at_hash("abc"),
            URL_SAFE_NO_PAD.encode([
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
                0x22, 0x23
            ])
        );
    }
}
