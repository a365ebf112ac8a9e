//! Recording the checker's results into the project's one report type,
//! [`pulse_deploy_core::conformance::ConformanceReport`] (suite `drain-protocol`, subject the server's URL):
//! one [`CheckOutcome`] per protocol rule, passed, failed or skipped, with what was seen, every string
//! passed through the [`Redactor`] first.

use std::time::Instant;

use pulse_deploy_core::conformance::{CheckOutcome, CheckStatus, ConformanceReport};

use super::redact::Redactor;

/// The suite name of the checker's reports.
pub const SUITE: &str = "drain-protocol";

/// Writes a [`ConformanceReport`], redacting every name and observation, timing each check from the end
/// of the previous one.
#[derive(Debug)]
pub(crate) struct Recorder {
    report: ConformanceReport,
    redactor: Redactor,
    since: Instant,
}

impl Recorder {
    /// An empty report on `target` (already redacted by the caller).
    pub(crate) fn new(target: String, redactor: Redactor) -> Self {
        Recorder { report: ConformanceReport::new(SUITE, target), redactor, since: Instant::now() }
    }

    /// Records a pass or a failure with what was seen; returns `passed`.
    pub(crate) fn record(&mut self, name: &str, passed: bool, saw: impl Into<String>) -> bool {
        let saw = self.redactor.redact(&saw.into());
        let (status, saw) =
            if passed { (CheckStatus::Passed, saw) } else { (CheckStatus::Failed(saw), String::new()) };
        self.push(name, status, saw);
        passed
    }

    /// Records a check that was not made, and why.
    pub(crate) fn skip(&mut self, name: &str, why: impl Into<String>) {
        let why = self.redactor.redact(&why.into());
        self.push(name, CheckStatus::Skipped(why), String::new());
    }

    fn push(&mut self, name: &str, status: CheckStatus, saw: String) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.since);
        self.since = now;
        self.report.push(CheckOutcome { name: self.redactor.redact(name).into(), status, saw, elapsed });
    }

    /// The finished report.
    pub(crate) fn finish(self) -> ConformanceReport {
        self.report
    }
}
