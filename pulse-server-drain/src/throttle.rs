//! Throttling of failed admin authentications: after `max_failures` failures from one peer within a
//! window, that peer's failures get 429 until the window ends. Only failures are counted and throttled: a
//! request with the exact secret always passes (`admin.rs`), so a success needs no reset of the count, and
//! none is done (a reset would hand an attacker sharing the deployer's address fresh attempts).
//!
//! A peer is its IPv4 address, or the /64 prefix of its IPv6 address (one host usually holds a whole /64,
//! so counting per address would let it rotate through 2^64 of them). The table of peers is bounded
//! ([`MAX_TRACKED_PEERS`]); once it is full (after expired entries are dropped), failures of peers not in
//! the table are counted in one shared overflow bucket, and that bucket is also what a peer not in the table
//! is checked against. Throttling therefore holds at any number of peers: past the bound, the untracked
//! peers are throttled together.
//!
//! Peers are told apart by address when the server was started with connect info
//! (`into_make_service_with_connect_info::<SocketAddr>()`, as [`crate::serve`] does); otherwise all
//! peers share one bucket.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most peers tracked one by one.
pub(crate) const MAX_TRACKED_PEERS: usize = 4096;

/// What failures are counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// An IPv4 address, or an IPv6 /64 prefix (as a masked address).
    Peer(IpAddr),
    /// No connect info: every peer.
    Unknown,
    /// Peers not in the full table.
    Overflow,
}

fn key(peer: Option<IpAddr>) -> Key {
    match peer {
        None => Key::Unknown,
        Some(IpAddr::V4(a)) => Key::Peer(IpAddr::V4(a)),
        Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => Key::Peer(IpAddr::V4(v4)),
            None => Key::Peer(IpAddr::V6((u128::from(a) & !((1u128 << 64) - 1)).into())),
        },
    }
}

#[derive(Debug)]
pub(crate) struct Throttle {
    max_failures: u32,
    window: Duration,
    peers: Mutex<HashMap<Key, Bucket>>,
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

    /// The key `peer`'s failures are counted (and checked) under.
    fn slot(&self, peers: &HashMap<Key, Bucket>, peer: Option<IpAddr>) -> Key {
        let k = key(peer);
        if peers.contains_key(&k) || peers.len() < MAX_TRACKED_PEERS {
            k
        } else {
            Key::Overflow
        }
    }

    /// `Err(retry_after)` if `peer` is throttled now.
    pub(crate) fn check(&self, peer: Option<IpAddr>) -> Result<(), Duration> {
        let peers = self.peers.lock().expect("throttle lock");
        let slot = self.slot(&peers, peer);
        match peers.get(&slot) {
            Some(b) if b.failures >= self.max_failures && b.started.elapsed() < self.window => {
                Err(self.window.saturating_sub(b.started.elapsed()))
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn record_failure(&self, peer: Option<IpAddr>) {
        let mut peers = self.peers.lock().expect("throttle lock");
        if peers.len() >= MAX_TRACKED_PEERS && !peers.contains_key(&key(peer)) {
            let window = self.window;
            peers.retain(|_, b| b.started.elapsed() < window);
        }
        let slot = self.slot(&peers, peer);
        let bucket = peers.entry(slot).or_insert(Bucket { started: Instant::now(), failures: 0 });
        if bucket.started.elapsed() >= self.window {
            *bucket = Bucket { started: Instant::now(), failures: 0 };
        }
        bucket.failures = bucket.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

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
    }

    #[test]
    fn window_expires() {
        let t = Throttle::new(1, Duration::from_millis(0));
        t.record_failure(None);
        assert!(t.check(None).is_ok());
    }

    #[test]
    fn holds_past_the_table_bound() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let peer = |i: u32| Some(IpAddr::from((0x0a00_0000 + i).to_be_bytes()));
        for i in 0..MAX_TRACKED_PEERS as u32 {
            t.record_failure(peer(i));
        }
        // Every further peer is counted in, and checked against, the overflow bucket.
        let mut throttled = 0;
        for i in 0..10u32 {
            let p = peer(MAX_TRACKED_PEERS as u32 + i);
            if t.check(p).is_err() {
                throttled += 1;
            } else {
                t.record_failure(p);
            }
        }
        assert_eq!(throttled, 7, "after 3 failures from untracked peers, untracked peers are throttled");
        // A tracked peer keeps its own count.
        assert!(t.check(peer(0)).is_ok());
    }

    #[test]
    fn ipv6_counts_per_64() {
        let t = Throttle::new(2, Duration::from_secs(60));
        let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0));
        for i in 0..2u128 {
            t.record_failure(Some(IpAddr::V6((base + i * 7919).into())));
        }
        assert!(t.check(Some(IpAddr::V6((base + 123_456).into()))).is_err(), "same /64 is one peer");
        let other = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 0));
        assert!(t.check(Some(IpAddr::V6(other.into()))).is_ok(), "another /64 is another peer");
    }
}
