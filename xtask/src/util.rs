//! Small helpers shared by xtask commands: the workspace root, running a command with a banner.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// The workspace root (the parent of `xtask/`).
pub(crate) fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().expect("xtask lives in the workspace root").to_path_buf()
}

/// The cargo binary that runs this xtask.
pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs `cmd` in the workspace root, printing a banner and its duration; fails if it exits non-zero.
pub(crate) fn run(title: &str, cmd: &mut Command) -> Result<(), String> {
    eprintln!("\n==> {title}\n    $ {}", describe(cmd));
    let start = Instant::now();
    let status = cmd.current_dir(root()).status().map_err(|e| format!("{title}: cannot start: {e}"))?;
    let took = start.elapsed().as_secs_f64();
    if status.success() {
        eprintln!("==> {title}: ok ({took:.1} s)");
        Ok(())
    } else {
        Err(format!("{title} failed ({status}) after {took:.1} s"))
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}
