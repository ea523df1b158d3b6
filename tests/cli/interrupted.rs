//! Runs that were stopped: a `kill -9` leaves temporary rows that `doctor` names and `--mode
//! cleanup` removes (and only those of runs that are gone); SIGINT and SIGTERM print what the
//! run had done so far, marked as partial.

use crate::command_line::{signal, spawn, until_rows_appear, wait, World};
use crate::on_both_backends;
use crate::support::{assert_no_secrets, TestDb};
use rustix::process::Signal;
use serde_json::Value;
use std::time::{Duration, Instant};

/// A scenario whose token request hangs (the run is still going when it is stopped), and one
/// whose expectation is wrong (it fails at once).
fn scenarios_dir(world: &World) -> String {
    let dir = world.db.path().join("extra");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("slow_google.toml"),
        "description = \"Google takes its time.\"\n[engine]\nrequest_timeout_ms = 60000\n\
         [[token]]\naction = \"google\"\ndelay_ms = 60000\n[expect]\noutcome = \"refreshed\"\n\
         token_requests = 1\nstate = \"active\"\napi_call = \"succeeded\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("broken_expectation.toml"),
        "description = \"Expects the wrong outcome.\"\n[[token]]\naction = \"google\"\n\
         [expect]\noutcome = \"needs_reconnect\"\ntoken_requests = 1\nstate = \"active\"\n\
         api_call = \"succeeded\"\n",
    )
    .unwrap();
    dir.to_str().unwrap().to_owned()
}

/// The temporary rows in the store: (id, name).
fn temporary_rows(world: &World) -> Vec<(i64, String)> {
    let r = world.run(&["--mode", "list", "--format", "json"]);
    r.assert_code(0);
    r.json()["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| {
            let name = c["name"].as_str().unwrap();
            name.contains("(temporary, run ")
                .then(|| (c["id"].as_i64().unwrap(), name.to_owned()))
        })
        .collect()
}

/// The run mark in a temporary row's name.
fn mark_of(name: &str) -> String {
    let rest = &name[name.find("(temporary, run ").unwrap() + "(temporary, run ".len()..];
    rest[..8].to_owned()
}

fn poll(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(60), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn findings(world: &World) -> Vec<Value> {
    let r = world.run(&["--mode", "doctor", "--format", "json"]);
    r.json()["checks"].as_array().unwrap().clone()
}

/// Each finding's check and verdict.
fn verdicts(found: &[Value]) -> Vec<(String, String)> {
    found
        .iter()
        .map(|f| (f["name"].to_string(), f["status"].to_string()))
        .collect()
}

on_both_backends!(
    rows_a_killed_run_left_are_named_by_doctor_and_removed_by_cleanup_and_a_live_runs_are_kept,
    rows_a_killed_run_left_are_named_by_doctor_and_removed_by_cleanup_and_a_live_runs_are_kept
);
async fn rows_a_killed_run_left_are_named_by_doctor_and_removed_by_cleanup_and_a_live_runs_are_kept(
    db: TestDb,
) {
    let world = World::new(db);
    let clean = findings(&world);
    // A worker-sim killed with -9: its 3 rows stay, sealed with its throwaway key.
    let killed = spawn(
        &world,
        &[
            "--mode",
            "worker-sim",
            "--jobs",
            "100000000",
            "--credentials",
            "3",
        ],
    );
    poll("worker-sim seeded no rows", || {
        temporary_rows(&world).len() == 3
    });
    signal(&killed, Signal::KILL);
    let _ = wait(killed, Duration::from_secs(10));
    let dead: Vec<(i64, String)> = temporary_rows(&world);
    assert_eq!(dead.len(), 3);
    let dead_run = mark_of(&dead[0].1);

    // A mock-all still running: its rows must survive everything below.
    let extra = scenarios_dir(&world);
    let live = spawn(&world, &["--mode", "mock-all", "--scenarios", &extra]);
    poll("the live run's slow scenario seeded no row", || {
        temporary_rows(&world)
            .iter()
            .any(|(_, n)| n.contains("slow_google"))
    });
    let live_row = temporary_rows(&world)
        .into_iter()
        .find(|(_, n)| n.contains("slow_google"))
        .unwrap();
    let live_run = mark_of(&live_row.1);

    // doctor: one warning for the dead run, naming its rows and the command; the live run's
    // rows are "still running"; the real credential still decrypts (the credentials check).
    let found = findings(&world);
    let temp: Vec<&Value> = found
        .iter()
        .filter(|f| f["name"] == "temporary_rows")
        .collect();
    let for_dead: Vec<&&Value> = temp
        .iter()
        .filter(|f| f["detail"].as_str().unwrap().contains(&dead_run))
        .collect();
    assert_eq!(for_dead.len(), 1, "{found:#?}");
    let f = for_dead[0];
    assert_eq!(f["status"], "warn", "{f}");
    let message = f["detail"].as_str().unwrap();
    assert!(
        message.starts_with("3 temporary row(s) of run"),
        "{message}"
    );
    assert!(
        message.contains("ago by pid") && message.contains("gone"),
        "{message}"
    );
    for (id, _) in &dead {
        assert!(message.contains(&id.to_string()), "{message}");
    }
    assert_eq!(f["fix"], "`oauthtest --mode cleanup --yes` removes them");
    let for_live = temp
        .iter()
        .find(|f| f["detail"].as_str().unwrap().contains(&live_run))
        .unwrap();
    assert_eq!(for_live["status"], "pass", "{for_live}");
    assert!(for_live["detail"]
        .as_str()
        .unwrap()
        .contains("still running"));
    let credentials = found.iter().find(|f| f["name"] == "credentials").unwrap();
    assert_eq!(credentials["status"], "pass", "{credentials}");

    // The preview removes nothing; naming the live run is refused.
    let preview = world.run(&["--mode", "cleanup", "--format", "json"]);
    preview.assert_code(0);
    let runs = preview.json()["runs"].as_array().unwrap().clone();
    let action = |run: &str| {
        runs.iter()
            .find(|r| r["run"] == run)
            .map(|r| r["action"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        action(&dead_run).as_deref(),
        Some("would_remove"),
        "{preview}"
    );
    assert_eq!(action(&live_run).as_deref(), Some("kept"), "{preview}");
    assert_eq!(
        temporary_rows(&world)
            .iter()
            .filter(|(_, n)| n.contains(&dead_run))
            .count(),
        3
    );
    world
        .run(&["--mode", "cleanup", "--run", &live_run, "--yes"])
        .assert_code(2)
        .assert_stderr_has("is still running");

    // --yes removes the dead run's rows (and their history), nothing else.
    let done = world.run(&["--mode", "cleanup", "--yes", "--format", "json"]);
    done.assert_code(0);
    assert_eq!(done.json()["removed"], 3, "{done}");
    let left = temporary_rows(&world);
    assert!(left.iter().all(|(_, n)| !n.contains(&dead_run)), "{left:?}");
    assert!(
        left.iter().any(|(id, _)| *id == live_row.0),
        "the live run lost its row"
    );
    for (id, _) in &dead {
        world
            .run(&["--mode", "list", "--credential-id", &id.to_string()])
            .assert_code(2);
    }
    let listed = world.run(&["--mode", "list", "--credential-id", "1", "--format", "json"]);
    listed.assert_code(0);

    // The live run ends by itself (SIGINT here) and removes its own; doctor is as before.
    signal(&live, Signal::INT);
    assert_eq!(wait(live, Duration::from_secs(30)), 130);
    assert!(temporary_rows(&world).is_empty());
    let after = findings(&world);
    assert_eq!(
        verdicts(&after),
        verdicts(&clean),
        "doctor after the clean-up: {after:#?}"
    );
    let none = world.run(&["--mode", "cleanup"]);
    none.assert_code(0);
    assert!(none.stdout.contains("No temporary rows"), "{none}");
}

#[test]
fn cleanup_refuses_a_malformed_run_and_one_with_no_rows() {
    let world = World::new(TestDb::sqlite());
    world
        .run(&["--mode", "cleanup", "--run", "not-hex!"])
        .assert_code(2)
        .assert_stderr_has("--run takes a run's mark");
    world
        .run(&["--mode", "cleanup", "--run", "0badc0de", "--yes"])
        .assert_code(2)
        .assert_stderr_has("holds no temporary rows of that run");
    world
        .run(&["--mode", "cleanup", "--dry-run"])
        .assert_code(2)
        .assert_stderr_has("--dry-run works with");
}

#[test]
fn an_interrupted_mock_all_reports_the_scenarios_it_finished_as_partial() {
    let world = World::new(TestDb::sqlite());
    let extra = scenarios_dir(&world);
    for json in [true, false] {
        let mut args = vec!["--mode", "mock-all", "--scenarios", &extra];
        if json {
            args.extend(["--format", "json"]);
        }
        let child = spawn(&world, &args);
        // Every scenario starts at once; when the slow one's row has been the only one left
        // for a while, the others have finished (they are interrupted at whatever point they
        // reached otherwise, which the assertions below allow for).
        let mut quiet = 0;
        poll("the other scenarios did not finish", || {
            let rows = temporary_rows(&world);
            let only_slow = rows.len() == 1 && rows[0].1.contains("slow_google");
            quiet = if only_slow { quiet + 1 } else { 0 };
            quiet >= 20
        });
        signal(&child, Signal::INT);
        assert_eq!(wait(child, Duration::from_secs(30)), 130);
        let out = std::fs::read_to_string(world.db.path().join("out.log")).unwrap();
        let err = std::fs::read_to_string(world.db.path().join("err.log")).unwrap();
        assert!(err.contains("interrupted by SIGINT"), "{err}");
        assert_no_secrets(&format!("{out}{err}"), &[]);
        if json {
            let v: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["error"]["kind"], "interrupted", "{v}");
            assert_eq!(v["error"]["exit_code"], 130);
            let i = &v["interrupted"];
            assert_eq!(i["partial"], true, "{i}");
            assert_eq!(i["mode"], "mock-all");
            assert_eq!(i["signal"], "SIGINT");
            assert!(i["temporary_rows_removed"].as_u64().unwrap() >= 1, "{i}");
            let done = i["scenarios"].as_array().unwrap();
            let planned = i["scenarios_planned"].as_u64().unwrap();
            assert!(!done.is_empty() && (done.len() as u64) < planned, "{i}");
            assert!(done.iter().all(|s| s["name"] != "slow_google"), "{i}");
            assert!(
                done.iter().any(|s| s["name"] == "broken_expectation"),
                "{i}"
            );
            for s in done {
                let broken = s["name"] == "broken_expectation";
                assert_eq!(s["passed"], !broken, "{s}");
                assert_eq!(s["failures"].as_array().unwrap().is_empty(), !broken, "{s}");
            }
        } else {
            assert!(
                out.starts_with("INTERRUPTED by SIGINT: --mode mock-all"),
                "{out}"
            );
            assert!(out.contains("partial: not a verdict"), "{out}");
            assert!(out.contains("FAIL broken_expectation"), "{out}");
            assert!(out.contains("    PASS "), "{out}");
            assert!(!out.contains("slow_google"), "{out}");
            assert!(out.contains("temporary rows removed "), "{out}");
        }
    }
}

#[test]
fn an_interrupted_worker_sim_reports_the_jobs_it_did_as_partial() {
    let world = World::new(TestDb::sqlite());
    for json in [true, false] {
        let mut args = vec!["--mode", "worker-sim", "--jobs", "100000000"];
        if json {
            args.extend(["--format", "json"]);
        }
        let child = spawn(&world, &args);
        until_rows_appear(&world);
        let (id, _) = temporary_rows(&world)[0].clone();
        // Two refreshes in its history: jobs have run (tokens live 2 s).
        poll("no refresh in the temporary credential's history", || {
            let r = world.run(&[
                "--mode",
                "list",
                "--credential-id",
                &id.to_string(),
                "--format",
                "json",
            ]);
            r.json()["history"]
                .as_array()
                .is_some_and(|h| h.iter().filter(|l| l["action"] != "seed").count() >= 2)
        });
        signal(&child, Signal::TERM);
        assert_eq!(wait(child, Duration::from_secs(30)), 143);
        let out = std::fs::read_to_string(world.db.path().join("out.log")).unwrap();
        let err = std::fs::read_to_string(world.db.path().join("err.log")).unwrap();
        assert_no_secrets(&format!("{out}{err}"), &[]);
        if json {
            let v: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["error"]["exit_code"], 143, "{v}");
            let jobs = &v["interrupted"]["jobs"];
            assert_eq!(jobs["planned"], 100_000_000, "{v}");
            let done = jobs["succeeded"].as_u64().unwrap() + jobs["failed"].as_u64().unwrap();
            assert!(done >= 1, "{v}");
            assert_eq!(v["interrupted"]["partial"], true);
            assert_eq!(v["interrupted"]["temporary_rows_removed"], 1, "{v}");
        } else {
            assert!(
                out.starts_with("INTERRUPTED by SIGTERM: --mode worker-sim"),
                "{out}"
            );
            assert!(out.contains("of 100000000 in this process"), "{out}");
            assert!(out.contains("temporary rows removed 1"), "{out}");
        }
    }
}
