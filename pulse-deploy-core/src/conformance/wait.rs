//! Polling helpers: every expectation about eventually-consistent provider state is polled against the
//! harness's timeout, never awaited with a fixed sleep.

use std::future::Future;
use std::time::Duration;

use super::report::CheckFailure;
use crate::Error;

/// What one poll saw: the awaited value, or a description of the state that is not there yet.
pub(super) type Poll<T> = Result<Result<T, String>, Error>;

/// Polls `probe` every `interval` until it yields a value, for at most `timeout`. Retryable provider errors
/// are polled through; other errors fail at once. On timeout, the failure names `what` and the last
/// observation.
pub(super) async fn eventually<T, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: F,
) -> Result<T, CheckFailure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Poll<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match probe().await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(observed)) => observed,
            Err(e) if e.is_retryable() => format!("retryable error: {e}"),
            Err(e) => return Err(CheckFailure(format!("while waiting for {what}: {e}"))),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(CheckFailure(format!(
                "{what} did not happen within {}; last observed: {last}",
                humantime::format_duration(timeout)
            )));
        }
        tokio::time::sleep(interval).await;
    }
}

/// Fails the check with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::conformance::CheckFailure(format!($($msg)+)));
        }
    };
}
pub(super) use ensure;
