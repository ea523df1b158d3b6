//! Encrypt and decrypt of one stored credential, through the same calls the store makes: the
//! payload serialized and sealed (`Keyring::encrypt` of `GoogleCredential::to_payload`, as
//! `Store::insert`/`replace` write it), then opened and parsed (`Keyring::decrypt` and
//! `GoogleCredential::from_payload`, as `CredentialRow::decrypt` reads it).
//!
//! `scripts/bench.sh` runs it and publishes the estimates from
//! `target/criterion/credential/*/new/estimates.json`; `cargo bench --bench crypto` alone works too.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oauthtest::credential::GoogleCredential;
use oauthtest::crypto::{EncryptionKey, Keyring};
use oauthtest::secret::{AccessToken, ClientSecret, IdToken, RefreshToken};
use std::hint::black_box;

/// The row id the envelope is bound to (it is part of the associated data).
const ROW: i64 = 42;

/// A token of `len` characters from Google's alphabet (letters, digits, `-`, `_`), after `prefix`.
fn token(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let body: String = (0..len)
        .map(|i| ALPHABET[(i * 37 + 11) % ALPHABET.len()] as char)
        .collect();
    format!("{prefix}{body}")
}

/// A credential the size of a real Gmail one: a ~220-character `ya29.` access token, a
/// ~100-character `1//` refresh token, two scopes, the client, and an OpenID ID token (a JWT
/// of about 1 KB, present when `openid` was granted).
fn gmail_credential() -> GoogleCredential {
    GoogleCredential {
        access_token: Some(AccessToken::from(token("ya29.a0AfB_by", 210))),
        refresh_token: Some(RefreshToken::from(token("1//0g", 98))),
        expiry: Some("2030-01-01T00:00:00Z".parse().expect("a valid timestamp")),
        scopes: vec![
            "https://www.googleapis.com/auth/gmail.readonly".into(),
            "https://www.googleapis.com/auth/gmail.send".into(),
            "openid".into(),
        ],
        token_type: "Bearer".into(),
        client_id: Some(
            "123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com".into(),
        ),
        client_secret: Some(ClientSecret::from(token("GOCSPX-", 28))),
        id_token: Some(IdToken::from(format!(
            "{}.{}.{}",
            token("eyJhbGciOiJSUzI1NiIs", 80),
            token("eyJpc3MiOiJodHRwczovL2FjY291bnRzLmdvb2dsZS5jb20i", 560),
            token("", 342)
        ))),
    }
}

fn credential(c: &mut Criterion) {
    let keyring = Keyring::new(EncryptionKey::generate(), vec![]);
    let secrets = gmail_credential();
    let payload_len = secrets.to_payload().len();
    let envelope = keyring.encrypt(ROW, &secrets.to_payload());
    // The benchmark measures a working round trip, not an error path.
    let opened = GoogleCredential::from_payload(&keyring.decrypt(ROW, &envelope).expect("opens"))
        .expect("parses");
    assert_eq!(opened.scopes, secrets.scopes);

    let mut group = c.benchmark_group("credential");
    group.throughput(Throughput::Bytes(payload_len as u64));
    group.bench_function("encrypt", |b| {
        b.iter(|| keyring.encrypt(black_box(ROW), &black_box(&secrets).to_payload()))
    });
    group.bench_function("decrypt", |b| {
        b.iter(|| {
            let plaintext = keyring
                .decrypt(black_box(ROW), black_box(&envelope))
                .expect("opens");
            GoogleCredential::from_payload(&plaintext).expect("parses")
        })
    });
    group.finish();
}

criterion_group!(benches, credential);
criterion_main!(benches);
