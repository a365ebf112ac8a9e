//! `cargo xtask bench engine`: the cost of one idle pass of the control loop (pulse-deploy-core, bench
//! target `engine`, release build) for 1, 10 and 30 live versions x 1, 10 and 100 instances on the
//! in-memory providers with injected latency, the bound on drain-protocol calls in flight compared at
//! 30 x 100, and a table of medians, calls per pass and growth ratios. A benchmark, not a test; about
//! 1.5 minutes (plus the first release build). Arguments go to criterion (e.g. a filter, or
//! `--save-baseline NAME` / `--baseline NAME` to compare two commits).

use crate::util::{cargo_command, run as step};

/// Runs the benchmark, passing the arguments through.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    step(
        "engine benchmark (pulse-deploy-core, bench `engine`)",
        cargo_command()
            .args(["bench", "--package", "pulse-deploy-core", "--bench", "engine", "--"])
            .args(args),
    )
}
