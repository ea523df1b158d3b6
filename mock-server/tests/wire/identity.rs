//! Google as an identity provider: signed id_tokens and their keys, userinfo, tokeninfo of
//! id_tokens, sign-in with the authorization_code grant, service accounts.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use mock_server::{
    ClientRegistration, Consent, MockConfig, MockGoogle, ServiceAccountSpec, DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::helpers::*;

const REDIRECT: &str = "http://127.0.0.1:8765/callback";

fn b64json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("b64url")).expect("json")
}

/// Verifies `jwt` against the JWKS the mock publishes; returns its claims.
async fn verify_with_jwks(google: &MockGoogle, jwt: &str) -> Option<Value> {
    let jwks = get(&format!("{}/oauth2/v3/certs", google.uri()))
        .await
        .json();
    let parts: Vec<&str> = jwt.split('.').collect();
    let header = b64json(parts[0]);
    let key = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header["kid"])?;
    let number = |field: &str| {
        BigUint::from_bytes_be(
            &URL_SAFE_NO_PAD
                .decode(key[field].as_str().expect("n/e"))
                .expect("b64url"),
        )
    };
    let public = RsaPublicKey::new(number("n"), number("e")).expect("public key");
    let signature_bytes = URL_SAFE_NO_PAD.decode(parts[2]).ok()?;
    let signature = Signature::try_from(signature_bytes.as_slice()).ok()?;
    VerifyingKey::<Sha256>::new(public)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .ok()?;
    Some(b64json(parts[1]))
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// Runs the sign-in and returns the redirect's status, `Location` and body.
async fn sign_in(google: &MockGoogle, params: &[(&str, &str)]) -> (u16, String, String) {
    let response = no_redirects()
        .get(format!("{}/o/oauth2/v2/auth", google.uri()))
        .query(params)
        .send()
        .await
        .expect("auth request");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, location, response.text().await.unwrap_or_default())
}

fn query_of(location: &str) -> Vec<(String, String)> {
    let query = location.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Signs in with `extra` parameters and returns the code.
async fn code_for(google: &MockGoogle, scope: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("client_id", DEFAULT_CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", scope),
    ];
    params.extend_from_slice(extra);
    let (status, location, body) = sign_in(google, &params).await;
    assert_eq!(status, 302, "{body}");
    value(&query_of(&location), "code")
        .expect("a code")
        .to_string()
}

async fn exchange(google: &MockGoogle, code: &str, extra: &[(&str, &str)]) -> Answer {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
    ];
    form.extend_from_slice(extra);
    post_form(&google.token_url(), &form).await
}

#[tokio::test]
async fn refresh_id_tokens_verify_against_the_published_keys_with_googles_claims() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&["openid", "email"]));
    let json = refresh(&google, &rt).await.json();
    let id_token = json["id_token"].as_str().expect("id_token");
    let claims = verify_with_jwks(&google, id_token).await.expect("verifies");
    assert_eq!(claims["iss"], "https://accounts.google.com");
    assert_eq!(claims["azp"], DEFAULT_CLIENT_ID);
    assert_eq!(claims["email_verified"], true);
    let at = json["access_token"].as_str().expect("access_token");
    let half = &Sha256::digest(at.as_bytes())[..16];
    assert_eq!(claims["at_hash"], URL_SAFE_NO_PAD.encode(half));

    let pems = get(&format!("{}/oauth2/v1/certs", google.uri())).await;
    assert_eq!(pems.status, 200);
    let kid = b64json(id_token.split('.').next().expect("header"))["kid"].clone();
    let pem = pems.json()[kid.as_str().expect("kid")].clone();
    assert!(pem
        .as_str()
        .expect("pem")
        .starts_with("-----BEGIN CERTIFICATE-----"));

    let (input, _) = id_token.rsplit_once('.').expect("signed");
    let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode([7u8; 256]));
    assert!(verify_with_jwks(&google, &forged).await.is_none());
}

#[tokio::test]
async fn a_rotated_key_keeps_verifying_until_rotated_out_and_the_issuer_is_configurable() {
    let google = google_with(MockConfig {
        issuer: "https://issuer.example".to_string(),
        ..MockConfig::default()
    })
    .await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&["openid"]));
    let first = refresh(&google, &rt).await.json()["id_token"]
        .as_str()
        .expect("id_token")
        .to_string();
    let doc = get(&google.discovery_url()).await.json();
    assert_eq!(doc["issuer"], "https://issuer.example");
    assert_eq!(
        verify_with_jwks(&google, &first).await.expect("verifies")["iss"],
        "https://issuer.example"
    );
    let kids = google.rotate_signing_key().expect("rotates");
    assert_eq!(kids.len(), 2);
    assert!(verify_with_jwks(&google, &first).await.is_some());
    google.rotate_signing_key().expect("rotates");
    assert!(verify_with_jwks(&google, &first).await.is_none());
}

#[tokio::test]
async fn tokeninfo_reads_bearer_headers_and_id_tokens_and_userinfo_follows_the_scopes() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&["openid", "email"]));
    let json = refresh(&google, &rt).await.json();
    let at = json["access_token"].as_str().expect("at").to_string();
    let id_token = json["id_token"].as_str().expect("id").to_string();

    let by_header = read(
        http()
            .post(google.tokeninfo_url())
            .bearer_auth(&at)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(by_header.status, 200, "{}", by_header.body);
    assert_eq!(by_header.json()["aud"], DEFAULT_CLIENT_ID);

    let info = get(&format!("{}?id_token={id_token}", google.tokeninfo_url())).await;
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["email_verified"], "true");
    assert_eq!(info.json()["alg"], "RS256");
    let bad = get(&format!("{}?id_token={id_token}x", google.tokeninfo_url())).await;
    bad.assert_exact(400, r#"{"error_description":"Invalid Value"}"#);
    google.advance_clock(Duration::from_secs(3601));
    let expired = get(&format!("{}?id_token={id_token}", google.tokeninfo_url())).await;
    assert_eq!(expired.status, 400);

    let narrow = google.issue_access_token(
        DEFAULT_CLIENT_ID,
        &scopes(&["openid"]),
        Duration::from_secs(60),
    );
    let wide = google.issue_access_token(
        DEFAULT_CLIENT_ID,
        &scopes(&["openid", "email"]),
        Duration::from_secs(60),
    );
    for path in ["/v1/userinfo", "/oauth2/v3/userinfo"] {
        let url = format!("{}{path}", google.uri());
        let answer = read(
            http()
                .get(&url)
                .bearer_auth(&wide)
                .send()
                .await
                .expect("sent"),
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json()["email"], "test-user@example.com");
        assert_eq!(answer.json()["sub"], google.config().subject);
        let answer = read(
            http()
                .get(&url)
                .bearer_auth(&narrow)
                .send()
                .await
                .expect("sent"),
        )
        .await;
        assert!(answer.json().get("email").is_none(), "{}", answer.body);
        let answer = read(
            http()
                .get(&url)
                .bearer_auth("ya29.nope")
                .send()
                .await
                .expect("sent"),
        )
        .await;
        answer.assert_exact(
            401,
            r#"{"error":"invalid_request","error_description":"Invalid Credentials"}"#,
        );
    }
}

#[tokio::test]
async fn sign_in_redirects_with_a_code_that_is_exchanged_once() {
    let google = google().await;
    let (status, location, _) = sign_in(
        &google,
        &[
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid email"),
            ("state", "xyz"),
            ("nonce", "n-0S6"),
            ("access_type", "offline"),
        ],
    )
    .await;
    assert_eq!(status, 302);
    assert!(location.starts_with(REDIRECT), "{location}");
    let query = query_of(&location);
    assert_eq!(value(&query, "state"), Some("xyz"));
    let code = value(&query, "code").expect("code").to_string();
    assert!(code.starts_with("4/0A"), "{code}");
    assert_eq!(
        value(&query, "scope"),
        Some("openid https://www.googleapis.com/auth/userinfo.email")
    );

    let first = exchange(&google, &code, &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    first.assert_token_headers();
    let json = first.json();
    assert!(json["refresh_token"]
        .as_str()
        .expect("offline")
        .starts_with("1//"));
    let claims = verify_with_jwks(&google, json["id_token"].as_str().expect("id"))
        .await
        .expect("verifies");
    assert_eq!(claims["nonce"], "n-0S6");
    assert_eq!(claims["email"], "test-user@example.com");
    assert_eq!(
        refresh(&google, json["refresh_token"].as_str().expect("rt"))
            .await
            .status,
        200
    );

    exchange(&google, &code, &[]).await.assert_exact(
        400,
        r#"{"error":"invalid_grant","error_description":"Bad Request"}"#,
    );
    exchange(&google, "4/0Anever", &[]).await.assert_exact(
        400,
        r#"{"error":"invalid_grant","error_description":"Malformed auth code."}"#,
    );
}

#[tokio::test]
async fn a_refresh_token_comes_only_offline_and_on_repeat_consent_only_with_prompt_consent() {
    let google = google().await;
    let online = code_for(&google, "openid", &[]).await;
    assert!(exchange(&google, &online, &[])
        .await
        .json()
        .get("refresh_token")
        .is_none());
    let offline = code_for(&google, "openid", &[("access_type", "offline")]).await;
    assert!(exchange(&google, &offline, &[]).await.json()["refresh_token"].is_string());
    let again = code_for(&google, "openid", &[("access_type", "offline")]).await;
    assert!(exchange(&google, &again, &[])
        .await
        .json()
        .get("refresh_token")
        .is_none());
    let forced = code_for(
        &google,
        "openid",
        &[("access_type", "offline"), ("prompt", "consent")],
    )
    .await;
    assert!(exchange(&google, &forced, &[]).await.json()["refresh_token"].is_string());
}

#[tokio::test]
async fn pkce_s256_and_plain_need_their_verifier() {
    let google = google().await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let s256 = [
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    let code = code_for(&google, "openid", &s256).await;
    exchange(&google, &code, &[]).await.assert_exact(
        400,
        r#"{"error":"invalid_grant","error_description":"Missing code verifier."}"#,
    );
    exchange(&google, &code, &[("code_verifier", "wrong")])
        .await
        .assert_exact(
            400,
            r#"{"error":"invalid_grant","error_description":"Invalid code verifier."}"#,
        );
    assert_eq!(
        exchange(&google, &code, &[("code_verifier", verifier)])
            .await
            .status,
        200
    );
    let plain = code_for(
        &google,
        "openid",
        &[(
            "code_challenge",
            "plain-verifier-0123456789-0123456789-0123456",
        )],
    )
    .await;
    assert_eq!(
        exchange(
            &google,
            &plain,
            &[(
                "code_verifier",
                "plain-verifier-0123456789-0123456789-0123456"
            )]
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn sign_in_checks_the_client_and_redirect_uri_before_redirecting() {
    let google = google().await;
    google
        .register_client(
            ClientRegistration::new("web-client", "s")
                .with_redirect_uris(vec!["https://app.example/cb".to_string()]),
        )
        .expect("registers");
    let base = |client: &'static str, uri: &'static str| {
        vec![
            ("client_id", client),
            ("redirect_uri", uri),
            ("response_type", "code"),
            ("scope", "openid"),
        ]
    };
    let (status, _, body) = sign_in(&google, &base("web-client", REDIRECT)).await;
    assert_eq!(status, 400);
    assert!(body.contains("redirect_uri_mismatch"), "{body}");
    let (status, location, _) =
        sign_in(&google, &base("web-client", "https://app.example/cb")).await;
    assert_eq!(status, 302);
    assert!(
        location.starts_with("https://app.example/cb?"),
        "{location}"
    );
    let (status, _, body) = sign_in(&google, &base("nobody", REDIRECT)).await;
    assert_eq!(status, 401);
    assert!(body.contains("invalid_client"), "{body}");
    let mut no_scope = base("web-client", "https://app.example/cb");
    no_scope.pop();
    let (status, _, body) = sign_in(&google, &no_scope).await;
    assert_eq!(status, 400);
    assert!(body.contains("Missing required parameter: scope"), "{body}");

    // A code from a redirect to one URI cannot be exchanged naming another.
    let code = code_for(&google, "openid", &[]).await;
    post_form(
        &google.token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:1/other"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
    .await
    .assert_exact(
        400,
        r#"{"error":"redirect_uri_mismatch","error_description":"Bad Request"}"#,
    );
}

#[tokio::test]
async fn consent_chooses_the_user_denies_or_grants_fewer_scopes() {
    let google = google().await;
    google.set_consent(Consent {
        withhold_scopes: vec![GMAIL.to_string()],
        ..Consent::default()
    });
    let code = code_for(
        &google,
        &format!("openid {GMAIL}"),
        &[("login_hint", "alice@example.com")],
    )
    .await;
    let json = exchange(&google, &code, &[]).await.json();
    assert_eq!(json["scope"], "openid");
    let claims = verify_with_jwks(&google, json["id_token"].as_str().expect("id"))
        .await
        .expect("ok");
    assert_eq!(claims["email"], "alice@example.com");
    assert_ne!(claims["sub"], google.config().subject);

    // include_granted_scopes adds what was granted before.
    google.set_consent(Consent {
        account: Some("alice@example.com".into()),
        ..Consent::default()
    });
    let code = code_for(&google, GMAIL, &[("include_granted_scopes", "true")]).await;
    assert_eq!(
        exchange(&google, &code, &[]).await.json()["scope"],
        format!("{GMAIL} openid")
    );

    google.set_consent(Consent {
        deny: true,
        ..Consent::default()
    });
    let (status, location, _) = sign_in(
        &google,
        &[
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s1"),
        ],
    )
    .await;
    assert_eq!(status, 302);
    let query = query_of(&location);
    assert_eq!(value(&query, "error"), Some("access_denied"));
    assert_eq!(value(&query, "state"), Some("s1"));
}

/// A signed service-account assertion, as Google's libraries build it.
fn assertion(key_file: &Value, claims: Value) -> String {
    let private = RsaPrivateKey::from_pkcs8_pem(key_file["private_key"].as_str().expect("pem"))
        .expect("key parses");
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key_file["private_key_id"]});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = SigningKey::<Sha256>::new(private)
        .sign(input.as_bytes())
        .to_bytes();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

async fn jwt_grant(google: &MockGoogle, assertion: &str) -> Answer {
    post_form(
        &format!("{}/oauth2/v4/token", google.uri()),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion),
        ],
    )
    .await
}

#[tokio::test]
async fn service_account_assertions_are_checked_as_google_checks_them() {
    let google = google().await;
    let key = google
        .create_service_account(&ServiceAccountSpec::default())
        .expect("created");
    assert!(!format!("{key:?}").contains("PRIVATE KEY"));
    let file: Value = serde_json::from_str(&key.json).expect("json");
    assert_eq!(file["type"], "service_account");
    assert_eq!(file["token_uri"], google.token_url());
    let email = file["client_email"].as_str().expect("email").to_string();
    let now = google.now_unix();
    let good = json!({"iss": email, "aud": file["token_uri"], "scope": GMAIL, "iat": now, "exp": now + 3600});

    let ok = jwt_grant(&google, &assertion(&file, good.clone())).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    ok.assert_token_headers();
    let at = ok.json()["access_token"].as_str().expect("at").to_string();
    assert!(ok.json().get("refresh_token").is_none());
    let info = get(&format!("{}?access_token={at}", google.tokeninfo_url()))
        .await
        .json();
    assert_eq!(info["email"], email.as_str());

    let other = google
        .create_service_account(&ServiceAccountSpec {
            name: "other".into(),
            ..ServiceAccountSpec::default()
        })
        .expect("created");
    let other: Value = serde_json::from_str(&other.json).expect("json");
    let desc = |e: &str, d: &str| format!(r#"{{"error":"{e}","error_description":"{d}"}}"#);
    jwt_grant(&google, &assertion(&other, good.clone()))
        .await
        .assert_exact(400, &desc("invalid_grant", "Invalid JWT Signature."));
    let mut long = good.clone();
    long["exp"] = json!(now + 7200);
    let short_lived = desc("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.");
    jwt_grant(&google, &assertion(&file, long))
        .await
        .assert_exact(400, &short_lived);
    let mut no_scope = good.clone();
    no_scope.as_object_mut().expect("object").remove("scope");
    jwt_grant(&google, &assertion(&file, no_scope))
        .await
        .assert_exact(
            400,
            &desc(
                "invalid_scope",
                "Invalid OAuth scope or ID token audience provided.",
            ),
        );
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("https://elsewhere.example/token");
    assert_eq!(
        jwt_grant(&google, &assertion(&file, wrong_aud))
            .await
            .json()["error"],
        "invalid_grant"
    );
    let mut delegated = good.clone();
    delegated["sub"] = json!("user@example.com");
    jwt_grant(&google, &assertion(&file, delegated)).await.assert_exact(
        401,
        &desc("unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."),
    );

    google.advance_clock(Duration::from_secs(2 * 3600));
    jwt_grant(&google, &assertion(&file, good.clone()))
        .await
        .assert_exact(400, &short_lived);

    assert!(google.delete_service_account(&email));
    jwt_grant(&google, &assertion(&file, good))
        .await
        .assert_exact(
            400,
            &desc("invalid_grant", "Invalid grant: account not found"),
        );
}

#[tokio::test]
async fn domain_wide_delegation_issues_a_token_for_the_impersonated_user() {
    let google = google().await;
    let key = google
        .create_service_account(&ServiceAccountSpec {
            domain_wide_delegation: true,
            ..ServiceAccountSpec::default()
        })
        .expect("created");
    let file: Value = serde_json::from_str(&key.json).expect("json");
    let now = google.now_unix();
    let claims = json!({"iss": key.email, "sub": "user@example.com", "aud": "https://oauth2.googleapis.com/token", "scope": GMAIL, "iat": now, "exp": now + 3600});
    let ok = jwt_grant(&google, &assertion(&file, claims)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let at = ok.json()["access_token"].as_str().expect("at").to_string();
    let info = get(&format!("{}?access_token={at}", google.tokeninfo_url()))
        .await
        .json();
    assert_eq!(info["email"], "user@example.com");
}

#[tokio::test]
async fn legacy_token_paths_answer_like_the_token_endpoint() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    for path in ["/o/oauth2/token", "/oauth2/v4/token"] {
        let answer = post_form(
            &format!("{}{path}", google.uri()),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", DEFAULT_CLIENT_ID),
                ("client_secret", DEFAULT_CLIENT_SECRET),
            ],
        )
        .await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    }
    assert_eq!(google.token_request_count(), 2);
}

#[tokio::test]
async fn the_device_flow_issues_a_code_whose_first_poll_gets_tokens_once() {
    let google = google().await;
    let url = format!("{}/device/code", google.uri());
    let issued = post_form(
        &url,
        &[("client_id", DEFAULT_CLIENT_ID), ("scope", "openid email")],
    )
    .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let device_code = issued.json()["device_code"]
        .as_str()
        .expect("device_code")
        .to_string();
    assert_eq!(issued.json()["interval"], 5);
    let poll = |code: String| {
        let google = &google;
        async move {
            post_form(
                &google.token_url(),
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", &code),
                    ("client_id", DEFAULT_CLIENT_ID),
                    ("client_secret", DEFAULT_CLIENT_SECRET),
                ],
            )
            .await
        }
    };
    let tokens = poll(device_code.clone()).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert!(tokens.json()["refresh_token"].is_string());
    verify_with_jwks(&google, tokens.json()["id_token"].as_str().expect("id"))
        .await
        .expect("verifies");
    poll(device_code).await.assert_exact(
        400,
        r#"{"error":"invalid_grant","error_description":"Bad Request"}"#,
    );

    google.set_consent(Consent {
        deny: true,
        ..Consent::default()
    });
    let refused = post_form(
        &url,
        &[("client_id", DEFAULT_CLIENT_ID), ("scope", "openid")],
    )
    .await;
    let code = refused.json()["device_code"]
        .as_str()
        .expect("code")
        .to_string();
    poll(code).await.assert_exact(
        403,
        r#"{"error":"access_denied","error_description":"Forbidden"}"#,
    );
    let unknown = post_form(&url, &[("client_id", "nobody"), ("scope", "openid")]).await;
    assert_eq!(unknown.status, 401);
}

#[tokio::test]
async fn a_service_account_assertion_with_target_audience_gets_an_id_token_for_it() {
    let google = google().await;
    let key = google
        .create_service_account(&ServiceAccountSpec::default())
        .expect("created");
    let file: Value = serde_json::from_str(&key.json).expect("json");
    let now = google.now_unix();
    let claims = json!({"iss": key.email, "aud": "https://oauth2.googleapis.com/token",
        "target_audience": "https://service.example", "iat": now, "exp": now + 3600});
    let answer = jwt_grant(&google, &assertion(&file, claims)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.json().get("access_token").is_none(),
        "{}",
        answer.body
    );
    let id_token = answer.json()["id_token"]
        .as_str()
        .expect("id_token")
        .to_string();
    let verified = verify_with_jwks(&google, &id_token)
        .await
        .expect("verifies");
    assert_eq!(verified["aud"], "https://service.example");
    assert_eq!(verified["email"], key.email.as_str());
}
