//! The process exit codes, in one place.
//!
//! CI scripts and pre-deploy checklists branch on these numbers, so they are part of the public
//! interface: documented in `--help`, in the README, and never reused for another meaning.

/// Everything that was asked for ran, and every check or scenario passed.
pub const SUCCESS: u8 = 0;
/// The run completed but a check, scenario or invariant failed (a finding about the system under test).
pub const CHECK_FAILED: u8 = 1;
/// The run could not start or could not finish because of its input: a flag, a setting, a key,
/// a file, a database row or an unreachable database. Nothing was written.
pub const USAGE_OR_INPUT: u8 = 2;
/// A bug or an unexpected failure of this tool itself (not your input, not a failed check).
/// Kept apart from 1 and 2 so that a pipeline never mistakes our fault for yours.
pub const INTERNAL: u8 = 3;

/// Stopped by SIGINT (Ctrl-C), as shells report a process killed by it (128 + 2).
pub const INTERRUPTED_SIGINT: u8 = 130;
/// Stopped by SIGTERM (128 + 15).
pub const INTERRUPTED_SIGTERM: u8 = 143;

/// The exit code of a run stopped by `signal` (`SIGINT` or `SIGTERM`).
pub fn interrupted(signal: &str) -> u8 {
    if signal == "SIGTERM" {
        INTERRUPTED_SIGTERM
    } else {
        INTERRUPTED_SIGINT
    }
}

/// The table printed at the end of `--help`.
pub const HELP_TABLE: &str = "\
Exit codes:
  0  success: everything ran and every check passed
  1  a check, scenario or invariant failed
  2  usage, configuration or input error (flag, setting, key, file, database row, unreachable database); nothing written
  3  internal error of oauthtest itself (also: stdout or stderr could not be written)
  130  interrupted by SIGINT (143: SIGTERM); temporary rows removed";
