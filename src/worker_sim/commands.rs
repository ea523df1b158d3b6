//! The application's commands of a `worker-sim --target-cmd` run: started with `sh -c` in
//! process groups of their own, their output's tail kept, stopped (SIGTERM, then SIGKILL) when
//! the run is over, whatever they started with them.
//!
//! The rule (also in `--help` and the README):
//! - without `--enqueue-cmd`, `--target-cmd` runs **once**, told `OAUTHTEST_WORKERS=N`: it starts
//!   its own pool of N workers, runs the `OAUTHTEST_JOBS` jobs and exits when they are done;
//! - with `--enqueue-cmd`, `--target-cmd` is the worker entry point, run **N times** (one worker
//!   each, `OAUTHTEST_WORKERS=1`, `OAUTHTEST_WORKER_INDEX` 0 to N-1) and left running; the
//!   enqueue command runs once, sends the jobs, waits for them and exits; then the workers are
//!   stopped.
//!
//! The command that finishes the run (the pool, or the enqueue command) exits 0 when every job
//! succeeded; its last line of output may be a JSON summary `{"jobs": M, "ok": K,
//! "outcomes": {"ok": K, "needs_reconnect": R, …}}`, which then gives the job counts.

use crate::scenarios::target::{read_tail, redact};
use rustix::process::{kill_process_group, Pid, Signal};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long a stopped command has between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How many lines of a failed command's stderr a report shows.
const STDERR_LINES: usize = 6;

/// One of the application's commands, running.
pub struct Running {
    /// What it is, for messages: `worker 3`, `the enqueue command`.
    pub what: String,
    child: tokio::process::Child,
    pgid: Option<Pid>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Drop for Running {
    /// A run cut short (SIGINT, SIGTERM, an error) takes the application's commands, and
    /// whatever they started, with it.
    fn drop(&mut self) {
        self.signal(Signal::KILL);
    }
}

/// How a command ended.
#[derive(Debug)]
pub struct Ended {
    /// What it was.
    pub what: String,
    /// Its exit status; `None` when ended by a signal or not finished in time.
    pub code: Option<i32>,
    /// It did not finish before the run's deadline and was killed.
    pub timed_out: bool,
    /// The end of its stdout.
    pub stdout: String,
    /// The end of its stderr, secrets replaced.
    pub stderr_tail: Vec<String>,
}

impl Ended {
    /// How it ended, in words.
    pub fn status(&self) -> String {
        match (self.code, self.timed_out) {
            (_, true) => "did not finish in time and was killed".into(),
            (Some(code), _) => format!("exited with status {code}"),
            (None, _) => "was ended by a signal".into(),
        }
    }
}

/// Starts `cmd` with `sh -c`, its own process group, stdin closed, and `env` on top of this
/// process's environment less its `OAUTHTEST_*` variables.
///
/// # Errors
/// Why `sh` could not be started.
pub fn spawn(what: String, cmd: &str, env: &[(String, String)]) -> Result<Running, String> {
    let mut child =
        crate::app_command::sh_command(cmd, env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .spawn()
            .map_err(|e| format!("cannot start {what} (`sh -c CMD`): {e}"))?;
    let pgid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .and_then(Pid::from_raw);
    let stdout = child.stdout.take().map(|out| tokio::spawn(read_tail(out)));
    let stderr = child.stderr.take().map(|err| tokio::spawn(read_tail(err)));
    Ok(Running {
        what,
        child,
        pgid,
        stdout,
        stderr,
    })
}

impl Running {
    /// Whether it has already exited (a worker that should still be running).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for it to exit by itself, at most `limit`; then ends whatever it left running.
    pub async fn finish(mut self, limit: Duration, secrets: &[String]) -> Ended {
        let (status, timed_out) = match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => (Some(status), false),
            Ok(Err(_)) => (None, false),
            Err(_) => (None, true),
        };
        self.signal(Signal::KILL);
        if timed_out {
            let _ = self.child.wait().await;
        }
        self.ended(status.and_then(|s| s.code()), timed_out, secrets)
            .await
    }

    /// Stops it: SIGTERM to its process group (a Celery worker's warm shutdown), SIGKILL after
    /// [`STOP_GRACE`].
    pub async fn stop(mut self, secrets: &[String]) -> Ended {
        let already = self.child.try_wait().ok().flatten();
        self.signal(Signal::TERM);
        let status = match already {
            Some(status) => Some(status),
            None => tokio::time::timeout(STOP_GRACE, self.child.wait())
                .await
                .ok()
                .and_then(Result::ok),
        };
        self.signal(Signal::KILL);
        if status.is_none() {
            let _ = self.child.wait().await;
        }
        self.ended(status.and_then(|s| s.code()), false, secrets)
            .await
    }

    fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.pgid {
            let _ = kill_process_group(pgid, signal);
        }
    }

    async fn ended(mut self, code: Option<i32>, timed_out: bool, secrets: &[String]) -> Ended {
        // Its group is gone: nothing for Drop to kill (the id may be another's soon).
        self.pgid = None;
        let drain = |task: Option<JoinHandle<Vec<u8>>>| async move {
            match task {
                Some(task) => tokio::time::timeout(Duration::from_secs(2), task)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default(),
                None => Vec::new(),
            }
        };
        let stdout = redact(
            &String::from_utf8_lossy(&drain(self.stdout.take()).await),
            secrets,
        );
        let stderr = redact(
            &String::from_utf8_lossy(&drain(self.stderr.take()).await),
            secrets,
        );
        let lines: Vec<String> = stderr.lines().map(str::to_owned).collect();
        let start = lines.len().saturating_sub(STDERR_LINES);
        Ended {
            what: std::mem::take(&mut self.what),
            code,
            timed_out,
            stdout,
            stderr_tail: lines[start..].to_vec(),
        }
    }
}

/// The JSON summary a finishing command may print as its last line.
#[derive(Debug, Clone, Deserialize)]
pub struct JobSummary {
    /// Jobs it ran.
    pub jobs: u64,
    /// Jobs that succeeded.
    pub ok: u64,
    /// Jobs by outcome (`ok` among them).
    #[serde(default)]
    pub outcomes: BTreeMap<String, u64>,
}

/// The summary on the last line of `stdout` that is a JSON object with `jobs` and `ok`.
pub fn summary(stdout: &str) -> Option<JobSummary> {
    stdout
        .lines()
        .rev()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .find_map(|l| serde_json::from_str(l).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_json_line_with_jobs_and_ok_is_the_summary() {
        let out = "starting\n{\"jobs\": 4, \"ok\": 3, \"outcomes\": {\"ok\": 3, \"needs_reconnect\": 1}}\nbye\n";
        let s = summary(out).unwrap();
        assert_eq!((s.jobs, s.ok, s.outcomes["needs_reconnect"]), (4, 3, 1));
        assert!(summary("{\"other\": 1}\nno summary").is_none());
    }

    #[tokio::test]
    async fn a_command_is_stopped_with_what_it_started_and_its_secrets_are_redacted() {
        let env = vec![("OAUTHTEST_X".to_owned(), "s3cr3t".to_owned())];
        let started = spawn(
            "worker 0".into(),
            "echo \"$OAUTHTEST_X\" >&2; sleep 30 & wait",
            &env,
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ended = started.stop(&["s3cr3t".to_owned()]).await;
        assert!(!ended.timed_out);
        assert_eq!(ended.stderr_tail, vec!["[redacted]".to_owned()]);
        let done = spawn("pool".into(), "echo '{\"jobs\":1,\"ok\":1}'", &[])
            .unwrap()
            .finish(Duration::from_secs(10), &[])
            .await;
        assert_eq!(done.code, Some(0));
        assert_eq!(summary(&done.stdout).unwrap().ok, 1);
    }
}
