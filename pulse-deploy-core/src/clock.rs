//! [`Clock`]: wall-clock time for the engine, real or virtual.
//!
//! [`TokioClock`] follows tokio's clock, so under `tokio::time::pause()` a whole rollout (with bake times,
//! drain deadlines and poll intervals of hours) runs in milliseconds of real time in tests.

use std::fmt::Debug;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

/// A source of wall-clock time and of sleeps.
#[async_trait]
pub trait Clock: Send + Sync + Debug {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
    /// Waits `d`.
    async fn sleep(&self, d: Duration);
}

/// Wall-clock time anchored at creation and advanced by tokio's clock (virtual when tokio's time is paused).
#[derive(Debug, Clone)]
pub struct TokioClock {
    base_wall: SystemTime,
    base: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that starts at the current system time.
    pub fn new() -> Self {
        TokioClock { base_wall: SystemTime::now(), base: tokio::time::Instant::now() }
    }

    /// A clock that starts at `start` (useful for repeatable simulations).
    pub fn starting_at(start: SystemTime) -> Self {
        TokioClock { base_wall: start, base: tokio::time::Instant::now() }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.base_wall + self.base.elapsed()
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }
}
