//! [`RolloutPolicy`]: how fast a rollout moves and how long it waits.

use std::time::Duration;

use crate::{Error, Result};

/// How new sessions move from the old version to the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShiftPolicy {
    /// All new sessions to the new version as soon as it is healthy.
    Immediate,
    /// Through the given percentages (ascending, ending at 100), waiting `bake` at each step.
    Stepped {
        /// Percentages of new sessions for the new version, e.g. `[10, 50, 100]`.
        steps: Vec<u32>,
        /// How long each step holds before the next.
        bake: Duration,
    },
}

/// How provider calls that fail with a retryable error are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub attempts: u32,
    /// Backoff before the second attempt; doubled each time up to `max_backoff`.
    pub initial_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The backoff after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// The knobs of a rollout. Defaults: health timeout 5 min, immediate shift, poll every 2 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutPolicy {
    /// How long a new version has, from its creation, to become healthy before it is rolled back.
    pub health_timeout: Duration,
    /// How new sessions move to the new version.
    pub shift: ShiftPolicy,
    /// How often the executor observes again while it waits.
    pub poll_interval: Duration,
    /// Retries of retryable provider errors.
    pub retry: RetryPolicy,
    /// How long after a shift the versions that lost their weight are drained (new sessions that still
    /// follow the old weights meanwhile are served, not refused). The executor raises it to the router's
    /// [`crate::RouterCapabilities::weight_propagation`].
    pub drain_after_shift: Duration,
}

impl Default for RolloutPolicy {
    fn default() -> Self {
        RolloutPolicy {
            health_timeout: Duration::from_secs(300),
            shift: ShiftPolicy::Immediate,
            poll_interval: Duration::from_secs(2),
            retry: RetryPolicy::default(),
            drain_after_shift: Duration::ZERO,
        }
    }
}

impl RolloutPolicy {
    /// A stepped shift through `steps` (percent) with `bake` between steps.
    pub fn stepped(mut self, steps: Vec<u32>, bake: Duration) -> Self {
        self.shift = ShiftPolicy::Stepped { steps, bake };
        self
    }

    /// Checks every field, naming the bad one.
    pub fn validate(&self) -> Result<()> {
        if self.health_timeout < Duration::from_secs(1) {
            return Err(Error::invalid("policy.health_timeout", "use at least 1 s (e.g. `5m`)"));
        }
        if self.poll_interval.is_zero() || self.poll_interval > Duration::from_secs(300) {
            return Err(Error::invalid(
                "policy.poll_interval",
                "use more than 0 and at most 5 min (e.g. `2s`)",
            ));
        }
        if self.retry.attempts == 0 {
            return Err(Error::invalid("policy.retry.attempts", "use at least 1 (the first attempt counts)"));
        }
        if let ShiftPolicy::Stepped { steps, .. } = &self.shift {
            let ascending = steps.windows(2).all(|w| w[0] < w[1]);
            if steps.is_empty() || !ascending || steps[0] == 0 || steps.last() != Some(&100) {
                return Err(Error::invalid(
                    "policy.shift.steps",
                    format!(
                        "{steps:?} must be ascending percentages above 0 ending at 100, e.g. [10, 50, 100]"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The weight the new version moves to after `current` (100 when immediate).
    pub(crate) fn next_step(&self, current: u32) -> u32 {
        match &self.shift {
            ShiftPolicy::Immediate => 100,
            ShiftPolicy::Stepped { steps, .. } => steps.iter().copied().find(|s| *s > current).unwrap_or(100),
        }
    }

    /// How long each step bakes (zero when immediate).
    pub(crate) fn bake(&self) -> Duration {
        match &self.shift {
            ShiftPolicy::Immediate => Duration::ZERO,
            ShiftPolicy::Stepped { bake, .. } => *bake,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_validation() {
        let p = RolloutPolicy::default().stepped(vec![10, 50, 100], Duration::from_secs(60));
        p.validate().unwrap();
        assert_eq!(p.next_step(0), 10);
        assert_eq!(p.next_step(10), 50);
        assert_eq!(p.next_step(30), 50);
        assert_eq!(p.next_step(50), 100);
        let bad = RolloutPolicy::default().stepped(vec![50, 10], Duration::ZERO);
        assert!(bad.validate().unwrap_err().to_string().contains("policy.shift.steps"));
        assert_eq!(RolloutPolicy::default().next_step(0), 100);
    }

    #[test]
    fn backoff_doubles_to_max() {
        let r = RetryPolicy::default();
        assert_eq!(r.backoff(1), Duration::from_millis(200));
        assert_eq!(r.backoff(2), Duration::from_millis(400));
        assert_eq!(r.backoff(40), Duration::from_secs(5));
    }
}
