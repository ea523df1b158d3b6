//! The one vocabulary of checks: how a check ended ([`Status`]), and the one rule that turns a
//! run's checks into its exit code ([`exit_code`]). `doctor`, `real`, `force-expire` and the
//! application-store variants of them all judge with it, so a run fails (exit 1) exactly when
//! one of its checks is [`Status::Fail`], whatever the mode.

use crate::exit_code;
use serde::Serialize;
use std::io::{self, Write};

/// How a check ended. Serialized as `pass`, `note`, `warn`, `fail`, `skip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It held.
    Pass,
    /// Information, neither pass nor fail.
    Note,
    /// It works, but is worth fixing; does not fail the run.
    Warn,
    /// It did not hold: the run exits 1.
    Fail,
    /// Not run (not asked for, an earlier step failed, or a flag or the scopes rule it out).
    Skip,
}

impl Status {
    /// The tag text output shows: `PASS`, `NOTE`, `WARN`, `FAIL`, `SKIP`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Note => "NOTE",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// Whether a run whose checks ended as `statuses` passed: none of them is [`Status::Fail`].
pub fn passed(statuses: impl IntoIterator<Item = Status>) -> bool {
    !statuses.into_iter().any(|s| s == Status::Fail)
}

/// The exit code of a run whose checks ended as `statuses`: [`exit_code::CHECK_FAILED`] when
/// one failed, [`exit_code::SUCCESS`] otherwise.
pub fn exit_code(statuses: impl IntoIterator<Item = Status>) -> u8 {
    if passed(statuses) {
        exit_code::SUCCESS
    } else {
        exit_code::CHECK_FAILED
    }
}

/// One named check and what it found (never a secret).
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// How it ended.
    pub status: Status,
    /// What was found, in words.
    pub detail: String,
}

impl Check {
    /// A check named `name` that ended as `status`.
    pub fn new(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status,
            detail: detail.into(),
        }
    }

    /// Whether it failed.
    pub fn failed(&self) -> bool {
        self.status == Status::Fail
    }

    /// [`passed`] for a run's checks.
    pub fn all_passed(checks: &[Check]) -> bool {
        passed(checks.iter().map(|c| c.status))
    }

    /// [`exit_code`] for a run's checks.
    pub fn exit_code(checks: &[Check]) -> u8 {
        exit_code(checks.iter().map(|c| c.status))
    }
}

/// Writes checks as `PASS name  detail` lines.
///
/// # Errors
/// The writer's I/O errors.
pub fn write_checks(out: &mut dyn Write, checks: &[Check]) -> io::Result<()> {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in checks {
        writeln!(
            out,
            "  {} {:<width$}  {}",
            c.status.label(),
            c.name,
            c.detail
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_fails_exactly_when_a_check_fails() {
        use Status::*;
        assert_eq!(exit_code([Pass, Note, Warn, Skip]), exit_code::SUCCESS);
        assert_eq!(exit_code([]), exit_code::SUCCESS);
        assert_eq!(exit_code([Pass, Fail, Skip]), exit_code::CHECK_FAILED);
        assert!(!passed([Warn, Fail]));
    }

    #[test]
    fn statuses_serialize_as_the_documented_names() {
        let names: Vec<_> = [
            Status::Pass,
            Status::Note,
            Status::Warn,
            Status::Fail,
            Status::Skip,
        ]
        .iter()
        .map(|s| serde_json::to_value(s).unwrap())
        .collect();
        assert_eq!(names, ["pass", "note", "warn", "fail", "skip"]);
    }
}
