//! [`Faulty`]: a wrapper that injects failures and latency into any [`Orchestrator`], [`TrafficRouter`] or
//! [`DrainClient`], so the engine's error paths are tested without editing the provider it wraps.
//!
//! Injected errors are [`Error::Provider`] with provider `"fault"` and the chosen retryability. A fault is
//! injected either before the call reaches the provider (the request was lost) or after it (the provider
//! applied the call but the answer was lost — the case that proves an engine's calls are idempotent).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use pulse_deploy_core::memory::{Faulty, InMemoryCluster};
//! use pulse_deploy_core::{AppName, Orchestrator};
//!
//! let cluster = InMemoryCluster::new();
//! let orchestrator = Faulty::builder(cluster.orchestrator())
//!     .fail_nth_call(1, true) // the first call fails with a retryable error
//!     .build()?;
//! let app = AppName::new("shop")?;
//! assert!(orchestrator.versions(&app).await.unwrap_err().is_retryable());
//! assert!(orchestrator.versions(&app).await?.is_empty());
//! assert_eq!(orchestrator.calls(), 2);
//! # Ok::<(), pulse_deploy_core::Error>(())
//! # }).unwrap();
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::drain::{DrainClient, InstanceStatus};
use crate::{
    AppName, Error, Instance, Orchestrator, OrchestratorCapabilities, Release, Result, RouterCapabilities,
    RoutingState, TrafficRouter, VersionId, VersionRoute, VersionState, Weights,
};

/// The trait methods a fault can target by name (every method but `capabilities`).
pub const FAULTY_METHODS: &[&str] =
    &["deploy", "versions", "retire", "attach", "set_weights", "detach", "routing", "drain", "status"];

/// One injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fault {
    retryable: bool,
    /// Call the provider first, then fail (the answer was lost).
    after_call: bool,
}

#[derive(Debug)]
struct FaultSchedule {
    nth: BTreeMap<usize, Fault>,
    matching: Vec<(&'static str, usize, Fault)>,
    probability: Option<(f64, StdRng, Fault)>,
    /// Calls after this many fail without reaching the provider (the caller "crashed").
    crash_after: Option<usize>,
    latency: Duration,
    calls: usize,
    calls_by_method: BTreeMap<&'static str, usize>,
    injected: usize,
    /// Calls started and not yet finished (or dropped), and the most there ever were at once.
    in_flight: usize,
    peak_in_flight: usize,
}

impl FaultSchedule {
    /// Counts a call and decides whether it fails.
    fn on_call(&mut self, method: &'static str) -> (usize, Option<Fault>) {
        self.calls += 1;
        *self.calls_by_method.entry(method).or_default() += 1;
        let n = self.calls;
        if self.crash_after.is_some_and(|limit| n > limit) {
            self.injected += 1;
            return (n, Some(Fault { retryable: false, after_call: false }));
        }
        let mut fault = self.nth.remove(&n);
        if fault.is_none() {
            if let Some(entry) = self.matching.iter_mut().find(|(m, left, _)| *m == method && *left > 0) {
                entry.1 -= 1;
                fault = Some(entry.2);
            }
        }
        if fault.is_none() {
            if let Some((p, rng, f)) = &mut self.probability {
                if rng.gen_bool(*p) {
                    fault = Some(*f);
                }
            }
        }
        if fault.is_some() {
            self.injected += 1;
        }
        (n, fault)
    }
}

/// Wraps a provider and injects faults and latency into its calls. Clones share the fault plan and
/// the call counters. Build one with [`Faulty::builder`].
pub struct Faulty<T: ?Sized> {
    inner: Arc<T>,
    plan: Arc<Mutex<FaultSchedule>>,
}

impl<T: ?Sized> Clone for Faulty<T> {
    fn clone(&self) -> Self {
        Faulty { inner: self.inner.clone(), plan: self.plan.clone() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Faulty<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = self.plan();
        f.debug_struct("Faulty")
            .field("inner", &self.inner)
            .field("calls", &plan.calls)
            .field("injected", &plan.injected)
            .finish()
    }
}

/// Builds a [`Faulty`] wrapper: which calls fail, how, and how slow every call is.
pub struct FaultyBuilder<T: ?Sized> {
    inner: Arc<T>,
    plan: FaultSchedule,
    error: Option<Error>,
}

impl<T: ?Sized> FaultyBuilder<T> {
    /// The `n`th call (counting from 1, over every method) fails before reaching the provider.
    pub fn fail_nth_call(mut self, n: usize, retryable: bool) -> Self {
        if n == 0 {
            self.error.get_or_insert(Error::invalid("fail_nth_call", "calls are counted from 1"));
        }
        self.plan.nth.insert(n, Fault { retryable, after_call: false });
        self
    }

    /// The `n`th call reaches the provider and takes effect, but its answer is lost: the caller gets an
    /// error. An idempotent caller retries and converges.
    pub fn lose_nth_response(mut self, n: usize, retryable: bool) -> Self {
        if n == 0 {
            self.error.get_or_insert(Error::invalid("lose_nth_response", "calls are counted from 1"));
        }
        self.plan.nth.insert(n, Fault { retryable, after_call: true });
        self
    }

    /// The next `count` calls of `method` (e.g. `"set_weights"`, see [`FAULTY_METHODS`]) fail before
    /// reaching the provider.
    pub fn fail_calls_matching(mut self, method: &str, count: usize, retryable: bool) -> Self {
        match FAULTY_METHODS.iter().find(|m| **m == method) {
            Some(m) => self.plan.matching.push((m, count, Fault { retryable, after_call: false })),
            None => {
                self.error.get_or_insert(Error::invalid(
                    "fail_calls_matching",
                    format!("`{method}` is not a provider method; use one of {}", FAULTY_METHODS.join(", ")),
                ));
            }
        }
        self
    }

    /// Every call fails with probability `p` (0 to 1), drawn from a generator seeded with `seed`.
    pub fn fail_with_probability(mut self, p: f64, seed: u64, retryable: bool) -> Self {
        if !(0.0..=1.0).contains(&p) {
            self.error.get_or_insert(Error::invalid(
                "fail_with_probability",
                format!("{p} is not a probability; use a number from 0 to 1"),
            ));
        }
        self.plan.probability =
            Some((p.clamp(0.0, 1.0), StdRng::seed_from_u64(seed), Fault { retryable, after_call: false }));
        self
    }

    /// The first `n` calls go through; every later call fails with a non-retryable error without reaching
    /// the provider, until [`Faulty::heal`]. An executor stops at the first fatal error, so this models the
    /// deployer crashing between its `n`th and `n+1`th action; a new executor over the same providers is
    /// the restarted deployer.
    pub fn crash_after(mut self, n: usize) -> Self {
        self.plan.crash_after = Some(n);
        self
    }

    /// Every call waits `d` (with `tokio::time::sleep`, so virtual under paused time) before it runs.
    pub fn latency(mut self, d: Duration) -> Self {
        self.plan.latency = d;
        self
    }

    /// The wrapper, or an error naming the first invalid setting.
    pub fn build(self) -> Result<Faulty<T>> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(Faulty { inner: self.inner, plan: Arc::new(Mutex::new(self.plan)) }),
        }
    }
}

impl<T: ?Sized> Faulty<T> {
    /// Starts wrapping `inner` (e.g. `cluster.orchestrator()`, or any `Arc<dyn TrafficRouter>`).
    pub fn builder(inner: Arc<T>) -> FaultyBuilder<T> {
        FaultyBuilder {
            inner,
            plan: FaultSchedule {
                nth: BTreeMap::new(),
                matching: Vec::new(),
                probability: None,
                crash_after: None,
                latency: Duration::ZERO,
                calls: 0,
                calls_by_method: BTreeMap::new(),
                injected: 0,
                in_flight: 0,
                peak_in_flight: 0,
            },
            error: None,
        }
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &Arc<T> {
        &self.inner
    }

    /// How many calls were made through the wrapper (failed ones included; `capabilities` not counted).
    pub fn calls(&self) -> usize {
        self.plan().calls
    }

    /// How many calls of `method` were made through the wrapper.
    pub fn calls_to(&self, method: &str) -> usize {
        self.plan().calls_by_method.get(method).copied().unwrap_or(0)
    }

    /// How many faults were injected so far.
    pub fn injected_faults(&self) -> usize {
        self.plan().injected
    }

    /// The most calls that were in flight through the wrapper at once (a call is in flight from its start,
    /// latency included, until it returns or is dropped). Shows whether a caller bounds its concurrency.
    pub fn peak_in_flight(&self) -> usize {
        self.plan().peak_in_flight
    }

    /// Starts [`Faulty::peak_in_flight`] again from the calls in flight now (to measure one step).
    pub fn reset_peak_in_flight(&self) {
        let mut plan = self.plan();
        plan.peak_in_flight = plan.in_flight;
    }

    /// Stops injecting faults (pending ones are forgotten, a crash is over); latency stays.
    pub fn heal(&self) {
        let mut plan = self.plan();
        plan.nth.clear();
        plan.matching.clear();
        plan.probability = None;
        plan.crash_after = None;
    }

    fn plan(&self) -> MutexGuard<'_, FaultSchedule> {
        self.plan.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn call<R, F>(&self, method: &'static str, call: F) -> Result<R>
    where
        F: Future<Output = Result<R>> + Send,
    {
        let ((n, fault), latency) = {
            let mut plan = self.plan();
            plan.in_flight += 1;
            plan.peak_in_flight = plan.peak_in_flight.max(plan.in_flight);
            (plan.on_call(method), plan.latency)
        };
        let _in_flight = InFlight(&self.plan);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let Some(fault) = fault else {
            return call.await;
        };
        let outcome = if fault.after_call {
            let _ = call.await;
            "the provider applied it but the answer was lost"
        } else {
            "it never reached the provider"
        };
        tracing::debug!(method, call = n, retryable = fault.retryable, "injecting a fault");
        Err(Error::provider(
            "fault",
            format!("injected failure of {method} (call #{n}): {outcome}"),
            fault.retryable,
        ))
    }
}

/// Counts a call out of flight when it returns or is dropped (a cancelled caller).
struct InFlight<'a>(&'a Mutex<FaultSchedule>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut plan = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        plan.in_flight -= 1;
    }
}

#[async_trait]
impl<T: Orchestrator + ?Sized> Orchestrator for Faulty<T> {
    fn capabilities(&self) -> OrchestratorCapabilities {
        self.inner.capabilities()
    }

    async fn deploy(&self, release: &Release) -> Result<()> {
        self.call("deploy", self.inner.deploy(release)).await
    }

    async fn versions(&self, app: &AppName) -> Result<Vec<VersionState>> {
        self.call("versions", self.inner.versions(app)).await
    }

    async fn retire(&self, app: &AppName, version: &VersionId) -> Result<()> {
        self.call("retire", self.inner.retire(app, version)).await
    }
}

#[async_trait]
impl<T: TrafficRouter + ?Sized> TrafficRouter for Faulty<T> {
    fn capabilities(&self) -> RouterCapabilities {
        self.inner.capabilities()
    }

    async fn attach(&self, route: &VersionRoute) -> Result<()> {
        self.call("attach", self.inner.attach(route)).await
    }

    async fn set_weights(&self, app: &AppName, weights: &Weights) -> Result<()> {
        self.call("set_weights", self.inner.set_weights(app, weights)).await
    }

    async fn detach(&self, app: &AppName, version: &VersionId) -> Result<()> {
        self.call("detach", self.inner.detach(app, version)).await
    }

    async fn routing(&self, app: &AppName) -> Result<RoutingState> {
        self.call("routing", self.inner.routing(app)).await
    }
}

#[async_trait]
impl<T: DrainClient + ?Sized> DrainClient for Faulty<T> {
    async fn drain(&self, instance: &Instance, deadline: Duration) -> Result<InstanceStatus> {
        self.call("drain", self.inner.drain(instance, deadline)).await
    }

    async fn status(&self, instance: &Instance) -> Result<InstanceStatus> {
        self.call("status", self.inner.status(instance)).await
    }

    async fn undrain(&self, instance: &Instance) -> Result<InstanceStatus> {
        self.call("undrain", self.inner.undrain(instance)).await
    }
}

impl<T: ?Sized> std::fmt::Debug for FaultyBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyBuilder").finish_non_exhaustive()
    }
}
