//! `pulse-deploy`: deploy stateful WebSocket apps with zero dropped sessions (see `pulse-deploy --help`).
//! Everything is in the library ([`pulse_deploy::main`]); this file only starts the runtime.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    pulse_deploy::main().await
}
