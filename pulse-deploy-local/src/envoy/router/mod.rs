//! [`EnvoyRouter`]: the [`TrafficRouter`] backed by one real Envoy process.
//!
//! One router owns one Envoy serving one fixed public listener. It may route several apps: each app has a
//! virtual host selected by `Host: {app}` or `Host: {app}.localhost` (browsers resolve `*.localhost` to
//! loopback), and requests naming no app go to the default app (the builder's
//! [`EnvoyRouterBuilder::default_app`], else the first app attached while it has anything attached). Every change is written to the state
//! directory first (`state.json`, the intent), then to the xDS files in the safe order, and each method
//! returns once Envoy has applied it (polled on the admin interface against a deadline):
//!
//! 1. CDS with the union of the clusters Envoy has and the clusters wanted (new clusters warm up, i.e.
//!    finish their first health-check round, before any route names them);
//! 2. RDS with the wanted routes (one write: weights change atomically);
//! 3. CDS with only the wanted clusters (clusters of detached versions go after no route names them).
//!
//! Every method first makes sure Envoy runs (adopting the one started for this state directory, or
//! starting it again from the files), so an Envoy killed mid-rollout is back with the same routing at the
//! deployer's next call. Dropping an `EnvoyRouter` leaves Envoy running; [`EnvoyRouter::shutdown`] stops it.
//!
//! The router's jobs, a file each:
//! - `builder.rs`: the options, their validation, and the first start (choosing free ports, again if one
//!   was taken before Envoy bound it);
//! - `supervise.rs`: keeping one Envoy running for the state directory (adopt, start, wait ready, stop);
//! - `apply.rs`: bringing Envoy to a routing state through the xDS files in the safe order, waiting for each
//!   step to apply;
//! - `lock.rs`: the state directory's lock file, which serialises deployers;
//! - `validate.rs`: offline validation of the configuration (`envoy --mode validate`);
//! - `traffic.rs`: the [`TrafficRouter`] implementation.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(doc)]
use pulse_deploy_core::TrafficRouter;
use pulse_deploy_core::{AppName, Error, Result};
use tokio::sync::Mutex;

use super::admin::AdminClient;
use super::config::ConfigSettings;
use super::process::{self, ProcessFiles, StartOptions};
use super::state::PersistedState;
use super::xds::{io_error, XdsFiles};
use lock::lock_file;

mod apply;
mod builder;
mod lock;
mod supervise;
mod traffic;
mod validate;

pub use builder::EnvoyRouterBuilder;

/// Most versions attached to one router at once.
pub const MAX_ATTACHED_VERSIONS: usize = 50;
/// Most versions receiving new sessions at once.
pub const MAX_WEIGHTED_VERSIONS: usize = 10;

#[derive(Debug)]
struct RouterFiles {
    lock: PathBuf,
    process: ProcessFiles,
}

/// The Envoy-backed [`TrafficRouter`]. Build with [`EnvoyRouter::builder`].
#[derive(Debug)]
pub struct EnvoyRouter {
    state_dir: PathBuf,
    xds: XdsFiles,
    files: RouterFiles,
    binary: PathBuf,
    settings: ConfigSettings,
    start: StartOptions,
    admin: AdminClient,
    listener: SocketAddr,
    apply_timeout: Duration,
    start_timeout: Duration,
    /// Serialises this process's changes (the lock file serialises processes).
    local: Mutex<()>,
}

impl EnvoyRouter {
    /// Starts building a router keeping its state (xDS files, `state.json`, Envoy's pid and log) in
    /// `state_dir`. A router built on a directory that already holds a state adopts its Envoy.
    pub fn builder(state_dir: impl Into<PathBuf>) -> EnvoyRouterBuilder {
        EnvoyRouterBuilder::new(state_dir.into())
    }

    /// The public listener clients connect to.
    pub fn listener_addr(&self) -> SocketAddr {
        self.listener
    }

    /// `http://{listener}`: the base URL of the public side.
    pub fn public_url(&self) -> String {
        format!("http://{}", self.listener)
    }

    /// Envoy's admin address (loopback only).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.addr()
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The Envoy binary in use.
    pub fn envoy_binary(&self) -> &Path {
        &self.binary
    }

    /// The pid of the Envoy serving this state directory, if one runs.
    pub fn envoy_pid(&self) -> Option<u32> {
        self.files
            .process
            .read_pid()
            .filter(|pid| process::runs_bootstrap(*pid, &self.files.process.bootstrap))
    }

    /// The app served to requests whose `Host` names no app, if any.
    pub fn default_app(&self) -> Result<Option<AppName>> {
        Ok(self.load_state()?.effective_default_app().cloned())
    }

    /// The apps with something attached or weighted.
    pub fn apps(&self) -> Result<Vec<AppName>> {
        Ok(self.load_state()?.apps.keys().cloned().collect())
    }

    /// Makes sure Envoy runs with this state directory's routing: adopts a running one, or starts it again
    /// from the files (clients keep their version: cookie and key routing is stateless).
    pub async fn ensure_running(&self) -> Result<()> {
        let _local = self.local.lock().await;
        let _file = lock_file(&self.files.lock, self.apply_timeout).await?;
        let state = self.load_state()?;
        self.ensure_running_locked(&state).await?;
        self.apply(&state).await
    }

    /// Stops Envoy (it can be started again by [`EnvoyRouter::ensure_running`] or any router method);
    /// the state directory is kept.
    pub async fn stop(&self) -> Result<()> {
        let _local = self.local.lock().await;
        let _file = lock_file(&self.files.lock, self.apply_timeout).await?;
        self.stop_locked().await
    }

    /// Stops Envoy and removes the state directory. Clients lose this router's listener; later calls on
    /// this router fail with `NotFound` (build a new one to start over).
    pub async fn shutdown(&self) -> Result<()> {
        if !self.state_dir.exists() {
            return Ok(()); // shut down already
        }
        self.stop().await?;
        fs::remove_dir_all(&self.state_dir).map_err(|e| io_error(&self.state_dir, "remove", e))
    }

    fn load_state(&self) -> Result<PersistedState> {
        PersistedState::load(&self.state_dir)?.ok_or_else(|| Error::NotFound {
            what: format!(
                "router state in {} (removed by a shutdown?); build a new EnvoyRouter",
                self.state_dir.display()
            ),
        })
    }

    /// Runs `change` on the persisted state under both locks; saves and applies it if it changed.
    async fn mutate(&self, change: impl FnOnce(&mut PersistedState) -> Result<()>) -> Result<()> {
        let _local = self.local.lock().await;
        let _file = lock_file(&self.files.lock, self.apply_timeout).await?;
        let mut state = self.load_state()?;
        let before = state.clone();
        change(&mut state)?;
        if state != before {
            state.generation += 1;
            state.save(&self.state_dir)?;
        }
        self.ensure_running_locked(&state).await?;
        self.apply(&state).await
    }
}
