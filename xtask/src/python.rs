//! `cargo xtask python-image` and `cargo xtask pytest`: the Python side, run in containers (the host's
//! Python may be too old for pulse-framework, which needs >= 3.12).
//!
//! - `python-image`: builds (once; cached by content tag) the Python base image from Debian's packages
//!   with debootstrap and the venv image with the pinned requirements, through the Engine API, and prints
//!   the venv image's reference (`tests/src/python_image/`);
//! - `pytest [PYTEST ARGS]`: runs the tests of the Python package [`PACKAGE`] in a container of that image.
//!   pytest's exit 5 (nothing collected) fails loudly.

use std::process::Command;

use crate::util::{root, run as step, tests_bin};

/// The Python package whose tests `cargo xtask pytest` runs, relative to the workspace.
pub(crate) const PACKAGE: &str = "python/pulse-deploy-plugin";

/// `cargo xtask python-image`.
pub(crate) fn image(_args: &[String]) -> Result<(), String> {
    let (title, mut cmd) = image_command()?;
    step(&title, &mut cmd)
}

/// The title and command of `cargo xtask python-image` (`cargo xtask ci` runs it alongside).
pub(crate) fn image_command() -> Result<(String, Command), String> {
    let mut cmd = Command::new(tests_bin("pulse-python-image")?);
    cmd.env("PULSE_WORKSPACE", root());
    Ok(("the Python images (debootstrap base + venv), cached by content".into(), cmd))
}

/// `cargo xtask pytest [PYTEST ARGS]`.
pub(crate) fn pytest(args: &[String]) -> Result<(), String> {
    let (title, mut cmd) = pytest_command(args)?;
    step(&title, &mut cmd)
}

/// The title and command of `cargo xtask pytest [PYTEST ARGS]` (`cargo xtask ci` runs it alongside).
pub(crate) fn pytest_command(args: &[String]) -> Result<(String, Command), String> {
    if !root().join(PACKAGE).join("pyproject.toml").is_file() {
        return Err(format!("no Python package at {PACKAGE} (no pyproject.toml)"));
    }
    let mut cmd = Command::new(tests_bin("pulse-pytest")?);
    cmd.arg(PACKAGE).args(args).env("PULSE_WORKSPACE", root());
    Ok((format!("pytest of {PACKAGE} (in the Python image)"), cmd))
}

/// Runs `bin` of the tests crate (from the build of the workspace's tests) with `args` in the workspace.
pub(crate) fn run_tests_bin(title: &str, bin: &str, args: &[String]) -> Result<(), String> {
    let path = tests_bin(bin)?;
    step(title, Command::new(path).args(args).env("PULSE_WORKSPACE", root()))
}
