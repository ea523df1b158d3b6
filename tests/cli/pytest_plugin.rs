//! The pytest plugin (`python/`, pytest-oauthtest) passes its own tests, run by pytest against
//! this build's binary exactly as a user's `pytest` would run them, without installing anything.

use crate::support::*;
use std::path::Path;
use std::process::Command;

const NEEDS: &str = "python3 -m pip install pytest google-auth requests";

/// `python3 -m pytest python/tests ARGS` from the repository root, with `OAUTHTEST_BIN` set to
/// `bin` and none of oauthtest's own settings inherited.
fn pytest(bin: &str, args: &[&str], ci: bool) -> Run {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new("python3");
    cmd.current_dir(root)
        .env("OAUTHTEST_BIN", bin)
        // Nothing written into the source tree: no __pycache__, no .pytest_cache.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("CI");
    if ci {
        cmd.env("CI", "true");
    }
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if (k.starts_with("OAUTHTEST_") && k != "OAUTHTEST_BIN")
            || k.starts_with("GOOGLE_")
            || k.starts_with("PYTEST_")
            || k == "DATABASE_URL"
        {
            cmd.env_remove(k);
        }
    }
    let mut all = vec![
        "-m",
        "pytest",
        "python/tests",
        "-p",
        "no:cacheprovider",
        "-rs",
    ];
    all.extend(args);
    run(cmd, &all, None)
}

/// Whether python3 has pytest; under CI its absence fails the test.
fn have_pytest() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pytest"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "the pytest plugin's tests must run in CI, but python3 cannot import pytest ({NEEDS})"
        );
        skipped(&format!(
            "pytest plugin tests: python3 cannot import pytest ({NEEDS})"
        ));
    }
    ok
}

#[test]
#[cfg_attr(
    oauthtest_no_pytest,
    ignore = "python3 could not import pytest when the tests were built (pip install pytest google-auth requests, then `touch build.rs`)"
)]
fn the_pytest_plugin_passes_its_own_tests_against_this_binary() {
    if !have_pytest() {
        return;
    }
    let ci = std::env::var_os("CI").is_some();
    let r = pytest(env!("CARGO_BIN_EXE_oauthtest"), &[], ci);
    assert_eq!(r.code, 0, "pytest python/tests failed\n{r}");
    let summary = r
        .stdout
        .lines()
        .rev()
        .find(|l| l.contains(" passed"))
        .unwrap_or_else(|| panic!("no pytest summary line\n{r}"));
    let passed: u32 = summary
        .trim_matches(|c: char| !c.is_ascii_digit())
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {summary:?}"));
    assert!(passed >= 15, "only {passed} passed\n{r}");
    if ci {
        assert!(!summary.contains("skipped"), "tests skipped under CI\n{r}");
    }
}

#[test]
#[cfg_attr(
    oauthtest_no_pytest,
    ignore = "python3 could not import pytest when the tests were built (pip install pytest google-auth requests, then `touch build.rs`)"
)]
fn under_ci_the_pytest_plugin_tests_fail_without_the_binary_and_skip_visibly_elsewhere() {
    if !have_pytest() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-oauthtest");
    let missing = missing.to_str().unwrap();

    let r = pytest(missing, &[], true);
    assert_eq!(r.code, 4, "a usage error under CI\n{r}");
    assert!(
        r.stderr.contains("CI is set, so these tests must run") && r.stderr.contains(missing),
        "{r}"
    );

    let r = pytest(missing, &[], false);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("SKIPPED"), "the reason is listed\n{r}");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains(" skipped") && !l.contains("passed")),
        "everything skipped, nothing passed\n{r}"
    );
}
