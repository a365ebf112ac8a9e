//! `cargo xtask python-image` and `cargo xtask pytest`: the Python side, run in containers (the host's
//! Python may be too old for pulse-framework, which needs >= 3.12).
//!
//! - `python-image`: builds (once; cached by content tag) the Python base image from Debian's packages
//!   with debootstrap and the venv image with the pinned requirements, through the Engine API, and prints
//!   the venv image's reference (`tests/src/python_image/`);
//! - `pytest [PYTEST ARGS]`: runs the tests of the Python package [`PACKAGE`] in a container of that image.
//!   pytest's exit 5 (nothing collected) fails loudly.

use std::process::Command;

use crate::util::{cargo, root, run as step};

/// The Python package whose tests `cargo xtask pytest` runs, relative to the workspace.
pub(crate) const PACKAGE: &str = "python/pulse-deploy-plugin";

/// `cargo xtask python-image`.
pub(crate) fn image(_args: &[String]) -> Result<(), String> {
    run_tests_bin("the Python images (debootstrap base + venv), cached by content", "pulse-python-image", &[])
}

/// `cargo xtask pytest [PYTEST ARGS]`.
pub(crate) fn pytest(args: &[String]) -> Result<(), String> {
    if !root().join(PACKAGE).join("pyproject.toml").is_file() {
        return Err(format!("no Python package at {PACKAGE} (no pyproject.toml)"));
    }
    let mut all = vec![PACKAGE.to_owned()];
    all.extend_from_slice(args);
    run_tests_bin(&format!("pytest of {PACKAGE} (in the Python image)"), "pulse-pytest", &all)
}

/// Builds `bin` of the tests crate and runs it with `args` in the workspace.
pub(crate) fn run_tests_bin(title: &str, bin: &str, args: &[String]) -> Result<(), String> {
    step(
        &format!("build {bin}"),
        Command::new(cargo()).args(["build", "-p", "pulse-deploy-tests", "--bin", bin]),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    step(title, Command::new(target.join("debug").join(bin)).args(args).env("PULSE_WORKSPACE", root()))
}
