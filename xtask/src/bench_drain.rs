//! `cargo xtask bench drain`: the drain benchmark of pulse-server-drain (bench target `drain`, release
//! build): 10,000 concurrent WebSocket sessions on loopback against the demo app, memory per session,
//! health latency under that load, drain-ack latency, shutdown of every socket with 1001, and the demo's
//! throughput with and without the drain layer. A benchmark, not a test; about 1-2 minutes.
//!
//! `--sessions N` changes the session count (default 10000).

use crate::util::{cargo_command, run as step};

/// Runs the benchmark, passing the arguments through.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    step(
        "drain benchmark (pulse-server-drain, bench `drain`)",
        cargo_command()
            .args(["bench", "--package", "pulse-server-drain", "--bench", "drain", "--"])
            .args(args),
    )
}
