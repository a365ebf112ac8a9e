//! [`Controller`]: the engine as a long-running service — one task running observe–plan–apply passes for
//! one app against whatever is desired now. Deploying is changing the desired release; old versions are
//! drained and reaped by the same loop as their sessions end, with no terminal open.
//!
//! Stopping follows kube-rs' controller: the first [`Stopper::signal`] stops at the next safe point
//! (between two actions, or while waiting), the second aborts the pass in flight. Either is safe: the
//! providers are the source of truth and a new controller (or executor) converges from what it observes.
//! The latest plan and [`AppStatus`] are published after every pass ([`Controller::status_updates`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

use super::executor::Executor;
use super::plan::{Desired, Plan, PlanMemory};
use super::status::AppStatus;
use crate::{AppName, Error, Release, Result};

/// Stops a [`Controller`] (or an [`Executor`] built with [`super::ExecutorBuilder::stop_on`]): the first
/// signal at a safe point, the second at once. Cheap to clone; hand it to a signal handler.
#[derive(Debug, Clone, Default)]
pub struct Stopper {
    graceful: CancellationToken,
    force: CancellationToken,
}

/// What a [`Stopper::signal`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// The first signal: stop at the next safe point.
    Graceful,
    /// A later signal: abort what is in flight.
    Forced,
}

impl Stopper {
    /// A stopper that has not fired.
    pub fn new() -> Stopper {
        Stopper::default()
    }

    /// First call: stop at the next safe point; later calls: abort.
    pub fn signal(&self) -> StopSignal {
        if self.graceful.is_cancelled() {
            self.force.cancel();
            StopSignal::Forced
        } else {
            self.graceful.cancel();
            StopSignal::Graceful
        }
    }

    /// The token cancelled by the first signal (pass it to [`super::ExecutorBuilder::stop_on`]).
    pub fn graceful(&self) -> CancellationToken {
        self.graceful.clone()
    }

    /// The token cancelled by the second signal.
    pub fn forced(&self) -> CancellationToken {
        self.force.clone()
    }

    /// Whether the first signal was given.
    pub fn is_stopping(&self) -> bool {
        self.graceful.is_cancelled()
    }
}

/// A running controller for one app.
#[derive(Debug)]
pub struct Controller {
    app: AppName,
    desired: watch::Sender<Desired>,
    plans: watch::Receiver<Option<Arc<Plan>>>,
    status: watch::Receiver<Option<AppStatus>>,
    errors: watch::Receiver<(u64, Option<String>)>,
    stopper: Stopper,
    task: tokio::task::JoinHandle<()>,
}

impl Controller {
    /// Starts controlling `app` with no new target (reconcile only: keep the primary, drain and reap the
    /// rest), passing again every `poll` when idle and at once after a pass that applied actions.
    pub fn start(executor: Executor, app: AppName, poll: Duration) -> Controller {
        Controller::start_with(executor, Desired { app, target: None }, poll, Stopper::new())
    }

    /// Starts controlling `desired.app` towards `desired`, stopped by `stopper`.
    pub fn start_with(executor: Executor, desired: Desired, poll: Duration, stopper: Stopper) -> Controller {
        let app = desired.app.clone();
        let (desired_tx, desired_rx) = watch::channel(desired);
        let (plans_tx, plans) = watch::channel(None);
        let (status_tx, status) = watch::channel(None);
        let (errors_tx, errors) = watch::channel((0u64, None));
        let looping = Loop {
            executor,
            desired: desired_rx,
            plans: plans_tx,
            status: status_tx,
            errors: errors_tx,
            poll,
        };
        let (graceful, force) = (stopper.graceful(), stopper.forced());
        let span = tracing::info_span!("controller", app = %app);
        let task = tokio::spawn(
            async move {
                tokio::select! {
                    _ = looping.run(graceful) => info!("controller stopped at a safe point"),
                    _ = force.cancelled() => warn!("controller aborted"),
                }
            }
            .instrument(span),
        );
        Controller { app, desired: desired_tx, plans, status, errors, stopper, task }
    }

    /// The app controlled.
    pub fn app(&self) -> &AppName {
        &self.app
    }

    /// Makes `release` the target: it is deployed, gets all new sessions, and every other version drains.
    pub fn deploy(&self, release: Release) {
        self.desired.send_modify(|d| d.target = Some(release));
    }

    /// What the controller works towards.
    pub fn desired(&self) -> Desired {
        self.desired.borrow().clone()
    }

    /// The latest plan.
    pub fn plan(&self) -> Option<Arc<Plan>> {
        self.plans.borrow().clone()
    }

    /// The status of the latest pass's snapshot.
    pub fn status(&self) -> Option<AppStatus> {
        self.status.borrow().clone()
    }

    /// Every new status, as passes complete.
    pub fn status_updates(&self) -> watch::Receiver<Option<AppStatus>> {
        self.status.clone()
    }

    /// Passes that failed so far (each is retried at the next poll).
    pub fn errors(&self) -> u64 {
        self.errors.borrow().0
    }

    /// The last error a pass returned.
    pub fn last_error(&self) -> Option<String> {
        self.errors.borrow().1.clone()
    }

    /// What stops this controller.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Whether the loop has ended (stopped or aborted).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until the latest plan satisfies `done`; [`Error::Timeout`] after `timeout`, naming `what`
    /// and the last plan.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Plan) -> bool,
    ) -> Result<Arc<Plan>> {
        let mut rx = self.plans.clone();
        let wait = async {
            loop {
                if let Some(p) = rx.borrow_and_update().clone() {
                    if done(&p) {
                        return p;
                    }
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| {
            let last =
                self.plan().map(|p| format!("{:?} waiting on {:?}", p.phases, p.waiting)).unwrap_or_default();
            Error::Timeout { what: format!("{what} (last plan: {last})"), after: timeout }
        })
    }

    /// Waits for the loop to end (after a [`Stopper::signal`]).
    pub async fn join(self) {
        let _ = self.task.await;
    }

    /// Stops at the next safe point and waits for the loop to end (the providers keep their state).
    pub async fn stop(self) {
        self.stopper.signal();
        self.join().await;
    }
}

/// The controller's task state.
struct Loop {
    executor: Executor,
    desired: watch::Receiver<Desired>,
    plans: watch::Sender<Option<Arc<Plan>>>,
    status: watch::Sender<Option<AppStatus>>,
    errors: watch::Sender<(u64, Option<String>)>,
    poll: Duration,
}

impl Loop {
    async fn run(mut self, graceful: CancellationToken) {
        let mut memory = PlanMemory::default();
        let mut current = self.desired.borrow_and_update().clone();
        while !graceful.is_cancelled() {
            let latest = self.desired.borrow_and_update().clone();
            if latest != current {
                current = latest;
                memory = PlanMemory::default();
            }
            match self.executor.step(&current, &mut memory, &graceful).await {
                Ok(pass) => {
                    let busy = pass.applied > 0;
                    let stopped = pass.stopped;
                    let _ = self.status.send(Some(pass.status));
                    let _ = self.plans.send(Some(Arc::new(pass.plan)));
                    if stopped {
                        return;
                    }
                    if busy {
                        continue; // observe again right away
                    }
                }
                Err(e) => {
                    warn!(error = %e, "controller pass failed; retrying");
                    self.errors.send_modify(|(n, last)| {
                        *n += 1;
                        *last = Some(e.to_string());
                    });
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                changed = self.desired.changed() => {
                    if changed.is_err() {
                        return; // the Controller was dropped
                    }
                }
                _ = graceful.cancelled() => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
