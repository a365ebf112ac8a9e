//! A suite as data: each check is written once, in one list (`suite!`), that gives its name, the order
//! the suite runs in, and the function it calls. [`run_suite`] runs such a list and gathers the
//! [`ConformanceReport`].

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use super::report::{CheckResult, ConformanceReport};

/// The future a check returns.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>>;

/// One check of a suite: its name and its function, a `for<'a> fn(&'a Subject, &'a Harness) -> CheckFuture<'a>`
/// pointer (`F`).
pub struct Check<F> {
    /// The check's name: the name of its function.
    pub name: &'static str,
    /// Runs the check.
    pub run: F,
}

impl<F> std::fmt::Debug for Check<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The names of a suite's checks, in the order they run.
pub fn names<F>(checks: &[Check<F>]) -> Vec<&'static str> {
    checks.iter().map(|c| c.name).collect()
}

/// Runs every check of `checks` in order (`call` runs one against the subject and harness) and reports how
/// each ended.
pub async fn run_suite<'a, F>(
    suite: &'static str,
    provider: &'static str,
    checks: &[Check<F>],
    mut call: impl FnMut(&F) -> CheckFuture<'a>,
) -> ConformanceReport {
    let mut report = ConformanceReport::new(suite, provider);
    for check in checks {
        let started = Instant::now();
        let result = call(&check.run).await;
        report.record(check.name, result, started.elapsed());
    }
    report
}

/// Declares a suite's list of checks: `suite!(NAME: FnType; check_a, check_b, ...)`, each an
/// `async fn(&Subject, &Harness) -> CheckResult` in scope.
macro_rules! suite {
    ($(#[$doc:meta])* $name:ident: $fn:ty; $($check:ident),+ $(,)?) => {
        $(#[$doc])*
        pub const $name: &[$crate::conformance::Check<$fn>] = &[
            $($crate::conformance::Check { name: stringify!($check), run: |s, h| Box::pin($check(s, h)) }),+
        ];
    };
}
pub(crate) use suite;
