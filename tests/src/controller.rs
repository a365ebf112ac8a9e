//! [`Controller`]: the deployer as a long-running service — one task that runs observe–plan–apply passes
//! for one app, forever, against whatever is desired now. Deploying is changing the desired release; old
//! versions are drained and reaped automatically by the same loop. Its latest plan is published so
//! callers can wait for a state ("v2 has everything", "v1 is gone").

use std::sync::Arc;
use std::time::Duration;

use pulse_deploy_core::rollout::{Desired, Executor, Plan, PlanMemory};
use pulse_deploy_core::{AppName, Release};
use tokio::sync::watch;

/// A running controller.
pub struct Controller {
    desired: watch::Sender<Desired>,
    plans: watch::Receiver<Option<Arc<Plan>>>,
    errors: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Controller {
    /// Starts controlling `app`, with no target yet (reconcile only), passing every `poll`.
    pub fn start(executor: Executor, app: AppName, poll: Duration) -> Controller {
        let (desired, mut desired_rx) = watch::channel(Desired { app, target: None });
        let (plans_tx, plans) = watch::channel(None);
        let (errors_tx, errors) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            let mut memory = PlanMemory::default();
            let mut current = desired_rx.borrow_and_update().clone();
            loop {
                let latest = desired_rx.borrow_and_update().clone();
                if latest != current {
                    current = latest;
                    memory = PlanMemory::default();
                }
                match executor.pass(&current, &mut memory).await {
                    Ok(plan) => {
                        let busy = !plan.actions.is_empty();
                        let _ = plans_tx.send(Some(Arc::new(plan)));
                        if busy {
                            continue; // observe again right away
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "controller pass failed; retrying");
                        errors_tx.send_modify(|n| *n += 1);
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = desired_rx.changed() => {}
                }
            }
        });
        Controller { desired, plans, errors, task }
    }

    /// Makes `release` the target: it is deployed, gets all new sessions, and every other version drains.
    pub fn deploy(&self, release: Release) {
        self.desired.send_modify(|d| d.target = Some(release));
    }

    /// The latest plan.
    pub fn plan(&self) -> Option<Arc<Plan>> {
        self.plans.borrow().clone()
    }

    /// Passes that failed so far.
    pub fn errors(&self) -> u64 {
        *self.errors.borrow()
    }

    /// Waits until the latest plan satisfies `done`, or `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Plan) -> bool,
    ) -> Result<Arc<Plan>, String> {
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
            format!(
                "timed out after {} waiting for {what}; last plan: {last}",
                humantime::format_duration(timeout)
            )
        })
    }

    /// Stops the loop (the providers keep their state).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
