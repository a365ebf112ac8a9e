//! Running one drain-protocol call per instance with a bounded number in flight.
//!
//! A pass asks every live instance for its status, and a drain step signals every instance of a version:
//! with 30 versions of 100 instances that is 3,000 calls. Started all at once they would open 3,000
//! connections (or relay requests) together; [`DEFAULT_DRAIN_CONCURRENCY`] (or the executor's
//! `drain_concurrency`) caps how many run at once, while the rest wait for a free slot.

use std::future::Future;
use std::num::NonZeroUsize;

use futures::stream::{FuturesUnordered, StreamExt};

/// How many drain-protocol calls (status reads, drain signals) the engine has in flight at once by
/// default: enough that a pass over 3,000 instances at 1 ms per call takes about 0.1 s, few enough that
/// one deployer never holds more than a few dozen connections to an app's instances (or its relay).
pub const DEFAULT_DRAIN_CONCURRENCY: NonZeroUsize = NonZeroUsize::new(32).unwrap();

/// Runs `calls` with at most `limit` of them in flight, and returns their outputs in the calls' order.
///
/// Takes a `Vec` (not an iterator) so that no iterator adapter's closure is held across an await: that
/// keeps the caller's future `Send` (rust-lang/rust#64552).
pub(crate) async fn in_order<T, F>(calls: Vec<F>, limit: NonZeroUsize) -> Vec<T>
where
    F: Future<Output = T>,
{
    let total = calls.len();
    let mut waiting = calls.into_iter().enumerate();
    let mut running = FuturesUnordered::new();
    let mut done: Vec<(usize, T)> = Vec::with_capacity(total);
    loop {
        while running.len() < limit.get() {
            let Some((n, call)) = waiting.next() else { break };
            running.push(numbered(n, call));
        }
        match running.next().await {
            Some(output) => done.push(output),
            None => break,
        }
    }
    done.sort_unstable_by_key(|(n, _)| *n);
    done.into_iter().map(|(_, out)| out).collect()
}

async fn numbered<F: Future>(n: usize, call: F) -> (usize, F::Output) {
    (n, call.await)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn keeps_the_order_and_never_exceeds_the_limit() {
        let (in_flight, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let calls: Vec<_> = (0..20u64)
            .map(|n| {
                let (in_flight, peak) = (&in_flight, &peak);
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    // Later calls finish first: the output must still follow the input's order.
                    tokio::time::sleep(Duration::from_millis(20 - n)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    n
                }
            })
            .collect();
        let out = in_order(calls, NonZeroUsize::new(3).unwrap()).await;
        assert_eq!(out, (0..20).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }
}
