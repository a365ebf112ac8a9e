//! Graceful shutdown: SIGTERM/SIGINT (or [`DrainState::begin_shutdown`]) puts the instance in
//! `shutting_down` (health 503) and cancels [`DrainState::shutdown_token`], on which WebSocket tasks close
//! with code 1001; the server stops accepting; then tracked tasks are awaited and the shutdown hooks run,
//! all within the configured shutdown timeout: in-flight requests and tracked tasks get its first half, the
//! hooks the rest (so a hanging request cannot starve the hooks). A second signal exits the process at
//! once (code 130).
//!
//! [`serve`] does all of it around `axum::serve`; [`DrainState::shutdown_signal`] and
//! [`DrainState::finish`] are the pieces, for servers that call `axum::serve` themselves.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::ws::CloseFrame;
use axum::Router;
use futures::future::BoxFuture;
use pulse_deploy_core::drain::wire::{SHUTDOWN_CLOSE_CODE, SHUTDOWN_CLOSE_REASON};
use pulse_deploy_core::{Error, Result};
use tokio::net::TcpListener;

use crate::state::DrainState;

/// A shutdown hook: called once, its future is awaited with the remaining shutdown deadline.
pub(crate) type Hook = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// What happened during shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Whether every in-flight HTTP request finished before the deadline (always true when the server was
    /// not run by [`serve`]).
    pub requests_finished: bool,
    /// Whether every tracked task (e.g. WebSocket) finished before the deadline.
    pub tasks_finished: bool,
    /// Hooks that completed, in order.
    pub hooks_completed: Vec<String>,
    /// Hooks cut by the deadline (or not started because it had passed).
    pub hooks_timed_out: Vec<String>,
    /// Time from the start of shutdown to the end of the last hook.
    pub took: Duration,
}

impl ShutdownReport {
    /// Whether everything finished within the deadline.
    pub fn is_clean(&self) -> bool {
        self.requests_finished && self.tasks_finished && self.hooks_timed_out.is_empty()
    }
}

/// The close frame WebSocket tasks send when the instance shuts down: code 1001 (going away) and a reason
/// telling the client to reconnect (it will land on the newest version).
pub fn going_away() -> CloseFrame {
    CloseFrame { code: SHUTDOWN_CLOSE_CODE, reason: SHUTDOWN_CLOSE_REASON.into() }
}

impl DrainState {
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
        let mut report = ShutdownReport {
            requests_finished: true,
            tasks_finished,
            hooks_completed: vec![],
            hooks_timed_out: vec![],
            took: Duration::ZERO,
        };
        for (name, hook) in hooks {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(hook = %name, "shutdown deadline passed; hook not run");
                report.hooks_timed_out.push(name);
                continue;
            }
            match tokio::time::timeout_at(deadline, hook()).await {
                Ok(()) => report.hooks_completed.push(name),
                Err(_) => {
                    tracing::warn!(hook = %name, "shutdown hook cut by the deadline");
                    report.hooks_timed_out.push(name);
                }
            }
        }
        report.took = started.elapsed();
        tracing::info!(
            took_ms = report.took.as_millis() as u64,
            clean = report.is_clean(),
            "shutdown complete"
        );
        report
    }
}

/// Serves `app` on `listener` until shutdown (SIGTERM/SIGINT or [`DrainState::begin_shutdown`]), then
/// stops accepting, lets in-flight requests finish, waits for tracked tasks and runs the hooks — all within
/// the shutdown timeout. Peer addresses are recorded (per-peer throttling of failed admin logins).
pub async fn serve(listener: TcpListener, app: Router, state: DrainState) -> Result<ShutdownReport> {
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(state.shutdown_signal())
        .into_future();
    let token = state.shutdown_token();
    let timeout = state.config().shutdown_timeout();
    let requests_finished = tokio::select! {
        r = server => {
            r.map_err(|e| Error::Unavailable { what: "the HTTP server".into(), message: e.to_string() })?;
            true
        }
        () = async { token.cancelled().await; tokio::time::sleep(timeout / 2).await } => {
            tracing::warn!("in-flight requests still open at half the shutdown timeout; closing them");
            false
        }
    };
    let mut report = state.finish().await;
    report.requests_finished = requests_finished;
    Ok(report)
}

/// First SIGTERM/SIGINT: begin shutdown. Second: exit at once with code 130.
#[cfg(unix)]
pub(crate) fn install_signal_handlers(state: &DrainState) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let io = |e: std::io::Error| Error::Unavailable {
        what: "signal handling".into(),
        message: format!("cannot install the SIGTERM/SIGINT handler: {e}"),
    };
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    let state = state.clone();
    tokio::spawn(async move {
        let first = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        state.begin_shutdown(first);
        let second = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::error!(signal = second, "second signal during shutdown: exiting now");
        std::process::exit(130);
    });
    Ok(())
}

/// Ctrl-C only on non-unix platforms.
#[cfg(not(unix))]
pub(crate) fn install_signal_handlers(state: &DrainState) -> Result<()> {
    let state = state.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            state.begin_shutdown("ctrl-c");
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    Ok(())
}
