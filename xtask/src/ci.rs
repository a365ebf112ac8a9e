//! `cargo xtask ci`: everything CI runs, in the order that fails fastest.
//!
//! 1. `cargo fmt --check`;
//! 2. clippy on every target with warnings denied;
//! 3. the Terraform module and its first-setup example validated offline (`cargo xtask terraform-validate`,
//!    ~20-35 s: each `validate` loads the provider);
//! 4. the pinned tools (Envoy, moto) installed into `.venv`;
//! 5. the build of every test of the workspace (`cargo test --workspace --no-run`): every binary run
//!    below comes from it, so nothing is built twice with other features (see [`crate::util::tests_bin`]);
//! 6. the static release binaries of the workspace's images (demo app, the Docker tests' server, the
//!    controller), in one cargo invocation, and the demo app's image (`cargo xtask demo-image`); alongside,
//!    the Python images (`cargo xtask python-image`: built once per Docker daemon, cached by content tag;
//!    the tests of the example Pulse app run in them), then the Python plugin's tests (`cargo xtask
//!    pytest`, in a container of the venv image; pytest's exit 5, nothing collected, fails);
//! 7. every test of the workspace, the binaries side by side with cargo-nextest (profile `ci` of
//!    `.config/nextest.toml`; `cargo test` where nextest is missing), then the doc tests;
//! 8. alongside each other, the three end-to-end runs, which mostly wait on drain deadlines: the flow on
//!    Docker + Envoy (`cargo xtask e2e`), the same with the example Pulse app and its drain plugin
//!    (`--app pulse`), and the scenario on the AWS emulator (`--provider aws`, skipped in step 7 so that
//!    it runs once, with its report printed); meanwhile, in front, the rollout simulation (its report
//!    line printed).
//!
//! Each step prints its duration; steps run alongside print their whole output when they end.
//! With `CI=true` (set by `.ci/run`), tests that need Docker or Envoy fail instead of skipping.

use crate::alongside::{finish_all, Alongside};
use crate::e2e::AWS_E2E_TEST;
use crate::util::{cargo_command, run as step, tests_bin};

/// The simulation test, run on its own so that its report is printed.
const SIMULATION_TEST: &str = "simulation_random_rollouts_never_drop_a_session";

/// Runs fmt check, clippy with warnings denied, and every test of the workspace.
pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    let started = std::time::Instant::now();
    step("cargo fmt --check", cargo_command().args(["fmt", "--all", "--", "--check"]))?;
    step(
        "cargo clippy (warnings denied)",
        cargo_command().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    crate::terraform::run(&[])?;
    let tools = crate::tools::ensure()?;
    tests_bin("pulse-e2e")?;
    // The Python images wait mostly on Debian's mirror, the Python tests on their servers: they run
    // while the static release binaries of the images compile.
    let python = Alongside::spawn_chain(
        "the Python images, then the Python plugin's tests",
        vec![crate::python::image_command()?, crate::python::pytest_command(&[])?],
    )?;
    let images = crate::python::run_tests_bin(
        "the static binaries of the workspace's images (demo app, Docker tests' server, controller), \
         one cargo build, and the demo app's image",
        "pulse-demo-image",
        &[],
    );
    python.finish().and(images)?;
    crate::nextest::run_workspace(
        &[SIMULATION_TEST, AWS_E2E_TEST],
        &[("PULSE_ENVOY_BIN", tools.envoy.as_os_str())],
    )?;
    // The three end-to-end runs mostly wait (drain deadlines, health checks); the simulation computes.
    let mut steps = Vec::new();
    for args in
        [vec![], vec!["--app".to_owned(), "pulse".to_owned()], vec!["--provider".into(), "aws".into()]]
    {
        let (title, cmd) = crate::e2e::command(&args)?;
        steps.push(Alongside::spawn(&title, cmd)?);
    }
    let mut simulation = crate::nextest::exact_command(SIMULATION_TEST);
    let simulation = step("rollout simulation (PULSE_SIM_CASES scenarios, default 1000)", &mut simulation);
    finish_all(steps).and(simulation)?;
    eprintln!("\nxtask ci: all checks passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
