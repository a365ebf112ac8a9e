//! The outcome of conformance checks: per check passed, skipped (with the capability that turned it off) or
//! failed (with what was expected and what was observed), gathered in a [`ConformanceReport`].
//!
//! One report type for every conformance check in the project: the provider suites of this module and
//! the drain-protocol checker of `pulse-server-drain` (whose checks are named at run time and record what
//! they saw) both produce a [`ConformanceReport`].

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::Error;

/// What a check that did not fail concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every expectation held.
    Passed,
    /// The check does not apply to this provider; the reason names the capability or harness limit.
    Skipped(String),
}

/// Why a check failed: what was expected and what was observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure(pub String);

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckFailure {}

impl From<Error> for CheckFailure {
    fn from(e: Error) -> Self {
        CheckFailure(format!("unexpected provider error: {e}"))
    }
}

/// The result of one check function.
pub type CheckResult = Result<Verdict, CheckFailure>;

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckStatus {
    /// It passed.
    Passed,
    /// It did not apply (the reason says why).
    Skipped(String),
    /// It failed (the message says what was expected and observed).
    Failed(String),
}

impl CheckStatus {
    /// From a check function's result.
    pub fn from_result(result: CheckResult) -> CheckStatus {
        match result {
            Ok(Verdict::Passed) => CheckStatus::Passed,
            Ok(Verdict::Skipped(reason)) => CheckStatus::Skipped(reason),
            Err(failure) => CheckStatus::Failed(failure.0),
        }
    }

    /// `PASS`, `SKIP` or `FAIL`.
    pub fn mark(&self) -> &'static str {
        match self {
            CheckStatus::Passed => "PASS",
            CheckStatus::Skipped(_) => "SKIP",
            CheckStatus::Failed(_) => "FAIL",
        }
    }
}

/// One check of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The check's name: the name of its function in the provider suites, a sentence such as `drain
    /// refuses a wrong secret` in the drain-protocol checker.
    pub name: Cow<'static, str>,
    /// How it ended.
    pub status: CheckStatus,
    /// What was observed when it passed (status, headers, a body excerpt), or empty: a failure's or a
    /// skip's text is in its [`CheckStatus`]. Never a secret.
    pub saw: String,
    /// How long it took.
    pub elapsed: Duration,
}

impl CheckOutcome {
    /// What the check saw: the observation of a pass, the reason of a skip, the message of a failure.
    pub fn seen(&self) -> &str {
        match &self.status {
            CheckStatus::Passed => &self.saw,
            CheckStatus::Skipped(text) | CheckStatus::Failed(text) => text,
        }
    }
}

/// Every check of one run: a provider suite against one provider, or the drain-protocol checker against
/// one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceReport {
    /// `orchestrator`, `router` or `drain-protocol`.
    pub suite: Cow<'static, str>,
    /// What was checked: the provider's name from its capabilities (`docker`, `alb`), or a server's URL.
    pub subject: String,
    /// The checks, in the order they ran.
    pub checks: Vec<CheckOutcome>,
}

impl ConformanceReport {
    /// An empty report of `suite` run against `subject`.
    pub fn new(suite: impl Into<Cow<'static, str>>, subject: impl Into<String>) -> Self {
        ConformanceReport { suite: suite.into(), subject: subject.into(), checks: Vec::new() }
    }

    /// Records one check's result (and logs it: a failure as a warning).
    pub fn record(&mut self, name: impl Into<Cow<'static, str>>, result: CheckResult, elapsed: Duration) {
        self.push(CheckOutcome {
            name: name.into(),
            status: CheckStatus::from_result(result),
            saw: String::new(),
            elapsed,
        });
    }

    /// Records one check as it ended (and logs it: a failure as a warning).
    pub fn push(&mut self, outcome: CheckOutcome) {
        let (suite, subject, check) = (&*self.suite, &*self.subject, &*outcome.name);
        match &outcome.status {
            CheckStatus::Failed(message) => {
                tracing::warn!(suite, subject, check, %message, "conformance check failed")
            }
            status => tracing::info!(suite, subject, check, ?status, "conformance check done"),
        }
        self.checks.push(outcome);
    }

    /// True if no check failed.
    pub fn passed(&self) -> bool {
        self.failed().is_empty()
    }

    /// Names of the checks that passed.
    pub fn passed_checks(&self) -> Vec<&str> {
        self.checks.iter().filter(|c| c.status == CheckStatus::Passed).map(|c| &*c.name).collect()
    }

    /// The checks that failed.
    pub fn failed(&self) -> Vec<&CheckOutcome> {
        self.checks.iter().filter(|c| matches!(c.status, CheckStatus::Failed(_))).collect()
    }

    /// Names of the checks that were skipped.
    pub fn skipped_checks(&self) -> Vec<&str> {
        self.checks.iter().filter(|c| matches!(c.status, CheckStatus::Skipped(_))).map(|c| &*c.name).collect()
    }

    /// The check named `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckOutcome> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Panics with the whole report if a check failed (for use at the end of a test).
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(self.passed(), "conformance failures:\n{self}");
    }
}

impl fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failed().len();
        let skipped = self.skipped_checks().len();
        writeln!(
            f,
            "{} suite on `{}`: {} checks, {} passed, {skipped} skipped, {failed} failed",
            self.suite,
            self.subject,
            self.checks.len(),
            self.checks.len() - failed - skipped
        )?;
        for check in &self.checks {
            let ms = check.elapsed.as_millis();
            match &check.status {
                CheckStatus::Passed if check.saw.is_empty() => {
                    writeln!(f, "  PASS {} ({ms} ms)", check.name)?
                }
                CheckStatus::Passed => {
                    writeln!(f, "  PASS {} ({ms} ms)\n         saw: {}", check.name, check.saw)?
                }
                CheckStatus::Skipped(reason) => writeln!(f, "  SKIP {}: {reason}", check.name)?,
                CheckStatus::Failed(message) => writeln!(f, "  FAIL {} ({ms} ms): {message}", check.name)?,
            }
        }
        Ok(())
    }
}

/// A check's result once its app was cleaned up: a failed cleanup fails a check that otherwise held.
pub(crate) fn after_cleanup(
    result: CheckResult,
    cleanup: std::result::Result<(), impl fmt::Display>,
) -> CheckResult {
    match (result, cleanup) {
        (Ok(verdict), Ok(())) => Ok(verdict),
        (Ok(_), Err(e)) => Err(CheckFailure(format!("cleanup failed: {e}"))),
        (Err(e), _) => Err(e),
    }
}
