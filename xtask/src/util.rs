//! Small helpers shared by xtask commands: the workspace root, running a command with a banner, the
//! one build of the workspace's tests that the binaries xtask runs come from.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// A `cargo` command without the variables that `cargo run` set for xtask itself (`CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_*`, ...): build scripts such as ring's declare `rerun-if-env-changed` on them and cargo
/// compares its own environment, so a build started from xtask and one started by hand would each
/// rebuild ring and everything above it.
pub(crate) fn cargo_command() -> Command {
    let mut cmd = Command::new(cargo());
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_")
            || matches!(
                name,
                "CARGO_MANIFEST_DIR" | "CARGO_MANIFEST_PATH" | "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE"
            )
        {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else `<workspace>/target`.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { root().join(d) })
        .unwrap_or_else(|| root().join("target"))
}

/// Set once this process has built the workspace's tests.
static TESTS_BUILT: AtomicBool = AtomicBool::new(false);

/// The path of `bin` of the tests crate (`pulse-deploy-tests`), from the build of the workspace's tests
/// (`cargo test --workspace --no-run`, run once per xtask process; cargo makes it a no-op when current).
///
/// Every binary xtask runs comes from that one build, and so do the tests: `cargo build -p X` or
/// `cargo test -p X` would resolve features differently (dev-dependencies' features only count in test
/// builds of the whole workspace) and rebuild much of the dependency tree.
pub(crate) fn tests_bin(bin: &str) -> Result<PathBuf, String> {
    if !TESTS_BUILT.load(Ordering::Relaxed) {
        run(
            "build the workspace's tests (the binaries xtask runs come from this build)",
            cargo_command().args(["test", "--workspace", "--no-run"]),
        )?;
        TESTS_BUILT.store(true, Ordering::Relaxed);
    }
    let path = target_dir().join("debug").join(bin);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("the build of the workspace's tests made no {}", path.display()))
    }
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

/// The command line of `cmd`, for banners.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}
