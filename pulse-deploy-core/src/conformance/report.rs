//! The outcome of conformance checks: per check passed, skipped (with the capability that turned it off) or
//! failed (with what was expected and what was observed), gathered in a [`ConformanceReport`].

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

/// One check of a suite run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The check's name (the name of its function).
    pub name: &'static str,
    /// How it ended.
    pub status: CheckStatus,
    /// How long it took.
    pub elapsed: Duration,
}

/// Every check of one suite run against one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceReport {
    /// `orchestrator` or `router`.
    pub suite: &'static str,
    /// The provider's name, from its capabilities.
    pub provider: &'static str,
    /// The checks, in the order they ran.
    pub checks: Vec<CheckOutcome>,
}

impl ConformanceReport {
    pub(super) fn new(suite: &'static str, provider: &'static str) -> Self {
        ConformanceReport { suite, provider, checks: Vec::new() }
    }

    pub(super) fn record(&mut self, name: &'static str, result: CheckResult, elapsed: Duration) {
        let status = match result {
            Ok(Verdict::Passed) => CheckStatus::Passed,
            Ok(Verdict::Skipped(reason)) => CheckStatus::Skipped(reason),
            Err(failure) => CheckStatus::Failed(failure.0),
        };
        match &status {
            CheckStatus::Failed(message) => {
                tracing::warn!(suite = self.suite, provider = self.provider, check = name, %message, "conformance check failed")
            }
            _ => tracing::info!(
                suite = self.suite,
                provider = self.provider,
                check = name,
                ?status,
                "conformance check done"
            ),
        }
        self.checks.push(CheckOutcome { name, status, elapsed });
    }

    /// True if no check failed.
    pub fn passed(&self) -> bool {
        self.failed().is_empty()
    }

    /// Names of the checks that passed.
    pub fn passed_checks(&self) -> Vec<&'static str> {
        self.checks.iter().filter(|c| c.status == CheckStatus::Passed).map(|c| c.name).collect()
    }

    /// The checks that failed.
    pub fn failed(&self) -> Vec<&CheckOutcome> {
        self.checks.iter().filter(|c| matches!(c.status, CheckStatus::Failed(_))).collect()
    }

    /// Names of the checks that were skipped.
    pub fn skipped_checks(&self) -> Vec<&'static str> {
        self.checks.iter().filter(|c| matches!(c.status, CheckStatus::Skipped(_))).map(|c| c.name).collect()
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
            "{} suite on provider `{}`: {} checks, {} passed, {skipped} skipped, {failed} failed",
            self.suite,
            self.provider,
            self.checks.len(),
            self.checks.len() - failed - skipped
        )?;
        for check in &self.checks {
            let ms = check.elapsed.as_millis();
            match &check.status {
                CheckStatus::Passed => writeln!(f, "  PASS {} ({ms} ms)", check.name)?,
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
