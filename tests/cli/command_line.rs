//! The command line says no rather than guess: the production guard decides on what a run will
//! do, read-only means read-only, options a mode does not take are refused, help is per mode,
//! errors are JSON with `--format json`, and a run that is interrupted or cannot write its output
//! leaves nothing behind.

use crate::on_both_backends;
use crate::support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A store with one imported credential (id 1), its key, and a command factory for it.
pub(crate) struct World {
    pub(crate) db: TestDb,
    key: String,
}

impl World {
    pub(crate) fn new(db: TestDb) -> Self {
        let key = new_key(db.path());
        let world = Self { db, key };
        world.db.write("token.json", &playground_json());
        world.run(&["--mode", "init"]).assert_code(0);
        world
            .run(&["--mode", "import", "--file", "token.json"])
            .assert_code(0);
        world
    }

    pub(crate) fn cmd(&self) -> Command {
        let mut c = self.db.cmd();
        c.env("OAUTHTEST_ENCRYPTION_KEY", &self.key)
            .env("GOOGLE_CLIENT_ID", "cid.apps.googleusercontent.com");
        c
    }

    /// [`World::cmd`] with Google's endpoints where nothing answers: whatever reaches one fails,
    /// and writes nothing. (Not for worker-sim: a token URL makes it work on stored
    /// credentials.)
    fn cmd_with_dead_endpoints(&self) -> Command {
        let mut c = self.cmd();
        c.env("OAUTHTEST_TOKEN_URL", "http://127.0.0.1:9/token")
            .env("OAUTHTEST_TOKENINFO_URL", "http://127.0.0.1:9/tokeninfo")
            .env("OAUTHTEST_API_URL", "http://127.0.0.1:9/profile");
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        run(self.cmd(), args, None)
    }

    fn run_in_production(&self, args: &[&str]) -> Run {
        let mut c = if args.contains(&"worker-sim") {
            self.cmd()
        } else {
            self.cmd_with_dead_endpoints()
        };
        c.env("OAUTHTEST_ENV", "production");
        run(c, args, None)
    }
}

/// Every mode, with every flag combination worth trying, as a user would type them.
fn every_mode_and_flag_combination(other_store: &str) -> Vec<Vec<String>> {
    let lines: Vec<String> = vec![
        "--mode init".into(),
        "--mode list".into(),
        "--mode list --credential-id 1".into(),
        "--mode list --format json".into(),
        "--mode import --file token.json".into(),
        "--mode import --file token.json --dry-run".into(),
        "--mode keygen".into(),
        "--mode rekey".into(),
        "--mode rekey --dry-run".into(),
        "--mode mock".into(),
        "--mode mock --scenario rotation".into(),
        "--mode mock-all".into(),
        "--mode worker-sim --jobs 20".into(),
        "--mode worker-sim --credential-id 1 --jobs 2".into(),
        "--mode worker-sim --credential-id 1 --token-url http://127.0.0.1:9/token --jobs 2".into(),
        "--mode worker-sim --worker-child --token-url http://127.0.0.1:9/token --credential-ids 1 --jobs 2"
            .into(),
        "--mode real --credential-id 1".into(),
        "--mode real --credential-id 1 --dry-run".into(),
        "--mode real --credential-id 1 --dry-run --check-token".into(),
        "--mode real --credential-id 1 --check-token".into(),
        "--mode force-expire --credential-id 1".into(),
        "--mode force-expire --credential-id 1 --no-refresh".into(),
        "--mode force-expire --credential-id 1 --dry-run --no-refresh".into(),
        format!("--mode copy --credential-id 1 --from-database-url {other_store}"),
        format!("--mode copy --credential-id 1 --from-database-url {other_store} --dry-run"),
        "--mode scrub".into(),
        "--mode scrub --keep 1".into(),
        "--mode scrub --dry-run".into(),
        "--mode scrub --yes".into(),
        "--mode scrub --yes --dry-run".into(),
        "--mode doctor".into(),
        "--mode doctor --check-endpoint".into(),
    ];
    lines
        .into_iter()
        .map(|l| l.split(' ').map(str::to_owned).collect())
        .collect()
}

on_both_backends!(
    production_runs_nothing_that_writes_whatever_the_flags,
    production_runs_nothing_that_writes_whatever_the_flags
);
async fn production_runs_nothing_that_writes_whatever_the_flags(db: TestDb) {
    let world = World::new(db);
    let other = World::new(TestDb::sqlite());
    let mut let_through = Vec::new();
    for args in every_mode_and_flag_combination(&other.db.url) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let before = store_snapshot(&world.db).await;
        let r = world.run_in_production(&args);
        let after = store_snapshot(&world.db).await;
        let changes = snapshot_changes(&before, &after);
        assert!(
            changes.is_empty(),
            "{args:?} wrote in production: {changes:?}\n{r}"
        );
        assert_ne!(r.code, 3, "{args:?}\n{r}");
        if !r.stderr.contains("refusing to run") {
            let_through.push(args.join(" "));
        }
    }
    // The read-only runs go ahead (whatever they find); nothing else does.
    for allowed in [
        "--mode list",
        "--mode keygen",
        "--mode rekey --dry-run",
        "--mode real --credential-id 1 --dry-run",
        "--mode scrub",
        "--mode doctor",
    ] {
        assert!(
            let_through.iter().any(|l| l == allowed),
            "{allowed} was refused in production; let through: {let_through:#?}"
        );
    }
    for refused in [
        "--mode init",
        "--mode import --file token.json",
        "--mode rekey",
        "--mode mock-all",
        "--mode worker-sim --jobs 20",
        "--mode real --credential-id 1",
        "--mode scrub --yes",
    ] {
        assert!(
            !let_through.iter().any(|l| l == refused),
            "{refused} ran in production"
        );
    }
    // The comparison itself can fail: the override writes, and the snapshot sees it.
    let before = store_snapshot(&world.db).await;
    world
        .run_in_production(&[
            "--mode",
            "import",
            "--file",
            "token.json",
            "--i-know-this-is-production",
        ])
        .assert_code(0);
    let after = store_snapshot(&world.db).await;
    assert!(
        !snapshot_changes(&before, &after).is_empty(),
        "the snapshot did not see an import"
    );
}

on_both_backends!(
    read_only_runs_never_create_or_migrate_a_store,
    read_only_runs_never_create_or_migrate_a_store
);
async fn read_only_runs_never_create_or_migrate_a_store(db: TestDb) {
    let key = new_key(db.path());
    for args in [
        &["--mode", "list"][..],
        &["--mode", "list", "--credential-id", "1"],
        &["--mode", "scrub"],
        &["--mode", "rekey", "--dry-run"],
        &["--mode", "real", "--credential-id", "1", "--dry-run"],
        &["--mode", "doctor"],
    ] {
        let before = store_snapshot(&db).await;
        let mut c = db.cmd();
        c.env("OAUTHTEST_ENCRYPTION_KEY", &key);
        let r = run(c, args, None);
        let after = store_snapshot(&db).await;
        assert_eq!(
            snapshot_changes(&before, &after),
            Vec::<String>::new(),
            "{args:?}\n{r}"
        );
        if args[1] != "doctor" {
            r.assert_code(2).assert_stderr_has("--mode init");
        }
    }
    // init is the step that creates it.
    let before = store_snapshot(&db).await;
    run(db.cmd(), &["--mode", "init"], None).assert_code(0);
    assert!(!snapshot_changes(&before, &store_snapshot(&db).await).is_empty());
    let again = store_snapshot(&db).await;
    let r = run(db.cmd(), &["--mode", "init", "--format", "json"], None);
    r.assert_code(0);
    assert_eq!(r.json()["migrations_new"], 0, "{r}");
    assert_eq!(
        snapshot_changes(&again, &store_snapshot(&db).await),
        Vec::<String>::new()
    );
}

#[test]
fn options_a_mode_does_not_take_are_refused_naming_the_modes_that_take_them() {
    let world = World::new(TestDb::sqlite());
    let refused: &[(&[&str], &str)] = &[
        (
            &["--mode", "keygen", "--workers", "5"],
            "--workers works with --mode worker-sim, not --mode keygen",
        ),
        (
            &["--mode", "mock", "--report", "m.xml"],
            "--report works with --mode mock-all or --mode worker-sim, not --mode mock",
        ),
        (
            &["--mode", "rekey", "--credential-id", "2"],
            "--credential-id works with --mode list,",
        ),
        (
            &["--mode", "list", "--key-file", "/nonexistent"],
            "--key-file works with --mode import, --mode rekey,",
        ),
        (
            &["--mode", "list", "--yes"],
            "--yes works with --mode scrub or --mode cleanup, not --mode list",
        ),
        (
            &["--mode", "scrub", "--yes", "--dry-run"],
            "--yes and --dry-run contradict each other",
        ),
        (
            &["--mode", "real", "--credential-id", "1", "--check-token"],
            "--check-token goes with --dry-run",
        ),
        (
            &["--mode", "import", "--file", "token.json", "--dry-run"],
            "--dry-run works with --mode rekey, --mode real or --mode scrub, not --mode import",
        ),
        (
            &[
                "--mode",
                "force-expire",
                "--credential-id",
                "1",
                "--dry-run",
            ],
            "not --mode force-expire",
        ),
        (
            &[
                "--mode",
                "copy",
                "--credential-id",
                "1",
                "--from-database-url",
                "sqlite://x.db",
                "--dry-run",
            ],
            "not --mode copy",
        ),
        (
            &["--mode", "worker-sim", "--worker-child", "--jobs", "2"],
            "--worker-child needs --token-url",
        ),
        (
            &["--mode", "real", "--credential-id", "0"],
            "--credential-id 0: a credential id is a positive number",
        ),
        (
            &[
                "--mode",
                "worker-sim",
                "--token-url",
                "http://127.0.0.1:9/token",
                "--credential-id",
                "1",
                "--report",
                "r.html",
            ],
            "--report is for worker-sim on the embedded mock",
        ),
        (
            &[
                "--mode",
                "worker-sim",
                "--token-url",
                "http://127.0.0.1:9/token",
                "--credential-id",
                "1",
                "--processes",
                "3",
            ],
            "--processes is for worker-sim on the embedded mock",
        ),
    ];
    for (args, message) in refused {
        let before = std::fs::read(world.db.path().join("store.db")).unwrap();
        world
            .run(args)
            .assert_code(2)
            .assert_one_line_error()
            .assert_stderr_has(message);
        assert_eq!(
            before,
            std::fs::read(world.db.path().join("store.db")).unwrap(),
            "{args:?}"
        );
    }
    assert!(
        !world.db.path().join("m.xml").exists(),
        "mock wrote a report it refused"
    );
    // Values from the environment are never refused: one .env serves every mode.
    let mut c = world.cmd();
    c.env("OAUTHTEST_FROM_DATABASE_URL", "sqlite://elsewhere.db");
    run(c, &["--mode", "keygen"], None).assert_code(0);
}

#[test]
fn absurd_sizes_are_refused_with_the_limit_named() {
    let dir = tempfile::tempdir().unwrap();
    for (args, message) in [
        (
            &["--mode", "worker-sim", "--jobs", "18446744073709551615"][..],
            "--jobs 18446744073709551615 is out of range: it must be from 1 to 1000000000",
        ),
        (
            &["--mode", "worker-sim", "--workers", "0"],
            "--workers 0 is out of range",
        ),
        (
            &["--mode", "worker-sim", "--processes", "1000"],
            "--processes 1000 is out of range",
        ),
        (
            &["--mode", "serve", "--read-timeout-ms", "0"],
            "--read-timeout-ms 0 is out of range",
        ),
        (
            &[
                "--mode",
                "mock-all",
                "--target-cmd",
                "true",
                "--target-timeout",
                "99999999",
            ],
            "--target-timeout 99999999 is out of range",
        ),
        (
            &["--mode", "doctor", "--request-timeout-ms", "999999999"],
            "--request-timeout-ms 999999999 is out of range",
        ),
    ] {
        run(oauthtest_cmd(dir.path()), args, None)
            .assert_code(2)
            .assert_one_line_error()
            .assert_stderr_has(message);
    }
}

#[test]
fn help_is_per_mode_and_the_top_level_lists_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let top = run(oauthtest_cmd(dir.path()), &["--help"], None);
    top.assert_code(0);
    for mode in [
        "init",
        "list",
        "mock-all",
        "worker-sim",
        "force-expire",
        "serve",
        "doctor",
    ] {
        assert!(
            top.stdout.contains(&format!("\n  {mode} ")),
            "{mode}\n{top}"
        );
    }
    assert!(!top.stdout.contains("--from-key-file"), "{top}");
    let list = run(
        oauthtest_cmd(dir.path()),
        &["--mode", "list", "--help"],
        None,
    );
    list.assert_code(0);
    assert!(list.stdout.contains("--credential-id"), "{list}");
    assert!(list.stdout.contains("Examples:"), "{list}");
    assert!(!list.stdout.contains("--workers"), "{list}");
    assert!(list.stdout.lines().count() < 120, "{list}");
    let sim = run(
        oauthtest_cmd(dir.path()),
        &["--mode=celery-sim", "-h"],
        None,
    );
    sim.assert_code(0);
    assert!(sim.stdout.contains("--workers"), "{sim}");
    assert!(!sim.stdout.contains("--from-database-url"), "{sim}");
}

#[test]
fn with_format_json_an_error_is_a_json_object_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    for (args, kind) in [
        (&["--mode", "real", "--format", "json"][..], "usage"),
        (&["--mode", "nonsense", "--format", "json"], "usage"),
        (
            &[
                "--mode",
                "list",
                "--format",
                "json",
                "--database-url",
                "sqlite://",
            ],
            "config",
        ),
        (&["--mode", "list", "--format=json"], "store"),
    ] {
        let r = run(oauthtest_cmd(dir.path()), args, None);
        r.assert_code(2);
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim())
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not one JSON object ({e})\n{r}"));
        assert_eq!(v["error"]["kind"], kind, "{args:?}\n{r}");
        assert_eq!(v["error"]["exit_code"], 2, "{r}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{r}"
        );
    }
}

#[test]
fn log_filters_come_from_rust_log_too_and_a_bad_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = oauthtest_cmd(dir.path());
    c.env("RUST_LOG", "oauthtest=[[[");
    run(c, &["--mode", "keygen"], None)
        .assert_code(2)
        .assert_stderr_has("RUST_LOG: not a valid log filter");
    run(
        oauthtest_cmd(dir.path()),
        &["--mode", "keygen", "--log", "x=[["],
        None,
    )
    .assert_code(2)
    .assert_stderr_has("--log / OAUTHTEST_LOG / RUST_LOG");
    let mut c = oauthtest_cmd(dir.path());
    c.env("RUST_LOG", "trace").env("NO_COLOR", "1");
    let r = run(c, &["--mode", "mock", "--scenario", "success"], None);
    r.assert_code(0);
    assert!(
        r.stderr.contains("TRACE") || r.stderr.contains("DEBUG"),
        "RUST_LOG ignored\n{r}"
    );
    assert!(!r.stderr.contains('\u{1b}'), "colour on a pipe\n{r}");
}

fn full() -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap(),
    )
}

#[test]
fn a_full_stderr_or_stdout_exits_3_and_leaves_no_temporary_rows() {
    let world = World::new(TestDb::sqlite());
    let mut c = world.cmd();
    c.args(["--mode", "mock-all", "-v"])
        .stdout(Stdio::null())
        .stderr(full());
    let status = c.status().unwrap();
    assert_eq!(status.code(), Some(3), "{status}");
    let listed = world.run(&["--mode", "list", "--format", "json"]);
    listed.assert_code(0);
    assert_eq!(
        listed.json()["credentials"].as_array().unwrap().len(),
        1,
        "{listed}"
    );

    let mut c = oauthtest_cmd(world.db.path());
    c.args(["--mode", "keygen"])
        .stdout(full())
        .stderr(Stdio::null());
    assert_eq!(c.status().unwrap().code(), Some(3));
}

/// Starts `args` in the background, with its output in files under the store's directory.
pub(crate) fn spawn(world: &World, args: &[&str]) -> std::process::Child {
    let mut c = world.cmd();
    c.args(args)
        .stdout(std::fs::File::create(world.db.path().join("out.log")).unwrap())
        .stderr(std::fs::File::create(world.db.path().join("err.log")).unwrap());
    c.spawn().unwrap()
}

pub(crate) fn signal(child: &std::process::Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

pub(crate) fn wait(mut child: std::process::Child, limit: Duration) -> i32 {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(started.elapsed() < limit, "did not stop within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Credentials in the store besides the imported one, as `list` sees them.
pub(crate) fn extra_rows(world: &World) -> usize {
    let r = world.run(&["--mode", "list", "--format", "json"]);
    r.assert_code(0);
    r.json()["credentials"].as_array().unwrap().len() - 1
}

pub(crate) fn until_rows_appear(world: &World) {
    let started = Instant::now();
    while extra_rows(world) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no temporary rows appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

on_both_backends!(
    an_interrupted_run_removes_its_temporary_rows_and_exits_130_or_143,
    an_interrupted_run_removes_its_temporary_rows_and_exits_130_or_143
);
async fn an_interrupted_run_removes_its_temporary_rows_and_exits_130_or_143(db: TestDb) {
    let world = World::new(db);
    // A scenario whose token request hangs, so mock-all is still running when it is stopped.
    let dir = world.db.path().join("slow");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("slow_google.toml"),
        "description = \"Google takes its time.\"\n[engine]\nrequest_timeout_ms = 30000\n\
         [[token]]\naction = \"google\"\ndelay_ms = 20000\n[expect]\noutcome = \"refreshed\"\n\
         token_requests = 1\nstate = \"active\"\napi_call = \"succeeded\"\n",
    )
    .unwrap();
    let slow = dir.to_str().unwrap();
    for (args, sig, code) in [
        (
            vec!["--mode", "mock-all", "--scenarios", slow],
            rustix::process::Signal::INT,
            130,
        ),
        (
            vec![
                "--mode",
                "worker-sim",
                "--jobs",
                "100000000",
                "--processes",
                "2",
            ],
            rustix::process::Signal::TERM,
            143,
        ),
    ] {
        let child = spawn(&world, &args);
        until_rows_appear(&world);
        signal(&child, sig);
        assert_eq!(wait(child, Duration::from_secs(30)), code, "{args:?}");
        let err = std::fs::read_to_string(world.db.path().join("err.log")).unwrap();
        assert!(err.contains("interrupted by"), "{args:?}: {err}");
        assert_eq!(extra_rows(&world), 0, "{args:?} left temporary rows");
    }
}

/// The pids of `parent`'s children.
fn children_of(parent: u32) -> Vec<u32> {
    let path = format!("/proc/{parent}/task/{parent}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn worker_processes_die_with_their_parent_and_a_dead_one_fails_the_run() {
    let world = World::new(TestDb::sqlite());
    // The parent killed with -9: its children follow it.
    let parent = spawn(
        &world,
        &[
            "--mode",
            "worker-sim",
            "--jobs",
            "100000000",
            "--processes",
            "3",
        ],
    );
    let started = Instant::now();
    let kids = loop {
        let kids = children_of(parent.id());
        if kids.len() == 2 {
            break kids;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no worker processes"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    signal(&parent, rustix::process::Signal::KILL);
    let _ = wait(parent, Duration::from_secs(10));
    let started = Instant::now();
    while kids.iter().any(|k| {
        std::path::Path::new(&format!("/proc/{k}/stat")).exists()
            && !std::fs::read_to_string(format!("/proc/{k}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "children outlived their parent"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A child killed: the parent reports it as a failure of the run (exit 1), not its own bug.
    let parent = spawn(
        &world,
        &[
            "--mode",
            "worker-sim",
            "--jobs",
            "20000",
            "--processes",
            "2",
            "--format",
            "json",
        ],
    );
    let started = Instant::now();
    let kid = loop {
        if let Some(k) = children_of(parent.id()).first() {
            break *k;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no worker process"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let pid = rustix::process::Pid::from_raw(i32::try_from(kid).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    assert_eq!(wait(parent, Duration::from_secs(120)), 1);
    let out = std::fs::read_to_string(world.db.path().join("out.log")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let broken: Vec<&serde_json::Value> = v["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["held"] == false)
        .collect();
    assert!(
        broken
            .iter()
            .any(|i| i["name"] == "every worker process finished"),
        "{out}"
    );
}

#[test]
fn worker_sim_against_a_token_url_fails_when_its_jobs_fail() {
    let world = World::new(TestDb::sqlite());
    let r = world.run(&[
        "--mode",
        "worker-sim",
        "--credential-id",
        "1",
        "--token-url",
        "http://127.0.0.1:9/token",
        "--jobs",
        "3",
        "--workers",
        "1",
        "--request-timeout-ms",
        "200",
        "--format",
        "json",
    ]);
    r.assert_code(1);
    let v = r.json();
    assert_eq!(v["invariants"][0]["name"], "no job fails", "{r}");
    assert_eq!(v["invariants"][0]["held"], false, "{r}");
}

#[test]
fn worker_sim_writes_its_report_as_json_or_html_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    for (name, starts) in [("sim.json", "{"), ("sim.html", "<!")] {
        run(
            oauthtest_cmd(dir.path()),
            &["--mode", "worker-sim", "--jobs", "30", "--report", name],
            None,
        )
        .assert_code(0);
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(
            text.trim_start().starts_with(starts),
            "{name}: {}",
            &text[..40.min(text.len())]
        );
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("sim.json")).unwrap())
            .unwrap();
    assert_eq!(v["mode"], "worker-sim");
}

#[test]
fn serve_with_format_json_prints_json_lines_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = oauthtest_cmd(dir.path());
    c.args(["--mode", "serve", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["event"], "listening");
    assert!(v["url"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    signal(&child, rustix::process::Signal::TERM);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let lines: Vec<&str> = rest.lines().collect();
    assert_eq!(lines.len(), 1, "{rest}");
    let last: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(last["event"], "stopped");
    assert_eq!(last["stopped_by"], "SIGTERM");
}

#[test]
fn messages_name_their_context_and_counts_agree() {
    let world = World::new(TestDb::sqlite());
    world
        .run(&["--mode", "list", "--credential-id", "999"])
        .assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has("credential 999 not found in sqlite://")
        .assert_stderr_has("(1 credential)");
    world.db.write("empty.json", "  \n");
    world
        .run(&["--mode", "import", "--file", "empty.json"])
        .assert_code(2)
        .assert_stderr_has("empty.json: empty");
    world
        .run(&["--mode", "list", "--database-url", "sqlite://"])
        .assert_code(2)
        .assert_stderr_has("sqlite:// has no path");
    let r = world.run(&["--mode", "mock", "--scenario", "success"]);
    r.assert_code(0);
    assert!(r.stdout.contains("(1 scenario in "), "{r}");
}

#[tokio::test]
#[cfg_attr(
    oauthtest_no_postgres,
    ignore = "PostgreSQL did not answer when the tests were built (start it, then `touch build.rs`)"
)]
async fn a_missing_postgres_database_is_named_with_how_to_create_it() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (base, _) = db.url.rsplit_once('/').unwrap();
    let missing = format!("oauthtest_missing_{}", uuid::Uuid::new_v4().simple());
    let mut c = oauthtest_cmd(db.path());
    c.env("DATABASE_URL", format!("{base}/{missing}"));
    run(c, &["--mode", "list"], None)
        .assert_code(2)
        .assert_one_line_error()
        .assert_stderr_has(&format!("database \"{missing}\" does not exist"))
        .assert_stderr_has(&format!("createdb {missing}"));
}
