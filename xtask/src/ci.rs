//! `cargo xtask ci`: everything CI runs, in the order that fails fastest.
//!
//! 1. `cargo fmt --check`;
//! 2. clippy on every target with warnings denied;
//! 3. the Terraform module and its first-setup example validated offline (`cargo xtask terraform-validate`,
//!    ~20-35 s: each `validate` loads the provider);
//! 4. the pinned tools (Envoy, moto) installed into `.venv`;
//! 5. the Python images (`cargo xtask python-image`: built once per Docker daemon, cached by content tag;
//!    the tests of the example Pulse app run in them);
//! 6. the Python plugin's tests (`cargo xtask pytest`, in a container of the venv image; pytest's exit 5,
//!    nothing collected, fails);
//! 7. every test of the workspace;
//! 8. the rollout simulation (its report line printed);
//! 9. the end-to-end flow (`cargo xtask e2e`);
//! 10. the same flow with the example Pulse app and its drain plugin (`cargo xtask e2e --app pulse`, the
//!     same 50 + 20 sessions; ~90 s on a 2-core machine with the images cached, 30 s of it v2's deadline);
//! 11. the scenario on the AWS emulator (`cargo xtask e2e --provider aws`, ~10 s once built), skipped in
//!     step 7 so that it runs once, with its report printed.
//!
//! With `CI=true` (set by `.ci/run`), tests that need Docker or Envoy fail instead of skipping.

use std::process::Command;

use crate::util::{cargo, run as step};

/// The simulation test, run on its own so that its report is printed.
const SIMULATION_TEST: &str = "simulation_random_rollouts_never_drop_a_session";
/// The AWS e2e test (`pulse-deploy-aws/tests/e2e_moto.rs`), run on its own by `cargo xtask e2e --provider aws`.
const AWS_E2E_TEST: &str = "e2e_v1_v2_v3_through_the_listener_rules_with_live_sessions_and_steady_load";

/// Runs fmt check, clippy with warnings denied, and every test of the workspace.
pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    let started = std::time::Instant::now();
    step("cargo fmt --check", Command::new(cargo()).args(["fmt", "--all", "--", "--check"]))?;
    step(
        "cargo clippy (warnings denied)",
        Command::new(cargo()).args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    crate::terraform::run(&[])?;
    let tools = crate::tools::ensure()?;
    crate::python::image(&[])?;
    crate::python::pytest(&[])?;
    step(
        "cargo test (workspace)",
        Command::new(cargo())
            .args(["test", "--workspace", "--", "--skip", SIMULATION_TEST, "--skip", AWS_E2E_TEST])
            .env("PULSE_ENVOY_BIN", &tools.envoy),
    )?;
    step(
        "rollout simulation (PULSE_SIM_CASES scenarios, default 1000)",
        Command::new(cargo()).args([
            "test",
            "-p",
            "pulse-deploy-core",
            "--test",
            "simulation",
            "--",
            "--nocapture",
            SIMULATION_TEST,
        ]),
    )?;
    crate::e2e::run(&[])?;
    crate::e2e::run(&["--app".into(), "pulse".into()])?;
    crate::e2e::run(&["--provider".into(), "aws".into()])?;
    eprintln!("\nxtask ci: all checks passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
