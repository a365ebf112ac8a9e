//! # pulse-deploy
//!
//! The `pulse-deploy` command as a library: [`config`] (the strict `pulse-deploy.toml`), [`cli`] (the
//! command line), [`commands`] (what each subcommand does over the engine), [`table`] (the status table),
//! [`history`] (the releases `rollback` can return to), [`journal`] (what `timeline` draws, recorded as
//! the commands run), [`timeline`] (the SVG picture), [`progress`] (a spinner per step on a terminal, plain
//! lines when piped or in CI), [`check_app`] (the drain-protocol checker), [`provider`] (the configured
//! provider, local or aws, connected) and [`lease`] (one controller per app; `deploy` hands over to it). The binary is a thin `main` over [`main`]; the engine itself
//! (`pulse-deploy-core`) stays usable without any of this.

pub mod check_app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod history;
pub mod journal;
pub mod lease;
pub mod progress;
pub mod provider;
pub mod table;
pub mod timeline;

pub use commands::{exit, run};

use std::process::ExitCode;

use clap::Parser;

/// The whole command: logs to stderr (filtered by `PULSE_DEPLOY_LOG`, default `warn`), the command line
/// parsed (a usage error exits 2, `--help` 0), then [`run`].
pub async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PULSE_DEPLOY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    run(cli).await
}
