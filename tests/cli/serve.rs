//! `--mode serve` as a real process on port 0, driven over HTTP; and `mock-all --target-cmd`.

use crate::support::serve::*;
use crate::support::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const GMAIL: &str = "https://www.googleapis.com/auth/gmail.readonly";

/// Whether python3 can import `modules`. Under CI (`CI` set) an absent module fails the test;
/// elsewhere the test prints why it is skipped.
pub(crate) fn python_with(modules: &str, what: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} must run in CI, but python3 cannot import {modules} (.ci/run installs google-auth and requests)"
        );
        skipped(&format!(
            "{what}: python3 with {modules} is not available \
             (python3 -m pip install google-auth requests)"
        ));
    }
    ok
}

pub(crate) fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(name)
        .display()
        .to_string()
}

#[test]
fn serve_prints_its_url_first_and_stops_cleanly_on_sigterm_and_on_sigint() {
    for (signal, name) in [("TERM", "SIGTERM"), ("INT", "SIGINT")] {
        let serve = Serve::start(&[]);
        let run = serve.stop(signal);
        run.assert_code(0);
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert!(lines[0].starts_with("http://127.0.0.1:"), "{run}");
        assert!(run.stdout.contains(&format!("stopped on {name}")), "{run}");
        assert!(!run.stderr.contains("panicked"), "{run}");
    }
}

#[test]
fn serve_with_an_unknown_scenario_or_a_taken_port_is_a_one_line_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "serve", "--scenario", "nope"],
        None,
    );
    r.assert_code(2).assert_one_line_error();
    r.assert_stderr_has("--scenario nope: no such scenario");
    assert!(r.stdout.is_empty(), "{r}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let r = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "serve", "--port", &port],
        None,
    );
    r.assert_code(2).assert_one_line_error();
    r.assert_stderr_has(&format!("--port {port}: cannot listen"));
}

#[tokio::test]
async fn serve_answers_token_api_tokeninfo_revoke_and_discovery_like_google() {
    let serve = Serve::start(&[]);
    let (status, minted) = admin_post(&serve, "refresh-tokens", json!({})).await;
    assert_eq!(status, 201, "{minted}");
    let rt = str_of(&minted, "refresh_token").to_owned();
    assert!(rt.starts_with("1//"));

    let answer = http()
        .post(serve.url("/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    for (name, value) in mock_server::wire::token_endpoint_headers() {
        assert_eq!(answer.headers()[name], value, "{name}");
    }
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], GMAIL);
    assert!(
        body.get("refresh_token").is_none(),
        "Google does not rotate"
    );
    let at = str_of(&body, "access_token").to_owned();

    assert_eq!(api_status(&serve, &at).await, 200);
    let info: Value = http()
        .get(serve.url("/tokeninfo"))
        .query(&[("access_token", &at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["aud"], CLIENT_ID);
    assert_eq!(info["access_type"], "offline");
    let discovery: Value = http()
        .get(serve.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["token_endpoint"], serve.url("/token"));
    assert_eq!(discovery["revocation_endpoint"], serve.url("/revoke"));
    assert_eq!(discovery["issuer"], "https://accounts.google.com");

    let revoked = http()
        .post(serve.url("/revoke"))
        .form(&[("token", &at)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let (status, body) = refresh(&serve, &rt, CLIENT_ID, CLIENT_SECRET).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    );
    assert_eq!(api_status(&serve, &at).await, 401);
    serve.stop("TERM").assert_code(0);
}

#[tokio::test]
async fn admin_api_switches_scenarios_resets_lists_requests_and_mints_tokens() {
    let serve = Serve::start(&["--scenario", "server_error_then_success"]);

    let (status, index) = admin_get(&serve, "").await;
    assert_eq!(status, 200);
    assert!(index["endpoints"].as_array().unwrap().len() >= 8, "{index}");
    let (_, list) = admin_get(&serve, "scenarios").await;
    let names: Vec<&str> = list["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"invalid_grant_revoked"), "{list}");

    // The start scenario is in force: its credential is there, its script answers 500 first.
    let (_, current) = admin_get(&serve, "scenario").await;
    assert_eq!(current["scenario"], "server_error_then_success");
    let credential = &current["credential"];
    let rt = str_of(credential, "refresh_token").to_owned();
    assert_eq!(refresh(&serve, &rt, CLIENT_ID, CLIENT_SECRET).await.0, 500);
    assert_eq!(refresh(&serve, &rt, CLIENT_ID, CLIENT_SECRET).await.0, 200);

    // The journal, filtered.
    let (_, all) = admin_get(&serve, "requests").await;
    assert_eq!(all["count"], 2, "{all}");
    let (_, tokens) = admin_get(&serve, "requests?endpoint=token").await;
    let statuses: Vec<u64> = tokens["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![500, 200]);
    let first = &tokens["requests"][0];
    assert_eq!(first["action"], "scripted");
    assert_eq!(first["error"], "internal_failure");
    assert_eq!(first["client_auth"], "body");
    assert_eq!(first["refresh_token_status"], "live");
    assert_eq!(
        first["refresh_token_fingerprint"].as_str().unwrap().len(),
        12
    );
    let (_, api) = admin_get(&serve, "requests?endpoint=api").await;
    assert_eq!(api["count"], 0);
    let (_, since) = admin_get(&serve, "requests?endpoint=token&since=1").await;
    assert_eq!(since["requests"][0]["seq"], 2);
    let (status, bad) = admin_get(&serve, "requests?endpoint=tokens").await;
    assert_eq!(status, 400);
    assert!(str_of(&bad, "error_description").contains("expected one of token"));

    // Switch: the new scenario's credential and behaviour; the old state is gone.
    let (status, switched) =
        admin_post(&serve, "scenario", json!({"name": "invalid_grant_revoked"})).await;
    assert_eq!(status, 200, "{switched}");
    let revoked_rt = str_of(&switched["credential"], "refresh_token").to_owned();
    let (status, body) = refresh(&serve, &revoked_rt, CLIENT_ID, CLIENT_SECRET).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = refresh(&serve, &rt, CLIENT_ID, CLIENT_SECRET).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("Bad Request")),
        "the previous scenario's token is unknown after a switch"
    );
    let (status, unknown) = admin_post(&serve, "scenario", json!({"name": "nope"})).await;
    assert_eq!(status, 400);
    assert!(str_of(&unknown, "error_description").contains("known: "));

    // Reset: no scenario, empty journal.
    let (status, reset) = admin_post(&serve, "reset", json!({})).await;
    assert_eq!((status, &reset["scenario"]), (200, &Value::Null));
    let (_, after) = admin_get(&serve, "requests").await;
    assert_eq!(after["count"], 0);
    assert_eq!(after["token_requests_total"], 0);
    let (_, none) = admin_get(&serve, "scenario").await;
    assert_eq!(none["credential"], Value::Null);

    // Mint a refresh token for a client of the caller's own.
    let (status, minted) = admin_post(
        &serve,
        "refresh-tokens",
        json!({"client_id": "my-app.apps.googleusercontent.com", "client_secret": "my-secret",
               "scopes": ["openid", "email"]}),
    )
    .await;
    assert_eq!(status, 201, "{minted}");
    let (status, body) = refresh(
        &serve,
        str_of(&minted, "refresh_token"),
        "my-app.apps.googleusercontent.com",
        "my-secret",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid email");
    assert!(body["id_token"].is_string(), "openid granted: {body}");

    // Mistakes get a clear 4xx.
    let (status, _) = admin_post(&serve, "clock", json!({"advance_hours": 1})).await;
    assert_eq!(status, 400);
    let (status, _) = admin_get(&serve, "nothing-here").await;
    assert_eq!(status, 404);
    let wrong_method = http()
        .get(serve.url("/__admin/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "POST");
    serve.stop("TERM").assert_code(0);
}

#[tokio::test]
async fn admin_clock_makes_issued_tokens_expire_on_demand() {
    let serve = Serve::start(&[]);
    let (_, minted) = admin_post(&serve, "refresh-tokens", json!({})).await;
    let rt = str_of(&minted, "refresh_token").to_owned();
    let (_, body) = refresh(&serve, &rt, CLIENT_ID, CLIENT_SECRET).await;
    let at = str_of(&body, "access_token").to_owned();
    assert_eq!(api_status(&serve, &at).await, 200);

    let (_, before) = admin_get(&serve, "clock").await;
    let (status, moved) = admin_post(&serve, "clock", json!({"advance_seconds": 3600})).await;
    assert_eq!(status, 200);
    let gained = moved["now_unix"].as_i64().unwrap() - before["now_unix"].as_i64().unwrap();
    assert!((3600..3610).contains(&gained), "{before} {moved}");

    assert_eq!(
        api_status(&serve, &at).await,
        401,
        "expired on the mock clock"
    );
    let info = http()
        .get(serve.url("/tokeninfo"))
        .query(&[("access_token", &at)])
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 400);
    let (status, body) = refresh(&serve, &rt, CLIENT_ID, CLIENT_SECRET).await;
    assert_eq!(
        status, 200,
        "the refresh token itself does not expire: {body}"
    );
    assert_eq!(api_status(&serve, str_of(&body, "access_token")).await, 200);
    serve.stop("TERM").assert_code(0);
}

#[tokio::test]
async fn serve_logs_each_request_without_any_secret() {
    let serve = Serve::start_with(
        &["-vvv"],
        &[
            ("GOOGLE_CLIENT_ID", "planted.apps.googleusercontent.com"),
            ("GOOGLE_CLIENT_SECRET", PLANTED_CLIENT_SECRET),
        ],
    );
    let (_, minted) = admin_post(
        &serve,
        "refresh-tokens",
        json!({"client_id": "planted.apps.googleusercontent.com"}),
    )
    .await;
    let rt = str_of(&minted, "refresh_token").to_owned();
    let (status, body) = refresh(
        &serve,
        &rt,
        "planted.apps.googleusercontent.com",
        PLANTED_CLIENT_SECRET,
    )
    .await;
    assert_eq!(status, 200, "the --client-id client is registered: {body}");
    let at = str_of(&body, "access_token").to_owned();
    assert_eq!(api_status(&serve, &at).await, 200);
    let info = http()
        .get(serve.url("/tokeninfo"))
        .query(&[("access_token", &at)])
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    let run = serve.stop("TERM");
    run.assert_code(0);
    assert!(run.stderr.contains("POST /token -> 200"), "{run}");
    assert!(run.stderr.contains("GET /tokeninfo -> 200"), "{run}");
    assert!(
        run.stderr.contains("GET /gmail/v1/users/me/profile -> 200"),
        "{run}"
    );
    assert!(run.stderr.contains(&mock_server::fingerprint(&rt)), "{run}");
    assert_no_secrets(&format!("{}{}", run.stdout, run.stderr), &[&rt, &at]);
}

#[test]
#[cfg_attr(
    oauthtest_no_google_auth,
    ignore = "python3 could not import google-auth and requests when the tests were built (pip install google-auth requests, then `touch build.rs`)"
)]
fn google_auth_library_treats_serve_as_it_treats_google() {
    if !python_with("google.auth, requests", "the google-auth test") {
        return;
    }
    let serve = Serve::start(&[]);
    let out = Command::new("python3")
        .arg(script("tests/python/google_auth_check.py"))
        .arg(serve.url(""))
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "google-auth check failed\n{stdout}\n{stderr}"
    );
    for check in [
        "check_refresh_succeeds_and_the_api_accepts_the_token",
        "check_an_expired_token_is_refreshed_on_401",
        "check_invalid_grant_raises_refresh_error_without_retrying",
        "check_invalid_client_raises_refresh_error",
        "check_5xx_is_retried_then_raises_a_retryable_refresh_error",
        "check_one_500_is_retried_and_the_refresh_succeeds",
    ] {
        assert!(
            stdout.contains(&format!("PASS {check}")),
            "{stdout}\n{stderr}"
        );
    }
    serve.stop("TERM").assert_code(0);
}

#[tokio::test]
async fn oversized_and_malformed_requests_get_a_clear_4xx_with_bounded_memory() {
    let serve = Serve::start(&[]);
    let port = serve.port();

    let declared = raw_exchange(
        port,
        b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 500000000\r\n\r\n",
    );
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
    assert!(declared.contains("request_too_large"), "{declared}");

    let mut chunked =
        b"POST /token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    chunked.extend_from_slice(format!("{:x}\r\n", 70_000).as_bytes());
    chunked.extend(std::iter::repeat_n(b'a', 70_000));
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let streamed = raw_exchange(port, &chunked);
    assert!(streamed.starts_with("HTTP/1.1 413"), "{streamed}");

    let huge_header = format!(
        "GET /tokeninfo HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(40_000)
    );
    let header = raw_exchange(port, huge_header.as_bytes());
    assert!(header.starts_with("HTTP/1.1 431"), "{header}");

    let garbage = raw_exchange(port, b"GARBAGE\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    let binary = raw_exchange(port, &[0u8, 159, 146, 150, 255, 13, 10, 13, 10]);
    assert!(binary.starts_with("HTTP/1.1 400"), "{binary}");
    let bad_length = raw_exchange(
        port,
        b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n",
    );
    assert!(bad_length.starts_with("HTTP/1.1 400"), "{bad_length}");
    let (status, body) = {
        let r = http()
            .post(serve.url("/token"))
            .body(vec![0xffu8, 0xfe, b'=', 0x80])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(
        status, 400,
        "a body that is no form gets Google's answer: {body}"
    );

    // Memory stays bounded while clients push 16 MB bodies: each is cut off at the limit.
    let before = rss_kib(serve.pid());
    let pushers: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
                    return;
                };
                let _ = stream.write_all(
                    b"POST /token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                );
                let chunk = vec![b'a'; 64 * 1024];
                for _ in 0..256 {
                    if stream
                        .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .and_then(|()| stream.write_all(&chunk))
                        .and_then(|()| stream.write_all(b"\r\n"))
                        .is_err()
                    {
                        return;
                    }
                }
            })
        })
        .collect();
    for pusher in pushers {
        pusher.join().unwrap();
    }
    if let (Some(before), Some(after)) = (before, rss_kib(serve.pid())) {
        assert!(
            after < before + 32 * 1024,
            "RSS grew from {before} KiB to {after} KiB while 128 MB were pushed"
        );
    }

    // Still up, still Google.
    let discovery = http()
        .get(serve.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(discovery.status(), 200);
    let run = serve.stop("TERM");
    run.assert_code(0);
    assert!(run.stdout.contains("refused by a limit"), "{run}");
    assert!(!run.stderr.contains("panicked"), "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_do_not_starve_others() {
    let serve = Serve::start(&["--read-timeout-ms", "1000"]);
    let port = serve.port();
    // 40 clients that never finish their headers, one byte every 200 ms.
    let slow: Vec<_> = (0..40)
        .map(|_| {
            std::thread::spawn(move || -> Option<Duration> {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
                let started = Instant::now();
                stream.write_all(b"POST /token HTTP/1.1\r\n").ok()?;
                while started.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(200));
                    if stream.write_all(b"X").is_err() {
                        return Some(started.elapsed());
                    }
                }
                None
            })
        })
        .collect();
    // One client whose body trickles in.
    let trickle = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(8)))
            .unwrap();
        stream
            .write_all(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
            .unwrap();
        let reader = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut writer = reader;
            for _ in 0..40 {
                std::thread::sleep(Duration::from_millis(200));
                if writer.write_all(b"a").is_err() {
                    break;
                }
            }
        });
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    });

    // Meanwhile everyone else is served.
    let (_, minted) = admin_post(&serve, "refresh-tokens", json!({})).await;
    let rt = str_of(&minted, "refresh_token").to_owned();
    for _ in 0..20 {
        let (status, _) = refresh(&serve, &rt, CLIENT_ID, CLIENT_SECRET).await;
        assert_eq!(status, 200);
    }

    for handle in slow {
        let closed_after = handle.join().unwrap();
        assert!(
            closed_after.is_some(),
            "a client still sending half a header after 10 s was never cut off"
        );
    }
    let trickled = trickle.join().unwrap();
    assert!(trickled.starts_with("HTTP/1.1 408"), "{trickled}");
    assert!(trickled.contains("request_timeout"), "{trickled}");
    serve.stop("TERM").assert_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_clients_are_all_answered() {
    let serve = Serve::start(&[]);
    let (_, minted) = admin_post(&serve, "refresh-tokens", json!({})).await;
    let rt = str_of(&minted, "refresh_token").to_owned();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let url = serve.url("/token");
        let rt = rt.clone();
        set.spawn(async move {
            // One client each: its own connection.
            http()
                .post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                ])
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    let mut ok = 0;
    while let Some(done) = set.join_next().await {
        assert_eq!(done.unwrap().expect("answered"), 200);
        ok += 1;
    }
    assert_eq!(ok, 300);
    let (_, journal) = admin_get(&serve, "requests?endpoint=token").await;
    assert_eq!(journal["token_requests_total"], 300);
    serve.stop("TERM").assert_code(0);
}

#[test]
fn target_cmd_passes_a_correct_client_on_every_shipped_scenario() {
    if !python_with("json", "the --target-cmd correct-client test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cmd = format!("python3 {}", script("tests/python/refresh_client.py"));
    let r = run(
        oauthtest_cmd(dir.path()),
        &[
            "--mode",
            "mock-all",
            "--target-cmd",
            &cmd,
            "--format",
            "json",
        ],
        None,
    );
    r.assert_code(0);
    let v = r.json();
    assert_eq!(v["failed"], 0, "{r}");
    assert_eq!(
        v["passed"].as_u64().unwrap() as usize,
        oauthtest::scenarios::BUILTIN.len()
    );
    let by_name = |name: &str| {
        v["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("success")["outcome"], "exit 0");
    assert_eq!(by_name("invalid_grant_revoked")["token_requests"], 1);
    assert_eq!(
        by_name("unavailable_until_retries_run_out")["token_requests"],
        3
    );
}

#[test]
fn target_cmd_fails_a_client_that_retries_after_invalid_grant() {
    if !python_with("json", "the --target-cmd retrying-client test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cmd = format!(
        "python3 {} --retry-everything",
        script("tests/python/refresh_client.py")
    );
    let r = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "mock-all", "--target-cmd", &cmd],
        None,
    );
    r.assert_code(1);
    let block: String = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("FAIL invalid_grant_revoked"))
        .take(3)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(block.contains("token_requests: expected 1, got 3"), "{r}");
    assert!(
        block.contains("kept refreshing after invalid_grant: 2 more token request(s)"),
        "{r}"
    );
    assert!(r.stdout.contains("PASS success "), "{r}");
    for line in r.stdout.lines().chain(r.stderr.lines()) {
        assert!(
            !line.contains("ya29.") && !line.contains("1//"),
            "token leaked: {line}"
        );
    }
}

#[test]
fn target_cmd_gets_the_documented_environment_and_its_exit_status_is_judged() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    std::fs::create_dir(&out).unwrap();
    let mut cmd = oauthtest_cmd(dir.path());
    // Inherited OAUTHTEST_* must not reach CMD: a stale access token would fake a credential.
    cmd.env("TARGET_OUT", &out)
        .env("OAUTHTEST_ACCESS_TOKEN", PLANTED_ACCESS);
    let r = run(
        cmd,
        &[
            "--mode",
            "mock-all",
            "--target-cmd",
            r#"env | grep '^OAUTHTEST_' | sort > "$TARGET_OUT/$OAUTHTEST_SCENARIO.env"; echo "leaky $OAUTHTEST_CLIENT_SECRET $OAUTHTEST_REFRESH_TOKEN" >&2; exit 1"#,
        ],
        None,
    );
    r.assert_code(1);
    let env_of = |scenario: &str| -> std::collections::BTreeMap<String, String> {
        std::fs::read_to_string(out.join(format!("{scenario}.env")))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let success = env_of("success");
    let base = &success["OAUTHTEST_BASE_URL"];
    assert!(base.starts_with("http://127.0.0.1:"), "{success:?}");
    assert_eq!(success["OAUTHTEST_TOKEN_URL"], format!("{base}/token"));
    assert_eq!(
        success["OAUTHTEST_TOKENINFO_URL"],
        format!("{base}/tokeninfo")
    );
    assert_eq!(success["OAUTHTEST_REVOKE_URL"], format!("{base}/revoke"));
    assert_eq!(
        success["OAUTHTEST_API_URL"],
        format!("{base}/gmail/v1/users/me/profile")
    );
    assert_eq!(
        success["OAUTHTEST_DISCOVERY_URL"],
        format!("{base}/.well-known/openid-configuration")
    );
    assert_eq!(success["OAUTHTEST_CLIENT_ID"], CLIENT_ID);
    assert_eq!(success["OAUTHTEST_CLIENT_SECRET"], CLIENT_SECRET);
    assert!(success["OAUTHTEST_REFRESH_TOKEN"].starts_with("1//"));
    assert_eq!(success["OAUTHTEST_SCOPES"], GMAIL);
    assert_eq!(success["OAUTHTEST_SCENARIO"], "success");
    assert!(success["OAUTHTEST_ACCESS_TOKEN"].starts_with("ya29."));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expired_at: i64 = success["OAUTHTEST_ACCESS_TOKEN_EXPIRES_AT"]
        .parse()
        .unwrap();
    assert!(expired_at < now, "success stores an expired token");
    let valid = env_of("valid_token_no_refresh");
    let valid_until: i64 = valid["OAUTHTEST_ACCESS_TOKEN_EXPIRES_AT"].parse().unwrap();
    assert!(valid_until > now + 3000);
    let none = env_of("no_access_token_stored");
    assert!(!none.contains_key("OAUTHTEST_ACCESS_TOKEN"), "{none:?}");
    assert!(!none.contains_key("OAUTHTEST_ACCESS_TOKEN_EXPIRES_AT"));
    assert_eq!(
        env_of("invalid_client_wrong_secret")["OAUTHTEST_CLIENT_SECRET"],
        "wrong-secret"
    );

    // A client that does nothing and exits 1: right exit status for invalid_grant, wrong one
    // for success, and no token request for either.
    assert!(
        r.stdout
            .contains("exit status: expected 0 (the scenario expects a working API call), got 1"),
        "{r}"
    );
    assert!(
        r.stdout.contains("token_requests: expected 1, got 0"),
        "{r}"
    );
    assert!(!r.stdout.contains("PASS valid_token_no_refresh"), "{r}");
    let refresh_tokens: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| {
            let env = std::fs::read_to_string(e.unwrap().path()).unwrap();
            env.lines()
                .find_map(|l| l.strip_prefix("OAUTHTEST_REFRESH_TOKEN="))
                .unwrap()
                .to_owned()
        })
        .collect();
    let extra: Vec<&str> = refresh_tokens.iter().map(String::as_str).collect();
    assert_no_secrets(&format!("{}{}", r.stdout, r.stderr), &extra);
    assert!(!r.stdout.contains(CLIENT_SECRET), "{r}");
}

#[test]
fn target_cmd_that_overstays_its_timeout_is_killed_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let mut cmd = oauthtest_cmd(dir.path());
    cmd.env("PID_FILE", &pid_file);
    let started = Instant::now();
    let r = run(
        cmd,
        &[
            "--mode",
            "mock",
            "--scenario",
            "success",
            "--target-timeout",
            "1",
            "--target-cmd",
            r#"sleep 60 & echo $! > "$PID_FILE"; wait"#,
        ],
        None,
    );
    r.assert_code(1);
    assert!(started.elapsed() < Duration::from_secs(30), "{r}");
    assert!(
        r.stdout
            .contains("CMD did not finish within 1 s and was killed"),
        "{r}"
    );
    assert!(
        r.stdout.contains("got none (killed after the timeout)"),
        "{r}"
    );
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let proc_dir = format!("/proc/{}", pid.trim());
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&proc_dir).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !Path::new(&proc_dir).exists(),
        "the sleep CMD started survived the timeout"
    );
}

#[test]
fn target_cmd_outside_mock_modes_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "serve", "--target-cmd", "true"],
        None,
    );
    r.assert_code(2).assert_one_line_error();
    r.assert_stderr_has(
        "--target-cmd works with --mode mock, --mode mock-all or --mode worker-sim, not --mode",
    );
}
