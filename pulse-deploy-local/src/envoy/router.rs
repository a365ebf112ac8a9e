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

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::Signal;
use pulse_deploy_core::{
    AppName, Error, Health, Result, RoutedVersion, RouterCapabilities, RoutingState, TargetHealth,
    TrafficRouter, VersionId, VersionRoute, Weights,
};
use serde_json::Value;
use tokio::sync::Mutex;

use super::admin::AdminClient;
use super::config::{self, ConfigSettings, RoutingInput};
use super::process::{self, ProcessFiles, StartOptions};
use super::state::PersistedState;
use super::xds::{io_error, write_atomic, Durability, XdsFiles};

/// Most versions attached to one router at once.
pub const MAX_ATTACHED_VERSIONS: usize = 50;
/// Most versions receiving new sessions at once.
pub const MAX_WEIGHTED_VERSIONS: usize = 10;

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
        EnvoyRouterBuilder {
            state_dir: state_dir.into(),
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

    /// Checks the current configuration offline with `envoy --mode validate`: the bootstrap Envoy runs
    /// with, and a self-contained copy with the current clusters and routes inlined.
    pub async fn validate_config(&self) -> Result<()> {
        let state = self.load_state()?;
        self.write_bootstrap(&state)?;
        validate_file(&self.binary, &self.files.process.bootstrap).await?;
        let inline = config::validation_bootstrap(state.listener, state.admin, input(&state), &self.settings);
        let path = self.state_dir.join("validate-inline.json");
        write_atomic(&path, &inline, Durability::Volatile)?;
        let result = validate_file(&self.binary, &path).await;
        let _ = fs::remove_file(&path);
        result
    }

    fn load_state(&self) -> Result<PersistedState> {
        PersistedState::load(&self.state_dir)?.ok_or_else(|| Error::NotFound {
            what: format!(
                "router state in {} (removed by a shutdown?); build a new EnvoyRouter",
                self.state_dir.display()
            ),
        })
    }

    fn write_bootstrap(&self, state: &PersistedState) -> Result<()> {
        let bootstrap = config::bootstrap(state.listener, state.admin, self.xds.paths(), "pulse-deploy");
        write_atomic(&self.files.process.bootstrap, &bootstrap, Durability::Volatile)
    }

    /// True when the Envoy answering on our admin port was started with our bootstrap. Fast path (Linux):
    /// the recorded pid runs our bootstrap and the admin port answers `/ready`; otherwise Envoy's
    /// `/server_info` (a 120 kB page) must name our bootstrap.
    async fn ours_is_answering(&self) -> bool {
        let bootstrap = &self.files.process.bootstrap;
        if let Some(pid) = self.files.process.read_pid() {
            if process::runs_bootstrap_verified(pid, bootstrap) {
                return self.admin.is_ready().await;
            }
        }
        let want = bootstrap.display().to_string();
        matches!(self.admin.config_path().await, Ok(p) if p == want)
    }

    async fn ensure_running_locked(&self, state: &PersistedState) -> Result<()> {
        if self.ours_is_answering().await {
            return Ok(());
        }
        // Started but not answering yet (e.g. by a deployer that died right after spawning it)?
        if let Some(pid) = self.files.process.read_pid() {
            if process::runs_bootstrap(pid, &self.files.process.bootstrap) {
                if self.wait_ready(Some(pid)).await.is_ok() {
                    return Ok(());
                }
                tracing::warn!(pid, "Envoy of this state directory does not answer; restarting it");
                self.kill(pid).await;
            }
        }
        // Start from the files: write them straight from the state (nothing serves them yet).
        self.write_bootstrap(state)?;
        let version = version_info(state);
        self.xds.write_cds(&version, config::clusters(input(state), &self.settings))?;
        self.xds.write_rds(&version, vec![config::route_configuration(input(state), &self.settings)])?;
        let pid = process::start(&self.binary, &self.files.process, &self.start)?;
        self.wait_ready(Some(pid)).await
    }

    async fn wait_ready(&self, pid: Option<u32>) -> Result<()> {
        let deadline = Instant::now() + self.start_timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            if self.ours_is_answering().await {
                return Ok(());
            }
            if let Some(pid) = pid {
                if !process::is_alive(pid) {
                    return Err(Error::provider(
                        "envoy",
                        format!(
                            "Envoy (pid {pid}) exited while starting; is port {} or {} in use? last lines of {}:\n{}",
                            self.listener.port(),
                            self.admin.addr().port(),
                            self.files.process.log.display(),
                            self.files.process.log_tail(15)
                        ),
                        true,
                    ));
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout { what: "Envoy start".into(), after: self.start_timeout });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    async fn kill(&self, pid: u32) {
        process::signal(pid, Signal::SIGTERM);
        if !process::wait_gone(pid, Duration::from_secs(5)).await {
            process::signal(pid, Signal::SIGKILL);
            process::wait_gone(pid, Duration::from_secs(5)).await;
        }
    }

    async fn stop_locked(&self) -> Result<()> {
        let pid = self.files.process.read_pid();
        if self.ours_is_answering().await {
            let _ = self.admin.quit().await;
            if let Some(pid) = pid {
                if !process::wait_gone(pid, Duration::from_secs(10)).await {
                    self.kill(pid).await;
                }
            }
        } else if let Some(pid) = pid.filter(|p| process::runs_bootstrap(*p, &self.files.process.bootstrap)) {
            self.kill(pid).await;
        }
        // Make sure the admin port is free of our Envoy before reporting success.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.ours_is_answering().await {
            if Instant::now() >= deadline {
                return Err(Error::Timeout { what: "Envoy stop".into(), after: Duration::from_secs(10) });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = fs::remove_file(&self.files.process.pid);
        tracing::info!(state_dir = %self.state_dir.display(), "stopped Envoy");
        Ok(())
    }

    /// Brings the xDS files (and so Envoy) to `state` in the safe order, waiting for each step to apply.
    async fn apply(&self, state: &PersistedState) -> Result<()> {
        let wanted = config::clusters(input(state), &self.settings);
        let current = self.xds.read_cds();
        let wanted_names: BTreeSet<String> = wanted.iter().filter_map(name_of).collect();
        let mut union = wanted.clone();
        union.extend(
            current.iter().filter(|c| name_of(c).is_some_and(|n| !wanted_names.contains(&n))).cloned(),
        );
        union.sort_by_key(name_of);
        if union != current {
            let version = version_info(state);
            self.xds.write_cds(&version, union.clone())?;
            self.wait_cds(&version, &current, &union).await?;
        }
        let routes = vec![config::route_configuration(input(state), &self.settings)];
        if routes != self.xds.read_rds() {
            let version = version_info(state);
            self.xds.write_rds(&version, routes)?;
            self.wait_applied(self.xds.rds_path(), &version, || async {
                Ok(self.admin.applied_routes().await?.as_deref() == Some(version.as_str()))
            })
            .await?;
        }
        if wanted != union {
            let version = version_info(state);
            self.xds.write_cds(&version, wanted.clone())?;
            self.wait_cds(&version, &union, &wanted).await?;
        }
        Ok(())
    }

    /// Waits until Envoy serves exactly the clusters in `now`, those changed since `before` at `version`,
    /// and none is warming.
    async fn wait_cds(&self, version: &str, before: &[Value], now: &[Value]) -> Result<()> {
        let names: BTreeSet<String> = now.iter().filter_map(name_of).collect();
        let changed: BTreeSet<String> =
            now.iter().filter(|c| !before.contains(c)).filter_map(name_of).collect();
        self.wait_applied(self.xds.cds_path(), version, || async {
            let a = self.admin.applied_clusters().await?;
            Ok(a.warming_clusters.is_empty()
                && a.active_clusters.keys().cloned().collect::<BTreeSet<_>>() == names
                && changed.iter().all(|n| a.active_clusters.get(n).map(String::as_str) == Some(version)))
        })
        .await
    }

    async fn wait_applied<F, Fut>(&self, file: &Path, version: &str, done: F) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let deadline = Instant::now() + self.apply_timeout;
        let mut pause = Duration::from_micros(500);
        loop {
            match done().await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "reading Envoy's applied config"),
            }
            if Instant::now() >= deadline {
                return Err(Error::provider(
                    "envoy",
                    format!(
                        "Envoy did not apply {} (version {version}) within {:?}; it may have rejected it — last \
                         lines of {}:\n{}",
                        file.display(),
                        self.apply_timeout,
                        self.files.process.log.display(),
                        self.files.process.log_tail(10)
                    ),
                    true,
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(5));
        }
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

fn input(state: &PersistedState) -> RoutingInput<'_> {
    RoutingInput { default_app: state.effective_default_app(), apps: &state.apps }
}

fn name_of(resource: &Value) -> Option<String> {
    resource["name"].as_str().map(str::to_owned)
}

/// A `version_info` unique to this write: the generation plus the time in nanoseconds.
fn version_info(state: &PersistedState) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{}-{nanos}", state.generation)
}

fn free_port(ip: IpAddr) -> Result<SocketAddr> {
    let l = TcpListener::bind(SocketAddr::new(ip, 0))
        .map_err(|e| Error::provider_source("envoy", format!("cannot find a free port on {ip}"), true, e))?;
    l.local_addr().map_err(|e| Error::provider_source("envoy", "reading a bound port", true, e))
}

/// Takes the state directory's lock file (an exclusive `flock`), polling until `timeout`.
async fn lock_file(path: &Path, timeout: Duration) -> Result<Flock<fs::File>> {
    if path.parent().is_some_and(|dir| !dir.exists()) {
        return Err(Error::NotFound {
            what: format!(
                "router state directory of {} (removed by a shutdown?); build a new EnvoyRouter",
                path.display()
            ),
        });
    }
    let deadline = Instant::now() + timeout;
    loop {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| io_error(path, "open", e))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((_, Errno::EWOULDBLOCK)) => {}
            Err((_, e)) => return Err(io_error(path, "lock", e.into())),
        }
        if Instant::now() >= deadline {
            return Err(Error::Conflict {
                message: format!(
                    "another deployer holds {} for longer than {timeout:?}; let it finish or stop it",
                    path.display()
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn validate_file(binary: &Path, file: &Path) -> Result<()> {
    let out = tokio::process::Command::new(binary)
        .args(["--mode", "validate", "--disable-hot-restart", "--log-level", "error", "-c"])
        .arg(file)
        .output()
        .await
        .map_err(|e| Error::provider_source("envoy", format!("cannot run {}", binary.display()), false, e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::provider(
            "envoy",
            format!(
                "envoy --mode validate rejected {}: {}{}",
                file.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            false,
        ))
    }
}

fn check_route(route: &VersionRoute) -> Result<()> {
    for t in &route.targets {
        if config::target_ip(&t.endpoint.host).is_none() {
            return Err(Error::invalid(
                "route.targets",
                format!(
                    "{} of instance {} is not an IP address; EnvoyRouter routes to IP addresses (or localhost)",
                    t.endpoint, t.instance
                ),
            ));
        }
        if t.endpoint.port == 0 {
            return Err(Error::invalid("route.targets", format!("instance {} has port 0", t.instance)));
        }
    }
    let h = &route.health_path;
    if !h.starts_with('/')
        || h.contains(char::is_whitespace)
        || h.starts_with(pulse_deploy_core::affinity::ADMIN_PATH_PREFIX)
    {
        return Err(Error::invalid(
            "route.health_path",
            format!("`{h}` must be a path starting with '/', without spaces, outside /_pulse/admin"),
        ));
    }
    Ok(())
}

#[async_trait]
impl TrafficRouter for EnvoyRouter {
    fn capabilities(&self) -> RouterCapabilities {
        let mut caps = RouterCapabilities::new("envoy");
        caps.max_weighted_versions = MAX_WEIGHTED_VERSIONS;
        caps.max_attached_versions = MAX_ATTACHED_VERSIONS;
        caps
    }

    async fn attach(&self, route: &VersionRoute) -> Result<()> {
        check_route(route)?;
        let mut route = route.clone();
        route.targets.sort();
        route.targets.dedup();
        tracing::info!(app = %route.app, version = %route.version, targets = route.targets.len(), "envoy: attach");
        self.mutate(|state| {
            if state.default_app.is_none() {
                state.default_app = Some(route.app.clone());
                state.default_app_explicit = false;
            }
            let app = state.apps.entry(route.app.clone()).or_default();
            if !app.versions.contains_key(&route.version) && app.versions.len() >= MAX_ATTACHED_VERSIONS {
                return Err(Error::invalid(
                    "route",
                    format!(
                        "{MAX_ATTACHED_VERSIONS} versions of {} are attached already; detach old ones first",
                        route.app
                    ),
                ));
            }
            app.versions.insert(route.version.clone(), route);
            Ok(())
        })
        .await
    }

    async fn set_weights(&self, app: &AppName, weights: &Weights) -> Result<()> {
        if weights.len() > MAX_WEIGHTED_VERSIONS {
            return Err(Error::invalid(
                "weights",
                format!(
                    "{} versions weighted; at most {MAX_WEIGHTED_VERSIONS} may get new sessions",
                    weights.len()
                ),
            ));
        }
        tracing::info!(app = %app, weights = %weights, "envoy: set weights");
        self.mutate(|state| {
            let attached = state.apps.get(app).map(|a| &a.versions);
            if let Some((v, _)) = weights.iter().find(|(v, _)| !attached.is_some_and(|a| a.contains_key(*v)))
            {
                return Err(Error::invalid(
                    "weights",
                    format!("version {v} of {app} is not attached; attach it before giving it a weight"),
                ));
            }
            if let Some(a) = state.apps.get_mut(app) {
                a.weights = weights.clone();
            }
            Ok(())
        })
        .await
    }

    async fn detach(&self, app: &AppName, version: &VersionId) -> Result<()> {
        tracing::info!(app = %app, version = %version, "envoy: detach");
        self.mutate(|state| {
            let Some(routing) = state.apps.get_mut(app) else { return Ok(()) };
            if !routing.versions.contains_key(version) {
                return Ok(());
            }
            let w = routing.weights.get(version);
            if w > 0 {
                return Err(Error::Conflict {
                    message: format!(
                        "version {version} of {app} still has weight {w}%; set its weight to 0 before detaching it"
                    ),
                });
            }
            routing.versions.remove(version);
            if routing.is_empty() {
                state.apps.remove(app);
                if state.default_app.as_ref() == Some(app) && !state.default_app_explicit {
                    state.default_app = None;
                }
            }
            Ok(())
        })
        .await
    }

    async fn routing(&self, app: &AppName) -> Result<RoutingState> {
        self.ensure_running().await?;
        let state = self.load_state()?;
        let Some(routing) = state.apps.get(app) else { return Ok(RoutingState::default()) };
        let health = self.admin.host_health().await?;
        let mut versions = BTreeMap::new();
        for (v, route) in &routing.versions {
            let hosts = health.get(&config::cluster_name(app, v));
            let targets = route
                .targets
                .iter()
                .map(|t| {
                    let addr =
                        config::target_ip(&t.endpoint.host).map(|ip| SocketAddr::new(ip, t.endpoint.port));
                    let h =
                        addr.and_then(|a| hosts.and_then(|m| m.get(&a))).copied().unwrap_or(Health::Unknown);
                    TargetHealth { target: t.clone(), health: h }
                })
                .collect();
            versions.insert(v.clone(), RoutedVersion { route: route.clone(), targets });
        }
        Ok(RoutingState { weights: routing.weights.clone(), versions })
    }
}
