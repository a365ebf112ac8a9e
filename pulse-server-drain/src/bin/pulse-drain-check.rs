//! `pulse-drain-check`: runs the drain-protocol conformance checker against a live server and prints each
//! check. **It drains the server**: use a dedicated instance.
//!
//! ```text
//! pulse-drain-check --url http://127.0.0.1:8000 [--mode plain|pulse] [--secret S | --secret-file PATH]
//!                   [--health-path /health] [--page-path / | --no-page] [--ws-path /ws | --no-ws]
//!                   [--prerender-path /_pulse/prerender] [--deadline-secs 3] [--no-throttle]
//!                   [--expect-version V] [--expect-instance ID]
//! ```
//! `--mode pulse` checks a Pulse app with the Python plugin (prerender + Socket.IO; defaults health
//! `/_pulse/health`, route `/`, Socket.IO `/socket.io/`); the other options then override those defaults.
//! The secret may also come from `PULSE_DRAIN_SECRET` / `PULSE_DRAIN_SECRET_FILE` (preferred: not visible in
//! the process list). Exits 0 if every check passed, 1 if one failed, 2 on bad arguments.

use std::process::ExitCode;
use std::time::Duration;

use pulse_deploy_core::Secret;
use pulse_server_drain::checker::{check, CheckOptions};

const USAGE: &str = "usage: pulse-drain-check --url http://HOST:PORT [--mode plain|pulse] \
[--secret S | --secret-file PATH] [--health-path P] [--page-path P | --no-page] [--ws-path P | --no-ws] \
[--prerender-path P] [--deadline-secs N] [--no-throttle] [--expect-version V] [--expect-instance ID]";

/// The options `--mode` starts from (the other options override them, wherever they stand).
fn defaults(args: &[String]) -> Result<CheckOptions, String> {
    let Some(i) = args.iter().position(|a| a == "--mode") else { return Ok(CheckOptions::default()) };
    match args.get(i + 1).map(String::as_str) {
        Some("plain") => Ok(CheckOptions::default()),
        Some("pulse") => Ok(CheckOptions::pulse()),
        Some(other) => Err(format!("--mode: `{other}` is not a mode; use plain or pulse\n{USAGE}")),
        None => Err(format!("--mode needs a value (plain or pulse)\n{USAGE}")),
    }
}

fn parse() -> Result<(String, Secret, CheckOptions), String> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let mut o = defaults(&all)?;
    let mut args = all.into_iter();
    let mut url = None;
    let mut secret = None;
    let mut secret_file = std::env::var("PULSE_DRAIN_SECRET_FILE").ok().filter(|s| !s.is_empty());
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match a.as_str() {
            "--url" => url = Some(value("--url")?),
            "--secret" => secret = Some(value("--secret")?),
            "--secret-file" => secret_file = Some(value("--secret-file")?),
            "--health-path" => o.health_path = value("--health-path")?,
            "--page-path" => o.page_path = Some(value("--page-path")?),
            "--no-page" => o.page_path = None,
            "--ws-path" => o.websocket_path = Some(value("--ws-path")?),
            "--no-ws" => o.websocket_path = None,
            "--prerender-path" => o.prerender_path = value("--prerender-path")?,
            "--mode" => {
                value("--mode")?; // read by `defaults`
            }
            "--deadline-secs" => {
                let v = value("--deadline-secs")?;
                o.drain_deadline = Duration::from_secs(
                    v.parse().map_err(|_| format!("--deadline-secs: `{v}` is not a number"))?,
                );
            }
            "--no-throttle" => o.check_throttling = false,
            "--expect-version" => o.expect_version = Some(value("--expect-version")?),
            "--expect-instance" => o.expect_instance_id = Some(value("--expect-instance")?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let url = url.ok_or_else(|| format!("--url is required\n{USAGE}"))?;
    let secret = match (secret, secret_file) {
        (Some(s), _) => Secret::new("--secret", s),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("--secret-file {path}: {e}"))?;
            Secret::new("--secret-file", text)
        }
        (None, None) => {
            Secret::new("PULSE_DRAIN_SECRET", std::env::var("PULSE_DRAIN_SECRET").unwrap_or_default())
        }
    }
    .map_err(|e| e.to_string())?;
    Ok((url, secret, o))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (url, secret, options) = match parse() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    eprintln!("note: the checker drains {url}; use a dedicated instance");
    match check(&url, &secret, &options).await {
        Ok(report) => {
            println!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("pulse-drain-check: {e}");
            ExitCode::from(2)
        }
    }
}
