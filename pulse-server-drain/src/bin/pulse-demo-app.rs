//! `pulse-demo-app`: the demo app the end-to-end flow deploys. Configured by environment (see
//! `docs/drain-protocol.md`, "Demo app"): `PULSE_APP`, `PULSE_VERSION`, `PULSE_INSTANCE_ID`,
//! `PULSE_DRAIN_SECRET` / `PULSE_DRAIN_SECRET_FILE`, `PORT` (default 8000), `PULSE_BIND_ADDRESS` (default
//! 0.0.0.0, every interface), `PULSE_SESSION_GRACE_SECS`, `PULSE_DRAIN_DEADLINE_SECS`, `PULSE_SHUTDOWN_TIMEOUT_SECS`, `PULSE_LOG`.
//!
//! Prints `pulse-demo-app listening on <addr>` on stdout once it accepts connections. Exits 0 after a
//! graceful shutdown, 1 if the shutdown deadline cut something, 2 on a configuration error, 130 on a
//! second signal.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use pulse_deploy_core::{Error, Result};
use pulse_server_drain::demo::{self, DemoConfig};
use pulse_server_drain::{DrainConfigBuilder, DrainState, ShutdownReport};

fn port() -> Result<u16> {
    match std::env::var("PORT").ok().filter(|s| !s.trim().is_empty()) {
        None => Ok(8000),
        Some(p) => p
            .trim()
            .parse()
            .map_err(|_| Error::invalid("PORT", format!("`{p}` is not a port number (0-65535)"))),
    }
}

/// The address to listen on: `PULSE_BIND_ADDRESS` (an IPv4 or IPv6 address), default every interface.
fn bind_address() -> Result<IpAddr> {
    match std::env::var("PULSE_BIND_ADDRESS").ok().filter(|s| !s.trim().is_empty()) {
        None => Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        Some(a) => a.trim().parse().map_err(|_| {
            Error::invalid(
                "PULSE_BIND_ADDRESS",
                format!(
                    "`{}` is not an IP address; set e.g. PULSE_BIND_ADDRESS=127.0.0.1, or leave it unset to \
                     listen on every interface (0.0.0.0)",
                    a.escape_debug()
                ),
            )
        }),
    }
}

async fn run() -> Result<ShutdownReport> {
    let config = DrainConfigBuilder::from_env()?.app_routes(demo::ROUTES).build()?;
    let demo_config = DemoConfig::from_env()?;
    let port = port()?;
    let ip = bind_address()?;
    let state = DrainState::start(config).await?;
    let app = demo::app(state.clone(), demo_config);
    let addr = SocketAddr::from((ip, port));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| Error::Unavailable {
        what: format!("{addr}"),
        message: format!(
            "cannot listen: {e}; set PORT to a free port and PULSE_BIND_ADDRESS to an address of this host"
        ),
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Unavailable { what: "listener".into(), message: e.to_string() })?;
    tracing::info!(%local, version = %state.version(), instance = %state.instance_id(), "pulse-demo-app listening");
    let mut out = std::io::stdout();
    let _ = writeln!(out, "pulse-demo-app listening on {local}");
    let _ = out.flush();
    pulse_server_drain::serve(listener, app, state).await
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PULSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
    match run().await {
        Ok(report) if report.is_clean() => ExitCode::SUCCESS,
        Ok(report) => {
            eprintln!("pulse-demo-app: shutdown deadline cut: {report:?}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("pulse-demo-app: {e}");
            ExitCode::from(2)
        }
    }
}
