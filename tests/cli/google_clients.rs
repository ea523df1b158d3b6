//! `serve` as Google's identity provider, checked with Google's own client libraries: Python's
//! google-auth and google-auth-oauthlib, Node's google-auth-library (scripts in
//! `tests/google_clients/`); and the flags and admin calls behind it.
//!
//! Under CI (`CI` set) a missing library fails the test; elsewhere it is skipped with a
//! `SKIPPED:` line. `.ci/run` installs them.

use crate::support::serve::{admin_get, admin_post, http, Serve};
use crate::support::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/google_clients")
        .join(name)
}

/// Whether the dependency is there; under CI its absence fails the test.
fn available(ok: bool, what: &str, install: &str) -> bool {
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} must run in CI, but it is not installed ({install})"
        );
        eprintln!("SKIPPED: {what}: not installed ({install})");
    }
    ok
}

fn python_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import google.auth, google_auth_oauthlib, requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    available(
        ok,
        "the google-auth / google-auth-oauthlib checks",
        "python3 -m pip install google-auth google-auth-oauthlib requests",
    )
}

fn node_ready() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let library = script("node_modules/google-auth-library/package.json").is_file();
    available(
        node && library,
        "the google-auth-library (Node) checks",
        "npm ci --prefix tests/google_clients",
    )
}

/// Runs one checker script against `base` and asserts every named check passed.
pub(crate) fn run_checks(
    program: &str,
    file: &str,
    base: &str,
    env: &[(&str, &str)],
    checks: &[&str],
) {
    let out = Command::new(program)
        .arg(script(file))
        .arg(base)
        .envs(env.iter().copied())
        .current_dir(script(""))
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{file} failed ({:?})\n{stdout}\n{stderr}",
        out.status.code()
    );
    for check in checks {
        assert!(
            stdout.contains(&format!("PASS {check}\n")),
            "{check} did not pass\n{stdout}\n{stderr}"
        );
    }
}

const PYTHON_CHECKS: &[&str] = &[
    "check_id_token_verifies_with_verify_oauth2_token",
    "check_userinfo_and_tokeninfo_read_as_the_library_reads_them",
    "check_sign_in_with_pkce_through_flow_fetch_token",
    "check_service_account_key_file_gets_a_token",
    "check_service_account_errors_raise_refresh_error",
    "check_domain_wide_delegation_impersonates_the_user",
];

const NODE_CHECKS: &[&str] = &[
    "check_id_token_verifies_with_verifyIdToken",
    "check_sign_in_with_pkce_through_getToken",
    "check_getTokenInfo_reads_the_bearer_token",
];

#[test]
fn python_google_auth_verifies_id_tokens_signs_in_and_uses_service_accounts_against_serve() {
    if !python_ready() {
        return;
    }
    let serve = Serve::start(&[]);
    run_checks(
        "python3",
        "python_check.py",
        &serve.url(""),
        &[],
        PYTHON_CHECKS,
    );
    let run = serve.stop("TERM");
    run.assert_code(0);
    assert!(!run.stderr.contains("PRIVATE KEY"), "{run}");
}

#[test]
fn node_google_auth_library_verifies_id_tokens_and_signs_in_against_serve() {
    if !node_ready() {
        return;
    }
    let serve = Serve::start(&[]);
    run_checks("node", "node_check.js", &serve.url(""), &[], NODE_CHECKS);
    serve.stop("TERM").assert_code(0);
}

#[tokio::test]
async fn issuer_flag_sets_the_discovery_issuer_and_a_bad_issuer_is_refused() {
    let serve = Serve::start(&["--issuer", "https://issuer.staging.example"]);
    let doc: Value = http()
        .get(serve.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["issuer"], "https://issuer.staging.example");
    assert_eq!(doc["jwks_uri"], serve.url("/oauth2/v3/certs"));
    serve.stop("TERM").assert_code(0);

    let dir = tempfile::tempdir().expect("tempdir");
    let run = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "serve", "--issuer", "has space"],
        None,
    );
    run.assert_code(2).assert_stderr_has("--issuer");
}

#[tokio::test]
async fn signing_key_flag_loads_a_pem_and_refuses_a_file_that_is_not_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.pem");
    std::fs::write(
        &bad,
        // Not a key, though shaped like one (built here so no scanner mistakes it for one).
        format!(
            "-----BEGIN {0}-----\nc2VjcmV0\n-----END {0}-----\n",
            "PRIVATE KEY"
        ),
    )
    .expect("write");
    let refused = run(
        oauthtest_cmd(dir.path()),
        &[
            "--mode",
            "serve",
            "--signing-key",
            bad.to_str().expect("utf-8"),
        ],
        None,
    );
    refused.assert_code(2).assert_stderr_has("--signing-key");
    assert!(!refused.stderr.contains("c2VjcmV0"), "{refused}");
    let missing = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "serve", "--signing-key", "/nonexistent/key.pem"],
        None,
    );
    missing
        .assert_code(2)
        .assert_stderr_has("/nonexistent/key.pem");

    // A key file made by a service account's key file (a real RSA PEM) signs across restarts.
    let first = Serve::start(&[]);
    let (_, file) = admin_post(&first, "service-accounts", json!({})).await;
    first.stop("TERM").assert_code(0);
    let pem = dir.path().join("signing.pem");
    std::fs::write(&pem, file["private_key"].as_str().expect("pem")).expect("write");
    let pem = pem.to_str().expect("utf-8");
    let a = Serve::start(&["--signing-key", pem]);
    let (_, kids_a) = admin_get(&a, "signing-keys").await;
    a.stop("TERM").assert_code(0);
    let b = Serve::start(&["--signing-key", pem]);
    let (_, kids_b) = admin_get(&b, "signing-keys").await;
    assert_eq!(kids_a["signing"], kids_b["signing"], "same key, same kid");
    let (status, rotated) = admin_post(&b, "signing-keys/rotate", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(rotated["kids"][1], kids_b["signing"]);
    b.stop("TERM").assert_code(0);
}

#[tokio::test]
async fn identity_admin_calls_refuse_bad_input_naming_it() {
    let serve = Serve::start(&[]);
    let (status, body) = admin_post(&serve, "consent", json!({"account": "not-an-email"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error_description"]
        .as_str()
        .unwrap_or_default()
        .contains("not-an-email"));
    let (status, body) = admin_post(&serve, "consent", json!({"deny": true})).await;
    assert_eq!((status, &body["deny"]), (200, &json!(true)));
    let (status, body) = admin_post(&serve, "service-accounts", json!({"name": "Bad Name"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error_description"]
        .as_str()
        .unwrap_or_default()
        .contains("Bad Name"));
    let (status, body) = admin_post(
        &serve,
        "clients",
        json!({"client_id": "web", "redirect_uris": ["not a url"]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = admin_post(
        &serve,
        "clients",
        json!({"client_id": "web", "client_secret": "s", "redirect_uris": ["https://app.example/cb"]}),
    )
    .await;
    assert_eq!(status, 201);
    let deleted = http()
        .delete(serve.url("/__admin/service-accounts/nobody%40x.iam.gserviceaccount.com"))
        .header("content-type", "application/json")
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 404);
    let (status, file) = admin_post(&serve, "service-accounts", json!({})).await;
    assert_eq!(status, 201);
    let email = file["client_email"].as_str().expect("email");
    let deleted = http()
        .delete(serve.url(&format!("/__admin/service-accounts/{email}")))
        .header("content-type", "application/json")
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 200);
    let run = serve.stop("TERM");
    run.assert_code(0);
    let key = file["private_key"].as_str().expect("pem");
    assert_no_secrets(&format!("{}{}", run.stdout, run.stderr), &[key]);
}

/// `serve --tls` with its CA certificate written into a temporary directory.
fn serve_tls() -> (Serve, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    let ca = ca.to_str().expect("utf-8").to_owned();
    let serve = Serve::start(&["--tls", "--tls-ca-file", &ca]);
    assert!(
        serve.url("").starts_with("https://127.0.0.1:"),
        "{}",
        serve.url("")
    );
    (serve, dir, ca)
}

#[test]
fn python_libraries_work_over_tls_trusting_only_the_throwaway_ca() {
    if !python_ready() {
        return;
    }
    let (serve, _dir, ca) = serve_tls();
    run_checks(
        "python3",
        "python_check.py",
        &serve.url(""),
        &[("REQUESTS_CA_BUNDLE", &ca), ("SSL_CERT_FILE", &ca)],
        PYTHON_CHECKS,
    );
    serve.stop("TERM").assert_code(0);
}

#[test]
fn node_library_works_over_tls_trusting_only_the_throwaway_ca() {
    if !node_ready() {
        return;
    }
    let (serve, _dir, ca) = serve_tls();
    run_checks(
        "node",
        "node_check.js",
        &serve.url(""),
        &[("NODE_EXTRA_CA_CERTS", &ca)],
        NODE_CHECKS,
    );
    serve.stop("TERM").assert_code(0);
}

#[tokio::test]
async fn tls_is_trusted_with_the_written_ca_and_refused_without_it() {
    let (serve, _dir, ca) = serve_tls();
    let pem = std::fs::read(&ca).expect("the CA file is written");
    let trusting = reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM certificate"))
        .build()
        .expect("client");
    let doc: Value = trusting
        .get(serve.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("HTTPS with the CA trusted")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["token_endpoint"], serve.url("/token"));
    let refused = http()
        .get(serve.url("/.well-known/openid-configuration"))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a client without the CA must refuse the certificate"
    );
    serve.stop("TERM").assert_code(0);

    let dir = tempfile::tempdir().expect("tempdir");
    let run = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "serve", "--tls-ca-file", "ca.pem"],
        None,
    );
    run.assert_code(2).assert_stderr_has("--tls");
    let run = crate::support::run(
        oauthtest_cmd(dir.path()),
        &[
            "--mode",
            "serve",
            "--tls",
            "--tls-ca-file",
            "/nonexistent/dir/ca.pem",
        ],
        None,
    );
    run.assert_code(2)
        .assert_stderr_has("/nonexistent/dir/ca.pem");
}

#[tokio::test]
async fn consent_flag_chooses_the_account_or_refuses_and_a_bad_value_is_refused() {
    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let sign_in = |serve: &Serve| {
        format!(
            "{}?client_id={}&redirect_uri=http://127.0.0.1:9/cb&response_type=code&scope=openid&state=s",
            serve.url("/o/oauth2/v2/auth"),
            crate::support::serve::CLIENT_ID
        )
    };
    let refusing = Serve::start(&["--consent", "deny"]);
    let answer = no_redirects
        .get(sign_in(&refusing))
        .send()
        .await
        .expect("sign-in");
    assert_eq!(answer.status(), 302);
    let location = answer.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(location.contains("error=access_denied"), "{location}");
    refusing.stop("TERM").assert_code(0);

    let alice = Serve::start(&["--consent", "alice@example.com"]);
    let (_, consent) = admin_get(&alice, "consent").await;
    assert_eq!(consent["account"], "alice@example.com");
    let answer = no_redirects
        .get(sign_in(&alice))
        .send()
        .await
        .expect("sign-in");
    assert!(answer.headers()["location"]
        .to_str()
        .expect("ascii")
        .contains("code="));
    alice.stop("TERM").assert_code(0);

    let dir = tempfile::tempdir().expect("tempdir");
    let refused = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "serve", "--consent", "maybe"],
        None,
    );
    refused
        .assert_code(2)
        .assert_stderr_has("--consent \"maybe\"");
}
