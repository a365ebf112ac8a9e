//! [`RolloutEvent`]: typed progress of a rollout, for CLIs, logs and reports.

use std::sync::Arc;
use std::time::Duration;

use crate::{AppName, VersionId, VersionPhase, Weights};

/// One version's line in a [`RolloutEvent::Observed`] snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSummary {
    /// The version.
    pub version: VersionId,
    /// Its phase.
    pub phase: VersionPhase,
    /// Its weight in percent.
    pub weight: u32,
    /// Live instances / wanted replicas.
    pub instances: (usize, u32),
    /// Healthy instances.
    pub healthy: usize,
    /// Sessions reported by its instances.
    pub sessions: u64,
}

/// Something that happened during a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RolloutEvent {
    /// A new snapshot whose phases, weights or session counts differ from the previous one.
    Observed {
        /// The app.
        app: AppName,
        /// Every version.
        versions: Vec<VersionSummary>,
    },
    /// An action is about to run.
    ActionStarted {
        /// What it does, e.g. `set weights {v2=100%}`.
        action: String,
    },
    /// An action succeeded.
    ActionSucceeded {
        /// What it did.
        action: String,
        /// How long it took.
        took: Duration,
    },
    /// An action failed with a retryable error and is retried after `backoff`.
    ActionRetried {
        /// What failed.
        action: String,
        /// Which attempt failed (1-based).
        attempt: u32,
        /// The error.
        error: String,
        /// Wait before the next attempt.
        backoff: Duration,
    },
    /// Weights changed.
    WeightsChanged {
        /// The new weights.
        weights: Weights,
    },
    /// The drain signal was delivered to a version's instances.
    DrainSent {
        /// The version.
        version: VersionId,
        /// Instances that acknowledged.
        acknowledged: usize,
        /// Instances the signal was sent to.
        of: usize,
    },
    /// A version was reaped (out of the router and retired).
    Reaped {
        /// The version.
        version: VersionId,
    },
    /// The rollout waits; the reasons changed since the last such event.
    Waiting {
        /// Why, one line per version.
        reasons: Vec<String>,
    },
    /// A new version failed and is rolled back.
    RollingBack {
        /// The failed version.
        version: VersionId,
        /// Why.
        reason: String,
    },
    /// The goal is reached.
    GoalReached {
        /// The target version.
        target: Option<VersionId>,
    },
}

/// Receives rollout events. Cheap to clone.
pub type EventSink = Arc<dyn Fn(&RolloutEvent) + Send + Sync>;

/// A sink that drops every event.
pub fn discard() -> EventSink {
    Arc::new(|_| {})
}
