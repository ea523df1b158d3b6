//! The `oauthtest` binary: parse flags, set up logging, run, map the outcome to an exit code.

use oauthtest::cli::{Cli, Format, Parsed};
use oauthtest::{exit_code, logging, progress, report, temp_rows};
use std::io::Write as _;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;

fn main() -> ExitCode {
    // First: a panic's message may hold a secret; the hook prints the place only.
    logging::install_panic_hook();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let json = wants_json(&args);
    // Before any thread exists: `.env` fills variables that flags and the environment left unset.
    if let Err(e) = oauthtest::settings::load_dotenv() {
        return fail(&e, json);
    }
    let cli = match Cli::try_parse_args(&args) {
        Ok(Parsed::Run(cli)) => *cli,
        Ok(Parsed::Help(text)) => {
            return match std::io::stdout().write_all(text.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(exit_code::INTERNAL),
            };
        }
        Err(e) if !e.use_stderr() => {
            // --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's own message: an unknown flag, a bad value, a missing --mode.
            if json {
                let message = e.kind().as_str().map_or_else(
                    || e.to_string().lines().next().unwrap_or("").to_owned(),
                    str::to_owned,
                );
                print_json_error("usage", &message, exit_code::USAGE_OR_INPUT);
            }
            let _ = e.print();
            return ExitCode::from(exit_code::USAGE_OR_INPUT);
        }
    };
    let json = cli.format == Format::Json;
    let directives = logging::filter_directives(
        cli.log.as_deref(),
        cli.verbose,
        cli.mode.default_log_filter(),
    );
    if let Err(problem) = logging::init(&directives) {
        return fail(&oauthtest::Error::config("log filter", problem), json);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return fail(
                &oauthtest::Error::Internal(anyhow::anyhow!("cannot start the async runtime: {e}")),
                json,
            )
        }
    };
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            #[cfg(debug_assertions)]
            panic_if_asked_by_a_test().await;
            oauthtest::run(&cli).await
        })
    }));
    // Whatever ended the run (success, error, signal, panic): no temporary row stays behind.
    // Tasks a cancelled run left are stopped first, so none writes a row after the clean-up.
    let normally = matches!(&ran, Ok(Ok(_)));
    let mut removed = 0;
    if temp_rows::anything_to_remove(normally) {
        runtime.shutdown_timeout(std::time::Duration::from_secs(10));
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(cleanup) => {
                removed = cleanup.block_on(temp_rows::remove_all(!normally));
                tracing::info!(removed, "removed the run's temporary rows");
            }
            Err(e) => say(&format!(
                "error: cannot remove the run's temporary rows: {e}"
            )),
        }
    }
    let code = finish(ran, &cli, json, removed);
    if logging::stderr_failed() {
        return ExitCode::from(exit_code::INTERNAL);
    }
    code
}

/// The run's outcome printed, as an exit code.
fn finish(
    ran: std::thread::Result<oauthtest::Result<Box<dyn report::Report>>>,
    cli: &Cli,
    json: bool,
    removed: usize,
) -> ExitCode {
    // The hook has reported the panic; its payload is dropped unread.
    let Ok(outcome) = ran else {
        if json {
            print_json_error(
                "internal",
                "oauthtest panicked (see stderr); this is a bug in oauthtest",
                exit_code::INTERNAL,
            );
        }
        return ExitCode::from(exit_code::INTERNAL);
    };
    match outcome {
        Ok(report) => {
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = report::emit(report.as_ref(), cli.format, &mut stdout) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    say(&format!("error: cannot write the report to stdout: {e}"));
                    return ExitCode::from(exit_code::INTERNAL);
                }
            }
            ExitCode::from(report.exit_code())
        }
        Err(e @ oauthtest::Error::Interrupted { signal }) => {
            // What it had done so far, marked as partial; the exit code stays the signal's.
            let done = progress::Interrupted::collect(signal, cli.mode.name(), removed);
            let mut stdout = std::io::stdout().lock();
            let _ = if json {
                writeln!(stdout, "{}", done.to_json(e.to_json()))
            } else {
                done.render_text(&mut stdout)
            };
            drop(stdout);
            say(&format!("error: {e}"));
            ExitCode::from(e.exit_code())
        }
        Err(e) => fail(&e, json),
    }
}

/// Whether the command line asks for `--format json` (looked at before flags are parsed, so
/// that a flag that does not parse is reported as JSON too).
fn wants_json(args: &[std::ffi::OsString]) -> bool {
    let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    args.contains(&"--format=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--format" && w[1] == "json")
}

/// Reports `e` (on stderr; with `json`, also as a JSON object on stdout) and gives its exit code.
fn fail(e: &oauthtest::Error, json: bool) -> ExitCode {
    if json {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", e.to_json());
    }
    say(&format!("error: {e}"));
    ExitCode::from(e.exit_code())
}

fn print_json_error(kind: &str, message: &str, code: u8) {
    let value = serde_json::json!({"error": {"kind": kind, "message": message, "exit_code": code}});
    let _ = writeln!(std::io::stdout().lock(), "{value}");
}

/// One line on stderr; a stderr that cannot be written (closed, full) is not a reason to panic.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Debug builds only (the binary the tests run; release builds do not have it):
/// `OAUTHTEST_TEST_PANIC=TEXT` makes a task panic with TEXT in its message, and the main task
/// `expect` its `JoinError`, whose message repeats TEXT, as a library's would repeat a secret.
/// The leak audit sets TEXT to a secret and checks that stderr never shows it.
#[cfg(debug_assertions)]
async fn panic_if_asked_by_a_test() {
    if let Some(text) = std::env::var_os("OAUTHTEST_TEST_PANIC") {
        let text = text.to_string_lossy().into_owned();
        tokio::spawn(async move { panic!("test panic holding {text}") })
            .await
            .expect("the test task failed");
    }
}
