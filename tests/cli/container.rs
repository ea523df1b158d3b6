//! The Dockerfile: what it runs, and that its command and HEALTHCHECK work as a container would
//! run them. No container engine runs here, so the test builds none: it runs this build's binary
//! with the image's ENTRYPOINT and CMD in a network namespace of its own (only a loopback, as in
//! a container, so `--host 0.0.0.0 --port 8080` reaches nothing outside and collides with
//! nothing), then the HEALTHCHECK's command in the same namespace.
//! `scripts/container_check.sh` does the same with the static release binary the image holds.

use crate::support::*;
use clap::Parser;
use oauthtest::cli::Cli;
use std::path::Path;
use std::process::Command;

/// The Dockerfile's instructions of the final stage, continuation lines joined.
fn final_stage() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"))
        .expect("Dockerfile");
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(part) = line.strip_suffix('\\') {
            current.push_str(part.trim_end());
            current.push(' ');
            continue;
        }
        current.push_str(line);
        if !current.trim().is_empty() {
            joined.push(std::mem::take(&mut current));
        }
    }
    let stages: Vec<_> = joined
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("FROM "))
        .map(|(i, _)| i)
        .collect();
    let last = *stages.last().expect("a FROM");
    joined[last..]
        .iter()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap_or((l, ""));
            (k.to_owned(), v.trim().to_owned())
        })
        .collect()
}

fn instruction(stage: &[(String, String)], name: &str) -> String {
    stage
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("the Dockerfile's final stage has no {name}"))
}

fn exec_form(value: &str) -> Vec<String> {
    serde_json::from_str(value).unwrap_or_else(|e| panic!("{value} is not an exec-form list: {e}"))
}

#[test]
fn the_image_runs_serve_on_0_0_0_0_port_8080_with_a_healthcheck_and_no_root() {
    let stage = final_stage();
    assert_eq!(instruction(&stage, "EXPOSE"), "8080");
    assert_eq!(instruction(&stage, "USER"), "65534:65534");
    let entrypoint = exec_form(&instruction(&stage, "ENTRYPOINT"));
    let cmd = exec_form(&instruction(&stage, "CMD"));
    assert_eq!(entrypoint, ["oauthtest"]);
    assert_eq!(
        cmd,
        ["--mode", "serve", "--host", "0.0.0.0", "--port", "8080"]
    );
    let cli = Cli::try_parse_from(entrypoint.iter().chain(&cmd)).expect("the CMD parses");
    assert_eq!(cli.port, 8080);
    assert!(cli.host.is_unspecified());
    let health = instruction(&stage, "HEALTHCHECK");
    assert!(
        health.contains(" CMD ") && health.contains("http://127.0.0.1:8080/"),
        "{health}"
    );
    // The image's binary is static: no loader or shared library in a busybox image.
    assert!(
        instruction(&stage, "FROM").starts_with("busybox:")
            && instruction(&stage, "FROM").ends_with("-musl"),
        "{stage:?}"
    );
}

/// Runs `script` (bash) in a network namespace of its own with its loopback up; `None` (with a
/// visible reason) where namespaces cannot be made, which under CI fails instead.
fn in_own_network(script: &str, args: &[&str]) -> Option<Run> {
    let attempt = |flags: &[&str]| {
        let mut c = Command::new("unshare");
        c.args(flags)
            .args([
                "bash",
                "-c",
                &format!("ip link set lo up && {script}"),
                "in-netns",
            ])
            .args(args);
        run(c, &[], None)
    };
    let root = attempt(&["-n"]);
    if root.code == 0 || !root.stderr.contains("unshare") {
        return Some(root);
    }
    let user = attempt(&["-r", "-n"]);
    if user.code == 0 || !user.stderr.contains("unshare") {
        return Some(user);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI needs a network namespace (unshare -n) for the container test\n{root}\n{user}"
    );
    skipped(&format!(
        "container test: no network namespace can be made here\n{user}"
    ));
    None
}

#[test]
fn the_images_command_serves_and_its_healthcheck_passes_then_fails_once_serve_stops() {
    let stage = final_stage();
    let cmd = exec_form(&instruction(&stage, "CMD"));
    let health = instruction(&stage, "HEALTHCHECK");
    let check = health
        .split_once(" CMD ")
        .map(|(_, c)| c.to_owned())
        .expect("HEALTHCHECK ... CMD command");
    let dir = tempfile::tempdir().unwrap();
    // Serve as the image runs it; wait for its URL; the health check; a refresh through the port;
    // SIGTERM; the health check again.
    let script = r#"
        bin=$1; shift
        check=$1; shift
        "$bin" "$@" >serve.out 2>serve.err &
        pid=$!
        for _ in $(seq 300); do [ -s serve.out ] && break; sleep 0.1; done
        echo "url=$(head -n 1 serve.out)"
        if sh -c "$check"; then echo "health=ok"; else echo "health=failed"; fi
        rt=$(wget -q -O - --header 'Content-Type: application/json' --post-data '{}' \
               http://127.0.0.1:8080/__admin/refresh-tokens | sed -E 's/.*"refresh_token":"([^"]+)".*/\1/')
        wget -q -O /dev/null --post-data "grant_type=refresh_token&refresh_token=$rt&client_id=mock-client-id.apps.googleusercontent.com&client_secret=mock-client-secret" \
          http://127.0.0.1:8080/token && echo "refresh=ok" || echo "refresh=failed"
        kill -TERM "$pid"; wait "$pid"; echo "serve_exit=$?"
        if sh -c "$check"; then echo "health_after_stop=ok"; else echo "health_after_stop=failed"; fi
    "#;
    let bin = env!("CARGO_BIN_EXE_oauthtest");
    let mut args = vec![bin, check.as_str()];
    args.extend(cmd.iter().map(String::as_str));
    let script = format!("cd {} && {script}", dir.path().display());
    let Some(r) = in_own_network(&script, &args) else {
        return;
    };
    for line in [
        "url=http://0.0.0.0:8080",
        "health=ok",
        "refresh=ok",
        "serve_exit=0",
        "health_after_stop=failed",
    ] {
        assert!(r.stdout.lines().any(|l| l == line), "no {line:?}\n{r}");
    }
    let log = std::fs::read_to_string(dir.path().join("serve.err")).unwrap();
    assert!(log.contains("POST /token"), "{log}");
    assert_no_secrets(&log, &[]);
}
