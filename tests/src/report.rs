//! The end-to-end report (`target/e2e/report.json`): the figures the run is judged on.

use std::collections::BTreeMap;

use serde::Serialize;

use pulse_deploy::timeline::{Mark, Sample};

/// One step's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Step name, e.g. "2. deploy v2".
    pub name: String,
    /// Seconds the step took.
    pub seconds: f64,
}

/// Everything the run measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    /// Whether every check passed.
    pub passed: bool,
    /// Why not, if it did not.
    pub failure: Option<String>,
    /// Load requests that failed (must be 0).
    pub failed_requests: u64,
    /// Load requests that succeeded.
    pub ok_requests: u64,
    /// Page-load latency of the load, median and p99, in milliseconds.
    pub load_latency_ms: BTreeMap<String, f64>,
    /// Sessions lost or moved before their version's deadline (must be 0).
    pub dropped_sessions: u64,
    /// Sessions moved by close code 1001 to a newer version after their version's drain deadline.
    pub sessions_moved: u64,
    /// Sessions opened in all.
    pub sessions_opened: u64,
    /// Answers checked on the sessions' WebSockets.
    pub session_answers: u64,
    /// Containers of the run's app still present after cleanup (must be 0).
    pub leftover_containers: u64,
    /// Seconds from v1's last session closing to v1's removal (containers and routes gone).
    pub last_session_to_removal_seconds: Option<f64>,
    /// Seconds from v2's drain deadline to v2's removal.
    pub deadline_to_removal_seconds: Option<f64>,
    /// Per-step durations.
    pub steps: Vec<StepReport>,
    /// Controller passes that failed (retried).
    pub controller_errors: u64,
    /// Samples of weight and sessions per version.
    pub timeline: Vec<Sample>,
    /// Step boundaries on the timeline.
    pub marks: Vec<Mark>,
}
