//! Faults on the way: a token endpoint that hangs or resets connections, a database that goes
//! away mid-run, a disk that fills up. Each must end in a clear error within a bounded time and
//! a non-zero exit, with no panic, nothing half-written, and no token lost: the stored refresh
//! token is still the one the mock Google accepts.
//!
//! The hostile token endpoints are raw TCP listeners on 127.0.0.1 that this test controls; the
//! mock Google that answers everything else (and is asked afterwards whether the stored token
//! still works) is a separate `oauthtest --mode serve` in its `success` scenario (no rotation, as
//! Google does).

use crate::serve::{admin_post, refresh, Serve};
use crate::support::*;
use oauthtest::crypto::{EncryptionKey, Keyring};
use oauthtest::store::Store;
use secrecy::ExposeSecret;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The request timeout the hanging-endpoint tests configure.
const TIMEOUT_MS: u64 = 400;
/// `real`'s tries and the backoffs between them (1 s, then 2 s, ±10 %).
const ATTEMPTS: usize = 3;
const BACKOFFS: Duration = Duration::from_millis(3300);

/// One stored credential whose refresh token the mock issued.
struct Seeded {
    db: TestDb,
    key: String,
    client: String,
    secret: String,
    refresh_token: String,
}

impl Seeded {
    async fn new(db: TestDb, serve: &Serve) -> Self {
        let key = new_key(db.path());
        let (client, secret) = ("fault-client.apps.googleusercontent.com", "fault-secret");
        let (status, minted) = admin_post(
            serve,
            "refresh-tokens",
            json!({"client_id": client, "client_secret": secret}),
        )
        .await;
        assert_eq!(status, 201, "{minted}");
        let refresh_token = minted["refresh_token"].as_str().expect("token").to_owned();
        let file = json!({"type": "authorized_user", "client_id": client,
                          "client_secret": secret, "refresh_token": refresh_token})
        .to_string();
        let mut cmd = db.cmd();
        cmd.env("OAUTHTEST_ENCRYPTION_KEY", &key);
        run(cmd, &["--mode", "import", "--file", "-"], Some(&file)).assert_code(0);
        Self {
            db,
            key,
            client: client.into(),
            secret: secret.into(),
            refresh_token,
        }
    }

    fn cmd(&self) -> std::process::Command {
        let mut c = self.db.cmd();
        c.env("OAUTHTEST_ENCRYPTION_KEY", &self.key);
        c
    }

    /// The stored credential still holds the refresh token it was given, whole, active, and the
    /// mock still accepts that token.
    async fn assert_token_kept(&self, serve: &Serve) {
        let keyring = Keyring::new(EncryptionKey::from_base64(&self.key).unwrap(), vec![]);
        let store = Store::connect(&self.db.url).await.expect("store");
        let rows = store.list().await.expect("list");
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        let secrets = row
            .decrypt(&keyring)
            .expect("the credential still decrypts");
        assert_eq!(
            secrets.refresh_token.as_ref().map(|t| t.expose_secret()),
            Some(self.refresh_token.as_str()),
            "the stored refresh token changed"
        );
        assert_eq!(row.state, "active");
        assert!(row.lease_owner.is_none(), "a lease was left behind");
        let history = store.history(row.id).await.expect("history");
        assert_eq!(i64::try_from(history.len()).unwrap(), row.version);
        store.close().await;
        let (status, body) = refresh(serve, &self.refresh_token, &self.client, &self.secret).await;
        assert_eq!(
            status, 200,
            "the mock no longer accepts the stored token: {body}"
        );
    }

    fn real_against(&self, serve: &Serve, token_url: &str) -> (Run, Duration) {
        let started = Instant::now();
        let r = run(
            self.cmd(),
            &[
                "--mode",
                "real",
                "--credential-id",
                "1",
                "--token-url",
                token_url,
                "--tokeninfo-url",
                &serve.url("/tokeninfo"),
                "--api-url",
                &serve.url("/gmail/v1/users/me/profile"),
                "--request-timeout-ms",
                &TIMEOUT_MS.to_string(),
            ],
            None,
        );
        (r, started.elapsed())
    }
}

/// How a hostile endpoint treats each connection.
#[derive(Clone, Copy)]
enum Hostile {
    /// Accepts and never reads or answers.
    Silent,
    /// Reads the request, sends the status line, headers and part of the body, then stalls.
    StallsMidResponse,
    /// Reads the request, then resets the connection (SO_LINGER 0: an RST, not a FIN).
    Resets,
}

/// Starts a hostile endpoint; returns its token URL and a count of connections accepted.
async fn hostile(kind: Hostile) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/token", listener.local_addr().expect("addr"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            match kind {
                Hostile::Silent => held.push(socket),
                Hostile::StallsMidResponse | Hostile::Resets => {
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        let _ = socket.read(&mut buf).await;
                        if matches!(kind, Hostile::Resets) {
                            let _ = socket.set_zero_linger();
                            drop(socket);
                            return;
                        }
                        let _ = socket
                            .write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                  content-length: 900\r\n\r\n{\"access_token\": \"ya29.a0",
                            )
                            .await;
                        tokio::time::sleep(Duration::from_secs(120)).await;
                        drop(socket);
                    });
                }
            }
        }
    });
    (url, accepted)
}

/// `real` against a hostile endpoint: a bounded wait, every try used, a clear error, exit 1
/// (the check failed), the stored token untouched and still good at the mock.
async fn hostile_endpoint_is_survived(kind: Hostile, what: &str) {
    let serve = Serve::start(&["--scenario", "success", "--log", "warn"]);
    let seeded = Seeded::new(TestDb::sqlite(), &serve).await;
    let (url, accepted) = hostile(kind).await;
    let (r, took) = seeded.real_against(&serve, &url);
    r.assert_code(1);
    assert!(
        r.stdout.contains("retry later") && r.stdout.contains(what),
        "the report lacks \"retry later\" or {what:?}\n{r}"
    );
    assert!(!r.stderr.contains("panicked"), "{r}");
    assert_eq!(accepted.load(Ordering::SeqCst), ATTEMPTS, "{r}");
    let waited = Duration::from_millis(TIMEOUT_MS) * ATTEMPTS as u32;
    let bound = BACKOFFS
        + Duration::from_secs(4)
        + if matches!(kind, Hostile::Resets) {
            Duration::ZERO
        } else {
            waited
        };
    assert!(took < bound, "took {took:?}, bound {bound:?}\n{r}");
    if !matches!(kind, Hostile::Resets) {
        assert!(took >= waited, "took {took:?}: did it wait at all?\n{r}");
    }
    println!(
        "faults: {what}: exit 1 after {} ms, {ATTEMPTS} tries",
        took.as_millis()
    );
    assert_no_secrets(
        &format!("{}{}", r.stdout, r.stderr),
        &[&seeded.refresh_token],
    );
    seeded.assert_token_kept(&serve).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_that_never_answers_costs_three_request_timeouts_then_retry_later() {
    hostile_endpoint_is_survived(Hostile::Silent, "no complete response within 400ms").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_that_stalls_mid_response_is_cut_off_at_the_request_timeout() {
    hostile_endpoint_is_survived(
        Hostile::StallsMidResponse,
        "no complete response within 400ms",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_resets_are_retried_three_times_then_retry_later_with_the_token_kept() {
    hostile_endpoint_is_survived(Hostile::Resets, "Connection reset by peer").await;
}
