//! Probes for the integration tests' outside dependencies, run by build.rs; compiled into the
//! integration tests too, where they are tested.

use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether something accepts TCP connections at the host and port of a `postgres://` URL. A URL
/// this cannot read (a Unix socket, say) counts as present: the test decides when it runs.
pub fn postgres_answers(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, r)| r) else {
        return true;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.is_empty() {
        return true;
    }
    let with_port = if host_port.ends_with(']') || !host_port.contains(':') {
        format!("{host_port}:5432")
    } else {
        host_port.to_owned()
    };
    let Ok(addresses) = with_port.to_socket_addrs() else {
        return false;
    };
    addresses
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

/// Whether `python3 -c "import MODULES"` succeeds.
pub fn python_imports(modules: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Where the browser test finds Chromium: `$OAUTHTEST_CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium_path() -> std::path::PathBuf {
    std::env::var_os("OAUTHTEST_CHROMIUM").map_or_else(
        || std::path::PathBuf::from("/usr/bin/chromium"),
        std::path::PathBuf::from,
    )
}

/// Whether the browser test can run: Chromium at [`chromium_path`] and `playwright-core`
/// installed under `tests/google_clients` of the crate at `manifest_dir`.
pub fn browser_ready(manifest_dir: &std::path::Path) -> bool {
    chromium_path().is_file()
        && manifest_dir
            .join("tests/google_clients/node_modules/playwright-core/package.json")
            .is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_answers_when_something_listens_at_its_host_and_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(postgres_answers(&format!(
            "postgres://postgres@127.0.0.1:{port}/test"
        )));
        assert!(postgres_answers(&format!(
            "postgres://u:p@localhost:{port}/db?sslmode=disable"
        )));
        drop(listener);
        assert!(!postgres_answers(&format!(
            "postgres://postgres@127.0.0.1:{port}/test"
        )));
    }

    #[test]
    fn a_postgres_url_it_cannot_read_counts_as_present_for_the_test_to_decide() {
        assert!(postgres_answers(
            "postgres:///test?host=/var/run/postgresql"
        ));
        assert!(postgres_answers("not a url"));
    }

    #[test]
    fn python_imports_is_true_only_for_modules_python3_has() {
        assert!(
            python_imports("json, sys"),
            "python3 is needed by these tests"
        );
        assert!(!python_imports("no_such_module_6f1d"));
        assert!(!python_imports("json, no_such_module_6f1d"));
    }

    #[test]
    fn the_browser_is_not_ready_without_playwright_core_in_the_tree() {
        let empty = tempfile::tempdir().unwrap();
        assert!(!browser_ready(empty.path()));
    }
}
