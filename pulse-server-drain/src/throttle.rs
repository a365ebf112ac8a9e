//! Throttling of failed admin authentications: after `max_failures` failures from one peer address within
//! a window, that peer gets 429 (without its credential being checked) until the window ends.
//!
//! Peers are told apart by address when the server was started with connect info
//! (`into_make_service_with_connect_info::<SocketAddr>()`, as [`crate::serve`] does); otherwise all
//! peers share one bucket.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_TRACKED_PEERS: usize = 4096;

#[derive(Debug)]
pub(crate) struct Throttle {
    max_failures: u32,
    window: Duration,
    peers: Mutex<HashMap<Option<IpAddr>, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    started: Instant,
    failures: u32,
}

impl Throttle {
    pub(crate) fn new(max_failures: u32, window: Duration) -> Self {
        Throttle { max_failures, window, peers: Mutex::new(HashMap::new()) }
    }

    /// `Err(retry_after)` if `peer` is throttled now.
    pub(crate) fn check(&self, peer: Option<IpAddr>) -> Result<(), Duration> {
        let peers = self.peers.lock().expect("throttle lock");
        match peers.get(&peer) {
            Some(b) if b.failures >= self.max_failures && b.started.elapsed() < self.window => {
                Err(self.window.saturating_sub(b.started.elapsed()))
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn record_failure(&self, peer: Option<IpAddr>) {
        let mut peers = self.peers.lock().expect("throttle lock");
        if peers.len() >= MAX_TRACKED_PEERS && !peers.contains_key(&peer) {
            let window = self.window;
            peers.retain(|_, b| b.started.elapsed() < window);
        }
        let key = if peers.len() >= MAX_TRACKED_PEERS && !peers.contains_key(&peer) { None } else { peer };
        let bucket = peers.entry(key).or_insert(Bucket { started: Instant::now(), failures: 0 });
        if bucket.started.elapsed() >= self.window {
            *bucket = Bucket { started: Instant::now(), failures: 0 };
        }
        bucket.failures = bucket.failures.saturating_add(1);
    }

    pub(crate) fn record_success(&self, peer: Option<IpAddr>) {
        self.peers.lock().expect("throttle lock").remove(&peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_after_max_failures_per_peer() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let a = Some(IpAddr::from([127, 0, 0, 1]));
        let b = Some(IpAddr::from([127, 0, 0, 2]));
        for _ in 0..3 {
            assert!(t.check(a).is_ok());
            t.record_failure(a);
        }
        assert!(t.check(a).is_err());
        assert!(t.check(b).is_ok(), "another peer is not throttled");
        t.record_success(a);
        assert!(t.check(a).is_ok());
    }

    #[test]
    fn window_expires() {
        let t = Throttle::new(1, Duration::from_millis(0));
        t.record_failure(None);
        assert!(t.check(None).is_ok());
    }
}
