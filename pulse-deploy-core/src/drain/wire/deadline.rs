//! The drain-deadline rules of the protocol, each written once, as pure functions.
//!
//! Every party that reasons about a drain deadline uses these: the Rust server (`pulse-server-drain`'s
//! state), the in-memory drain fake and world, the rollout planner and the conformance checker. The Python
//! plugin mirrors them (`pulse_deploy/plugin.py`); `docs/drain-protocol.md` is the normative text.
//!
//! The rules:
//! - a deadline travels as whole seconds from "now" ([`wire_secs`]): rounded down, at least 1 s, at most
//!   [`MAX_DRAIN_DEADLINE`];
//! - a drain request without a deadline uses the server's default, [`DEFAULT_DRAIN_DEADLINE`] unless the app
//!   configures another one ([`effective`]);
//! - a drain of an instance that is already draining keeps the earlier deadline ([`keep_earlier`]);
//! - a draining instance is drained once it holds no session or its deadline has passed ([`is_drained`]).
//!
//! The functions are generic over the clock type so that a server can keep a monotonic `Instant` for its
//! decisions and a `SystemTime` for what it reports.

use std::time::Duration;

/// The drain deadline when nobody chose one: 6 hours. One value for the deployer (`Release`'s default) and
/// for the servers (a drain request without `deadline_secs`), so that a drain sent by hand (`curl`) behaves
/// like one sent by the deployer. Long enough for a working day's tab to finish what it is doing; an app
/// that wants its old versions gone sooner sets a shorter one.
pub const DEFAULT_DRAIN_DEADLINE: Duration = Duration::from_secs(6 * 3600);

/// The longest drain deadline a server accepts (30 days), configured or requested. Longer ones are refused
/// where they enter (a 400 for a request, a start-up error for a setting); the bound also keeps every
/// deadline computation far from overflow.
pub const MAX_DRAIN_DEADLINE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The whole seconds a deadline travels as (`DrainRequest::deadline_secs`): rounded down, at least 1 s (a
/// zero deadline would mean "drained at once", which is what a shutdown is for), at most
/// [`MAX_DRAIN_DEADLINE`].
pub fn wire_secs(deadline: Duration) -> u64 {
    deadline.as_secs().clamp(1, MAX_DRAIN_DEADLINE.as_secs())
}

/// The deadline a drain request asks for, counted from its arrival: the requested one, or `default` when
/// the request names none; never more than [`MAX_DRAIN_DEADLINE`].
pub fn effective(requested: Option<Duration>, default: Duration) -> Duration {
    requested.unwrap_or(default).min(MAX_DRAIN_DEADLINE)
}

/// The deadline after a drain request: an instance already draining keeps the earlier of its current
/// deadline and the requested one (a second drain can hurry a drain, never prolong it).
pub fn keep_earlier<T: Ord>(current: Option<T>, requested: T) -> T {
    match current {
        Some(current) => current.min(requested),
        None => requested,
    }
}

/// Whether `deadline` has passed at `now` (a deadline is inclusive: at the deadline itself it has passed).
/// No deadline never passes.
pub fn past<T: PartialOrd>(now: T, deadline: Option<T>) -> bool {
    deadline.is_some_and(|d| now >= d)
}

/// Whether a draining instance is drained at `now`: it holds no session, or its deadline has passed.
pub fn is_drained<T: PartialOrd>(active_sessions: u64, now: T, deadline: Option<T>) -> bool {
    active_sessions == 0 || past(now, deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_secs_rounds_down_and_stays_in_range() {
        assert_eq!(wire_secs(Duration::from_millis(1500)), 1);
        assert_eq!(wire_secs(Duration::from_millis(999)), 1);
        assert_eq!(wire_secs(Duration::ZERO), 1);
        assert_eq!(wire_secs(Duration::from_secs(600)), 600);
        assert_eq!(wire_secs(Duration::MAX), MAX_DRAIN_DEADLINE.as_secs());
    }

    #[test]
    fn effective_uses_the_default_and_the_bound() {
        let default = Duration::from_secs(60);
        assert_eq!(effective(None, default), default);
        assert_eq!(effective(Some(Duration::from_secs(5)), default), Duration::from_secs(5));
        assert_eq!(effective(Some(Duration::MAX), default), MAX_DRAIN_DEADLINE);
        assert_eq!(effective(None, Duration::MAX), MAX_DRAIN_DEADLINE);
    }

    #[test]
    fn a_second_drain_hurries_but_never_prolongs() {
        assert_eq!(keep_earlier(None, 10), 10);
        assert_eq!(keep_earlier(Some(10), 5), 5);
        assert_eq!(keep_earlier(Some(10), 50), 10);
    }

    #[test]
    fn drained_at_zero_sessions_or_at_the_deadline() {
        assert!(is_drained(0, 5, Some(10)));
        assert!(is_drained(0, 5, None));
        assert!(!is_drained(3, 9, Some(10)));
        assert!(is_drained(3, 10, Some(10)), "the deadline itself counts as passed");
        assert!(!is_drained(3, 1_000, None));
        assert!(!past(9, Some(10)));
        assert!(!past::<u32>(9, None));
    }
}
