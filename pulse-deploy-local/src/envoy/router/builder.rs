//! [`EnvoyRouterBuilder`]: the router's options, their validation (before anything is created), and the
//! first start — choosing free ports, and choosing again if another process took one before Envoy bound it.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use pulse_deploy_core::{AppName, Error, Result};
use tokio::sync::Mutex;

use super::lock::lock_file;
use super::{EnvoyRouter, RouterFiles};
use crate::envoy::admin::AdminClient;
use crate::envoy::config::ConfigSettings;
use crate::envoy::process::{self, ProcessFiles, StartOptions};
use crate::envoy::state::PersistedState;
use crate::envoy::xds::{io_error, XdsFiles};

/// Builds an [`EnvoyRouter`]. See [`EnvoyRouter::builder`].
#[derive(Debug, Clone)]
pub struct EnvoyRouterBuilder {
    state_dir: PathBuf,
    app: Option<String>,
    listen: Option<SocketAddr>,
    admin_port: Option<u16>,
    binary: Option<PathBuf>,
    settings: ConfigSettings,
    start: StartOptions,
    apply_timeout: Duration,
    start_timeout: Duration,
}

impl EnvoyRouterBuilder {
    /// A builder with the defaults (see [`EnvoyRouter::builder`]).
    pub(super) fn new(state_dir: PathBuf) -> Self {
        EnvoyRouterBuilder {
            state_dir,
            app: None,
            listen: None,
            admin_port: None,
            binary: None,
            settings: ConfigSettings::default(),
            start: StartOptions { log_level: "warning".into(), concurrency: 2 },
            apply_timeout: Duration::from_secs(15),
            start_timeout: Duration::from_secs(30),
        }
    }

    /// The app served to requests whose `Host` names no app (default: the first app attached, while it
    /// has anything attached). Once set here it is kept for the life of the state directory.
    pub fn default_app(mut self, app: impl Into<String>) -> Self {
        self.app = Some(app.into());
        self
    }
    /// The public listener's address. Default `127.0.0.1` on a free port chosen at first start; port 0
    /// also means "choose". Fixed for the life of the state directory.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }
    /// The admin port on 127.0.0.1 (default: a free port chosen at first start).
    pub fn admin_port(mut self, port: u16) -> Self {
        self.admin_port = Some(port);
        self
    }
    /// The Envoy binary (default: `$PULSE_ENVOY_BIN`, the project virtualenv, then `PATH`).
    pub fn envoy_binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }
    /// Active health-check interval, the same at weight 0 (default 1 s; 50 ms to 60 s).
    pub fn health_check_interval(mut self, d: Duration) -> Self {
        self.settings.health_interval = d;
        self
    }
    /// Timeout of one health-check request (default 1 s).
    pub fn health_check_timeout(mut self, d: Duration) -> Self {
        self.settings.health_timeout = d;
        self
    }
    /// Consecutive failed checks before a host is unhealthy (default 2).
    pub fn unhealthy_threshold(mut self, n: u32) -> Self {
        self.settings.unhealthy_threshold = n;
        self
    }
    /// Consecutive passed checks before a host is healthy (default 1).
    pub fn healthy_threshold(mut self, n: u32) -> Self {
        self.settings.healthy_threshold = n;
        self
    }
    /// Timeout of plain (not upgraded) requests; `None` (default) disables it.
    pub fn route_timeout(mut self, d: Option<Duration>) -> Self {
        self.settings.route_timeout = d;
        self
    }
    /// How long a change may take to be applied by Envoy before the call fails (default 15 s).
    pub fn apply_timeout(mut self, d: Duration) -> Self {
        self.apply_timeout = d;
        self
    }
    /// How long Envoy may take to start and become ready (default 30 s).
    pub fn start_timeout(mut self, d: Duration) -> Self {
        self.start_timeout = d;
        self
    }
    /// Envoy's `--log-level` (default `warning`).
    pub fn log_level(mut self, level: impl Into<String>) -> Self {
        self.start.log_level = level.into();
        self
    }
    /// Envoy's worker threads (default 2).
    pub fn concurrency(mut self, n: u32) -> Self {
        self.start.concurrency = n;
        self
    }

    fn validate(&self) -> Result<Option<AppName>> {
        let app = self.app.as_deref().map(AppName::new).transpose()?;
        let s = &self.settings;
        if !(Duration::from_millis(50)..=Duration::from_secs(60)).contains(&s.health_interval) {
            return Err(Error::invalid("health_check_interval", "use 50 ms to 60 s (e.g. 1 s)"));
        }
        if s.health_timeout < Duration::from_millis(10) || s.health_timeout > Duration::from_secs(60) {
            return Err(Error::invalid("health_check_timeout", "use 10 ms to 60 s (e.g. 1 s)"));
        }
        if !(1..=10).contains(&s.unhealthy_threshold) || !(1..=10).contains(&s.healthy_threshold) {
            return Err(Error::invalid("health thresholds", "use 1 to 10 consecutive checks"));
        }
        if s.route_timeout.is_some_and(|d| d < Duration::from_millis(1)) {
            return Err(Error::invalid("route_timeout", "use at least 1 ms, or None to disable it"));
        }
        if self.apply_timeout < Duration::from_millis(100) || self.start_timeout < Duration::from_millis(100)
        {
            return Err(Error::invalid("apply_timeout/start_timeout", "use at least 100 ms (e.g. 15 s)"));
        }
        if !(1..=64).contains(&self.start.concurrency) {
            return Err(Error::invalid("concurrency", "use 1 to 64 worker threads"));
        }
        const LEVELS: &[&str] = &["trace", "debug", "info", "warning", "warn", "error", "critical", "off"];
        if !LEVELS.contains(&self.start.log_level.as_str()) {
            return Err(Error::invalid("log_level", format!("use one of {}", LEVELS.join(", "))));
        }
        if self.admin_port == Some(0) {
            return Err(Error::invalid("admin_port", "0 is not a port; leave it unset to choose a free one"));
        }
        Ok(app)
    }

    /// Validates the options, loads or creates the state directory, and adopts the Envoy already serving
    /// it or starts one (waiting until it is ready).
    pub async fn build(self) -> Result<EnvoyRouter> {
        let app = self.validate()?;
        let binary = process::locate_envoy(self.binary.as_deref())?;
        fs::create_dir_all(&self.state_dir).map_err(|e| io_error(&self.state_dir, "create", e))?;
        let state_dir =
            fs::canonicalize(&self.state_dir).map_err(|e| io_error(&self.state_dir, "resolve", e))?;
        let xds = XdsFiles::new(&state_dir);
        xds.create_dir()?;
        let router_files =
            RouterFiles { lock: state_dir.join("lock"), process: ProcessFiles::new(&state_dir) };

        let lock_file = lock_file(&router_files.lock, self.start_timeout).await?;
        let mut fresh = false;
        let mut state = match PersistedState::load(&state_dir)? {
            Some(state) => {
                if let (Some(want), Some(have)) = (&app, &state.default_app) {
                    if want != have && state.default_app_explicit {
                        return Err(Error::Conflict {
                            message: format!(
                                "state directory {} has default app {have}, not {want}; use another state \
                                 directory, or reach {want} with `Host: {want}.localhost`",
                                state_dir.display()
                            ),
                        });
                    }
                }
                if let Some(want) = self.listen.filter(|a| a.port() != 0) {
                    if want != state.listener {
                        return Err(Error::Conflict {
                            message: format!(
                                "state directory {} serves on {}, not {want}; the listener is fixed for the life \
                                 of a state directory (shut the router down to start over)",
                                state_dir.display(),
                                state.listener
                            ),
                        });
                    }
                }
                let mut state = state;
                if app.is_some() && (state.default_app != app || !state.default_app_explicit) {
                    state.default_app = app;
                    state.default_app_explicit = true;
                    state.generation += 1;
                    state.save(&state_dir)?;
                }
                state
            }
            None => {
                let listen = self.listen.unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
                let listener = if listen.port() == 0 { free_port(listen.ip())? } else { listen };
                let admin = match self.admin_port {
                    Some(p) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p),
                    None => free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?,
                };
                let state = PersistedState::new(app, listener, admin);
                state.save(&state_dir)?;
                fresh = true;
                state
            }
        };
        let mut router = EnvoyRouter {
            admin: AdminClient::new(state.admin),
            listener: state.listener,
            state_dir,
            xds,
            files: router_files,
            binary,
            settings: self.settings,
            start: self.start,
            apply_timeout: self.apply_timeout,
            start_timeout: self.start_timeout,
            local: Mutex::new(()),
        };
        // A port chosen by this build may be taken by another process before Envoy binds it: choose again
        // (only ports this build chose, only before anything was routed).
        let chose_ports = fresh && self.listen.is_none_or(|a| a.port() == 0) && self.admin_port.is_none();
        let mut attempts = 0;
        loop {
            match router.ensure_running_locked(&state).await {
                Ok(()) => break,
                Err(e)
                    if chose_ports
                        && attempts < 3
                        && matches!(e, Error::Provider { retryable: true, .. }) =>
                {
                    attempts += 1;
                    tracing::warn!(error = %e, "Envoy did not start on the chosen ports; choosing others");
                    state.listener = free_port(state.listener.ip())?;
                    state.admin = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
                    state.save(&router.state_dir)?;
                    router.listener = state.listener;
                    router.admin = AdminClient::new(state.admin);
                }
                Err(e) => return Err(e),
            }
        }
        router.apply(&state).await?;
        drop(lock_file);
        Ok(router)
    }
}

pub(super) fn free_port(ip: IpAddr) -> Result<SocketAddr> {
    let l = TcpListener::bind(SocketAddr::new(ip, 0))
        .map_err(|e| Error::provider_source("envoy", format!("cannot find a free port on {ip}"), true, e))?;
    l.local_addr().map_err(|e| Error::provider_source("envoy", "reading a bound port", true, e))
}
