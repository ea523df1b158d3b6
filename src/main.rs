//! The `oauthtest` binary: parse flags, set up logging, run, map the outcome to an exit code.

use clap::Parser;
use oauthtest::{cli::Cli, exit_code, logging, report};
use std::process::ExitCode;

fn main() -> ExitCode {
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
    match runtime.block_on(oauthtest::run(&cli)) {
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
