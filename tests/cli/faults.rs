//! Faults on the way: a token endpoint that hangs or resets connections, a database that goes
//! away mid-run, a disk that fills up. Each must end in a clear error within a bounded time and
//! a non-zero exit, with no panic, nothing half-written, and no token lost: the stored refresh
//! token is still the one the mock Google accepts.
//!
//! The hostile token endpoints are raw TCP listeners on 127.0.0.1 that this test controls; the
//! mock Google that answers everything else (and is asked afterwards whether the stored token
//! still works) is a separate `oauthtest --mode serve` in its `success` scenario (no rotation, as
//! Google does).

use crate::support::serve::{admin_get, mint_authorized_user, refresh, Serve};
use crate::support::*;
use oauthtest::crypto::{EncryptionKey, Keyring};
use oauthtest::store::Store;
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
        let (refresh_token, file) = mint_authorized_user(serve, client, secret).await;
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
    async fn assert_token_kept(&self, serve: &Serve, killed: bool) {
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
        assert!(
            killed || row.lease_owner.is_none(),
            "a lease was left behind"
        );
        assert_eq!(row.lease_owner.is_some(), row.lease_expires_at_ms.is_some());
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
    seeded.assert_token_kept(&serve, false).await;
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

/// Starts worker-sim on `seeded`'s credential against `serve`, the mock clock jumping an hour
/// every 100 ms so refreshes keep coming; stdout and stderr go to files in the store's folder.
fn worker_sim_against(
    seeded: &Seeded,
    serve: &Serve,
) -> (std::process::Child, tokio::task::JoinHandle<()>) {
    let dir = seeded.db.path();
    let mut cmd = seeded.cmd();
    cmd.args([
        "--mode",
        "worker-sim",
        "--workers",
        "4",
        "--jobs",
        "100000000",
    ])
    .args(["--credential-id", "1"])
    .args(serve.endpoint_args())
    .stdin(std::process::Stdio::null())
    .stdout(std::fs::File::create(dir.join("out.log")).expect("stdout file"))
    .stderr(std::fs::File::create(dir.join("err.log")).expect("stderr file"));
    let ticker = crate::crash::clock_ticker(serve);
    (cmd.spawn().expect("spawn worker-sim"), ticker)
}

/// Waits at most `limit` for `child`; kills it past that. Returns its run and how long it took.
fn wait_bounded(
    mut child: std::process::Child,
    dir: &std::path::Path,
    limit: Duration,
) -> (Run, Duration) {
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status.code().unwrap_or(-1);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break -9;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    (
        Run {
            code,
            stdout: read("out.log"),
            stderr: read("err.log"),
        },
        started.elapsed(),
    )
}

async fn admin_sql(sql: String) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .expect("admin connection");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut c)
        .await
        .expect("admin statement");
    let _ = c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    oauthtest_no_postgres,
    ignore = "PostgreSQL did not answer when the tests were built (start it, then `touch build.rs`)"
)]
async fn postgres_gone_mid_run_stops_worker_sim_with_a_clear_error_and_no_lost_token() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let name = db.url.rsplit('/').next().expect("database name").to_owned();
    let serve = Serve::start(&["--scenario", "success", "--log", "warn"]);
    let seeded = Seeded::new(db, &serve).await;
    let (child, ticker) = worker_sim_against(&seeded, &serve);
    tokio::time::sleep(Duration::from_millis(800)).await;
    admin_sql(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
    admin_sql(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .await;
    let gone = Instant::now();
    let dir = seeded.db.path().to_owned();
    let (r, _) =
        tokio::task::spawn_blocking(move || wait_bounded(child, &dir, Duration::from_secs(60)))
            .await
            .expect("wait");
    let took = gone.elapsed();
    ticker.abort();
    admin_sql(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    println!(
        "faults: postgres gone: exit {} after {} ms: {}",
        r.code,
        took.as_millis(),
        r.stderr.trim()
    );
    r.assert_code(2);
    r.assert_stderr_has(&format!("database {}", seeded.db.url));
    assert!(!r.stderr.contains("panicked"), "{r}");
    assert!(took < Duration::from_secs(20), "took {took:?}\n{r}");
    seeded.assert_token_kept(&serve, true).await;
}

/// SQLite cannot notice its file being moved while it is open (the open file lives on, as POSIX
/// says): the run goes on writing to the moved file, and nothing is lost once it is moved back.
/// PostgreSQL's test above is the one where the database really goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_moved_away_mid_run_keeps_every_write_of_the_run() {
    let serve = Serve::start(&["--scenario", "success", "--log", "warn"]);
    let seeded = Seeded::new(TestDb::sqlite(), &serve).await;
    let (mut child, ticker) = worker_sim_against(&seeded, &serve);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let dir = seeded.db.path().to_owned();
    let files = ["store.db", "store.db-wal", "store.db-shm"];
    let (_, before) = admin_get(&serve, "requests?endpoint=token").await;
    for f in files {
        let _ = std::fs::rename(dir.join(f), dir.join(format!("{f}.away")));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let still_running = child.try_wait().expect("try_wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    ticker.abort();
    for f in files {
        let _ = std::fs::rename(dir.join(format!("{f}.away")), dir.join(f));
    }
    let (_, after) = admin_get(&serve, "requests?endpoint=token").await;
    let refreshes = |v: &serde_json::Value| v["count"].as_u64().unwrap_or(0);
    assert!(
        still_running,
        "worker-sim stopped: {}",
        std::fs::read_to_string(dir.join("err.log")).unwrap_or_default()
    );
    assert!(
        refreshes(&after) > refreshes(&before),
        "no refresh happened while the file was away"
    );
    println!(
        "faults: sqlite file moved away: the run went on ({} refreshes while away); store whole after",
        refreshes(&after) - refreshes(&before)
    );
    seeded.assert_token_kept(&serve, true).await;
}

/// The disk-full test's work, run inside a private mount namespace on a 256 KiB tmpfs (so the
/// real ENOSPC path is taken, and the mount vanishes with the namespace): create the store,
/// fill the disk but for 128 KiB, import until an import fails, then run worker-sim on the full
/// disk; copy the store out for the checks.
const DISK_FULL_SCRIPT: &str = r#"
set -u
mount -t tmpfs -o size=256k tmpfs "$MNT" || exit 97
export DATABASE_URL="sqlite://$MNT/store.db"
"$BIN" --mode import --file "$OUT/cred.json" > /dev/null 2> "$OUT/first.err" || exit 98
dd if=/dev/zero of="$MNT/filler" bs=4k 2> /dev/null
truncate -s -128K "$MNT/filler"
ok=0
while [ "$ok" -lt 500 ]; do
  "$BIN" --mode import --file "$OUT/cred.json" > /dev/null 2> "$OUT/full.err"
  code=$?
  [ "$code" -ne 0 ] && break
  ok=$((ok + 1))
done
echo "$ok $code" > "$OUT/imports"
start=$(date +%s%N)
timeout 60 "$BIN" --mode worker-sim --credential-id 1 --workers 4 --jobs 20 \
  --token-url "$SERVE/token" --tokeninfo-url "$SERVE/tokeninfo" \
  --api-url "$SERVE/gmail/v1/users/me/profile" > /dev/null 2> "$OUT/ws.err"
echo "$? $(( ($(date +%s%N) - start) / 1000000 ))" > "$OUT/ws"
cp "$MNT"/store.db* "$OUT/"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_clear_sqlite_full_error_and_nothing_is_half_written() {
    let serve = Serve::start(&["--scenario", "success", "--log", "warn"]);
    let db = TestDb::sqlite();
    let key = new_key(db.path());
    let (client, secret) = ("disk-client.apps.googleusercontent.com", "disk-secret");
    let (refresh_token, file) = mint_authorized_user(&serve, client, secret).await;
    db.write("cred.json", &file);
    let mnt = tempfile::tempdir().expect("mount point");
    let namespace = |args: &[&str]| {
        let mut c = oauthtest_cmd(db.path());
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(args)
            .args(["sh", "-c", DISK_FULL_SCRIPT])
            .current_dir(db.path())
            .env_clear()
            .envs(
                c.get_envs()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
            )
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("BIN", c.get_program())
            .env("MNT", mnt.path())
            .env("OUT", db.path())
            .env("SERVE", serve.url(""))
            .env("OAUTHTEST_ENCRYPTION_KEY", &key);
        c.env_clear();
        run(cmd, &[], None)
    };
    // As root a private mount namespace is enough; otherwise a user namespace maps us to root.
    let mut r = namespace(&["-m", "--propagation", "private"]);
    if r.code != 0 {
        r = namespace(&["-r", "-m", "--propagation", "private"]);
    }
    if r.code != 0 {
        assert!(
            std::env::var_os("CI").is_none(),
            "no private tmpfs can be mounted here (unshare and mount), which CI needs\n{r}"
        );
        skipped(&format!(
            "disk-full test: cannot mount a private tmpfs here\n{r}"
        ));
        return;
    }
    let read = |name: &str| std::fs::read_to_string(db.path().join(name)).unwrap_or_default();
    let imports = read("imports");
    let (ok, code) = imports
        .split_once(' ')
        .map(|(a, b)| (a.trim().parse::<i64>().unwrap(), b.trim().to_owned()))
        .unwrap_or_else(|| panic!("imports: {imports:?}"));
    let full = read("full.err");
    assert_eq!(code, "2", "the import that hit the full disk: {full}");
    assert!(ok < 500, "the disk never filled up");
    assert!(full.contains("database or disk is full"), "{full}");
    assert!(
        full.contains(&format!(
            "database sqlite://{}",
            mnt.path().join("store.db").display()
        )),
        "{full}"
    );
    let ws = read("ws");
    let ws_err = read("ws.err");
    let (ws_code, ws_ms) = ws
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("ws: {ws:?}"));
    assert_eq!(ws_code, "2", "worker-sim on a full disk: {ws_err}");
    assert!(ws_err.contains("database or disk is full"), "{ws_err}");
    for text in [&full, &ws_err] {
        assert!(!text.contains("panicked"), "{text}");
        assert_no_secrets(text, &[&refresh_token]);
    }
    println!(
        "faults: disk full: {} imports fit in 128 KiB, the next exited 2 ({}); worker-sim exited 2 after {ws_ms} ms ({})",
        ok,
        full.trim(),
        ws_err.lines().last().unwrap_or_default()
    );

    // The copy taken on the full disk: every committed import whole, nothing of the failed one.
    let keyring = Keyring::new(EncryptionKey::from_base64(&key).unwrap(), vec![]);
    let store = Store::connect(&db.url)
        .await
        .expect("the copied store opens");
    let rows = store.list().await.expect("list");
    assert_eq!(
        i64::try_from(rows.len()).unwrap(),
        ok + 1,
        "rows: one per import that succeeded"
    );
    for row in &rows {
        let secrets = row.decrypt(&keyring).expect("every row decrypts");
        assert_eq!(
            secrets.refresh_token.as_ref().map(|t| t.expose_secret()),
            Some(refresh_token.as_str())
        );
        let history = store.history(row.id).await.expect("history");
        assert_eq!(i64::try_from(history.len()).unwrap(), row.version);
        assert_eq!(row.lease_owner.is_some(), row.lease_expires_at_ms.is_some());
        assert_eq!(row.state, "active");
    }
    store.close().await;
    let (status, body) = refresh(&serve, &refresh_token, client, secret).await;
    assert_eq!(
        status, 200,
        "the stored token still works at the mock: {body}"
    );
}
