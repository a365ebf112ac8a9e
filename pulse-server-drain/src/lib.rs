//! # pulse-server-drain
//!
//! The server side of the pulse-deploy drain protocol (`docs/drain-protocol.md`) for servers built on
//! axum/tower, the demo app that the end-to-end flow deploys (`demo`, feature `demo`, on by default; binary
//! `pulse-demo-app`), and a conformance checker that drives any live server through the protocol
//! (`checker`, feature `checker`, off by default).
//!
//! An app embedding the library depends on it with `default-features = false`: it then pulls neither the
//! demo, the checker nor `tracing-subscriber` (the library only emits `tracing` events; the app installs
//! its own subscriber).
//!
//! Adopting it takes a few lines:
//!
//! - [`DrainConfig`] (from the environment or a builder) and [`DrainState::start`]: the shared state
//!   (serving → draining → drained, shutting down), the drain secret (fixed, file or async factory,
//!   refreshed without restart, compared in constant time, never logged) and the SIGTERM/SIGINT handlers;
//! - [`DrainState::router`]: `POST /_pulse/admin/drain`, `GET /_pulse/admin/status` and the health route,
//!   to merge into the app;
//! - [`DrainState::session`]: a [`SessionGuard`] counting a session while it lives;
//! - [`DrainState::admit_new_session`] or the [`NewSessionGateLayer`]: the draining rule for requests that
//!   would create a new session (the stale-affinity answer);
//! - [`serve`] (or [`DrainState::shutdown_signal`] + [`DrainState::finish`]): graceful shutdown with
//!   [`DrainState::on_shutdown`] hooks; WebSocket tasks close with [`going_away`] (1001) when
//!   [`DrainState::shutdown_token`] is cancelled.
//!
//! ## Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use pulse_deploy_core::Secret;
//! use pulse_server_drain::{DrainConfig, DrainState};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), pulse_deploy_core::Error> {
//! let config = DrainConfig::builder("v124")
//!     .instance_id("web-1")
//!     .secret(Secret::new("PULSE_DRAIN_SECRET", "0123456789abcdef0123")?)
//!     .handle_signals(false) // a real server keeps the default: SIGTERM/SIGINT start the shutdown
//!     .build()?; // or DrainConfig::from_env()?
//! let drain = DrainState::start(config).await?;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "a page that creates a session" }))
//!     .route_layer(drain.gate()) // while draining, new sessions get the stale-affinity answer
//!     .merge(drain.routes()); // /_pulse/admin/drain, /_pulse/admin/status, /health
//!
//! let session = drain.session(); // held by the app while a session lives
//! drain.on_shutdown("flush", || async { /* close pools, flush logs */ });
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let server = tokio::spawn(pulse_server_drain::serve(listener, app, drain.clone()));
//!
//! assert!(drain.accepts_new_sessions());
//! let status = drain.drain(None); // what POST /_pulse/admin/drain does
//! assert_eq!(status.active_sessions, 1);
//! drop(session); // the last session ends: the instance is drained, health fails
//! assert!(!drain.health().0);
//!
//! drain.begin_shutdown("example done"); // what SIGTERM does
//! let report = server.await.unwrap()?;
//! assert_eq!(report.hooks_completed, ["flush"]);
//! # Ok(())
//! # }
//! ```

mod admin;
#[cfg(feature = "checker")]
pub mod checker;
mod config;
#[cfg(feature = "demo")]
pub mod demo;
mod gate;
mod identity;
mod secret;
mod shutdown;
mod state;
mod throttle;

pub use admin::{bearer_token, parse_drain_body};
pub use config::{
    DrainConfig, DrainConfigBuilder, DEFAULT_DRAIN_DEADLINE, DEFAULT_MAX_AUTH_FAILURES,
    DEFAULT_SECRET_REFRESH, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_THROTTLE_WINDOW, MAX_HEALTH_PATH_LEN,
};
pub use gate::{is_websocket_upgrade, location_without_affinity, NewSessionGate, NewSessionGateLayer};
pub use identity::{InstanceIdSource, MAX_INSTANCE_ID_LEN};
pub use secret::{SecretFactory, SecretSource};
pub use shutdown::{going_away, serve, serve_with, ShutdownReport, HEADER_READ_TIMEOUT};
pub use state::{DrainState, SessionGuard};
