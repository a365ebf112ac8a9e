//! The demo app: a small Pulse-like server built on this crate, deployed by the end-to-end flow (binary
//! `pulse-demo-app`). It is also the reference for adopting the library.
//!
//! - `GET /` creates a RenderSession (or reuses the live one named by an `x-pulse-session` request header)
//!   and returns an HTML page (header `x-pulse-session: <id>`) whose script opens `/ws?session=<id>`.
//! - `GET /ws[?session=<id>]` (WebSocket): attaches to that live session, or creates one if none is named
//!   or the named one is unknown. Messages are JSON; see `docs/drain-protocol.md`, "Demo app".
//! - A session holds a counter, survives a reconnect within the grace period and ends when it expires.
//! - Every response carries `x-pulse-version` and `x-pulse-instance`.
//! - While draining, requests that would create a session get the stale-affinity answer; reconnects are
//!   served. On shutdown every WebSocket is closed with 1001.

mod page;
mod sessions;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{header, HeaderValue};
use pulse_deploy_core::{Error, Result};

use crate::state::DrainState;
use sessions::Sessions;

/// Response header naming the session a page load created or reused; also accepted on `GET /` to reuse it.
pub const SESSION_HEADER: &str = "x-pulse-session";
/// Response header naming the instance that answered.
pub const INSTANCE_HEADER: &str = "x-pulse-instance";
/// Default reconnect grace of a session.
pub const DEFAULT_SESSION_GRACE: Duration = Duration::from_secs(60);

/// The demo app's own settings (the drain settings are in [`crate::DrainConfig`]).
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The app name shown on the page and sent in messages (`PULSE_APP`, default `pulse-demo`).
    pub app: String,
    /// How long a session outlives its last WebSocket (`PULSE_SESSION_GRACE_SECS`, default 60).
    pub session_grace: Duration,
    /// Whether the drain protocol is wired in (admin and health routes, new-session gate). Only the
    /// throughput benchmark turns it off, to measure its cost.
    pub drain_layer: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig { app: "pulse-demo".into(), session_grace: DEFAULT_SESSION_GRACE, drain_layer: true }
    }
}

impl DemoConfig {
    /// From `PULSE_APP` and `PULSE_SESSION_GRACE_SECS`.
    pub fn from_env() -> Result<DemoConfig> {
        let mut c = DemoConfig::default();
        if let Some(app) = std::env::var("PULSE_APP").ok().filter(|s| !s.trim().is_empty()) {
            c.app = app.trim().to_owned();
        }
        if let Some(v) = std::env::var("PULSE_SESSION_GRACE_SECS").ok().filter(|s| !s.trim().is_empty()) {
            let secs: u64 = v.trim().parse().map_err(|_| {
                Error::invalid("PULSE_SESSION_GRACE_SECS", format!("`{v}` is not a whole number of seconds"))
            })?;
            if secs > 86_400 {
                return Err(Error::invalid(
                    "PULSE_SESSION_GRACE_SECS",
                    format!("must be between 0 and 86400 seconds, got {secs}"),
                ));
            }
            c.session_grace = Duration::from_secs(secs);
        }
        Ok(c)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct DemoApp {
    pub(crate) state: DrainState,
    pub(crate) sessions: Sessions,
    pub(crate) config: Arc<DemoConfig>,
}

/// The demo app's own routes (the page and the WebSocket), for [`crate::DrainConfigBuilder::app_routes`].
pub const ROUTES: [&str; 2] = ["/", "/ws"];

/// The demo app: its axum routes, with the drain routes merged in (unless `config.drain_layer` is false). Registers
/// a shutdown hook ending every session.
pub fn app(state: DrainState, config: DemoConfig) -> Router {
    let sessions = Sessions::new(state.clone(), config.session_grace);
    let drain_layer = config.drain_layer;
    let app = DemoApp { state: state.clone(), sessions: sessions.clone(), config: Arc::new(config) };
    state.on_shutdown("end demo sessions", move || async move {
        let n = sessions.end_all();
        tracing::info!(sessions = n, "demo sessions ended");
    });
    let version = HeaderValue::from_str(state.version()).expect("validated by DrainConfig");
    let instance = HeaderValue::from_str(state.instance_id()).expect("validated by DrainConfig");
    let mut router =
        Router::new().route(ROUTES[0], get(page_load)).route(ROUTES[1], get(ws::upgrade)).with_state(app);
    if drain_layer {
        router = router.merge(state.routes());
    }
    router.layer(axum::middleware::map_response(move |mut r: Response| {
        let (version, instance) = (version.clone(), instance.clone());
        async move {
            r.headers_mut().insert(pulse_deploy_core::affinity::VERSION_HEADER, version);
            r.headers_mut().insert(INSTANCE_HEADER, instance);
            r
        }
    }))
}

async fn page_load(State(app): State<DemoApp>, req: Request) -> Response {
    let named = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| app.sessions.is_live(id))
        .map(str::to_owned);
    let session = match named {
        Some(id) => id,
        None => {
            if app.config.drain_layer {
                if let Err(answer) = app.state.admit_new_session(req.method(), req.uri(), req.headers()) {
                    return answer;
                }
            }
            app.sessions.create()
        }
    };
    let html = page::render(&app.config.app, app.state.version(), app.state.instance_id(), &session);
    let mut r = axum::response::Html(html).into_response();
    let h = r.headers_mut();
    h.insert(SESSION_HEADER, HeaderValue::from_str(&session).expect("hex id"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
