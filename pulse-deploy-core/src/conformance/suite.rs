//! A suite as data: each check is written once, in one list (`suite!`), that gives its name, the order
//! the suite runs in, and the function it calls. [`run_suite`] runs such a list and gathers the
//! [`ConformanceReport`].

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use super::report::{CheckResult, ConformanceReport};

/// The future a check returns.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>>;

/// One check of a suite over a subject `S` (`dyn Orchestrator`, `dyn TrafficRouter`) and its harness `H`.
pub struct Check<S: ?Sized, H: ?Sized> {
    /// The check's name: the name of its function.
    pub name: &'static str,
    /// Runs the check.
    pub run: for<'a> fn(&'a S, &'a H) -> CheckFuture<'a>,
}

impl<S: ?Sized, H: ?Sized> std::fmt::Debug for Check<S, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The names of a suite's checks, in the order they run.
pub fn names<S: ?Sized, H: ?Sized>(checks: &[Check<S, H>]) -> Vec<&'static str> {
    checks.iter().map(|c| c.name).collect()
}

/// Runs every check of `checks` in order and reports how each ended.
pub async fn run_suite<S: ?Sized, H: ?Sized>(
    suite: &'static str,
    provider: &'static str,
    checks: &[Check<S, H>],
    subject: &S,
    harness: &H,
) -> ConformanceReport {
    let mut report = ConformanceReport::new(suite, provider);
    for check in checks {
        let started = Instant::now();
        let result = (check.run)(subject, harness).await;
        report.record(check.name, result, started.elapsed());
    }
    report
}

/// Declares a suite's list of checks: `suite!(NAME: Subject, Harness; check_a, check_b, ...)`, each an
/// `async fn(&Subject, &Harness) -> CheckResult` in scope.
macro_rules! suite {
    ($(#[$doc:meta])* $name:ident: $subject:ty, $harness:ty; $($check:ident),+ $(,)?) => {
        $(#[$doc])*
        pub const $name: &[$crate::conformance::Check<$subject, $harness>] = &[
            $($crate::conformance::Check { name: stringify!($check), run: |s, h| Box::pin($check(s, h)) }),+
        ];
    };
}
pub(crate) use suite;
