//! `cargo xtask e2e`: provisions what the end-to-end run needs (Envoy in `./.venv`), builds the runner and
//! runs it: the whole multi-version flow on Docker + Envoy (see `tests/src/e2e/`). Writes
//! `target/e2e/report.json` and `target/e2e/timeline.svg`.

use std::process::Command;

use crate::util::{cargo, root, run as step};

/// Runs the end-to-end flow; `args` are passed to `pulse-e2e` (e.g. `--no-build`).
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let tools = crate::tools::ensure()?;
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
