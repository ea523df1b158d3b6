//! Logs go to stderr through `tracing`; stdout is reserved for results. Panics are reported
//! here too, without their message.
//!
//! The filter comes from `-v` counts, else `--log` / `OAUTHTEST_LOG`, else `RUST_LOG`, else the
//! mode's default; a filter that does not parse is an error. A filter is a level or
//! comma-separated `target=level` pairs ([`Targets`]: no span or field filters, and no regex
//! engine in the build). Colour only on a terminal, and never
//! with `NO_COLOR` set (<https://no-color.org>). A failed write to stderr is dropped: it must not
//! turn into a panic (tracing's own "unable to write" notice would be one more failed write).
//! Nothing logged may hold a secret: types holding tokens print redacted, and functions that take
//! them skip their arguments in spans (`#[instrument(skip_all)]`).
//!
//! # Panics
//! The default panic hook prints the panic's message, and a message is formatted by whoever
//! panicked: an `expect` on a value, a library's internal assertion, a `JoinError` carrying
//! another task's panic payload. Any of them may hold a token or a key, and we cannot read them
//! all. So [`install_panic_hook`] replaces it with one that never sees the message: it prints
//! where the panic happened and a fixed text ([`write_panic_report`]), plus a backtrace (function
//! names only) when `RUST_BACKTRACE` asks for one. The binary then exits with
//! [`INTERNAL`](crate::exit_code::INTERNAL).

use std::backtrace::{Backtrace, BacktraceStatus};
use std::io::{self, IsTerminal, Write};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Where the log filter came from, for the message when it does not parse.
pub const FILTER_SOURCES: &str = "--log / OAUTHTEST_LOG / RUST_LOG";

/// The filter to use: `-v` counts win, then `log` (`--log`, `OAUTHTEST_LOG`, else `RUST_LOG`),
/// then `default`.
pub fn filter_directives(log: Option<&str>, verbose: u8, default: &str) -> String {
    match verbose {
        0 => log
            .map(str::to_owned)
            .or_else(|| std::env::var("RUST_LOG").ok())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| default.to_owned()),
        1 => "info".to_owned(),
        2 => "debug".to_owned(),
        _ => "trace".to_owned(),
    }
}

/// Whether stderr gets colour: a terminal, and `NO_COLOR` unset or empty.
pub fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the stderr subscriber.
///
/// # Errors
/// The filter's parse error, naming where filters come from ([`FILTER_SOURCES`]).
pub fn init(directives: &str) -> Result<(), String> {
    let filter: Targets = directives
        .parse()
        .map_err(|e| format!("{FILTER_SOURCES}: not a valid log filter ({e})"))?;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(|| Stderr)
        .with_ansi(colour_on_stderr())
        .log_internal_errors(false)
        .with_target(true);
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .try_init();
    Ok(())
}

static STDERR_FAILED: AtomicBool = AtomicBool::new(false);

/// Whether a log line could not be written to stderr (closed, full): the run then ends with
/// [`INTERNAL`](crate::exit_code::INTERNAL), since what it was asked to say was lost.
pub fn stderr_failed() -> bool {
    STDERR_FAILED.load(Ordering::Relaxed)
}

/// stderr for the subscriber: a failed write is remembered, never a panic.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stderr().write(buf).inspect_err(|_| {
            STDERR_FAILED.store(true, Ordering::Relaxed);
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush().inspect_err(|_| {
            STDERR_FAILED.store(true, Ordering::Relaxed);
        })
    }
}

/// Replaces the process's panic hook with one that reports a panic without its message (see the
/// module header). Call it first thing in `main`.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let mut stderr = io::stderr().lock();
        let _ = write_panic_report(&mut stderr, info.location());
        let backtrace = Backtrace::capture();
        if backtrace.status() == BacktraceStatus::Captured {
            let _ = writeln!(stderr, "{backtrace}");
        }
    }));
}

/// What the panic hook prints: the place, and a fixed text. It is given the location only, never
/// the panic's payload, so no secret can reach it.
///
/// # Errors
/// When `out` cannot be written.
pub fn write_panic_report(out: &mut dyn Write, location: Option<&Location<'_>>) -> io::Result<()> {
    let thread = std::thread::current();
    let thread = thread.name().unwrap_or("unnamed");
    let place = location.map_or_else(
        || "an unknown place".to_owned(),
        |l| format!("{}:{}:{}", l.file(), l.line(), l.column()),
    );
    writeln!(
        out,
        "error: internal error: oauthtest panicked at {place} (thread {thread}). The panic's \
         message is not shown because it may hold a secret. This is a bug in oauthtest; please \
         report it with this line and the command you ran (RUST_BACKTRACE=1 adds a backtrace)."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panic_report_is_one_line_naming_the_place() {
        let here = Location::caller();
        let mut out = Vec::new();
        write_panic_report(&mut out, Some(here)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("error: internal error: oauthtest panicked at "));
        assert!(
            text.contains(&format!("src/logging.rs:{}:", here.line())),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");

        let mut out = Vec::new();
        write_panic_report(&mut out, None).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("at an unknown place"));
    }
}
