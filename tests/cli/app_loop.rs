//! The application in the loop: `force-expire --trigger-cmd` / `--trigger-url` on the
//! application's own store, with the reference application (`examples/refapp`: its own
//! Fernet-sealed `credentials` table, google-auth, a Celery worker on Redis) refreshing against a
//! running `oauthtest --mode serve`, on SQLite and PostgreSQL. Step 4 judges the row the
//! application left: it passes on the right variant and fails, naming what was expected and what
//! was found, on the naive ones, on a trigger that fails or hangs, and when the user must
//! reconnect. No key, token or client secret appears in any output.

use crate::support::serve::{admin_post, http, Serve};
use crate::support::*;
use serde_json::{json, Value};
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A test module running `$body(TestDb)` on SQLite and on PostgreSQL, ignored when the tests were
/// built off CI without the reference application's Python packages (see build.rs).
macro_rules! on_refapp_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            #[cfg_attr(oauthtest_no_refapp, ignore = "python3 lacks the reference application's packages (google-auth, cryptography, celery[redis], psycopg): pip install them, then `touch build.rs`")]
            async fn sqlite() {
                super::$body($crate::support::TestDb::sqlite()).await
            }
            #[tokio::test]
            #[cfg_attr(any(oauthtest_no_postgres, oauthtest_no_refapp), ignore = "PostgreSQL or the reference application's Python packages were missing when the tests were built")]
            async fn postgres() {
                if let Some(db) = $crate::support::TestDb::postgres().await {
                    super::$body(db).await
                }
            }
        }
    };
}

const GMAIL_RO: &str = "https://www.googleapis.com/auth/gmail.readonly";
const CLIENT: &str = "refapp-test.apps.googleusercontent.com";

fn refapp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/refapp")
}

fn refapp_main() -> String {
    refapp_dir().join("main.py").display().to_string()
}

/// Whether Redis answers (the Celery test needs it); under CI its absence fails the test.
fn redis_answers() -> bool {
    let ok = std::net::TcpStream::connect("127.0.0.1:6379").is_ok();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "Redis is required in CI (.ci/run starts it) but 127.0.0.1:6379 does not answer"
        );
        skipped("refapp Celery test: Redis does not answer on 127.0.0.1:6379");
    }
    ok
}

/// The reference application's store with one Google row, and the serve it refreshes at.
struct RefApp {
    db: TestDb,
    serve: Serve,
    key: String,
    id: String,
    refresh_token: String,
}

impl RefApp {
    /// `python3 examples/refapp/main.py …` with the application's environment.
    fn app(&self) -> Command {
        let mut c = Command::new("python3");
        c.arg(refapp_main())
            .current_dir(self.db.path())
            .env("REFAPP_DATABASE_URL", &self.db.url)
            .env("APP_ENCRYPTION_KEY", &self.key)
            .env("OAUTHTEST_TOKEN_URL", self.serve.url("/token"))
            .env(
                "OAUTHTEST_API_URL",
                self.serve.url("/gmail/v1/users/me/profile"),
            )
            .env_remove("REFAPP_VARIANT");
        c
    }

    /// oauthtest on the application's store, pointed at serve, the application's variables set
    /// (the trigger inherits them).
    fn oauthtest(&self, variant: &str) -> Command {
        let mut c = self.db.cmd();
        c.env("APP_ENCRYPTION_KEY", &self.key)
            .env("REFAPP_VARIANT", variant)
            .env("OAUTHTEST_TOKEN_URL", self.serve.url("/token"))
            .env("OAUTHTEST_TOKENINFO_URL", self.serve.url("/tokeninfo"))
            .env(
                "OAUTHTEST_API_URL",
                self.serve.url("/gmail/v1/users/me/profile"),
            );
        c
    }

    /// `force-expire --store-config examples/refapp/oauthtest.toml --credential-id ID` plus
    /// `extra`, as JSON.
    fn force_expire(&self, variant: &str, extra: &[&str]) -> Run {
        let config = refapp_dir().join("oauthtest.toml").display().to_string();
        let mut args = vec![
            "--mode",
            "force-expire",
            "--store-config",
            &config,
            "--credential-id",
            &self.id,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let r = run(self.oauthtest(variant), &args, None);
        self.assert_clean(&r);
        r
    }

    /// The row as the application reads it: status and expiry (its own `show`).
    fn show(&self) -> Value {
        let r = run(self.app(), &["show", "--credential-id", &self.id], None);
        r.assert_code(0);
        r.json()
    }

    #[track_caller]
    fn assert_clean(&self, r: &Run) {
        let all = format!("{}\n{}", r.stdout, r.stderr);
        assert_no_secrets(&all, &[&self.key, &self.refresh_token]);
        assert!(!all.contains("ya29."), "an access token leaked:\n{all}");
        assert!(!all.contains("1//"), "a refresh token leaked:\n{all}");
    }
}

/// Starts serve (with `serve_args`), creates the application's table with its own `init-db`
/// and seeds one row with its own `seed`: a refresh token minted at serve.
async fn refapp(db: TestDb, serve_args: &[&str]) -> RefApp {
    let serve = Serve::start(serve_args);
    let (status, minted) = admin_post(
        &serve,
        "refresh-tokens",
        json!({"client_id": CLIENT, "client_secret": PLANTED_CLIENT_SECRET, "scopes": [GMAIL_RO]}),
    )
    .await;
    assert_eq!(status, 201, "{minted}");
    let refresh_token = minted["refresh_token"].as_str().unwrap().to_owned();
    let key = fernet_key();
    let mut fx = RefApp {
        db,
        serve,
        key,
        id: String::new(),
        refresh_token,
    };
    run(fx.app(), &["init-db"], None).assert_code(0);
    let payload = json!({
        "access_token": PLANTED_ACCESS,
        "refresh_token": fx.refresh_token,
        "expiry": "2026-11-01T10:00:00+00:00",
        "client_id": CLIENT,
        "client_secret": PLANTED_CLIENT_SECRET,
        "scopes": [GMAIL_RO],
    });
    let seeded = run(
        fx.app(),
        &["seed", "--user-id", "7", "--name", "Test Gmail"],
        Some(&payload.to_string()),
    );
    seeded.assert_code(0);
    fx.id = seeded.stdout.trim().to_owned();
    fx
}

fn fernet_key() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())",
        ])
        .output()
        .expect("python3");
    assert!(out.status.success(), "python3 cryptography is required");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn step<'a>(report: &'a Value, prefix: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no step {prefix}: {report}"))
}

#[track_caller]
fn assert_step(report: &Value, prefix: &str, status: &str, wants: &[&str]) {
    let s = step(report, prefix);
    assert_eq!(s["status"], status, "step {prefix}: {report:#}");
    let detail = s["detail"].as_str().unwrap();
    for want in wants {
        assert!(
            detail.contains(want),
            "step {prefix} lacks {want:?}: {detail}"
        );
    }
}

fn trigger(cmd: &str) -> String {
    format!("python3 {} {cmd}", refapp_main())
}

// ---------------------------------------------------------------------------------------------

async fn the_right_variant_passes_and_its_row_holds_a_working_token(db: TestDb) {
    let fx = refapp(db, &[]).await;
    let r = fx.force_expire("right", &["--trigger-cmd", &trigger("refresh")]);
    r.assert_code(0);
    let report = r.json();
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["trigger"], "cmd");
    assert_step(&report, "2 ", "pass", &["1m in the past"]);
    assert_step(&report, "3 ", "pass", &["exited with status 0"]);
    assert_step(
        &report,
        "4 ",
        "pass",
        &["a new one", "ahead", "kept) is the live one", "tokeninfo"],
    );
    assert_eq!(report["after"]["expired"], false);
    let row = fx.show();
    assert_eq!(row["status"], "active", "{row}");

    let text = run(
        fx.oauthtest("right"),
        &[
            "--mode",
            "force-expire",
            "--store-config",
            &refapp_dir().join("oauthtest.toml").display().to_string(),
            "--credential-id",
            &fx.id,
            "--trigger-cmd",
            &trigger("refresh"),
        ],
        None,
    );
    text.assert_code(0);
    fx.assert_clean(&text);
    assert!(
        text.stdout
            .contains("PASS: the application refreshed it and stored a working token"),
        "{text}"
    );
}
on_refapp_backends!(
    right_variant,
    the_right_variant_passes_and_its_row_holds_a_working_token
);

async fn a_naive_variant_that_loses_the_rotated_refresh_token_fails_naming_it(db: TestDb) {
    let fx = refapp(db, &["--scenario", "rotation"]).await;
    let r = fx.force_expire("naive", &["--trigger-cmd", &trigger("refresh")]);
    r.assert_code(1);
    let report = r.json();
    assert_eq!(report["passed"], false);
    assert_step(&report, "3 ", "pass", &["status 0"]);
    assert_step(
        &report,
        "4 ",
        "fail",
        &[
            "expected the live refresh token in the row",
            "superseded",
            "did not save the rotated refresh token",
        ],
    );
    // The right variant saves the rotated one.
    let fx = refapp(TestDb::sqlite(), &["--scenario", "rotation"]).await;
    let r = fx.force_expire("right", &["--trigger-cmd", &trigger("refresh")]);
    r.assert_code(0);
    assert_step(&r.json(), "4 ", "pass", &["(rotated) is the live one"]);
}
on_refapp_backends!(
    naive_variant,
    a_naive_variant_that_loses_the_rotated_refresh_token_fails_naming_it
);

async fn a_variant_that_never_writes_back_fails_on_the_expired_token(db: TestDb) {
    let fx = refapp(db, &[]).await;
    let r = fx.force_expire("no-writeback", &["--trigger-cmd", &trigger("refresh")]);
    r.assert_code(1);
    let report = r.json();
    assert_step(&report, "3 ", "pass", &["status 0"]);
    assert_step(
        &report,
        "4 ",
        "fail",
        &[
            "expected a new access token in the row, found the expired one",
            "did not write a refreshed token back",
            "expected an expiry ahead",
        ],
    );
    assert_eq!(report["after"]["expired"], true);
}
on_refapp_backends!(
    no_writeback,
    a_variant_that_never_writes_back_fails_on_the_expired_token
);

async fn invalid_grant_the_right_variant_marks_the_row_and_the_user_must_reconnect(db: TestDb) {
    let fx = refapp(db, &[]).await;
    let revoked = http()
        .post(fx.serve.url("/revoke"))
        .form(&[("token", fx.refresh_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let r = fx.force_expire("right", &["--trigger-cmd", &trigger("refresh")]);
    r.assert_code(1);
    let report = r.json();
    assert_step(
        &report,
        "3 ",
        "fail",
        &["expected CMD to exit with status 0", "status 3"],
    );
    assert_step(
        &report,
        "4 ",
        "fail",
        &["expected the row active with a new token, found it marked \"must reconnect\""],
    );
    assert!(
        report["action"]
            .as_str()
            .unwrap()
            .contains("The user must reconnect"),
        "{report:#}"
    );
    assert_eq!(fx.show()["status"], "needs_reconnect");
    // CMD's stderr is shown on failure, redacted.
    assert!(
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "CMD stderr"
                && s["detail"].as_str().unwrap().contains("needs_reconnect")),
        "{report:#}"
    );
    // The naive variant retries and never marks the row: the user is never told.
    let fx = refapp(TestDb::sqlite(), &[]).await;
    http()
        .post(fx.serve.url("/revoke"))
        .form(&[("token", fx.refresh_token.as_str())])
        .send()
        .await
        .unwrap();
    let r = fx.force_expire("naive", &["--trigger-cmd", &trigger("refresh")]);
    r.assert_code(1);
    let report = r.json();
    assert_step(&report, "4 ", "fail", &["found the expired one"]);
    assert_eq!(fx.show()["status"], "active", "naive never marks");
}
on_refapp_backends!(
    invalid_grant,
    invalid_grant_the_right_variant_marks_the_row_and_the_user_must_reconnect
);

async fn a_trigger_that_fails_or_hangs_fails_step_3_and_hides_secrets(db: TestDb) {
    let fx = refapp(db, &[]).await;
    let leaky = format!(
        "echo \"refreshing with {} and ya29.SOMETHING-ELSE\" >&2; exit 4",
        fx.refresh_token
    );
    let r = fx.force_expire("right", &["--trigger-cmd", &leaky]);
    r.assert_code(1);
    let report = r.json();
    assert_step(
        &report,
        "3 ",
        "fail",
        &["expected CMD to exit with status 0, it exited with status 4"],
    );
    assert_step(&report, "4 ", "fail", &["found the expired one"]);
    assert!(
        r.stdout
            .contains("refreshing with [redacted] and [redacted]"),
        "{r}"
    );

    let r = fx.force_expire(
        "right",
        &["--trigger-cmd", "sleep 30", "--trigger-timeout", "1"],
    );
    r.assert_code(1);
    assert_step(
        &r.json(),
        "3 ",
        "fail",
        &["expected CMD to finish within 1 s (--trigger-timeout); it was killed"],
    );
}
on_refapp_backends!(
    failing_trigger,
    a_trigger_that_fails_or_hangs_fails_step_3_and_hides_secrets
);

/// A small HTTP server (Python's http.server) standing for the application's staging endpoint:
/// a POST runs the refresh job for the posted credential id; 200 when its outcome is ok.
struct Endpoint {
    child: Child,
    url: String,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ENDPOINT_PY: &str = r#"
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
sys.path.insert(0, sys.argv[1])
from refapp import job

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        endpoints = {"OAUTHTEST_TOKEN_URL": body["token_url"], "OAUTHTEST_API_URL": body["api_url"]}
        status = int(sys.argv[2]) or (200 if job.run(body["credential_id"], endpoints)["outcome"] == "ok" else 500)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// Starts the endpoint with the application's environment; `status` 0 runs the job, anything
/// else is answered without running it.
fn endpoint(fx: &RefApp, variant: &str, status: u16) -> Endpoint {
    let mut c = Command::new("python3");
    c.args([
        "-c",
        ENDPOINT_PY,
        &refapp_dir().display().to_string(),
        &status.to_string(),
    ])
    .env("REFAPP_DATABASE_URL", &fx.db.url)
    .env("APP_ENCRYPTION_KEY", &fx.key)
    .env("REFAPP_VARIANT", variant)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = c.spawn().expect("python3 http.server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    Endpoint {
        child,
        url: format!(
            "http://127.0.0.1:{}/run-workflow?secret=do-not-show",
            line.trim()
        ),
    }
}

async fn a_trigger_url_runs_the_workflow_and_is_judged_the_same_way(db: TestDb) {
    let fx = refapp(db, &[]).await;
    let app = endpoint(&fx, "right", 0);
    let r = fx.force_expire("right", &["--trigger-url", &app.url]);
    r.assert_code(0);
    let report = r.json();
    assert_eq!(report["trigger"], "url");
    assert_step(&report, "3 ", "pass", &["answered 200"]);
    assert_step(&report, "4 ", "pass", &["a new one", "is the live one"]);
    assert!(
        !r.stdout.contains("do-not-show"),
        "the URL's query is not shown: {r}"
    );

    let broken = endpoint(&fx, "right", 500);
    let r = fx.force_expire("right", &["--trigger-url", &broken.url]);
    r.assert_code(1);
    assert_step(
        &r.json(),
        "3 ",
        "fail",
        &["expected a 2xx answer from POST", "got 500"],
    );

    let writes_nothing = endpoint(&fx, "no-writeback", 0);
    let r = fx.force_expire("right", &["--trigger-url", &writes_nothing.url]);
    r.assert_code(1);
    assert_step(&r.json(), "4 ", "fail", &["found the expired one"]);

    drop(broken);
    let gone = "http://127.0.0.1:9/nobody-listens";
    let r = fx.force_expire("right", &["--trigger-url", gone]);
    r.assert_code(1);
    assert_step(&r.json(), "3 ", "fail", &["could not reach it"]);
}
on_refapp_backends!(
    trigger_url,
    a_trigger_url_runs_the_workflow_and_is_judged_the_same_way
);

async fn celery_workers_refresh_the_expired_row_once_and_pass(db: TestDb) {
    if !redis_answers() {
        return;
    }
    let fx = refapp(db, &[]).await;
    let r = fx.force_expire(
        "right",
        &[
            "--trigger-cmd",
            &trigger("run-jobs --credential-ids \"$OAUTHTEST_CREDENTIAL_ID\" --jobs 8 --workers 4"),
            "--trigger-timeout",
            "120",
        ],
    );
    r.assert_code(0);
    assert_step(&r.json(), "4 ", "pass", &["is the live one"]);
    let (_, journal) = crate::support::serve::admin_get(&fx.serve, "requests?endpoint=token").await;
    let refreshes = journal["requests"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_default();
    assert_eq!(
        refreshes, 1,
        "eight jobs, one refresh under the lock: {journal}"
    );
}
on_refapp_backends!(celery, celery_workers_refresh_the_expired_row_once_and_pass);

#[test]
fn trigger_flags_are_refused_where_they_cannot_work() {
    let db = TestDb::sqlite();
    for (args, want) in [
        (
            vec!["--credential-id", "1", "--trigger-cmd", "true"],
            "work on your application's own store: give --store-config",
        ),
        (
            vec!["--credential-id", "1", "--trigger-timeout", "5"],
            "--trigger-timeout goes with --trigger-cmd CMD or --trigger-url URL",
        ),
        (
            vec![
                "--credential-id",
                "1",
                "--trigger-cmd",
                "true",
                "--no-refresh",
            ],
            "--no-refresh and --trigger-cmd/--trigger-url contradict each other",
        ),
        (
            vec![
                "--credential-id",
                "1",
                "--trigger-url",
                "ftp://example.test/x",
            ],
            "--trigger-url: expected an http:// or https:// URL",
        ),
        (
            vec!["--credential-id", "1", "--trigger-cmd", " "],
            "--trigger-cmd is empty",
        ),
    ] {
        let mut all = vec!["--mode", "force-expire"];
        all.extend(args);
        let r = run(db.cmd(), &all, None);
        r.assert_code(2).assert_stderr_has(want);
    }
    let r = run(db.cmd(), &["--mode", "real", "--trigger-cmd", "true"], None);
    r.assert_code(2);
}

#[tokio::test]
async fn serve_says_where_a_token_stands_without_echoing_it() {
    let serve = Serve::start(&["--scenario", "rotation"]);
    let (_, minted) = admin_post(&serve, "refresh-tokens", json!({})).await;
    let rt = minted["refresh_token"].as_str().unwrap().to_owned();
    let (status, live) = admin_post(&serve, "token-status", json!({"refresh_token": rt})).await;
    assert_eq!(status, 200, "{live}");
    assert_eq!(live["status"], "live");
    assert!(
        !live.to_string().contains(&rt),
        "the token is not echoed: {live}"
    );
    let refreshed = http()
        .post(serve.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", crate::support::serve::CLIENT_ID),
            ("client_secret", crate::support::serve::CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let (_, old) = admin_post(&serve, "token-status", json!({"refresh_token": rt})).await;
    assert_eq!(old["status"], "superseded", "rotation replaced it: {old}");
    let (_, unknown) = admin_post(
        &serve,
        "token-status",
        json!({"access_token": "ya29.never-issued"}),
    )
    .await;
    assert_eq!(unknown["status"], "unknown");
    let (status, both) = admin_post(&serve, "token-status", json!({})).await;
    assert_eq!(status, 400, "{both}");
}
