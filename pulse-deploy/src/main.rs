//! `pulse-deploy`: deploy stateful WebSocket apps with zero dropped sessions (see `pulse-deploy --help`).

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PULSE_DEPLOY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match pulse_deploy::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { pulse_deploy::exit::USAGE } else { pulse_deploy::exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    pulse_deploy::run(cli).await
}
