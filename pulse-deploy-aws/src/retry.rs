//! Retries of retryable AWS errors ([`pulse_deploy_core::Error::is_retryable`]) with exponential backoff
//! under one overall deadline, each retry logged. Every call this crate retries is idempotent, so a
//! retry after a lost response creates nothing twice.
//!
//! Not for: classifying errors (see [`crate::errors`]).

use std::future::Future;
use std::time::Duration;

use pulse_deploy_core::Result;
use tokio::time::Instant;

/// How long and how often a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; doubled after each further one.
    pub first_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// No attempt starts later than this after the first.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    /// 100 ms doubling up to 5 s, for at most 60 s: long enough to ride out ELBv2 throttling.
    fn default() -> Self {
        RetryPolicy {
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            deadline: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Runs `call` until it succeeds, fails with a non-retryable error, or the deadline passes (then the
    /// last error is returned).
    pub async fn run<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let started = Instant::now();
        let mut backoff = self.first_backoff;
        let mut attempt = 1u32;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && started.elapsed() + backoff < self.deadline => {
                    tracing::warn!(call = what, attempt, backoff_ms = backoff.as_millis() as u64, error = %e, "retrying AWS call");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.max_backoff);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_deploy_core::Error;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_errors_until_success() {
        let calls = AtomicU32::new(0);
        let out = RetryPolicy::default()
            .run("test", || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(Error::provider("alb", "Throttling", true))
                } else {
                    Ok(7)
                }
            })
            .await
            .unwrap();
        assert_eq!((out, calls.load(Ordering::SeqCst)), (7, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried_and_the_deadline_holds() {
        let calls = AtomicU32::new(0);
        let err = RetryPolicy::default()
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Error::provider("alb", "ValidationError", false))
            })
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let started = Instant::now();
        RetryPolicy::default()
            .run("test", || async { Err::<(), _>(Error::provider("alb", "Throttling", true)) })
            .await
            .unwrap_err();
        assert!(started.elapsed() <= RetryPolicy::default().deadline);
    }
}
