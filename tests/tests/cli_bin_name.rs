//! The command names itself `pulse-deploy` whatever it was started as: its help, usage and errors do not
//! take argv\[0\] (the controller image runs the binary as `/app`; the tests build it as
//! `pulse-deploy-cli`). The binary is run through a symlink named `app`. No Docker needed.

use std::path::Path;
use std::process::Command;

/// Runs the binary as `app ARGS` (a symlink in a fresh directory); returns (exit code, stdout, stderr).
fn as_app(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(dir.join("app")).args(args).current_dir(dir).output().expect("running `app`");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Proves that `--help`, a subcommand's `--help` and a usage error all say `pulse-deploy` (never `app`)
/// when the binary is started as `app`, and that the exit codes stay 0 and 2.
#[test]
fn help_and_errors_say_pulse_deploy_whatever_argv0_is() {
    let dir = std::env::temp_dir().join(format!("pulse-cli-argv0-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_pulse-deploy-cli"), dir.join("app")).expect("symlink");

    let mut printed = Vec::new();
    let (code, out, err) = as_app(&dir, &["--help"]);
    assert_eq!(code, 0, "{err}");
    printed.push(out.clone() + &err);
    assert!(out.contains("Usage: pulse-deploy [OPTIONS] <COMMAND>"), "the usage names pulse-deploy:\n{out}");
    let (code, out, err) = as_app(&dir, &["rollback", "--help"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Usage: pulse-deploy rollback"), "a subcommand's usage:\n{out}");
    printed.push(out + &err);
    let (code, _, err) = as_app(&dir, &["deploy"]);
    assert_eq!(code, 2, "a missing version is a usage error: {err}");
    assert!(err.contains("Usage: pulse-deploy deploy"), "the error's usage line:\n{err}");
    printed.push(err);
    let (code, out, err) = as_app(&dir, &["--version"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("pulse-deploy "), "--version: {out}");
    printed.push(out + &err);
    for text in &printed {
        assert!(!text.contains("Usage: app"), "argv[0] leaked into the output:\n{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
