//! The fault tests' world (`tests/faults_*.rs`): [`rig`] starts a [`CliRig`] — one uniquely named app,
//! configured by the real `pulse-deploy init` and tuned for tests, on real Docker behind a real Envoy,
//! removed even when a test fails — with the reconnect grace the test asks for.
//!
//! These tests break things on purpose and prove the rollout and its sessions survive: the `pulse-deploy`
//! binary SIGKILLed between actions (driven as a process), Envoy SIGKILLed and an instance crashing
//! mid-rollout (driven through [`CliRig::executor`], an executor in the test's process over the same
//! providers and configuration, because the kill must happen from inside the rollout, as an action starts).
//! Not the end-to-end run (that is [`crate::e2e`]).

use std::path::Path;
use std::time::Duration;

use crate::cli::CliRig;

/// The lines of `pulse-deploy init`'s file every fault test changes: fast polls and Envoy health checks
/// (500 ms: what the tests' waits are sized for), drain deadlines far beyond the test, a short stop grace.
const TUNE: &[(&str, &str)] = &[
    ("drain_deadline = \"6h\"", "drain_deadline = \"10m\""),
    ("stop_grace = \"30s\"", "stop_grace = \"5s\""),
    ("health_timeout = \"5m\"", "health_timeout = \"90s\""),
    ("poll_interval = \"2s\"", "poll_interval = \"250ms\""),
    ("health_check_interval = \"1s\"", "health_check_interval = \"500ms\""),
];

/// Prepares the fault test `name` with `binary` (`env!("CARGO_BIN_EXE_pulse-deploy-cli")`): checks Docker
/// and Envoy (skip outside CI, fail under `CI=true`), builds the demo image, runs `pulse-deploy init` for a
/// fresh app `f<name>-xxxxx`, tunes the file ([`TUNE`]) and sets the app's reconnect grace to
/// `session_grace` (how long a session whose socket went away is kept; a page load that never opens its
/// socket holds its version that long, too). Every release is the demo app with 2 replicas on port 8000.
pub async fn rig(binary: &Path, name: &str, session_grace: Duration) -> Option<CliRig> {
    let grace = format!("[env]\nPULSE_SESSION_GRACE_SECS = \"{}\"", session_grace.as_secs());
    let mut tune = TUNE.to_vec();
    tune.push(("[env]", &grace));
    let prefix = format!("f{}", &name[..name.len().min(8)]);
    CliRig::start(binary, &prefix, &tune).await
}
