//! A real browser through the mock's sign-in: headless Chromium (Debian's `chromium`, driven by
//! npm `playwright-core`) signs in to a small example web app (`tests/google_clients/
//! browser_sign_in.js`, built on Google's Node library) against `serve`: PKCE S256, the code
//! exchanged by `getToken`, the id_token verified by `verifyIdToken`, the refresh token stored
//! and then refreshed with. And the two ways it must fail: the user refuses consent (the
//! callback gets `error=access_denied`, no exchange), and a redirect URI that is not registered
//! (Google's error page, no redirect).
//!
//! Under CI (`CI` set) it always runs and fails when Chromium or playwright-core is missing
//! (`.ci/run` installs both); elsewhere build.rs marks it ignored when they are missing.

use crate::google_clients::run_checks;
use crate::probe::chromium_path;
use crate::support::serve::Serve;
use std::path::Path;

const CHECKS: &[&str] = &[
    "check_browser_sign_in_with_pkce_ends_with_a_stored_refresh_token",
    "check_browser_consent_denied_redirects_with_access_denied_and_nothing_is_exchanged",
    "check_browser_unregistered_redirect_uri_is_refused_on_the_page_without_a_redirect",
];

#[test]
#[cfg_attr(
    oauthtest_no_browser,
    ignore = "Chromium or playwright-core is missing (apt-get install chromium; npm ci --prefix tests/google_clients)"
)]
fn headless_chromium_signs_in_to_an_example_web_app_and_the_refusals_end_without_tokens() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/google_clients");
    assert!(
        chromium_path().is_file(),
        "{} is missing: apt-get install -y chromium (or set OAUTHTEST_CHROMIUM)",
        chromium_path().display()
    );
    assert!(
        dir.join("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is missing: npm ci --prefix tests/google_clients"
    );
    let serve = Serve::start(&[]);
    let chromium = chromium_path().display().to_string();
    run_checks(
        "node",
        "browser_sign_in.js",
        &serve.url(""),
        &[("OAUTHTEST_CHROMIUM", &chromium)],
        CHECKS,
    );
    let run = serve.stop("TERM");
    run.assert_code(0);
    assert!(
        !run.stderr.contains("ya29.") && !run.stderr.contains("1//"),
        "serve logged a token: {run}"
    );
}
