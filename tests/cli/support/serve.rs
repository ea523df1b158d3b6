//! A running `oauthtest --mode serve` on port 0 and the HTTP calls tests make to it: the token
//! endpoint, the API, the admin API, raw bytes; and the server's memory, for the abuse tests.

use super::{oauthtest_cmd, Run};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub(crate) const CLIENT_ID: &str = "mock-client-id.apps.googleusercontent.com";
pub(crate) const CLIENT_SECRET: &str = "mock-client-secret";

/// A running `oauthtest --mode serve`, killed if a test fails before stopping it.
pub(crate) struct Serve {
    child: Child,
    url: String,
    rest_of_stdout: mpsc::Receiver<String>,
    stderr_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Serve {
    pub(crate) fn start(extra: &[&str]) -> Self {
        Self::start_with(extra, &[])
    }

    /// Starts the binary with `--port 0` and reads the URL from its first line of stdout.
    pub(crate) fn start_with(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr_path = dir.path().join("stderr.log");
        let mut cmd = oauthtest_cmd(dir.path());
        cmd.args(["--mode", "serve", "--port", "0"])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"));
        let mut child = cmd.spawn().expect("spawn oauthtest --mode serve");
        let stdout = child.stdout.take().expect("stdout");
        let (first_tx, first_rx) = mpsc::channel();
        let (rest_tx, rest_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = first_tx.send(first);
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
            let _ = rest_tx.send(rest);
        });
        let first = first_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("serve printed its URL within 30 s");
        // With --format json the first line is `{"event": "listening", "url": …}`.
        let url = match serde_json::from_str::<serde_json::Value>(&first) {
            Ok(v) => v["url"].as_str().unwrap_or_default().to_owned(),
            Err(_) => first.trim().to_owned(),
        };
        assert!(
            (url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"))
                && !url.ends_with(":0"),
            "first line is not the URL: {first:?}\nstderr: {}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
        Self {
            child,
            url,
            rest_of_stdout: rest_rx,
            stderr_path,
            _dir: dir,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `--token-url`, `--tokeninfo-url` and `--api-url` (the Gmail profile) pointed at this
    /// serve, for a mode that refreshes stored credentials against it.
    pub(crate) fn endpoint_args(&self) -> [String; 6] {
        [
            "--token-url".into(),
            self.url("/token"),
            "--tokeninfo-url".into(),
            self.url("/tokeninfo"),
            "--api-url".into(),
            self.url("/gmail/v1/users/me/profile"),
        ]
    }

    pub(crate) fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (TERM or INT) and waits for the process to end.
    pub(crate) fn stop(mut self, signal: &str) -> Run {
        let sent = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -s {signal} failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop on SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: format!(
                "{}\n{}",
                self.url,
                self.rest_of_stdout
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_default()
            ),
            stderr: std::fs::read_to_string(&self.stderr_path).unwrap_or_default(),
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

pub(crate) async fn admin_get(serve: &Serve, path: &str) -> (u16, Value) {
    let r = http()
        .get(serve.url(&format!("/__admin/{path}")))
        .send()
        .await
        .expect("admin GET");
    let status = r.status().as_u16();
    (status, r.json().await.expect("admin answers JSON"))
}

pub(crate) async fn admin_post(serve: &Serve, path: &str, body: Value) -> (u16, Value) {
    let r = http()
        .post(serve.url(&format!("/__admin/{path}")))
        .json(&body)
        .send()
        .await
        .expect("admin POST");
    let status = r.status().as_u16();
    (status, r.json().await.expect("admin answers JSON"))
}

/// Mints a refresh token for `client` (registering it with `secret`) at the admin API; returns
/// the token and an `authorized_user` file holding it, ready for `--mode import`.
pub(crate) async fn mint_authorized_user(
    serve: &Serve,
    client: &str,
    secret: &str,
) -> (String, String) {
    let (status, minted) = admin_post(
        serve,
        "refresh-tokens",
        json!({"client_id": client, "client_secret": secret}),
    )
    .await;
    assert_eq!(status, 201, "{minted}");
    let token = str_of(&minted, "refresh_token").to_owned();
    let file = json!({"type": "authorized_user", "client_id": client,
                      "client_secret": secret, "refresh_token": token})
    .to_string();
    (token, file)
}

/// A refresh with body credentials: (status, JSON body).
pub(crate) async fn refresh(
    serve: &Serve,
    refresh_token: &str,
    client_id: &str,
    secret: &str,
) -> (u16, Value) {
    let r = http()
        .post(serve.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .expect("token request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("token endpoint answers JSON"))
}

pub(crate) async fn api_status(serve: &Serve, access_token: &str) -> u16 {
    http()
        .get(serve.url("/gmail/v1/users/me/profile"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("API call")
        .status()
        .as_u16()
}

/// A worker-sim JSON report against serve: judged from serve's journal, and every invariant
/// of that judgement held.
pub(crate) fn assert_journal_judged_and_held(v: &Value) {
    assert_eq!(
        v["judged_from"],
        "the mock's journal (/__admin/requests) and this process's counts"
    );
    for name in [
        "one refresh per credential per expiry",
        "no token request after invalid_grant",
        "no request presents a superseded refresh token",
        "no job fails",
    ] {
        assert_eq!(invariant(v, name)["held"], true, "{v}");
    }
}

/// The invariant named `name` in a worker-sim JSON report.
pub(crate) fn invariant<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["invariants"]
        .as_array()
        .expect("invariants")
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no invariant {name:?} in {v}"))
}

pub(crate) fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

/// Sends raw bytes and reads whatever comes back until the server closes or 5 s pass.
pub(crate) fn raw_exchange(port: u16, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
