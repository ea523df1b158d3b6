//! Compiles the shipped scenarios (`scenarios/*.toml`) into the binary, so `mock-all` works from
//! any directory; and, for test builds off CI, finds which of the tests' outside dependencies are
//! missing, so that `cargo test` reports the tests needing them as ignored instead of passed.

use std::fs;
use std::path::{Path, PathBuf};

// Also compiled into the integration tests (tests/cli/main.rs), which test it.
#[path = "build/probe.rs"]
mod probe;
use probe::{browser_ready, postgres_answers, python_imports};

fn main() {
    embed_scenarios();
    embed_migrations();
    probe_test_dependencies();
}

/// Each test dependency: its cfg (set when it is missing) and what the warning calls it.
const TEST_DEPENDENCIES: &[(&str, &str)] = &[
    ("oauthtest_no_postgres", "PostgreSQL"),
    (
        "oauthtest_no_google_auth",
        "python3 with google-auth and requests",
    ),
    ("oauthtest_no_pytest", "python3 with pytest"),
    (
        "oauthtest_no_refapp",
        "python3 with the reference application's packages (google-auth, cryptography, celery[redis], psycopg)",
    ),
    (
        "oauthtest_no_browser",
        "Chromium (apt-get install chromium) with playwright-core (npm ci --prefix tests/google_clients)",
    ),
];

/// Sets `cfg(oauthtest_no_…)` for each dependency of the integration tests that is missing here:
/// the tests needing it carry `#[cfg_attr(oauthtest_no_…, ignore = "…")]`. Under CI (`CI` set)
/// nothing is probed and nothing is ignored: those tests run and fail if their dependency is
/// missing. Release builds (`cargo install`) probe nothing either.
///
/// The answer holds until this script runs again: after starting PostgreSQL or installing a
/// Python package, `touch build.rs` (or change `OAUTHTEST_TEST_PROBE`) re-probes.
fn probe_test_dependencies() {
    for (cfg, _) in TEST_DEPENDENCIES {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }
    for var in [
        "CI",
        "OAUTHTEST_TEST_POSTGRES_URL",
        "OAUTHTEST_TEST_PROBE",
        "OAUTHTEST_CHROMIUM",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    if std::env::var_os("CI").is_some() || std::env::var("PROFILE").as_deref() == Ok("release") {
        return;
    }
    let postgres = std::env::var("OAUTHTEST_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let present = [
        postgres_answers(&postgres),
        python_imports("google.auth, requests"),
        python_imports("pytest"),
        python_imports("google.auth, requests, cryptography, celery, redis, psycopg"),
        browser_ready(Path::new(
            &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default(),
        )),
    ];
    for ((cfg, what), present) in TEST_DEPENDENCIES.iter().zip(present) {
        if !present {
            println!("cargo::rustc-cfg={cfg}");
            println!(
                "cargo::warning={what} is missing: the tests that need it are built as ignored \
                 (after installing or starting it, `touch build.rs` to re-probe)"
            );
        }
    }
}

fn embed_scenarios() {
    // Read at run time, not with env!(): a build-script binary reused from another checkout of
    // the same sources would otherwise embed that checkout's scenarios.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("scenarios");
    println!("cargo::rerun-if-changed={}", dir.display());
    let files = files_named(&dir, "toml").unwrap_or_default();
    let mut out = String::from("&[\n");
    for (path, name) in &files {
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push(']');
    let target =
        Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("builtin_scenarios.rs");
    fs::write(target, out).expect("write builtin_scenarios.rs");
}

/// The files in `dir` ending in `.ext`, sorted, each with its file name; cargo reruns this
/// script when any of them changes.
fn files_named(dir: &Path, ext: &str) -> std::io::Result<Vec<(PathBuf, String)>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|path| {
            println!("cargo::rerun-if-changed={}", path.display());
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (path, name)
        })
        .collect())
}

/// Writes `migrations.rs` into OUT_DIR: for each backend, its migration files' versions, the rest
/// of their names and their contents, in order. `src/store/migrations.rs` makes sqlx's
/// `Migrator` from them at run time, exactly as `sqlx::migrate!` would, without sqlx's macros
/// (which cost a second build of sqlx and SQLite for the compiler).
fn embed_migrations() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mut out = String::new();
    for (backend, constant) in [("sqlite", "SQLITE"), ("postgres", "POSTGRES")] {
        let dir = Path::new(&manifest_dir).join("migrations").join(backend);
        println!("cargo::rerun-if-changed={}", dir.display());
        let files = files_named(&dir, "sql")
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        out.push_str(&format!(
            "pub(super) const {constant}: &[(i64, &str, &str)] = &[\n"
        ));
        for (path, name) in &files {
            // sqlx's rule: VERSION_DESCRIPTION.sql, VERSION an integer.
            let Some((version, rest)) = name
                .split_once('_')
                .and_then(|(v, rest)| Some((v.parse::<i64>().ok()?, rest)))
            else {
                panic!(
                    "{}: a migration is named VERSION_DESCRIPTION.sql",
                    path.display()
                );
            };
            out.push_str(&format!(
                "    ({version}, {rest:?}, include_str!({:?})),\n",
                path.display().to_string()
            ));
        }
        out.push_str("];\n");
    }
    let target = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("migrations.rs");
    fs::write(target, out).expect("write migrations.rs");
}
