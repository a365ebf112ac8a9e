//! `cargo xtask fuzz [TARGET] [--secs N]`: runs the cargo-fuzz targets of pulse-server-drain
//! (`pulse-server-drain/fuzz`, its own workspace) for N seconds each (default 180), on the stable toolchain
//! with `RUSTC_BOOTSTRAP=1` (cargo-fuzz passes nightly flags). Needs `cargo install cargo-fuzz`. Not part of
//! `cargo xtask ci`: its figures (executions, crashes) are reported in docs/fuzzing.md.

use crate::util::{cargo_command, root, run};

/// The fuzz targets, in the order they run.
pub(crate) const TARGETS: [&str; 2] = ["drain_body", "authorization"];

/// Runs each target (or the one named) for `--secs` seconds.
pub(crate) fn run_fuzz(args: &[String]) -> Result<(), String> {
    let mut secs = 180u64;
    let mut only = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--secs" => {
                let v = it.next().ok_or("--secs needs a number of seconds")?;
                secs = v.parse().map_err(|_| format!("--secs: `{v}` is not a number of seconds"))?;
            }
            t if TARGETS.contains(&t) => only = Some(t.to_owned()),
            other => return Err(format!("unknown fuzz argument `{other}`; targets: {}", TARGETS.join(", "))),
        }
    }
    // cargo-fuzz finds its project from the crate directory (`--fuzz-dir fuzz`), not from inside it.
    let dir = root().join("pulse-server-drain");
    for target in TARGETS.iter().filter(|t| only.as_deref().is_none_or(|o| o == **t)) {
        run(
            &format!("fuzz {target} for {secs} s"),
            cargo_command().current_dir(&dir).env("RUSTC_BOOTSTRAP", "1").args([
                "fuzz",
                "run",
                "--fuzz-dir",
                "fuzz",
                target,
                "--",
                &format!("-max_total_time={secs}"),
                "-print_final_stats=1",
            ]),
        )?;
    }
    Ok(())
}
