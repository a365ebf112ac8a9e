//! The workspace's tests, run with cargo-nextest when it is installed (every CI machine has it), else
//! with `cargo test`.
//!
//! Why nextest: most of the slow tests wait (on moto, Terraform's fixed waits, Docker, drain deadlines)
//! while a few compile (the controller's static release build). `cargo test` runs one test binary after
//! another; nextest runs tests of every binary side by side (profile `ci` of `.config/nextest.toml`:
//! 4 at a time on 2 cores, the slowest started first), so the waiting hides behind the compiling.
//! nextest does not run doc tests: [`run_workspace`] runs them after, with `cargo test --doc`.
//!
//! Every test is built once, by `cargo test --workspace --no-run` ([`crate::util::workspace_tests`]):
//! nextest builds the same way, so the binaries xtask runs (the e2e runner, the Python image builder)
//! and the tests share one build. A `cargo build -p ...` or `cargo test -p ...` would resolve features
//! differently and rebuild much of the tree (measured: ~90 s of CI for the AWS e2e alone).

use std::process::Command;

use crate::util::{cargo_command, run as step};

/// Whether `cargo nextest` runs here.
pub(crate) fn available() -> bool {
    cargo_command()
        .args(["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs every test of the workspace but `skip` (exact test names), then the doc tests.
pub(crate) fn run_workspace(skip: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Result<(), String> {
    if available() {
        let filter = skip.iter().map(|name| format!("not test(={name})")).collect::<Vec<_>>().join(" and ");
        let mut cmd = cargo_command();
        cmd.args(["nextest", "run", "--workspace", "--profile", "ci", "--no-tests", "fail"]);
        if !filter.is_empty() {
            cmd.args(["-E", &filter]);
        }
        step("cargo nextest run (workspace, binaries side by side)", envs(&mut cmd, env))?;
        step(
            "cargo test --doc (workspace; nextest runs no doc tests)",
            envs(cargo_command().args(["test", "--workspace", "--doc"]), env),
        )
    } else {
        eprintln!(
            "xtask: cargo-nextest is not installed: running the tests one binary after another with cargo test \
             (slower; `cargo install cargo-nextest --locked` to run them side by side)"
        );
        let mut cmd = cargo_command();
        cmd.args(["test", "--workspace", "--"]);
        for name in skip {
            cmd.args(["--skip", name]);
        }
        step("cargo test (workspace)", envs(&mut cmd, env))
    }
}

/// The command that runs the one test called `name` (wherever it is in the workspace), its output shown.
pub(crate) fn exact_command(name: &str) -> Command {
    let mut cmd = cargo_command();
    if available() {
        cmd.args(["nextest", "run", "--workspace", "--profile", "ci", "--no-capture", "--no-tests", "fail"])
            .args(["-E", &format!("test(={name})")]);
    } else {
        cmd.args(["test", "--workspace", "--", "--exact", name, "--nocapture"]);
    }
    cmd
}

fn envs<'a>(cmd: &'a mut Command, env: &[(&str, &std::ffi::OsStr)]) -> &'a mut Command {
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}
