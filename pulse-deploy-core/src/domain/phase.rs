//! [`VersionPhase`]: where a version is in its life, as the rollout engine sees it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The phase of one version. Phases are derived from observation (provider state and instance status),
/// never stored only in the deployer, so a restarted deployer derives the same phase.
///
/// ```text
/// Starting ──healthy──▶ Ready ──drain sent──▶ Draining ──0 sessions or deadline──▶ Drained
///    │                                                                              │
///    └──health timeout──▶ Failed ──────────────────────┐                            ▼
///                                                      └──────────────────────▶ Retiring ──▶ Gone
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionPhase {
    /// Instances are starting or not yet healthy.
    Starting,
    /// Every instance is healthy; the version may receive traffic.
    Ready,
    /// The drain signal was delivered; existing sessions are served, new ones are turned away.
    Draining,
    /// Draining and no session is left (or the drain deadline passed): ready to be reaped.
    Drained,
    /// Being removed: out of the router, instances stopping gracefully.
    Retiring,
    /// Removed everywhere.
    Gone,
    /// Did not become healthy in time (or crashed while starting); it is rolled back.
    Failed,
}

impl fmt::Display for VersionPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            VersionPhase::Starting => "starting",
            VersionPhase::Ready => "ready",
            VersionPhase::Draining => "draining",
            VersionPhase::Drained => "drained",
            VersionPhase::Retiring => "retiring",
            VersionPhase::Gone => "gone",
            VersionPhase::Failed => "failed",
        };
        f.write_str(s)
    }
}
