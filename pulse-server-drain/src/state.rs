//! [`DrainState`]: one instance's serving state (serving, draining, drained, shutting down), its live
//! session count and drain deadline, shared by the admin endpoints, the health endpoint, the new-session
//! gate and the app's session code. Cheap to clone.
//!
//! The state machine is in `docs/drain-protocol.md`, "State machine". `Drained` is derived when read
//! (0 sessions, or past the deadline: [`deadline::is_drained`]) and then latched: health never goes back to
//! 200 once it failed. The deadline rules are the protocol's pure functions
//! (`pulse_deploy_core::drain::wire::deadline`), not restated here.
//!
//! Every method of [`DrainState`] is in this file (its fields are private to it); the admin routes, the
//! new-session gate and the shutdown are free functions of their modules that it calls.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use std::future::Future;

use axum::response::Response;
use axum::Router;
use http::{HeaderMap, Method, Uri};
use pulse_deploy_core::drain::wire::{deadline, HealthBody, InstanceStatus, ServingState};
use pulse_deploy_core::Result;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::DrainConfig;
use crate::gate::NewSessionGateLayer;
use crate::secret::SecretStore;
use crate::shutdown::{Hook, ShutdownReport};
use crate::throttle::Throttle;

/// The shared serving state of one instance. Clone it freely (an `Arc` inside).
#[derive(Clone)]
pub struct DrainState {
    inner: Arc<Inner>,
}

struct Inner {
    version: String,
    instance_id: String,
    config: DrainConfig,
    secret: SecretStore,
    throttle: Throttle,
    sessions: AtomicU64,
    draining: AtomicBool,
    drained: AtomicBool,
    drain: Mutex<Option<DrainInfo>>,
    shutdown: CancellationToken,
    shutdown_started: OnceLock<Instant>,
    tracker: TaskTracker,
    hooks: Mutex<Vec<(String, Hook)>>,
}

#[derive(Debug, Clone, Copy)]
struct DrainInfo {
    since: SystemTime,
    deadline: SystemTime,
    deadline_at: Instant,
}

impl DrainState {
    /// Starts the state: resolves the instance id, loads the secret (refusing an empty or short one) and, if
    /// configured (the default), installs the SIGTERM/SIGINT handlers. Needs a tokio runtime.
    pub async fn start(config: DrainConfig) -> Result<DrainState> {
        let instance_id = config.instance_id.resolve().await?;
        let secret = SecretStore::start(config.secret.clone(), config.secret_refresh).await?;
        let throttle = Throttle::new(config.max_auth_failures, config.throttle_window);
        let state = DrainState {
            inner: Arc::new(Inner {
                version: config.version.clone(),
                instance_id,
                secret,
                throttle,
                sessions: AtomicU64::new(0),
                draining: AtomicBool::new(false),
                drained: AtomicBool::new(false),
                drain: Mutex::new(None),
                shutdown: CancellationToken::new(),
                shutdown_started: OnceLock::new(),
                tracker: TaskTracker::new(),
                hooks: Mutex::new(Vec::new()),
                config,
            }),
        };
        if state.inner.config.handle_signals {
            crate::shutdown::install_signal_handlers(&state)?;
        }
        tracing::info!(version = %state.version(), instance = %state.instance_id(), "drain protocol ready");
        Ok(state)
    }

    /// The app version.
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The instance id reported in [`InstanceStatus::instance_id`].
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// The configuration.
    pub fn config(&self) -> &DrainConfig {
        &self.inner.config
    }

    /// Live sessions.
    pub fn active_sessions(&self) -> u64 {
        self.inner.sessions.load(Ordering::SeqCst)
    }

    /// Whether a request may create a new session: only while serving (not draining, not shutting down).
    pub fn accepts_new_sessions(&self) -> bool {
        !self.inner.draining.load(Ordering::SeqCst) && !self.inner.shutdown.is_cancelled()
    }

    /// The current state (see the module docs).
    pub fn state(&self) -> ServingState {
        if self.inner.shutdown.is_cancelled() {
            return ServingState::ShuttingDown;
        }
        let Some(info) = *self.inner.drain.lock().expect("drain lock") else {
            return ServingState::Serving;
        };
        if self.inner.drained.load(Ordering::SeqCst)
            || deadline::is_drained(self.active_sessions(), Instant::now(), Some(info.deadline_at))
        {
            self.inner.drained.store(true, Ordering::SeqCst);
            ServingState::Drained
        } else {
            ServingState::Draining
        }
    }

    /// Starts draining (idempotent). `deadline` is counted from now (`None`: the configured default); if
    /// already draining, the earlier of the two deadlines is kept. Returns the status after the call.
    pub fn drain(&self, deadline: Option<Duration>) -> InstanceStatus {
        // Bounded (`effective`) so that no deadline arithmetic can overflow (and panic under the lock).
        let deadline = deadline::effective(deadline, self.inner.config.default_deadline);
        {
            let mut guard = self.inner.drain.lock().expect("drain lock");
            let now = Instant::now();
            let wall = SystemTime::now();
            let (Some(deadline_wall), Some(deadline_at)) =
                (wall.checked_add(deadline), now.checked_add(deadline))
            else {
                // Unreachable with the clamp above on any real clock; never panic under the lock.
                drop(guard);
                return self.status();
            };
            let candidate = DrainInfo { since: wall, deadline: deadline_wall, deadline_at };
            match guard.as_mut() {
                None => {
                    *guard = Some(candidate);
                    self.inner.drained.store(false, Ordering::SeqCst);
                    self.inner.draining.store(true, Ordering::SeqCst);
                    tracing::info!(
                        version = %self.version(),
                        instance = %self.instance_id(),
                        sessions = self.active_sessions(),
                        deadline_secs = deadline.as_secs(),
                        "draining: new sessions are turned away"
                    );
                }
                Some(info) => {
                    let kept = deadline::keep_earlier(Some(info.deadline_at), candidate.deadline_at);
                    if kept != info.deadline_at {
                        info.deadline = candidate.deadline;
                        info.deadline_at = kept;
                        tracing::info!(deadline_secs = deadline.as_secs(), "drain deadline moved earlier");
                    }
                }
            }
        }
        self.status()
    }

    /// Undrain: `draining` back to `serving` (clears `draining_since` and the deadline); `serving` stays
    /// `serving`. `Err` with the unchanged status if the instance is `drained` or `shutting_down` (there is no
    /// way back from those).
    pub fn undrain(&self) -> std::result::Result<InstanceStatus, InstanceStatus> {
        {
            let mut guard = self.inner.drain.lock().expect("drain lock");
            if self.inner.shutdown.is_cancelled() {
                drop(guard);
                return Err(self.status());
            }
            if let Some(info) = *guard {
                if self.inner.drained.load(Ordering::SeqCst)
                    || deadline::is_drained(self.active_sessions(), Instant::now(), Some(info.deadline_at))
                {
                    self.inner.drained.store(true, Ordering::SeqCst);
                    drop(guard);
                    return Err(self.status());
                }
                *guard = None;
                self.inner.draining.store(false, Ordering::SeqCst);
                // A last session that ended between the check above and here may have latched `drained`;
                // the instance was draining with sessions when undrain was decided, so it serves again.
                self.inner.drained.store(false, Ordering::SeqCst);
                tracing::info!(
                    version = %self.version(),
                    instance = %self.instance_id(),
                    sessions = self.active_sessions(),
                    "undrained: serving new sessions again"
                );
            }
        }
        Ok(self.status())
    }

    /// The status answered by the admin endpoints.
    pub fn status(&self) -> InstanceStatus {
        let state = self.state();
        let info = *self.inner.drain.lock().expect("drain lock");
        InstanceStatus {
            version: self.inner.version.clone(),
            instance_id: self.inner.instance_id.clone(),
            state,
            active_sessions: self.active_sessions(),
            draining_since: info.map(|i| i.since),
            deadline: info.map(|i| i.deadline),
        }
    }

    /// The health answer: whether it is healthy (200) or not (503), and the body.
    pub fn health(&self) -> (bool, HealthBody) {
        let state = self.state();
        let healthy = matches!(state, ServingState::Serving | ServingState::Draining);
        (healthy, HealthBody { state, active_sessions: self.active_sessions() })
    }

    /// Counts a session for as long as the returned guard lives. Create one per RenderSession (connected or
    /// waiting for a reconnect), not per connection.
    pub fn session(&self) -> SessionGuard {
        self.inner.sessions.fetch_add(1, Ordering::SeqCst);
        SessionGuard { state: self.clone() }
    }

    /// A token cancelled when shutdown begins: WebSocket tasks select on it and close with 1001.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Tracks tasks that must finish before the shutdown hooks run (e.g. WebSocket tasks: hold a
    /// `tracker().token()` for the life of the connection).
    pub fn tracker(&self) -> &TaskTracker {
        &self.inner.tracker
    }

    // -- admin and health routes (admin.rs) ----------------------------------------------------------

    /// The admin and health routes, to merge into the app's router:
    /// `app.merge(state.routes())`. Serve with connect info (as [`crate::serve`] does) for per-peer
    /// throttling.
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        crate::admin::routes(self)
    }

    /// The throttle of failed admin authentications.
    pub(crate) fn throttle(&self) -> &Throttle {
        &self.inner.throttle
    }

    /// The drain secret (compared in constant time).
    pub(crate) fn secret_store(&self) -> &SecretStore {
        &self.inner.secret
    }

    // -- the new-session gate (gate.rs) --------------------------------------------------------------

    /// `Ok(())` if a request creating a new session may proceed (the instance is serving), else the
    /// stale-affinity answer to return as is.
    #[allow(clippy::result_large_err)]
    pub fn admit_new_session(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> std::result::Result<(), Response> {
        if self.accepts_new_sessions() {
            Ok(())
        } else {
            Err(self.stale_affinity_response(method, uri, headers))
        }
    }

    /// The stale-affinity answer for a request that would create a new session (the new-session gate's:
    /// `307` for a page load, `409` otherwise).
    pub fn stale_affinity_response(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
        crate::gate::stale_affinity_response(self.version(), method, uri, headers)
    }

    /// A tower layer applying the gate to every request of the routes it wraps (use `route_layer`).
    pub fn gate(&self) -> NewSessionGateLayer {
        NewSessionGateLayer::new(self.clone())
    }

    // -- shutdown (shutdown.rs) ----------------------------------------------------------------------

    /// Registers a hook run at shutdown, after tracked tasks finished, in registration order, each bounded by
    /// what is left of the shutdown timeout (the seed's plugin lifecycle: flush, unmount, close pools).
    pub fn on_shutdown<F, Fut>(&self, name: impl Into<String>, hook: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let hook: Hook = Box::new(move || Box::pin(hook()));
        self.inner.hooks.lock().expect("hooks lock").push((name.into(), hook));
    }

    /// Begins shutdown (what the first SIGTERM/SIGINT does): state `shutting_down`, health 503, new sessions
    /// turned away, [`DrainState::shutdown_token`] cancelled. Idempotent.
    pub fn begin_shutdown(&self, reason: &str) {
        if self.inner.shutdown_started.set(Instant::now()).is_ok() {
            tracing::info!(reason, sessions = self.active_sessions(), "shutting down");
            self.inner.shutdown.cancel();
        }
    }

    /// Resolves when shutdown begins; pass it to `axum::serve(..).with_graceful_shutdown(..)`.
    pub fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        self.inner.shutdown.clone().cancelled_owned()
    }

    /// After the server stopped: waits for tracked tasks, then runs the hooks, all within the shutdown
    /// timeout counted from the start of shutdown. Call it once.
    pub async fn finish(&self) -> ShutdownReport {
        self.begin_shutdown("server stopped");
        let started = *self.inner.shutdown_started.get().expect("set by begin_shutdown");
        let timeout = self.inner.config.shutdown_timeout;
        let deadline = tokio::time::Instant::from_std(started + timeout);
        let tasks_deadline = tokio::time::Instant::from_std(started + timeout / 2);
        self.inner.tracker.close();
        let tasks_finished = tokio::time::timeout_at(tasks_deadline, self.inner.tracker.wait()).await.is_ok();
        if !tasks_finished {
            tracing::warn!(
                left = self.inner.tracker.len(),
                "shutdown deadline passed with tasks still running"
            );
        }
        let hooks = std::mem::take(&mut *self.inner.hooks.lock().expect("hooks lock"));
        let (hooks_completed, hooks_timed_out) = crate::shutdown::run_hooks(hooks, deadline).await;
        let mut report = ShutdownReport {
            requests_finished: true,
            tasks_finished,
            hooks_completed,
            hooks_timed_out,
            took: Duration::ZERO,
        };
        report.took = started.elapsed();
        tracing::info!(
            took_ms = report.took.as_millis() as u64,
            clean = report.is_clean(),
            "shutdown complete"
        );
        report
    }
}

impl fmt::Debug for DrainState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrainState")
            .field("version", &self.inner.version)
            .field("instance_id", &self.inner.instance_id)
            .field("state", &self.state())
            .field("active_sessions", &self.active_sessions())
            .finish_non_exhaustive()
    }
}

/// Counts one live session while it exists (RAII): created by [`DrainState::session`], dropped when the
/// session ends. When the last session of a draining instance ends, the instance becomes drained.
#[must_use = "the session is counted only while the guard lives"]
pub struct SessionGuard {
    state: DrainState,
}

impl fmt::Debug for SessionGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionGuard")
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let left = self.state.inner.sessions.fetch_sub(1, Ordering::SeqCst) - 1;
        if left == 0 && self.state.inner.draining.load(Ordering::SeqCst) {
            self.state.inner.drained.store(true, Ordering::SeqCst);
            tracing::info!(instance = %self.state.instance_id(), "last session ended: drained, health now fails");
        }
    }
}
