//! `cargo xtask e2e`: provisions what the end-to-end run needs (Envoy in `./.venv`), builds the runner and
//! runs it: the whole multi-version flow on Docker + Envoy (see `tests/src/e2e/`). Writes
//! `target/e2e/report.json` and `target/e2e/timeline.svg`. With `--provider aws` it runs the same scenario
//! on the AWS emulator instead (the test `pulse-deploy-aws/tests/e2e_moto.rs`: moto, demo-app processes as
//! the tasks, clients routed by the listener's rules through the ALB evaluator) and writes
//! `target/e2e-aws/report.json`.

use std::process::Command;

use crate::util::{cargo, root, run as step};

/// Runs the end-to-end flow; `args` are passed to `pulse-e2e` (e.g. `--no-build`).
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let tools = crate::tools::ensure()?;
    match args {
        [flag, provider] if flag == "--provider" && provider == "aws" => return run_aws(&tools),
        [flag, provider] if flag == "--provider" && provider == "local" => return run(&[]),
        [flag, ..] if flag == "--provider" => {
            return Err(
                "usage: cargo xtask e2e --provider aws|local (`local`, the default: Docker + Envoy)".into()
            )
        }
        _ => {}
    }
    step(
        "build the e2e runner",
        Command::new(cargo()).args(["build", "-p", "pulse-deploy-tests", "--bin", "pulse-e2e"]),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let runner = target.join("debug/pulse-e2e");
    let mut cmd = Command::new(&runner);
    cmd.args(args).env("PULSE_ENVOY_BIN", &tools.envoy).env("PULSE_WORKSPACE", root());
    step("end-to-end: v1 → v2 → v3 on Docker + Envoy with live sessions", &mut cmd)
}

/// The e2e scenario on the AWS emulator: exactly the test `e2e_aws` of `pulse-deploy-tests`, with moto
/// from the project's virtualenv (`CI=true`, so a missing emulator fails instead of skipping).
fn run_aws(tools: &crate::tools::Tools) -> Result<(), String> {
    step(
        "end-to-end on AWS (moto): v1 → v2 → v3 through the listener's rules with live sessions",
        Command::new(cargo())
            .args(["test", "-p", "pulse-deploy-tests", "--test", "e2e_aws", "--", "--nocapture"])
            .env("PULSE_MOTO_BIN", &tools.moto_server)
            .env("CI", "true"),
    )
}
