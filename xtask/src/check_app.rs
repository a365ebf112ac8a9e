//! `cargo xtask check-app --url http://HOST:PORT --secret S [more]`: runs the drain-protocol conformance
//! checker (`pulse-drain-check`, in pulse-server-drain) against a live server. It DRAINS that server: use a
//! dedicated instance. The secret is handed to the checker through its environment, not its arguments.

use crate::util::{cargo_command, run};

/// Builds and runs the checker, passing every argument but `--secret` through.
pub(crate) fn run_check(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "-h" || a == "--help") || args.is_empty() {
        println!(
            "cargo xtask check-app --url http://HOST:PORT [--mode plain|pulse] [--secret S | --secret-file PATH] \
             [--health-path P] [--page-path P | --no-page] [--ws-path P | --no-ws] [--prerender-path P] \
             [--deadline-secs N] [--no-throttle] [--expect-version V] [--expect-instance ID]\n\n\
             --mode pulse checks a Pulse app with the Python plugin (prerender + Socket.IO CONNECT; health \
             /_pulse/health); plain (the default) the generic protocol of the Rust server.\n\
             The secret may also come from PULSE_DRAIN_SECRET. \
             The checker drains the server: run it against a dedicated instance."
        );
        return if args.is_empty() { Err("--url is required".into()) } else { Ok(()) };
    }
    let mut pass = Vec::new();
    let mut secret = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--secret" {
            secret = Some(it.next().ok_or("--secret needs a value")?.clone());
        } else {
            pass.push(a.clone());
        }
    }
    let mut cmd = cargo_command();
    cmd.args(["run", "--quiet", "--package", "pulse-server-drain", "--features", "checker"])
        .args(["--bin", "pulse-drain-check", "--"])
        .args(&pass);
    if let Some(s) = secret {
        cmd.env("PULSE_DRAIN_SECRET", s);
    }
    run("drain protocol conformance check", &mut cmd)
}
