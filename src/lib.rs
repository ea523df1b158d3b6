//! oauthtest proves an application's Google OAuth2 token refresh works before it ships.
//!
//! The library holds everything; the `oauthtest` binary parses flags, sets up logging, calls
//! [`run`] and maps the outcome to an exit code ([`exit_code`]).

pub mod app_command;
pub mod app_store;
pub mod check;
pub mod cli;
pub mod credential;
pub mod crypto;
pub mod doctor;
pub mod error;
pub mod exchange;
pub mod exit_code;
pub mod google_api;
pub mod import_format;
pub mod logging;
pub mod manage;
pub mod modes;
pub mod progress;
pub mod refresh;
pub mod report;
pub mod scenarios;
pub mod secret;
pub mod serve;
pub mod settings;
pub mod signals;
pub mod staging;
pub mod store;
pub mod task;
pub mod temp_rows;
pub mod worker_sim;

pub use error::{Error, Result};

/// Runs the mode the command line asks for and returns its report.
///
/// # Errors
/// [`Error`], each variant with its exit code.
pub async fn run(cli: &cli::Cli) -> Result<Box<dyn report::Report>> {
    let (settings, task) = settings::Settings::from_cli(cli)?;
    // serve stops on these signals by itself, with its own summary.
    if matches!(task, task::Task::Serve(_)) {
        return modes::dispatch(&settings, task).await;
    }
    let signals = signals::Signals::install()?;
    let mut run = std::pin::pin!(modes::dispatch(&settings, task));
    tokio::select! {
        report = &mut run => report,
        signal = signals.wait() => {
            // The run goes on until the temporary rows being written are registered, so that
            // the binary's clean-up removes them; it begins no new one.
            let settled = tokio::select! {
                _ = &mut run => true,
                settled = temp_rows::settle(signal, SETTLE) => settled,
            };
            if !settled {
                tracing::warn!(
                    "a temporary row was still being written {} s after {signal}; if one is \
                     left behind, --mode cleanup removes it",
                    SETTLE.as_secs()
                );
            }
            Err(Error::Interrupted { signal })
        }
    }
}

/// How long a signal waits for the temporary rows being written.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);
