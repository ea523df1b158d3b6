//! Logs go to stderr through `tracing`; stdout is reserved for results.
//!
//! The filter comes from `-v` counts, else `--log` / `OAUTHTEST_LOG`. Nothing logged may hold a
//! secret: types holding tokens print redacted, and functions that take them skip their
//! arguments in spans (`#[instrument(skip_all)]`).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber. An invalid `--log` filter falls back to `warn` with a notice.
pub fn init(log: &str, verbose: u8) {
    let directives = match verbose {
        0 => log.to_owned(),
        1 => "info".to_owned(),
        2 => "debug".to_owned(),
        _ => "trace".to_owned(),
    };
    let (filter, bad) = match EnvFilter::try_new(&directives) {
        Ok(f) => (f, false),
        Err(_) => (EnvFilter::new("warn"), true),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true)
        .try_init();
    if bad {
        tracing::warn!("--log / OAUTHTEST_LOG is not a valid filter; using warn");
    }
}
