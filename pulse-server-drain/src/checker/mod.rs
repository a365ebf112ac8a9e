//! The conformance checker: drives a live server through the drain protocol over real HTTP and WebSocket
//! connections and reports each rule passed, failed or skipped with what it saw.
//!
//! Two modes ([`Mode`]), which differ only in how sessions are created and turned away:
//! - [`Mode::Plain`]: the generic protocol as the Rust server (`pulse-demo-app`) speaks it — a page load
//!   names its session in `x-pulse-session`, a WebSocket attaches with `?session=<id>`; while draining a new
//!   page load gets `307`, an unknown WebSocket `409`.
//! - [`Mode::Pulse`]: the Pulse profile (`docs/drain-protocol.md`, "Pulse profile") as Pulse's own client
//!   meets it — `POST /_pulse/prerender` creates a render, its id goes in the Socket.IO CONNECT
//!   (`auth.render_id`, Engine.IO v4 over the WebSocket transport); while draining a new prerender gets
//!   `303`, a CONNECT naming no live render a CONNECT_ERROR `stale_affinity`.
//!
//! **It drains the server** (and waits past a short drain deadline): run it against a dedicated instance,
//! never one serving users. Plain `http://` only. Everything it prints goes through one redactor
//! (`redact.rs`), so the secret never appears in a report.
//!
//! ```no_run
//! # async fn f() -> Result<(), pulse_deploy_core::Error> {
//! use pulse_deploy_core::Secret;
//! use pulse_server_drain::checker::{check, CheckOptions};
//!
//! let secret = Secret::new("PULSE_DRAIN_SECRET", std::env::var("PULSE_DRAIN_SECRET").unwrap_or_default())?;
//! let report = check("http://127.0.0.1:8000", &secret, &CheckOptions::pulse()).await?;
//! println!("{report}");
//! assert!(report.passed());
//! # Ok(()) }
//! ```

mod client;
mod plain;
mod pulse;
mod redact;
mod report;
mod rules;
mod run;
mod socketio;

use std::time::Duration;

use pulse_deploy_core::drain::wire::DEFAULT_HEALTH_PATH;
use pulse_deploy_core::{Result, Secret};

pub use pulse_deploy_core::conformance::{CheckOutcome, CheckStatus, ConformanceReport};
pub use report::SUITE;

use run::Run;

/// How the checker creates sessions and which turn-away answers it expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The generic protocol: page load + `x-pulse-session`, WebSocket `?session=<id>`, `307`/`409`.
    #[default]
    Plain,
    /// The Pulse profile: prerender + Socket.IO CONNECT with `auth.render_id`, `303`/CONNECT_ERROR.
    Pulse,
}

/// What the checker exercises.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Plain or Pulse (default plain).
    pub mode: Mode,
    /// The health path (default `/health`; `/_pulse/health` in [`CheckOptions::pulse`]).
    pub health_path: String,
    /// Plain: a page that creates a session (default `/`). Pulse: the app route the prerender asks for
    /// (default `/`). `None` skips the session checks.
    pub page_path: Option<String>,
    /// Plain: the WebSocket path taking `?session=<id>` (default `/ws`). Pulse: the Socket.IO path (default
    /// `/socket.io/`). `None` skips the WebSocket checks.
    pub websocket_path: Option<String>,
    /// Pulse: the prerender endpoint (default `/_pulse/prerender`).
    pub prerender_path: String,
    /// The drain deadline the checker asks for; it waits past it to see health fail (default 3 s).
    pub drain_deadline: Duration,
    /// Whether to provoke throttling of failed attempts (429) at the end (default true).
    pub check_throttling: bool,
    /// Per-request timeout (default 5 s).
    pub request_timeout: Duration,
    /// If set, the version the server must report.
    pub expect_version: Option<String>,
    /// If set, the instance id the server must report.
    pub expect_instance_id: Option<String>,
}

/// Pulse's prerender endpoint.
pub const PULSE_PRERENDER_PATH: &str = "/_pulse/prerender";
/// Pulse's health path (the plugin's `PULSE_HEALTH_PATH` default).
pub const PULSE_HEALTH_PATH: &str = "/_pulse/health";
/// The Socket.IO path Pulse's client connects to.
pub const PULSE_SOCKETIO_PATH: &str = "/socket.io/";

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            mode: Mode::Plain,
            health_path: DEFAULT_HEALTH_PATH.into(),
            page_path: Some("/".into()),
            websocket_path: Some("/ws".into()),
            prerender_path: PULSE_PRERENDER_PATH.into(),
            drain_deadline: Duration::from_secs(3),
            check_throttling: true,
            request_timeout: Duration::from_secs(5),
            expect_version: None,
            expect_instance_id: None,
        }
    }
}

impl CheckOptions {
    /// The options for a Pulse app with the Python plugin: [`Mode::Pulse`], health `/_pulse/health`, route
    /// `/`, Socket.IO at `/socket.io/`, prerender at `/_pulse/prerender`.
    pub fn pulse() -> Self {
        CheckOptions {
            mode: Mode::Pulse,
            health_path: PULSE_HEALTH_PATH.into(),
            websocket_path: Some(PULSE_SOCKETIO_PATH.into()),
            ..CheckOptions::default()
        }
    }
}

/// Runs every check against the server at `base_url` (`http://host:port`), one function per protocol rule
/// in the order below. Errors only on a bad URL; a server that does not answer fails checks instead.
pub async fn check(base_url: &str, secret: &Secret, options: &CheckOptions) -> Result<ConformanceReport> {
    let mut run = Run::new(base_url, secret, options)?;
    rules::health_is_200_while_serving(&mut run).await;
    rules::missing_credentials_are_refused(&mut run).await;
    rules::wrong_secret_is_refused(&mut run).await;
    rules::another_scheme_is_refused(&mut run).await;
    rules::status_is_serving_after_rejections(&mut run).await;
    rules::drain_refuses_other_methods(&mut run).await;
    match options.mode {
        Mode::Plain => {
            plain::page_load_creates_a_session(&mut run).await;
            plain::websocket_attaches_to_the_session(&mut run).await;
        }
        Mode::Pulse => {
            pulse::prerender_creates_a_render(&mut run).await;
            pulse::connect_attaches_to_the_render(&mut run).await;
        }
    }
    rules::active_sessions_counts_the_session(&mut run).await;
    rules::drain_is_acknowledged(&mut run).await;
    rules::second_drain_keeps_the_earlier_deadline(&mut run).await;
    rules::health_is_200_while_sessions_remain(&mut run).await;
    match options.mode {
        Mode::Plain => {
            plain::new_page_load_is_redirected(&mut run).await;
            plain::websocket_for_an_unknown_session_is_refused(&mut run).await;
            plain::existing_session_reconnects(&mut run).await;
        }
        Mode::Pulse => {
            pulse::new_prerender_is_redirected(&mut run).await;
            pulse::connect_without_a_live_render_is_refused(&mut run).await;
            pulse::existing_render_is_served(&mut run).await;
        }
    }
    rules::health_is_503_past_the_deadline(&mut run).await;
    rules::status_is_drained_past_the_deadline(&mut run).await;
    rules::failed_attempts_are_throttled(&mut run).await;
    Ok(run.finish().await)
}
