//! Preflight: can this machine run the local providers? Docker reachable, Envoy installed — each answer an
//! error that says what to do — and the one rule for test suites that need them ([`or_skip`]): on a
//! developer's machine a missing tool skips the test and says why; under `CI=true` it fails the test, so
//! that CI never passes by skipping.

use std::fmt::Display;
use std::path::PathBuf;

use bollard::Docker;
use pulse_deploy_core::Result;

/// A Docker client whose daemon answered (API version negotiated). See [`crate::docker::connect_docker`].
pub async fn docker() -> Result<Docker> {
    crate::docker::connect_docker().await
}

/// The Envoy binary the router would run (`$PULSE_ENVOY_BIN`, the project virtualenv, then `PATH`).
pub fn envoy() -> Result<PathBuf> {
    crate::envoy::locate_envoy(None)
}

/// Whether this runs in CI (`CI=true`, as `.ci/run` and most CI services set it).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// For tests that need `what` (e.g. "Docker"): the value when `found` is `Ok`. Otherwise, under `CI=true`,
/// panics naming `what` and the error; elsewhere prints `SKIPPED: ...` and returns `None` (the test then
/// returns early).
pub fn or_skip<T, E: Display>(what: &str, found: std::result::Result<T, E>) -> Option<T> {
    match found {
        Ok(value) => Some(value),
        Err(e) if in_ci() => panic!("CI=true and {what} is not available, so this test cannot run: {e}"),
        Err(e) => {
            eprintln!("SKIPPED: {what} is not available ({e})");
            None
        }
    }
}
