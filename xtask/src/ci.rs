//! `cargo xtask ci`: everything CI runs, in the order that fails fastest.

use std::process::Command;

use crate::util::{cargo, run as step};

/// Runs fmt check, clippy with warnings denied, and every test of the workspace.
pub fn run(_args: &[String]) -> Result<(), String> {
    step("cargo fmt --check", Command::new(cargo()).args(["fmt", "--all", "--", "--check"]))?;
    step(
        "cargo clippy (warnings denied)",
        Command::new(cargo()).args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    step("cargo test (workspace)", Command::new(cargo()).args(["test", "--workspace"]))?;
    eprintln!("\nxtask ci: all checks passed");
    Ok(())
}
