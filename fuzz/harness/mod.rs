//! The fuzz harnesses: one function per target, each feeding arbitrary bytes to one decoder of
//! untrusted input and asserting its properties (not only "no panic").
//!
//! Shared, unchanged, by the cargo-fuzz targets in `fuzz/fuzz_targets/` (nightly, libFuzzer)
//! and by the stable regression test `tests/cli/fuzz_regressions.rs`, which replays every
//! committed corpus file and past finding and runs seeded mutations through exactly these
//! assertions. A property that fails panics with a message saying which property, never the
//! secret itself.
//!
//! Inputs may carry two-byte markers (`@R`, `@S`, `@A`, …) that a harness replaces with a planted
//! secret before parsing, so the fuzzer can put secrets anywhere in an input and the harness can
//! check that no message, `Debug` or `Display` string gives them back.

use std::sync::{Arc, OnceLock};

use oauthtest::crypto::{CryptoError, EncryptionKey, Keyring};
use oauthtest::exchange::{classify_response, Outcome, RefreshRequest};
use oauthtest::secret::{ClientSecret, RefreshToken};

/// A harness: one input, its properties asserted.
pub type Harness = fn(&[u8]);

/// The fuzz targets, by name: `fuzz/fuzz_targets/<name>.rs`, `fuzz/corpus/<name>/`,
/// `fuzz/regressions/<name>/`.
pub const TARGETS: &[(&str, Harness)] = &[
    ("envelope", envelope),
    ("token_response", token_response),
    ("scenario", scenario),
    ("import", import),
    ("serve_request", serve_request),
];

/// Replaces each two-byte marker by its value.
fn plant(data: &[u8], markers: &[(&[u8; 2], &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut i = 0;
    while i < data.len() {
        match markers.iter().find(|(m, _)| data[i..].starts_with(&m[..])) {
            Some((_, value)) => {
                out.extend_from_slice(value.as_bytes());
                i += 2;
            }
            None => {
                out.push(data[i]);
                i += 1;
            }
        }
    }
    out
}

/// Panics, naming `what`, if `shown` contains any of `secrets` (without printing them).
fn assert_hidden(shown: &str, secrets: &[&str], what: &str) {
    for (i, secret) in secrets.iter().enumerate() {
        assert!(
            !shown.contains(secret),
            "{what} shows planted secret #{i} ({} chars)",
            secret.len()
        );
    }
}

fn form_encoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

// ---------------------------------------------------------------------------------------------
// envelope: oauthtest::crypto::Keyring::decrypt / envelope_key_id
// ---------------------------------------------------------------------------------------------

/// The fuzz keyring's current key (bytes 0..32) and previous key (bytes 32..64).
const CURRENT_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const PREVIOUS_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// Every envelope that may ever decrypt under the fuzz keyring: (row, envelope, plaintext).
/// Sealed once, with Python's `cryptography` AES-GCM (an independent implementation of the
/// format in `src/crypto.rs`); the corpus holds them. The fuzzer cannot forge another.
pub const KNOWN_ENVELOPES: &[(i64, &str, &[u8])] = &[
    (
        7,
        "otv1.13cf5603e3040c5a.sRmH81CNh3Le4V3COfcEiYikAynxhp-HwKp_15sN9bm6QZePPFG8_78wV6MF49BvC8b3YsN7K9k9LhNW1Cf2jOaYmgX7MRHq3K33s52PoMRS8QPy_N7rdQFQUrLuKFzuek8YxFTQ",
        br#"{"refresh_token":"1//fuzz-seed-refresh","scopes":[],"token_type":"Bearer"}"#,
    ),
    (
        1,
        "otv1.13cf5603e3040c5a.YGaGb2HfP_VMGQBpc1c1IYXxLVxvQhucoOgUyg",
        b"",
    ),
    (
        200,
        "otv1.a3c8701db3608921.XKJYc15PLnUEJ3wXxU5hc6D_MFO33BTcPj9V3F4",
        b"x",
    ),
];

fn keyring() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| {
        let key = |b64| EncryptionKey::from_base64(b64).expect("fuzz key is valid");
        Keyring::new(key(CURRENT_KEY), vec![key(PREVIOUS_KEY)])
    })
}

/// `[0, row, envelope…]` decodes an arbitrary envelope for row `row`;
/// `[1, row, at, byte, plaintext…]` seals `plaintext` and checks the round trip and that the
/// envelope with one character changed at `at` (to one derived from `byte`), or cut at `at`,
/// is refused.
///
/// Properties: never panics; whatever decrypts is one of [`KNOWN_ENVELOPES`] for its own row
/// with its own plaintext; `decrypt` agrees with `envelope_key_id`; errors carry only a
/// validated key id (16 hex digits), never other input; a sealed envelope opens only on its row
/// and any one-character change or truncation of it is refused.
pub fn envelope(data: &[u8]) {
    let ring = keyring();
    match data {
        [0, row, rest @ ..] => decode_envelope(ring, i64::from(*row), rest),
        [1, row, at, byte, plaintext @ ..] => {
            round_trip_envelope(ring, i64::from(*row), *at, *byte, plaintext);
        }
        _ => {}
    }
}

fn decode_envelope(ring: &Keyring, row: i64, rest: &[u8]) {
    let text = String::from_utf8_lossy(rest);
    let named = Keyring::envelope_key_id(&text);
    match ring.decrypt(row, &text) {
        Ok(plaintext) => {
            let trimmed = text.trim();
            let known = KNOWN_ENVELOPES
                .iter()
                .find(|(r, e, _)| *r == row && *e == trimmed)
                .expect("an envelope that is not one we sealed for this row decrypted");
            assert_eq!(
                &plaintext[..],
                known.2,
                "a known envelope decrypted wrongly"
            );
            assert!(
                named.is_ok(),
                "decrypted an envelope envelope_key_id rejects"
            );
        }
        Err(CryptoError::Malformed(_)) => {}
        // A store-bound (otv2) envelope needs its store binding, which `decrypt` does not have.
        Err(CryptoError::NoStoreId) => assert!(
            text.trim().starts_with("otv2."),
            "NoStoreId for an envelope that is not store-bound"
        ),
        Err(CryptoError::UnknownKey { key_id, current }) => {
            assert_eq!(
                named.as_ref().ok().copied(),
                Some(key_id.as_str()),
                "UnknownKey names another id"
            );
            assert_eq!(current, ring.current().id());
            assert!(!ring.knows(&key_id), "UnknownKey for a configured key");
        }
        Err(CryptoError::AuthenticationFailed { key_id }) => {
            assert_eq!(
                named.as_ref().ok().copied(),
                Some(key_id.as_str()),
                "AuthFailed names another id"
            );
            assert!(
                ring.knows(&key_id),
                "AuthenticationFailed for an unknown key"
            );
        }
    }
    if let Ok(id) = named {
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "envelope_key_id returned something that is not a key id"
        );
    } else {
        assert!(
            matches!(ring.decrypt(row, &text), Err(CryptoError::Malformed(_))),
            "envelope_key_id calls it malformed but decrypt does not"
        );
    }
}

fn round_trip_envelope(ring: &Keyring, row: i64, at: u8, byte: u8, plaintext: &[u8]) {
    let sealed = ring.encrypt(row, plaintext);
    let opened = ring.decrypt(row, &sealed).expect("a fresh envelope opens");
    assert_eq!(&opened[..], plaintext, "round trip changed the plaintext");
    assert!(
        matches!(
            ring.decrypt(row + 1, &sealed),
            Err(CryptoError::AuthenticationFailed { .. })
        ),
        "an envelope opened on another row"
    );
    let at = usize::from(at) % sealed.len();
    let mut changed = sealed.clone().into_bytes();
    let replacement = byte % 128;
    changed[at] = if changed[at] == replacement {
        replacement ^ 1
    } else {
        replacement
    };
    let changed = String::from_utf8(changed).expect("ASCII stays UTF-8");
    assert!(
        ring.decrypt(row, &changed).is_err(),
        "an envelope with character {at} changed still opened"
    );
    assert!(
        ring.decrypt(row, &sealed[..at]).is_err(),
        "an envelope cut at {at} still opened"
    );
}

// ---------------------------------------------------------------------------------------------
// token_response: oauthtest::exchange::classify_response
// ---------------------------------------------------------------------------------------------

/// The secrets the fuzzed refresh "sent"; they must never come back out.
const SENT_REFRESH: &str = "1//fuzz-sent-refresh-4b7d";
const SENT_SECRET: &str = "GOCSPX-fuzz-sent-secret-e21a";
/// Tokens the fuzzed server "issues": shown only where the server itself put them in a field
/// the outcome reports (scope, token type, error text).
const ISSUED_ACCESS: &str = "ya29.fuzz-issued-access-77c0";
const ISSUED_ID: &str = "eyJfuzz.issued-id-token.5e1";

const STATUSES: &[u16] = &[
    200, 400, 401, 403, 408, 429, 500, 502, 503, 504, 302, 204, 201, 404,
];
const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json; charset=utf-8"),
    None,
    Some("application/json"),
    Some("text/html; charset=UTF-8"),
    Some("text/plain"),
    Some("application/problem+json"),
    Some("APPLICATION/JSON ; charset=utf-8"),
];
const RETRY_AFTERS: &[Option<&str>] = &[
    None,
    Some("0"),
    Some("120"),
    Some("Wed, 21 Oct 2015 07:28:00 GMT"),
    Some("soon"),
    Some("99999999999999999999999"),
];

/// `[status, content type, retry-after, body…]`: the status is `STATUSES[s]` for small `s`,
/// else any of 100..=599; the body's markers `@R` (the refresh token sent), `@E` (it
/// form-encoded), `@S` (the client secret sent), `@A` and `@I` (an access and an ID token) are
/// replaced.
///
/// Properties: never panics; neither secret sent (nor its encoded form) appears in the outcome's
/// `Display` or `Debug`; an issued token appears there only if the server also put it in a
/// field that is reported on purpose; only HTTP 200 refreshes, and 200 gives `refreshed` or
/// `protocol_error`; 5xx, 429 and 408 are retried unless the body says the grant or the client
/// is bad; `needs_reconnect` and `client_misconfigured` only for their OAuth error codes;
/// the same answer classifies the same way twice.
pub fn token_response(data: &[u8]) {
    let [s, c, r, body @ ..] = data else {
        return;
    };
    let status = match STATUSES.get(usize::from(*s)) {
        Some(status) => *status,
        None => 100 + u16::from(*s) * 7 % 500,
    };
    let mut headers = http::HeaderMap::new();
    if let Some(ct) = CONTENT_TYPES[usize::from(*c) % CONTENT_TYPES.len()] {
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(ct),
        );
    }
    if let Some(ra) = RETRY_AFTERS[usize::from(*r) % RETRY_AFTERS.len()] {
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static(ra),
        );
    }
    let encoded_refresh = form_encoded(SENT_REFRESH);
    let body = plant(
        body,
        &[
            (b"@R", SENT_REFRESH),
            (b"@E", &encoded_refresh),
            (b"@S", SENT_SECRET),
            (b"@A", ISSUED_ACCESS),
            (b"@I", ISSUED_ID),
        ],
    );
    let client_secret = ClientSecret::from(SENT_SECRET);
    let refresh_token = RefreshToken::from(SENT_REFRESH);
    let request = RefreshRequest {
        client_id: "123-fuzz.apps.googleusercontent.com",
        client_secret: Some(&client_secret),
        refresh_token: &refresh_token,
        scopes: &[],
    };
    let status_code = http::StatusCode::from_u16(status).expect("100..=599 is a status");
    let outcome = classify_response(&request, status_code, headers.clone(), body.clone());
    let shown = format!("{outcome}\n{outcome:?}");

    assert_hidden(
        &shown,
        &[SENT_REFRESH, &encoded_refresh, SENT_SECRET],
        "the outcome",
    );
    // Text the outcome reports on purpose, as the server chose it.
    let reported = match &outcome {
        Outcome::Refreshed(grant) => format!("{} {}", grant.scopes.join(" "), grant.token_type),
        Outcome::NeedsReconnect {
            error,
            description,
            subtype,
        } => format!("{error} {description:?} {subtype:?}"),
        Outcome::ClientMisconfigured { error, description }
        | Outcome::RequestRejected { error, description } => format!("{error} {description:?}"),
        Outcome::RetryLater { reason, .. } => reason.clone(),
        Outcome::ProtocolError { .. } => String::new(),
    };
    for issued in [ISSUED_ACCESS, ISSUED_ID] {
        if !reported.contains(issued) {
            assert_hidden(&shown, &[issued], "the outcome (an issued token)");
        }
    }

    match &outcome {
        Outcome::Refreshed(grant) => {
            assert_eq!(status, 200, "refreshed on a status other than 200");
            assert!(
                !grant.access_token.expose_secret().trim().is_empty(),
                "refreshed with an empty access token"
            );
        }
        Outcome::NeedsReconnect { error, .. } => assert!(
            ["invalid_grant", "invalid_rapt"].contains(&error.as_str()),
            "needs_reconnect for another error code"
        ),
        Outcome::ClientMisconfigured { error, .. } => assert!(
            ["invalid_client", "deleted_client", "unauthorized_client"].contains(&error.as_str()),
            "client_misconfigured for another error code"
        ),
        Outcome::RetryLater {
            status: reported_status,
            ..
        } => assert_eq!(
            *reported_status,
            Some(status),
            "retry_later lost the status"
        ),
        Outcome::RequestRejected { .. } | Outcome::ProtocolError { .. } => {}
    }
    if status == 200 {
        assert!(
            matches!(
                outcome,
                Outcome::Refreshed(_) | Outcome::ProtocolError { .. }
            ),
            "HTTP 200 gave {}",
            outcome.code()
        );
    }
    if status >= 500 || status == 429 || status == 408 {
        assert!(
            matches!(
                outcome,
                Outcome::RetryLater { .. }
                    | Outcome::NeedsReconnect { .. }
                    | Outcome::ClientMisconfigured { .. }
            ),
            "HTTP {status} gave {}",
            outcome.code()
        );
    }
    let again = classify_response(&request, status_code, headers, body);
    assert_eq!(
        format!("{again:?}"),
        format!("{outcome:?}"),
        "the same answer classified differently"
    );
}

// ---------------------------------------------------------------------------------------------
// scenario: oauthtest::scenarios::parse
// ---------------------------------------------------------------------------------------------

/// Scenario files (TOML; the input as UTF-8, invalid sequences replaced).
///
/// Properties: never panics; an error names the file, and any line number it gives is a line
/// of the input; a scenario that parses has a name, a known outcome and steps that all turn
/// into mock steps.
pub fn scenario(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match oauthtest::scenarios::parse("fuzz.toml", &text) {
        Ok(parsed) => {
            assert!(!parsed.name.is_empty(), "a scenario without a name");
            for step in parsed.token.iter().chain(parsed.api.iter()) {
                assert!(
                    step.to_mock_step().is_ok(),
                    "an accepted step does not build"
                );
            }
        }
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.starts_with("fuzz.toml: "),
                "the error does not name the file"
            );
            let lines = text.split('\n').count();
            if let Some(rest) = message.strip_prefix("fuzz.toml: line ") {
                let number: usize = rest
                    .split(':')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("`line N:` has a number");
                assert!(
                    (1..=lines).contains(&number),
                    "the error names line {number} of {lines}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// import: oauthtest::import_format::parse
// ---------------------------------------------------------------------------------------------

const IMPORT_REFRESH: &str = "1//fuzz-import-refresh-0a9f";
const IMPORT_ACCESS: &str = "ya29.fuzz-import-access-3c2b";
const IMPORT_SECRET: &str = "GOCSPX-fuzz-import-secret-8d1e";
const IMPORT_ID: &str = "eyJfuzz.import-id-token.b7";
const DEFAULT_SECRET: &str = "GOCSPX-fuzz-default-secret-44f0";

/// Credential files (JSON) with the markers `@R`, `@A`, `@S`, `@I` replaced by a refresh
/// token, an access token, a client secret and an ID token.
///
/// Properties: never panics; an error quotes no planted secret (nor the default client
/// secret); a parsed credential has a refresh token, its `Debug` shows no secret unless the
/// file also put that value in a non-secret field (client id, scopes, token type), and an
/// `authorized_user` file yields no access token.
pub fn import(data: &[u8]) {
    let bytes = plant(
        data,
        &[
            (b"@R", IMPORT_REFRESH),
            (b"@A", IMPORT_ACCESS),
            (b"@S", IMPORT_SECRET),
            (b"@I", IMPORT_ID),
        ],
    );
    let defaults = oauthtest::import_format::ClientDefaults {
        client_id: Some("fuzz-default.apps.googleusercontent.com".to_owned()),
        client_secret: Some(ClientSecret::from(DEFAULT_SECRET)),
    };
    let now = chrono::DateTime::from_timestamp(1_760_000_000, 0).expect("fixed time");
    let secrets = [
        IMPORT_REFRESH,
        IMPORT_ACCESS,
        IMPORT_SECRET,
        IMPORT_ID,
        DEFAULT_SECRET,
    ];
    match oauthtest::import_format::parse(&bytes, &defaults, now) {
        Err(message) => assert_hidden(&message, &secrets, "the import error"),
        Ok((credential, shape)) => {
            assert!(
                credential.refresh_token.is_some(),
                "an import without a refresh token"
            );
            if shape == oauthtest::import_format::Shape::AuthorizedUser {
                assert!(
                    credential.access_token.is_none(),
                    "an authorized_user file gave an access token"
                );
            }
            let public = format!(
                "{:?} {:?} {:?}",
                credential.client_id, credential.scopes, credential.token_type
            );
            let shown = format!("{credential:?}");
            for secret in secrets {
                if !public.contains(secret) {
                    assert_hidden(&shown, &[secret], "the credential's Debug");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// serve_request: raw bytes into serve's HTTP front end (hyper, admin API, the mock's logic)
// ---------------------------------------------------------------------------------------------

/// Raw bytes from a client's connection to `serve`, with the markers `@R` (a live refresh token
/// of the default client), `@A` (a live access token), `@S` (the client secret) and `@B` (the
/// client's Basic credentials, base64) replaced. A fresh mock per input; the clock is tokio's
/// paused clock, so scripted delays cost nothing.
///
/// Properties: never panics (hyper, the handler, the admin API, the mock); always finishes;
/// answers are HTTP/1.1 responses (HTTP/1.0 to a 1.0 request); when the input does not touch the admin API (whose answers
/// hold the mock's tokens on purpose), no answer contains the refresh token, the client secret
/// or the Basic credentials, outside the request values Google quotes back (an unsupported
/// `grant_type`, refused scopes); the mock's journal never holds a raw token or the secret (outside
/// the method, client id and grant type it records as presented).
pub fn serve_request(data: &[u8]) {
    use base64::Engine as _;
    use mock_server::{MockConfig, MockGoogle, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mock = MockGoogle::detached(MockConfig::default(), "http://localhost")
        .expect("the default mock config is valid");
    let scopes = ["https://www.googleapis.com/auth/gmail.readonly".to_owned()];
    let refresh = mock.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes);
    let access = mock.issue_access_token(
        DEFAULT_CLIENT_ID,
        &scopes,
        std::time::Duration::from_secs(3600),
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        form_encoded(DEFAULT_CLIENT_ID),
        form_encoded(DEFAULT_CLIENT_SECRET)
    ));
    let input = plant(
        data,
        &[
            (b"@R", &refresh),
            (b"@A", &access),
            (b"@S", DEFAULT_CLIENT_SECRET),
            (b"@B", &basic),
        ],
    );
    let admin = oauthtest::serve::admin::Admin::new(shipped_scenarios().to_vec());
    let app = Arc::new(oauthtest::serve::App::new(
        mock,
        admin,
        oauthtest::serve::Limits::default(),
    ));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime builds");
    let output = runtime.block_on(async {
        let (mut client, server) = tokio::io::duplex(input.len() + 1);
        client
            .write_all(&input)
            .await
            .expect("the pipe takes the input");
        client.shutdown().await.expect("the pipe closes");
        let serving = oauthtest::serve::serve_connection(Arc::clone(&app), server);
        let mut output = Vec::new();
        let (_, read) = tokio::join!(serving, client.read_to_end(&mut output));
        read.expect("the answer can be read");
        output
    });

    if !output.is_empty() {
        assert!(
            (output.starts_with(b"HTTP/1.1 ") || output.starts_with(b"HTTP/1.0 "))
                && output.len() >= 12
                && output[9..12].iter().all(u8::is_ascii_digit),
            "serve wrote something that is not an HTTP/1.x response"
        );
    }
    let answer = without_echoes(&String::from_utf8_lossy(&output));
    let touches_admin = input.windows(7).any(|w| w == b"__admin");
    if !touches_admin {
        assert_hidden(
            &answer,
            &[&refresh, DEFAULT_CLIENT_SECRET, &basic],
            "serve's answer",
        );
    }
    // The method, client id and grant type are recorded as presented, on purpose: a client that
    // sends its secret inside one of those fields sees it there.
    let journal: Vec<_> = app
        .mock
        .journal()
        .into_iter()
        .map(|mut entry| {
            entry.client_id = None;
            entry.grant_type = None;
            entry.method.clear();
            entry
        })
        .collect();
    let journal = format!("{journal:?}");
    assert_hidden(
        &journal,
        &[&refresh, &access, DEFAULT_CLIENT_SECRET],
        "the mock's journal",
    );
}

/// `answer` without the request values Google quotes back on purpose: the `grant_type` it does
/// not support and the scopes it refuses (`wire::invalid_grant_type`, `wire::invalid_scopes`).
fn without_echoes(answer: &str) -> String {
    const ECHOES: &[&str] = &[
        "\"error_description\":\"Invalid grant_type: ",
        "\"error_description\":\"Some requested scopes were invalid. ",
    ];
    let mut out = answer.to_owned();
    for echo in ECHOES {
        while let Some(start) = out.find(echo) {
            let value = start + echo.len();
            let bytes = out.as_bytes();
            let mut end = value;
            while end < bytes.len() && !(bytes[end] == b'"' && bytes[end - 1] != b'\\') {
                end += 1;
            }
            out.replace_range(start..end, "\"error_description\":[echo]");
        }
    }
    out
}

/// The shipped scenarios, parsed once.
fn shipped_scenarios() -> &'static [oauthtest::scenarios::Scenario] {
    static SCENARIOS: OnceLock<Vec<oauthtest::scenarios::Scenario>> = OnceLock::new();
    SCENARIOS
        .get_or_init(|| oauthtest::scenarios::load_all(None).expect("the shipped scenarios parse"))
}
