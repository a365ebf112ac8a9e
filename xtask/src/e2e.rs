//! `cargo xtask e2e`: provisions what the end-to-end run needs (Envoy in `./.venv`), builds the runner and
//! runs it: the whole multi-version flow on Docker + Envoy (see `tests/src/e2e/`). Writes
//! `target/e2e/report.json` and `target/e2e/timeline.svg`. With `--provider aws` it runs the same scenario
//! on the AWS emulator instead (the test `tests/tests/e2e_aws.rs`: moto, demo-app processes as the tasks,
//! the real `pulse-deploy` binary as the ECS controller's task and as the CI job, clients routed by the
//! listener's rules through the ALB evaluator) and writes `target/e2e-aws/report.json`.

use std::process::Command;

use crate::util::{root, run as step, tests_bin};

/// The AWS e2e test (`tests/tests/e2e_aws.rs`); `cargo xtask ci` runs it only here.
pub(crate) const AWS_E2E_TEST: &str =
    "e2e_v1_v2_v3_through_the_listener_rules_with_live_sessions_and_steady_load";

/// Runs the end-to-end flow; `args` are passed to `pulse-e2e` (e.g. `--no-build`, `--app pulse`).
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let (title, mut cmd) = command(args)?;
    step(&title, &mut cmd)
}

/// The title and command of `cargo xtask e2e ARGS` (`cargo xtask ci` runs the three variants alongside).
pub(crate) fn command(args: &[String]) -> Result<(String, Command), String> {
    let tools = crate::tools::ensure()?;
    match args {
        [flag, provider] if flag == "--provider" && provider == "aws" => return Ok(aws_command(&tools)),
        [flag, provider] if flag == "--provider" && provider == "local" => return command(&[]),
        [flag, ..] if flag == "--provider" => {
            return Err(
                "usage: cargo xtask e2e --provider aws|local (`local`, the default: Docker + Envoy)".into()
            )
        }
        _ => {}
    }
    let mut cmd = Command::new(tests_bin("pulse-e2e")?);
    cmd.args(args).env("PULSE_ENVOY_BIN", &tools.envoy).env("PULSE_WORKSPACE", root());
    let app = if args.iter().any(|a| a == "pulse") { "the example Pulse app" } else { "the demo app" };
    Ok((format!("end-to-end: v1 → v2 → v3 of {app} on Docker + Envoy with live sessions"), cmd))
}

/// The e2e scenario on the AWS emulator: exactly the test [`AWS_E2E_TEST`] (`e2e_aws` of
/// `pulse-deploy-tests`), with moto from the project's virtualenv (`CI=true`, so a missing emulator fails
/// instead of skipping), from the build of the workspace's tests.
fn aws_command(tools: &crate::tools::Tools) -> (String, Command) {
    let mut cmd = crate::nextest::exact_command(AWS_E2E_TEST);
    cmd.env("PULSE_MOTO_BIN", &tools.moto_server).env("CI", "true");
    ("end-to-end on AWS (moto): v1 → v2 → v3 through the listener's rules with live sessions".into(), cmd)
}
