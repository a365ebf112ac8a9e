//! `cargo xtask bench local`: the figures of the local providers, side by side in one run:
//!
//! 1. Envoy's weight-flip benchmark (`pulse-deploy-local/benches/envoy_weight_flip.rs`): time from
//!    `set_weights` to new traffic following (p50/p99), requests per second through Envoy vs. straight to
//!    an instance;
//! 2. the rollout benchmark (`tests/src/bin/pulse-bench-local.rs`) on Docker + Envoy: deploy-to-serving
//!    for 2 instances and last-session-to-reaped (medians).

use std::process::Command;

use crate::util::{cargo_command, root, run as step};

/// Runs both benchmarks; `--no-build` reuses the demo image.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let tools = crate::tools::ensure()?;
    step(
        "Envoy weight flip and throughput (real Envoy)",
        cargo_command()
            .args(["bench", "-p", "pulse-deploy-local", "--bench", "envoy_weight_flip"])
            .env("PULSE_ENVOY_BIN", &tools.envoy),
    )?;
    step(
        "build the rollout benchmark",
        cargo_command().args(["build", "-p", "pulse-deploy-tests", "--bin", "pulse-bench-local"]),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    step(
        "rollout on Docker + Envoy: deploy-to-serving, last-session-to-reaped",
        Command::new(target.join("debug/pulse-bench-local"))
            .args(args)
            .env("PULSE_ENVOY_BIN", &tools.envoy)
            .env("PULSE_WORKSPACE", root()),
    )
}
