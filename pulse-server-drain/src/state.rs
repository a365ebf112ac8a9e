//! [`DrainState`]: one instance's serving state (serving, draining, drained, shutting down), its live
//! session count and drain deadline, shared by the admin endpoints, the health endpoint, the new-session
//! gate and the app's session code. Cheap to clone.
//!
//! The state machine is in `docs/drain-protocol.md`, "State machine". `Drained` is derived when read
//! (0 sessions, or past the deadline) and then latched: health never goes back to 200 once it failed.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use pulse_deploy_core::drain::wire::{HealthBody, InstanceStatus, ServingState};
use pulse_deploy_core::Result;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::DrainConfig;
use crate::secret::SecretStore;
use crate::shutdown::Hook;
use crate::throttle::Throttle;

/// Longest drain deadline (30 days): longer ones, from a request or the configuration, are refused where
/// they enter and clamped here.
pub const MAX_DRAIN_DEADLINE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The shared serving state of one instance. Clone it freely (an `Arc` inside).
#[derive(Clone)]
pub struct DrainState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) version: String,
    pub(crate) instance_id: String,
    pub(crate) config: DrainConfig,
    pub(crate) secret: SecretStore,
    pub(crate) throttle: Throttle,
    sessions: AtomicU64,
    draining: AtomicBool,
    drained: AtomicBool,
    drain: Mutex<Option<DrainInfo>>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) shutdown_started: OnceLock<Instant>,
    pub(crate) tracker: TaskTracker,
    pub(crate) hooks: Mutex<Vec<(String, Hook)>>,
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
            || self.active_sessions() == 0
            || Instant::now() >= info.deadline_at
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
        // Clamped so that no deadline arithmetic can overflow (and panic while holding the lock).
        let deadline = deadline.unwrap_or(self.inner.config.default_deadline).min(MAX_DRAIN_DEADLINE);
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
                Some(info) if candidate.deadline_at < info.deadline_at => {
                    info.deadline = candidate.deadline;
                    info.deadline_at = candidate.deadline_at;
                    tracing::info!(deadline_secs = deadline.as_secs(), "drain deadline moved earlier");
                }
                Some(_) => {}
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
                    || self.active_sessions() == 0
                    || Instant::now() >= info.deadline_at
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
