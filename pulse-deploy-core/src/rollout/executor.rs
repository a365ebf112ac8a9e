//! [`Executor`]: observes, plans, applies the planned actions, and observes again until a [`Goal`] holds.
//!
//! The executor is thin on purpose: every decision is the planner's ([`super::plan()`]). It adds only
//! I/O — observing the providers, applying actions with retries of retryable errors — and the small
//! [`PlanMemory`]. Killing it at any point is safe: a new executor converges from what it observes.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

use super::events::{discard, EventSink, RolloutEvent, VersionSummary};
use super::observed::{InstanceReport, Observed, ObservedVersion};
use super::plan::{plan, Desired, Plan, PlanFailure, PlanMemory};
use super::status::AppStatus;
use super::{Action, RolloutPolicy};
use crate::clock::{Clock, TokioClock};
use crate::drain::{drain_all_bounded, in_order, verified, DrainClient, DEFAULT_DRAIN_CONCURRENCY};
use crate::{AppName, Error, InstanceId, Orchestrator, Release, Result, TrafficRouter, VersionId};

/// When [`Executor::deploy`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// The target has all new sessions and every other version has received the drain signal. Old
    /// versions are left draining; a later [`Goal::Settled`] run (or [`Executor::reconcile`]) reaps them.
    Shifted,
    /// Only the target is left: every old version drained (or passed its deadline) and was reaped.
    Settled,
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The version that has all new sessions.
    pub target: Option<VersionId>,
    /// Actions applied, in order (as text).
    pub actions: Vec<String>,
    /// Observe–plan–apply passes made.
    pub passes: u64,
    /// The run was stopped at a safe point (between actions) by its stop token before the goal held;
    /// running it again resumes.
    pub stopped: bool,
}

/// What one [`Executor::step`] did.
#[derive(Debug, Clone)]
pub struct Pass {
    /// The plan made from the snapshot.
    pub plan: Plan,
    /// The app's status in that snapshot.
    pub status: AppStatus,
    /// Actions applied (a prefix of `plan.actions`; shorter when stopped).
    pub applied: usize,
    /// The stop token fired before every planned action was applied.
    pub stopped: bool,
}

/// Runs rollouts against an orchestrator, a router and a drain client. Build it with [`Executor::builder`].
#[derive(Clone)]
pub struct Executor {
    orchestrator: Arc<dyn Orchestrator>,
    router: Arc<dyn TrafficRouter>,
    drain: Arc<dyn DrainClient>,
    clock: Arc<dyn Clock>,
    policy: RolloutPolicy,
    events: EventSink,
    run_timeout: Option<Duration>,
    stop: CancellationToken,
    drain_concurrency: NonZeroUsize,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("orchestrator", &self.orchestrator)
            .field("router", &self.router)
            .field("drain", &self.drain)
            .field("policy", &self.policy)
            .field("drain_concurrency", &self.drain_concurrency)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Executor`].
pub struct ExecutorBuilder {
    inner: Executor,
}

impl ExecutorBuilder {
    /// The rollout policy (default: [`RolloutPolicy::default`]).
    pub fn policy(mut self, policy: RolloutPolicy) -> Self {
        self.inner.policy = policy;
        self
    }
    /// The clock (default: [`TokioClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.inner.clock = clock;
        self
    }
    /// Where progress events go (default: nowhere; `tracing` logs are emitted regardless).
    pub fn events(mut self, sink: EventSink) -> Self {
        self.inner.events = sink;
        self
    }
    /// Gives up with [`Error::Timeout`] when a run takes longer (default: no limit).
    pub fn run_timeout(mut self, timeout: Duration) -> Self {
        self.inner.run_timeout = Some(timeout);
        self
    }
    /// Stops runs at the next safe point (between actions, or while waiting) once `token` is cancelled;
    /// the run then returns an [`Outcome`] with `stopped` set (default: never stopped).
    pub fn stop_on(mut self, token: CancellationToken) -> Self {
        self.inner.stop = token;
        self
    }
    /// At most `limit` drain-protocol calls in flight at once (default [`DEFAULT_DRAIN_CONCURRENCY`], 32):
    /// the status reads of an observation (one per live instance of every version) and the drain signals
    /// of a drain step each wait for a free slot. A [`super::Controller`] inherits it from its executor.
    /// Raise it for apps with thousands of instances and a drain client that holds the load; lower it
    /// when the instances sit behind a relay that limits concurrent requests.
    pub fn drain_concurrency(mut self, limit: NonZeroUsize) -> Self {
        self.inner.drain_concurrency = limit;
        self
    }
    /// The executor.
    pub fn build(mut self) -> Executor {
        let propagation = self.inner.router.capabilities().weight_propagation;
        let policy = &mut self.inner.policy;
        policy.drain_after_shift = policy.drain_after_shift.max(propagation);
        self.inner
    }
}

impl Executor {
    /// Starts building an executor over the given providers.
    pub fn builder(
        orchestrator: Arc<dyn Orchestrator>,
        router: Arc<dyn TrafficRouter>,
        drain: Arc<dyn DrainClient>,
    ) -> ExecutorBuilder {
        ExecutorBuilder {
            inner: Executor {
                orchestrator,
                router,
                drain,
                clock: Arc::new(TokioClock::new()),
                policy: RolloutPolicy::default(),
                events: discard(),
                run_timeout: None,
                stop: CancellationToken::new(),
                drain_concurrency: DEFAULT_DRAIN_CONCURRENCY,
            },
        }
    }

    /// The same executor, reporting events to `sink` instead.
    pub fn clone_with_events(&self, sink: EventSink) -> Executor {
        Executor { events: sink, ..self.clone() }
    }

    /// The policy in use.
    pub fn policy(&self) -> &RolloutPolicy {
        &self.policy
    }

    /// How many drain-protocol calls it has in flight at most (see [`ExecutorBuilder::drain_concurrency`]).
    pub fn drain_concurrency(&self) -> NonZeroUsize {
        self.drain_concurrency
    }

    /// Deploys `release` as the app's new version and runs until `goal` holds.
    ///
    /// Validates the release, the policy and the providers' capabilities before any provider call. If the
    /// new version does not become healthy within the health timeout it is rolled back and
    /// [`Error::RolledBack`] is returned. Safe to call again after a crash: it resumes.
    pub async fn deploy(&self, release: &Release, goal: Goal) -> Result<Outcome> {
        release.validate()?;
        self.check(release)?;
        let desired = Desired { app: release.app.clone(), target: Some(release.clone()) };
        let span = info_span!("rollout", app = %release.app, version = %release.version);
        self.run(desired, goal).instrument(span).await
    }

    /// Reconciles `app` without a new version: keeps the current primary, drains and reaps old versions,
    /// replaces crashed instances. With [`Goal::Settled`] it returns once only the primary is left.
    pub async fn reconcile(&self, app: &AppName, goal: Goal) -> Result<Outcome> {
        self.policy.validate()?;
        let desired = Desired { app: app.clone(), target: None };
        let span = info_span!("reconcile", app = %app);
        self.run(desired, goal).instrument(span).await
    }

    fn check(&self, release: &Release) -> Result<()> {
        self.policy.validate()?;
        let caps = self.router.capabilities();
        use crate::AffinityMode::*;
        let (cookie, key) = match release.affinity {
            Cookie => (true, false),
            Key => (false, true),
            CookieAndKey => (true, true),
        };
        if cookie && !caps.cookie_affinity || key && !caps.key_affinity {
            return Err(Error::invalid(
                "release.affinity",
                format!(
                    "the {} router cannot keep clients on their version by {:?}; choose an affinity mode it supports",
                    caps.provider, release.affinity
                ),
            ));
        }
        Ok(())
    }

    /// Takes one snapshot of `app`: orchestrator versions and router state (asked together), then the drain
    /// status of every live instance (asked concurrently, at most [`Executor::drain_concurrency`] at once).
    pub async fn observe(&self, app: &AppName) -> Result<Observed> {
        // The two reads are independent: asked together, a pass waits one provider round trip, not two.
        let (versions, routing) = futures::try_join!(
            self.retrying("observe versions", || self.orchestrator.versions(app)),
            self.retrying("observe routing", || self.router.routing(app)),
        )?;
        let at = self.clock.now();
        let calls: Vec<_> = versions
            .iter()
            .enumerate()
            .flat_map(|(n, v)| v.live_instances().map(move |i| (n, i)))
            .map(|(n, i)| self.report(n, i))
            .collect();
        let asked = in_order(calls, self.drain_concurrency).await;
        let mut reports = vec![BTreeMap::new(); versions.len()];
        for (n, id, report) in asked {
            reports[n].insert(id, report?);
        }
        let versions = versions
            .into_iter()
            .zip(reports)
            .map(|(state, reports)| ObservedVersion { state, reports })
            .collect();
        Ok(Observed { app: app.clone(), at, versions, routing })
    }

    /// One instance's drain status; a refused secret is a configuration error (the observation stops),
    /// anything else makes the instance unreachable for this snapshot.
    /// `version` is the instance's index in the observation, handed back with the report.
    async fn report(
        &self,
        version: usize,
        instance: &crate::Instance,
    ) -> (usize, InstanceId, Result<InstanceReport>) {
        let report = match verified::status(self.drain.as_ref(), instance).await {
            Ok(s) => Ok(InstanceReport::Status(s)),
            Err(e @ Error::Unauthorized { .. }) => Err(e),
            Err(e) => Ok(InstanceReport::Unreachable(e.to_string())),
        };
        (version, instance.id.clone(), report)
    }

    async fn run(&self, desired: Desired, goal: Goal) -> Result<Outcome> {
        let started = self.clock.now();
        let mut memory = PlanMemory::default();
        let mut outcome = Outcome { target: None, actions: Vec::new(), passes: 0, stopped: false };
        let mut last_summary: Vec<VersionSummary> = Vec::new();
        let mut last_waiting: Vec<String> = Vec::new();
        let mut last_actions: Vec<Action> = Vec::new();
        loop {
            if let Some(limit) = self.run_timeout {
                if self.clock.now().duration_since(started).unwrap_or_default() > limit {
                    return Err(Error::Timeout {
                        what: format!("rollout of app {}", desired.app),
                        after: limit,
                    });
                }
            }
            if self.stop.is_cancelled() {
                info!(passes = outcome.passes, "stopped at a safe point");
                outcome.stopped = true;
                return Ok(outcome);
            }
            outcome.passes += 1;
            let observed = self.observe(&desired.app).await?;
            memory.last_shift_at.get_or_insert(observed.at);
            Self::remember_statuses(&observed, &mut memory);
            let plan = plan(&desired, &observed, &memory, &self.policy);
            outcome.target = plan.target.clone();

            let summary = summarize(&observed, &plan);
            if summary != last_summary {
                self.emit(RolloutEvent::Observed { app: desired.app.clone(), versions: summary.clone() });
                last_summary = summary;
            }

            self.note_failure(&plan, &mut memory)?;

            if plan.actions.is_empty() {
                if let Some(err) = self.rolled_back(&desired, &observed, &plan, goal) {
                    return Err(err);
                }
                let reached = match goal {
                    Goal::Shifted => plan.shifted || plan.settled,
                    Goal::Settled => plan.settled,
                };
                if reached {
                    info!(target_version = ?plan.target, passes = outcome.passes, "goal reached");
                    self.emit(RolloutEvent::GoalReached { target: plan.target.clone() });
                    return Ok(outcome);
                }
                if plan.waiting != last_waiting {
                    self.emit(RolloutEvent::Waiting { reasons: plan.waiting.clone() });
                    last_waiting = plan.waiting.clone();
                }
                self.pause().await;
                continue;
            }

            // The same actions as last pass mean the providers are still catching up (a retire in
            // progress, instances starting): give them a poll interval instead of spinning.
            if plan.actions == last_actions {
                self.pause().await;
            }
            for action in &plan.actions {
                if self.stop.is_cancelled() {
                    break;
                }
                self.apply(&desired.app, action, &observed, &mut memory).await?;
                outcome.actions.push(action.to_string());
            }
            last_actions = plan.actions;
        }
    }

    /// One observe–plan–apply pass, for callers that drive the loop themselves (a controller that
    /// reconciles every minute, a test that interleaves passes with other events). `memory` carries over
    /// between passes; start with `PlanMemory::default()`.
    pub async fn pass(&self, desired: &Desired, memory: &mut PlanMemory) -> Result<Plan> {
        Ok(self.step(desired, memory, &CancellationToken::new()).await?.plan)
    }

    /// One observe–plan–apply pass that checks `stop` before each action (a safe point): once it is
    /// cancelled no further action starts. Returns the plan, the status of the snapshot and how far it got.
    pub async fn step(
        &self,
        desired: &Desired,
        memory: &mut PlanMemory,
        stop: &CancellationToken,
    ) -> Result<Pass> {
        if let Some(target) = &desired.target {
            target.validate()?;
            self.check(target)?;
        }
        let observed = self.observe(&desired.app).await?;
        memory.last_shift_at.get_or_insert(observed.at);
        Self::remember_statuses(&observed, memory);
        let plan = plan(desired, &observed, memory, &self.policy);
        self.note_failure(&plan, memory)?;
        let status = AppStatus::from_snapshot(&observed, &plan);
        let mut applied = 0;
        for action in &plan.actions {
            if stop.is_cancelled() || self.stop.is_cancelled() {
                break;
            }
            self.apply(&desired.app, action, &observed, memory).await?;
            applied += 1;
        }
        let stopped = applied < plan.actions.len();
        Ok(Pass { plan, status, applied, stopped })
    }

    /// The app's status now: one snapshot and what the planner makes of it (without a new target, so
    /// the current primary is the target). Reads only; applies nothing.
    pub async fn status(&self, app: &AppName) -> Result<AppStatus> {
        let observed = self.observe(app).await?;
        let desired = Desired { app: app.clone(), target: None };
        let plan = plan(&desired, &observed, &PlanMemory::default(), &self.policy);
        Ok(AppStatus::from_snapshot(&observed, &plan))
    }

    /// What a deploy of `release` would do next, from the current snapshot, without doing it.
    pub async fn preview(&self, release: &Release) -> Result<(Plan, AppStatus)> {
        release.validate()?;
        self.check(release)?;
        let observed = self.observe(&release.app).await?;
        let desired = Desired { app: release.app.clone(), target: Some(release.clone()) };
        let plan = plan(&desired, &observed, &PlanMemory::default(), &self.policy);
        let status = AppStatus::from_snapshot(&observed, &plan);
        Ok((plan, status))
    }

    /// Waits one poll interval, or less when the stop token fires.
    async fn pause(&self) {
        tokio::select! {
            _ = self.clock.sleep(self.policy.poll_interval) => {}
            _ = self.stop.cancelled() => {}
        }
    }

    /// Remembers the last status every instance answered (see [`PlanMemory::last_status`]), forgetting
    /// instances that are gone.
    fn remember_statuses(observed: &Observed, memory: &mut PlanMemory) {
        let live: std::collections::BTreeSet<_> =
            observed.versions.iter().flat_map(|v| v.live().map(|i| i.id.clone())).collect();
        memory.last_status.retain(|id, _| live.contains(id));
        for v in &observed.versions {
            for (id, report) in &v.reports {
                if let InstanceReport::Status(s) = report {
                    memory.last_status.insert(id.clone(), s.clone());
                }
            }
        }
    }

    /// Records a failure the planner detected: a conflict stops the run, an unhealthy version is rolled back.
    fn note_failure(&self, plan: &Plan, memory: &mut PlanMemory) -> Result<()> {
        match &plan.failure {
            Some(PlanFailure::Conflict { reason, .. }) => Err(Error::Conflict { message: reason.clone() }),
            Some(PlanFailure::Unhealthy { version, reason }) => {
                if memory.failed.insert(version.clone()) {
                    warn!(%version, %reason, "new version failed; rolling back");
                    self.emit(RolloutEvent::RollingBack { version: version.clone(), reason: reason.clone() });
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// After a rollback: the error to return once the goal's part of the rollback is done.
    fn rolled_back(&self, desired: &Desired, observed: &Observed, plan: &Plan, goal: Goal) -> Option<Error> {
        let target = desired.target.as_ref()?;
        if plan.target.as_ref() == Some(&target.version) {
            return None;
        }
        let gone = observed.version(&target.version).is_none();
        let done = match goal {
            Goal::Shifted => plan.shifted || gone,
            Goal::Settled => plan.settled,
        };
        done.then(|| Error::RolledBack {
            version: target.version.to_string(),
            reason: format!(
                "it did not become healthy within {}; {} keeps all new sessions",
                humantime::format_duration(self.policy.health_timeout),
                plan.target.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "no version".into())
            ),
        })
    }

    async fn apply(
        &self,
        app: &AppName,
        action: &Action,
        observed: &Observed,
        memory: &mut PlanMemory,
    ) -> Result<()> {
        let text = action.to_string();
        let span = info_span!("step", step = action.kind(), version = ?action.version().map(|v| v.as_str()));
        async {
            info!(action = %text, "applying");
            self.emit(RolloutEvent::ActionStarted { action: text.clone() });
            let started = self.clock.now();
            match action {
                Action::Attach(route) => self.retrying(&text, || self.router.attach(route)).await?,
                Action::Deploy(release) => self.retrying(&text, || self.orchestrator.deploy(release)).await?,
                Action::SetWeights(weights) => {
                    let shifts = gains_weight(observed, weights);
                    self.retrying(&text, || self.router.set_weights(app, weights)).await?;
                    if shifts {
                        memory.last_shift_at = Some(self.clock.now());
                    }
                    self.emit(RolloutEvent::WeightsChanged { weights: weights.clone() });
                }
                Action::Drain { version, deadline } => self.drain(observed, version, *deadline).await?,
                Action::Detach(version) => self.retrying(&text, || self.router.detach(app, version)).await?,
                Action::Retire(version) => {
                    self.retrying(&text, || self.orchestrator.retire(app, version)).await?;
                    self.emit(RolloutEvent::Reaped { version: version.clone() });
                }
            }
            let took = self.clock.now().duration_since(started).unwrap_or_default();
            self.emit(RolloutEvent::ActionSucceeded { action: text, took });
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Sends the drain signal to every live instance that has not acknowledged it. Instances that cannot
    /// be reached now are tried again on the next pass; a refused secret stops the rollout.
    async fn drain(&self, observed: &Observed, version: &VersionId, deadline: Duration) -> Result<()> {
        let Some(v) = observed.version(version) else { return Ok(()) };
        let pending: Vec<_> =
            v.live().filter(|i| !v.status(&i.id).is_some_and(|s| s.state.is_draining())).cloned().collect();
        let report = drain_all_bounded(self.drain.as_ref(), &pending, deadline, self.drain_concurrency).await;
        for ack in &report.acks {
            match &ack.result {
                Ok(status) => {
                    debug!(instance = %ack.instance, state = ?status.state, sessions = status.active_sessions, "drain acknowledged")
                }
                Err(e @ Error::Unauthorized { .. }) => {
                    return Err(Error::Unauthorized {
                        what: e.to_string(),
                        message: "the drain secret was refused".into(),
                    })
                }
                Err(e) => {
                    warn!(instance = %ack.instance, error = %e, "drain signal not delivered; will retry")
                }
            }
        }
        self.emit(RolloutEvent::DrainSent {
            version: version.clone(),
            acknowledged: report.acknowledged(),
            of: report.acks.len(),
        });
        Ok(())
    }

    /// Runs `call`, retrying retryable errors with backoff as the policy says.
    async fn retrying<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < self.policy.retry.attempts => {
                    let backoff = self.policy.retry.backoff(attempt);
                    warn!(what, attempt, error = %e, backoff_ms = backoff.as_millis() as u64, "retrying");
                    self.emit(RolloutEvent::ActionRetried {
                        action: what.to_owned(),
                        attempt,
                        error: e.to_string(),
                        backoff,
                    });
                    self.clock.sleep(backoff).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn emit(&self, event: RolloutEvent) {
        (self.events)(&event);
    }
}

/// Whether a weight change gives some version more weight than it had (a shift step): bake time restarts.
fn gains_weight(observed: &Observed, weights: &crate::Weights) -> bool {
    weights.iter().any(|(v, w)| w > observed.weight(v))
}

fn summarize(observed: &Observed, plan: &Plan) -> Vec<VersionSummary> {
    let mut rows: BTreeMap<VersionId, VersionSummary> = BTreeMap::new();
    for v in &observed.versions {
        rows.insert(
            v.id().clone(),
            VersionSummary {
                version: v.id().clone(),
                phase: plan.phases.get(v.id()).copied().unwrap_or(crate::VersionPhase::Starting),
                weight: observed.weight(v.id()),
                instances: (v.live().count(), v.state.release.replicas),
                healthy: observed.healthy_instances(v),
                sessions: v.known_sessions(),
            },
        );
    }
    rows.into_values().collect()
}

#[cfg(test)]
#[path = "executor_tests.rs"]
mod tests;

impl std::fmt::Debug for ExecutorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorBuilder").finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "concurrency_tests.rs"]
mod concurrency_tests;
