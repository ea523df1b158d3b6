//! The one vocabulary of checks: one check's result ([`Check`]), how it ended ([`Status`]),
//! and the one rule that turns a run's checks into its exit code ([`exit_code()`]). `doctor`,
//! `real`, `force-expire` and the application-store variants of them all report with it, so a
//! run fails (exit 1) exactly when one of its checks is [`Status::Fail`], whatever the mode.

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

/// One named check and what it found (never a secret). Serialized as `name`, `status`,
/// `detail`, and `fix` when there is one.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// How it ended.
    pub status: Status,
    /// What was found, in words.
    pub detail: String,
    /// How to fix it, when there is something to fix (doctor says so for each problem).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    /// A check named `name` that ended as `status`.
    pub fn new(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status,
            detail: detail.into(),
            fix: None,
        }
    }

    /// The same check, with how to fix what it found.
    #[must_use]
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// Folds several checks into one named `name` (a step made of checks): it fails when any
    /// of them fails, and its detail lists the failed ones (all of them when none failed).
    pub fn fold(name: &str, checks: &[Check]) -> Check {
        let status = if checks.iter().any(Check::failed) {
            Status::Fail
        } else {
            Status::Pass
        };
        let detail = checks
            .iter()
            .filter(|c| status == Status::Pass || c.failed())
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
            .join("; ");
        Check::new(name, status, detail)
    }

    /// Whether it failed.
    pub fn failed(&self) -> bool {
        self.status == Status::Fail
    }

    /// [`passed`] for a run's checks.
    pub fn all_passed(checks: &[Check]) -> bool {
        passed(checks.iter().map(|c| c.status))
    }

    /// [`exit_code()`] for a run's checks.
    pub fn exit_code(checks: &[Check]) -> u8 {
        exit_code(checks.iter().map(|c| c.status))
    }

    /// How many of `checks` ended as `status`.
    pub fn count(checks: &[Check], status: Status) -> usize {
        checks.iter().filter(|c| c.status == status).count()
    }
}

/// Writes checks as `PASS name  detail` lines (and a `fix:` line under a check that has one).
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
        if let Some(fix) = &c.fix {
            writeln!(out, "       {:<width$}  fix: {fix}", "")?;
        }
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
    fn a_fix_is_serialized_only_when_there_is_one() {
        let plain = serde_json::to_value(Check::new("key", Status::Pass, "loads")).unwrap();
        assert_eq!(
            plain,
            serde_json::json!({"name": "key", "status": "pass", "detail": "loads"})
        );
        let fixed = Check::new("key", Status::Fail, "unset").with_fix("run keygen");
        assert_eq!(serde_json::to_value(fixed).unwrap()["fix"], "run keygen");
    }

    #[test]
    fn a_folded_step_fails_when_one_of_its_checks_fails() {
        let pass = Check::new("a", Status::Pass, "fine");
        let fail = Check::new("b", Status::Fail, "broken");
        let step = Check::fold("step", &[pass.clone(), fail]);
        assert_eq!(
            (step.status, step.detail.as_str()),
            (Status::Fail, "b: broken")
        );
        let step = Check::fold("step", &[pass.clone(), pass]);
        assert_eq!(
            (step.status, step.detail.as_str()),
            (Status::Pass, "a: fine; a: fine")
        );
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
