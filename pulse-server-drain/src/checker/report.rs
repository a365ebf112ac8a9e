//! The checker's [`Report`]: one [`Check`] per protocol rule, passed, failed or skipped, with what was seen.

use std::fmt;

use super::redact::Redactor;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server behaved as the protocol says.
    Passed,
    /// It did not.
    Failed,
    /// Not checked (an option turned it off, or an earlier step gave nothing to check against).
    Skipped,
}

/// One check: what the protocol requires and what the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked, e.g. `drain refuses a wrong secret`.
    pub name: String,
    /// Passed, failed or skipped.
    pub outcome: Outcome,
    /// What was seen (status, relevant headers, body excerpt) or why it was skipped. Never the secret.
    pub saw: String,
}

/// Every check of one run, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The server checked.
    pub target: String,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
    /// Applied to every name and `saw` recorded (see [`Redactor`]).
    pub(crate) redactor: Redactor,
}

impl Report {
    pub(crate) fn record(&mut self, name: &str, passed: bool, saw: impl Into<String>) -> bool {
        let outcome = if passed { Outcome::Passed } else { Outcome::Failed };
        let (name, saw) = (self.redactor.redact(name), self.redactor.redact(&saw.into()));
        self.checks.push(Check { name, outcome, saw });
        passed
    }

    pub(crate) fn skip(&mut self, name: &str, why: impl Into<String>) {
        let (name, saw) = (self.redactor.redact(name), self.redactor.redact(&why.into()));
        self.checks.push(Check { name, outcome: Outcome::Skipped, saw });
    }

    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        !self.checks.iter().any(|c| c.outcome == Outcome::Failed)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.outcome == Outcome::Failed)
    }

    /// The check named `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "drain protocol conformance of {}", self.target)?;
        for c in &self.checks {
            let mark = match c.outcome {
                Outcome::Passed => "PASS",
                Outcome::Failed => "FAIL",
                Outcome::Skipped => "SKIP",
            };
            writeln!(f, "  [{mark}] {}\n         saw: {}", c.name, c.saw)?;
        }
        let count = |o| self.checks.iter().filter(|c| c.outcome == o).count();
        write!(
            f,
            "summary of checks: passed {}, failed {}, skipped {}",
            count(Outcome::Passed),
            count(Outcome::Failed),
            count(Outcome::Skipped)
        )
    }
}
