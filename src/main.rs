//! The `oauthtest` binary: parse flags, set up logging, run, map the outcome to an exit code.

use clap::Parser;
use oauthtest::{cli::Cli, exit_code, logging, report};
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;

fn main() -> ExitCode {
    // First: a panic's message may hold a secret; the hook prints the place only.
    logging::install_panic_hook();
    // Before any thread exists: `.env` fills variables that flags and the environment left unset.
    if let Err(e) = oauthtest::settings::load_dotenv() {
        eprintln!("error: {e}");
        return ExitCode::from(e.exit_code());
    }
    let cli = Cli::parse();
    logging::init(
        cli.log
            .as_deref()
            .unwrap_or_else(|| cli.mode.default_log_filter()),
        cli.verbose,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit_code::INTERNAL);
        }
    };
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            #[cfg(debug_assertions)]
            panic_if_asked_by_a_test().await;
            oauthtest::run(&cli).await
        })
    }));
    // The hook has reported the panic; its payload is dropped unread.
    let Ok(outcome) = ran else {
        return ExitCode::from(exit_code::INTERNAL);
    };
    match outcome {
        Ok(report) => {
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = report::emit(report.as_ref(), cli.format, &mut stdout) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    eprintln!("error: cannot write the report: {e}");
                    return ExitCode::from(exit_code::INTERNAL);
                }
            }
            ExitCode::from(report.exit_code())
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
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
