//! Cross-crate integration and end-to-end tests of pulse-deploy, and the end-to-end runner behind
//! `cargo xtask e2e` (binary `pulse-e2e`).
//!
//! - [`session`]: a simulated user of the demo app (page load, WebSocket, every answer checked);
//! - [`load`]: a steady HTTP load through the router;
//! - [`e2e`]: the scenario itself; [`report`]: what it writes (and `timeline.svg`, drawn by
//!   `pulse_deploy::timeline`);
//! - [`socketio`], [`pulse_tab`], [`pulse_session`]: a Socket.IO client, a tab of the example Pulse app
//!   through a page-tier stand-in (prerender, cookies, reloads), and a live session of it for the e2e;
//! - [`python_image`]: the Python base and venv images (debootstrap, no registry, cached by content);
//! - [`cli`]: the rig of the CLI and fault tests (`tests/cli_*.rs`, `tests/faults_*.rs`): the real
//!   `pulse-deploy` binary in a directory of its own, and the same providers seen from the test;
//! - [`controller_image`]: the controller's image (static `pulse-deploy` `FROM scratch`, with a CA bundle);
//! - [`faults`]: the fault tests' tuning of that rig; [`poll`]: waiting for a condition against a deadline.

pub mod cli;
pub mod controller_image;
pub mod e2e;
pub mod faults;
pub mod http;
pub mod load;
pub mod poll;
pub mod pulse_session;
pub mod pulse_tab;
pub mod python_image;
pub mod report;
pub mod session;
pub mod socketio;

/// The workspace root: `$PULSE_WORKSPACE` (set by xtask), else the parent of this crate.
pub fn workspace_root() -> std::path::PathBuf {
    std::env::var_os("PULSE_WORKSPACE").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
    })
}

/// Logs of the test binaries to stderr, filtered by `PULSE_LOG` (default `warn`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PULSE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}
