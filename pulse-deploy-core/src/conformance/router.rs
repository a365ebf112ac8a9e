//! The router suite: checks every [`TrafficRouter`] must pass, and the [`RouterHarness`] a provider
//! supplies: real upstreams that answer with their version and instance, and a client that sends requests
//! through the router's public side.
//!
//! Checks that send requests are skipped when the harness cannot send any
//! ([`RouterHarness::can_send_requests`], e.g. a cloud API emulator without a data plane); checks of
//! optional features are skipped when the router's [`crate::RouterCapabilities`] say it lacks them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::report::{CheckFailure, CheckResult, ConformanceReport, Verdict};
use super::suite::{run_suite, suite, CheckFuture};
use super::wait::{ensure, eventually};
use crate::affinity::ADMIN_PATH_PREFIX;
use crate::{
    AffinityMode, AppName, Error, Health, InstanceId, Result, RoutingState, Target, TrafficRouter, VersionId,
    VersionRoute, Weights,
};

/// How a request carries its version affinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AffinityCarrier {
    /// The version cookie ([`crate::affinity::VERSION_COOKIE`]).
    Cookie,
    /// The per-tab key, as header ([`crate::affinity::VERSION_HEADER`]) or query parameter.
    Key,
}

/// A request the suite asks the harness to send through the router's public side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// The path, e.g. `/` or `/_pulse/admin/drain`.
    pub path: String,
    /// The version affinity the client carries, and how.
    pub affinity: Option<(AffinityCarrier, VersionId)>,
    /// The instance the client is pinned to ([`crate::affinity::INSTANCE_COOKIE`]).
    pub pinned_instance: Option<InstanceId>,
}

impl Probe {
    /// A plain request for `/` without affinity.
    pub fn new() -> Self {
        Probe { path: "/".into(), affinity: None, pinned_instance: None }
    }

    /// The same request for another path.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The same request carrying the affinity of `version`.
    pub fn affinity(mut self, carrier: AffinityCarrier, version: VersionId) -> Self {
        self.affinity = Some((carrier, version));
        self
    }

    /// The same request pinned to `instance`.
    pub fn pinned_to(mut self, instance: InstanceId) -> Self {
        self.pinned_instance = Some(instance);
        self
    }
}

impl Default for Probe {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a request landed: the upstream that answered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Landing {
    /// The version that answered.
    pub version: VersionId,
    /// The instance that answered.
    pub instance: InstanceId,
}

/// The router's answer to a [`Probe`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// An upstream answered.
    Landed(Landing),
    /// The router answered itself with this HTTP status (404, 503, ...) without reaching an upstream.
    Refused {
        /// The HTTP status.
        status: u16,
    },
}

/// What the router suite needs from a provider's test setup beyond the [`TrafficRouter`] trait.
#[async_trait]
pub trait RouterHarness: Send + Sync {
    /// A fresh app name no other test uses (e.g. with a random suffix).
    fn unique_app(&self) -> AppName;

    /// Starts `replicas` upstreams of `app` at `version` that answer every request (any path) with their
    /// version and instance and pass their health check, and returns them as targets.
    async fn spawn_version(&self, app: &AppName, version: &VersionId, replicas: u32) -> Result<Vec<Target>>;

    /// The route attached for a spawned version (override for another health path).
    fn route(&self, app: &AppName, version: &VersionId, targets: Vec<Target>) -> VersionRoute {
        let mut targets = targets;
        targets.sort();
        VersionRoute {
            app: app.clone(),
            version: version.clone(),
            targets,
            health_path: crate::drain::wire::DEFAULT_HEALTH_PATH.into(),
            affinity: AffinityMode::CookieAndKey,
        }
    }

    /// Whether [`RouterHarness::request`] can send requests through the router.
    fn can_send_requests(&self) -> bool {
        true
    }

    /// Sends `probe` through the router's public side for `app` and reports who answered.
    async fn request(&self, app: &AppName, probe: &Probe) -> Result<Reply>;

    /// Whether [`RouterHarness::set_healthy`] can make an upstream fail its health check (an API emulator
    /// whose targets are always healthy cannot).
    fn can_control_health(&self) -> bool {
        true
    }

    /// Makes an upstream fail (`false`) or pass (`true`) its health check; it keeps answering requests.
    async fn set_healthy(&self, target: &Target, healthy: bool) -> Result<()>;

    /// Stops every upstream spawned for `app` (called after the router no longer routes to them).
    async fn cleanup(&self, app: &AppName) -> Result<()>;

    /// How long any eventual expectation may take (health checks, configuration propagation).
    fn timeout(&self) -> Duration;

    /// How often eventual expectations are polled.
    fn poll_interval(&self) -> Duration {
        Duration::from_millis(100)
    }
}

/// The function of one router check.
pub type RouterCheckFn =
    for<'a> fn(&'a (dyn TrafficRouter + 'a), &'a (dyn RouterHarness + 'a)) -> CheckFuture<'a>;

suite!(
    /// The checks of the router suite, in the order [`run_router_suite`] runs them
    /// (the one list of them: names, order and functions).
    ROUTER_CHECKS: RouterCheckFn;
    attach_starts_at_weight_zero,
    attach_updates_targets,
    health_is_reported_at_weight_zero,
    weights_apply_atomically,
    invalid_weights_are_refused,
    too_many_weighted_versions_are_refused,
    affinity_to_weight_zero_version_is_honoured,
    affinity_to_detached_version_falls_through,
    instance_pinning_follows_health,
    detach_with_weight_is_refused,
    detach_is_idempotent,
    admin_paths_are_not_routed,
    apps_are_isolated,
);

/// Runs every router check and reports which ran and which passed. Checks turned off by a capability or
/// by the harness are reported as skipped.
pub async fn run_router_suite(router: &dyn TrafficRouter, harness: &dyn RouterHarness) -> ConformanceReport {
    let provider = router.capabilities().provider;
    run_suite("router", provider, ROUTER_CHECKS, |run| run(router, harness)).await
}

fn v(id: &str) -> VersionId {
    VersionId::new(id).expect("a valid version id")
}

fn weights(pairs: &[(&VersionId, u32)]) -> Result<Weights> {
    Weights::new(pairs.iter().map(|(v, w)| ((*v).clone(), *w)).collect::<BTreeMap<_, _>>())
}

fn requests_skipped() -> CheckResult {
    Ok(Verdict::Skipped("the harness cannot send requests through this router".into()))
}

/// Spawns `version` with `replicas` upstreams and attaches it; returns its targets.
async fn spawn_and_attach(
    router: &dyn TrafficRouter,
    harness: &dyn RouterHarness,
    app: &AppName,
    version: &VersionId,
    replicas: u32,
) -> Result<Vec<Target>, CheckFailure> {
    let targets = harness.spawn_version(app, version, replicas).await?;
    ensure!(
        targets.len() == replicas as usize,
        "the harness spawned {} upstreams for {version}, asked for {replicas}",
        targets.len()
    );
    router.attach(&harness.route(app, version, targets.clone())).await?;
    Ok(targets)
}

/// Waits until every target of `version` is reported healthy.
async fn wait_healthy(
    router: &dyn TrafficRouter,
    harness: &dyn RouterHarness,
    app: &AppName,
    version: &VersionId,
) -> Result<RoutingState, CheckFailure> {
    eventually(
        &format!("every target of {app}/{version} to be healthy"),
        harness.timeout(),
        harness.poll_interval(),
        || async {
            let routing = router.routing(app).await?;
            Ok(match routing.versions.get(version) {
                Some(r) if !r.targets.is_empty() && r.targets.iter().all(|t| t.health == Health::Healthy) => {
                    Ok(routing)
                }
                Some(r) => Err(format!("targets {:?}", r.targets)),
                None => Err("the version is not attached".into()),
            })
        },
    )
    .await
}

/// Waits until `n` consecutive requests of `probe` satisfy `accept`.
async fn wait_landing(
    harness: &dyn RouterHarness,
    app: &AppName,
    probe: &Probe,
    what: &str,
    n: usize,
    accept: impl Fn(&Reply) -> bool,
) -> Result<Reply, CheckFailure> {
    let accept = &accept;
    eventually(what, harness.timeout(), harness.poll_interval(), || async move {
        let mut last = None;
        for _ in 0..n {
            let reply = harness.request(app, probe).await?;
            if !accept(&reply) {
                return Ok(Err(format!("{probe:?} got {reply:?}")));
            }
            last = Some(reply);
        }
        Ok(Ok(last.expect("n > 0")))
    })
    .await
}

fn landed_on(version: &VersionId) -> impl Fn(&Reply) -> bool + '_ {
    move |r| matches!(r, Reply::Landed(l) if &l.version == version)
}

/// Affinity carriers this router supports.
fn carriers(router: &dyn TrafficRouter) -> Vec<AffinityCarrier> {
    let caps = router.capabilities();
    let mut out = Vec::new();
    if caps.cookie_affinity {
        out.push(AffinityCarrier::Cookie);
    }
    if caps.key_affinity {
        out.push(AffinityCarrier::Key);
    }
    out
}

/// Takes the router out of `app` (weights emptied, every version detached) and stops its upstreams.
async fn clean(router: &dyn TrafficRouter, harness: &dyn RouterHarness, app: &AppName) -> Result<()> {
    crate::teardown::tear_down(None, Some(router), app, harness.timeout()).await?;
    harness.cleanup(app).await
}

/// Runs `body` in a fresh app and cleans up afterwards, whatever the outcome.
async fn in_fresh_app<'a, F, Fut>(
    router: &'a dyn TrafficRouter,
    harness: &'a dyn RouterHarness,
    body: F,
) -> CheckResult
where
    F: FnOnce(AppName) -> Fut,
    Fut: std::future::Future<Output = CheckResult> + 'a,
{
    let app = harness.unique_app();
    let result = body(app.clone()).await;
    let cleanup = clean(router, harness, &app).await;
    super::report::after_cleanup(result, cleanup)
}

/// A newly attached version is listed with its targets at weight 0; attaching again changes nothing.
pub async fn attach_starts_at_weight_zero(
    router: &dyn TrafficRouter,
    harness: &dyn RouterHarness,
) -> CheckResult {
    in_fresh_app(router, harness, |app| async move {
        let version = v("v1");
        let mut targets = spawn_and_attach(router, harness, &app, &version, 2).await?;
        targets.sort();
        router.attach(&harness.route(&app, &version, targets.clone())).await?;
        let routing = router.routing(&app).await?;
        ensure!(
            routing.weights.get(&version) == 0,
            "a newly attached version must have weight 0, got {}",
            routing.weights
        );
        ensure!(
            routing.versions.len() == 1,
            "attaching twice must list the version once: {:?}",
            routing.versions.keys()
        );
        let listed: Vec<Target> =
            routing.versions[&version].targets.iter().map(|t| t.target.clone()).collect();
        ensure!(listed == targets, "attached targets {targets:?}, routing lists {listed:?}");
        Ok(Verdict::Passed)
    })
    .await
}

/// Attaching an attached version again replaces its targets.
pub async fn attach_updates_targets(router: &dyn TrafficRouter, harness: &dyn RouterHarness) -> CheckResult {
    in_fresh_app(router, harness, |app| async move {
        let version = v("v1");
        let mut targets = spawn_and_attach(router, harness, &app, &version, 2).await?;
        targets.sort();
        let one = vec![targets[0].clone()];
        router.attach(&harness.route(&app, &version, one.clone())).await?;
        let listed: Vec<Target> =
            router.routing(&app).await?.versions[&version].targets.iter().map(|t| t.target.clone()).collect();
        ensure!(listed == one, "after re-attaching with {one:?}, routing lists {listed:?}");
        router.attach(&harness.route(&app, &version, targets.clone())).await?;
        let listed: Vec<Target> =
            router.routing(&app).await?.versions[&version].targets.iter().map(|t| t.target.clone()).collect();
        ensure!(listed == targets, "after re-attaching with {targets:?}, routing lists {listed:?}");
        Ok(Verdict::Passed)
    })
    .await
}

/// Targets of a version at weight 0 are health-checked: they become healthy, a failing one is reported
/// unhealthy, and healthy again once it recovers (the last two if the harness can make one fail).
pub async fn health_is_reported_at_weight_zero(
    router: &dyn TrafficRouter,
    harness: &dyn RouterHarness,
) -> CheckResult {
    if !router.capabilities().health_checks_at_zero_weight {
        return Ok(Verdict::Skipped("capability health_checks_at_zero_weight is off".into()));
    }
    in_fresh_app(router, harness, |app| async move {
        let version = v("v1");
        let targets = spawn_and_attach(router, harness, &app, &version, 2).await?;
        wait_healthy(router, harness, &app, &version).await?;
        if !harness.can_control_health() {
            return Ok(Verdict::Passed);
        }
        let sick = &targets[0];
        harness.set_healthy(sick, false).await?;
        eventually(
            &format!("{} to be reported unhealthy", sick.instance),
            harness.timeout(),
            harness.poll_interval(),
            || async {
                let routing = router.routing(&app).await?;
                let health: Vec<(Target, Health)> = routing
                    .versions
                    .get(&version)
                    .map(|r| r.targets.iter().map(|t| (t.target.clone(), t.health)).collect())
                    .unwrap_or_default();
                let ok = health.iter().all(|(t, h)| {
                    if t == sick {
                        *h == Health::Unhealthy
                    } else {
                        *h == Health::Healthy
                    }
                });
                Ok(if ok && health.len() == 2 { Ok(()) } else { Err(format!("{health:?}")) })
            },
        )
        .await?;
        harness.set_healthy(sick, true).await?;
        wait_healthy(router, harness, &app, &version).await?;
        ensure!(
            router.routing(&app).await?.weights.get(&version) == 0,
            "health checks must not change weights"
        );
        Ok(Verdict::Passed)
    })
    .await
}

/// `set_weights` replaces every weight at once (versions not named get 0), and new requests follow.
pub async fn weights_apply_atomically(
    router: &dyn TrafficRouter,
    harness: &dyn RouterHarness,
) -> CheckResult {
    in_fresh_app(router, harness, |app| async move {
        let (v1, v2) = (v("v1"), v("v2"));
        spawn_and_attach(router, harness, &app, &v1, 1).await?;
        spawn_and_attach(router, harness, &app, &v2, 1).await?;
        wait_healthy(router, harness, &app, &v1).await?;
        wait_healthy(router, harness, &app, &v2).await?;
        router.set_weights(&app, &Weights::all_to(v1.clone())).await?;
        let all_v2 = Weights::all_to(v2.clone());
        router.set_weights(&app, &all_v2).await?;
        let routing = router.routing(&app).await?;
        ensure!(routing.weights == all_v2, "after set_weights({all_v2}) routing reports {}", routing.weights);
        ensure!(routing.versions.contains_key(&v1), "setting v1's weight to 0 must keep it attached");
        router.set_weights(&app, &all_v2).await?;
        ensure!(router.routing(&app).await?.weights == all_v2, "set_weights must be idempotent");
        if !harness.can_send_requests() {
            return Ok(Verdict::Passed);
        }
        wait_landing(harness, &app, &Probe::new(), "new requests to land on v2 only", 10, landed_on(&v2))
            .await?;
        router.set_weights(&app, &weights(&[(&v1, 50), (&v2, 50)])?).await?;
        eventually(
            "a 50/50 split to reach both versions",
            harness.timeout(),
            harness.poll_interval(),
            || async {
                let mut seen = BTreeSet::new();
                for _ in 0..40 {
                    if let Reply::Landed(l) = harness.request(&app, &Probe::new()).await? {
                        seen.insert(l.version);
                    }
                }
                Ok(if seen.len() == 2 { Ok(()) } else { Err(format!("40 requests reached only {seen:?}")) })
            },
        )
        .await?;
        Ok(Verdict::Passed)
    })
    .await
}

/// Weight for a version that is not attached is refused with a non-retryable error, and the weights
/// stay as they were.
pub async fn invalid_weights_are_refused(
    router: &dyn TrafficRouter,
    harness: &dyn RouterHarness,
) -> CheckResult {
    in_fresh_app(router, harness, |app| async move {
        let v1 = v("v1");
        spawn_and_attach(router, harness, &app, &v1, 1).await?;
        wait_healthy(router, harness, &app, &v1).await?;
        let good = Weights::all_to(v1.clone());
        router.set_weights(&app, &good).await?;
        let bad = weights(&[(&v1, 50), (&v("ghost"), 50)])?;
        match router.set_weights(&app, &bad).await {
            Err(e @ (Error::Conflict { .. } | Error::InvalidInput { .. })) => {
                ensure!(e.to_string().contains("ghost"), "the error must name the unattached version: {e}");
            }
            other => {
                return Err(CheckFailure(format!(
                    "weight for an unattached version must fail with Conflict or InvalidInput, got {other:?}"
                )))
            }
        }
        let now = router.routing(&app).await?.weights;
        ensure!(now == good, "a refused set_weights must change nothing: weights are now {now}");
        Ok(Verdict::Passed)
    })
    .await
}

/// Weight for more versions than `max_weighted_versions` is refused, and the weights stay as they were.
pub async fn too_many_weighted_versions_are_refused(
    router: &dyn TrafficRouter,
    harness: &dyn RouterHarness,
) -> CheckResult {
    let caps = router.capabilities();
    let n = caps.max_weighted_versions + 1;
    if n > caps.max_attached_versions || n > 100 {
        return Ok(Verdict::Skipped(format!(
            "max_weighted_versions ({}) is not below the attach limit",
            caps.max_weighted_versions
        )));
    }
    in_fresh_app(router, harness, |app| async move {
        let versions: Vec<VersionId> = (1..=n).map(|i| v(&format!("v{i}"))).collect();
        for version in &versions {
            spawn_and_attach(router, harness, &app, version, 1).await?;
        }
        wait_healthy(router, harness, &app, &versions[0]).await?;
        let good = Weights::all_to(versions[0].clone());
        router.set_weights(&app, &good).await?;
        let share = 100 / n as u32;
        let pairs: Vec<(&VersionId, u32)> = versions
            .iter()
            .enumerate()
            .map(|(i, v)| (v, if i == 0 { 100 - share * (n as u32 - 1) } else { share }))
            .collect();
        let bad = weights(&pairs)?;
        match router.set_weights(&app, &bad).await {
            Err(Error::Conflict { .. } | Error::InvalidInput { .. }) => {}
            other => {
                return Err(CheckFailure(format!(
                    "weights for {n} versions (limit {}) must be refused, got {other:?}",
                    caps.max_weighted_versions
                )))
            }
        }
        let now = router.routing(&app).await?.weights;
        ensure!(now == good, "a refused set_weights must change nothing: weights are now {now}");
        Ok(Verdict::Passed)
    })
    .await
}

/// A client carrying the affinity of an attached version at weight 0 reaches it, for every affinity
/// carrier the router supports.
pub async fn affinity_to_weight_zero_version_is_honoured(
    router: &dyn TrafficRouter,
    harness: &dyn RouterHarness,
) -> CheckResult {
    if !harness.can_send_requests() {
        return requests_skipped();
    }
    let carriers = carriers(router);
    if carriers.is_empty() {
        return Ok(Verdict::Skipped("the router supports no affinity carrier".into()));
    }
    in_fresh_app(router, harness, |app| async move {
        let (v1, v2) = (v("v1"), v("v2"));
        spawn_and_attach(router, harness, &app, &v1, 1).await?;
        spawn_and_attach(router, harness, &app, &v2, 1).await?;
        wait_healthy(router, harness, &app, &v1).await?;
        wait_healthy(router, harness, &app, &v2).await?;
        router.set_weights(&app, &Weights::all_to(v1.clone())).await?;
        wait_landing(
            harness,
            &app,
            &Probe::new(),
            "requests without affinity to land on v1",
            5,
            landed_on(&v1),
        )
        .await?;
        for carrier in carriers {
            let probe = Probe::new().affinity(carrier, v2.clone());
            wait_landing(
                harness,
                &app,
                &probe,
                &format!("{carrier:?} affinity to v2 (weight 0) to land on v2"),
                5,
                landed_on(&v2),
            )
            .await?;
        }
        Ok(Verdict::Passed)
    })
    .await
}

/// A client carrying the affinity of a detached (or never attached) version falls through to the split
/// instead of getting an error.
pub async fn affinity_to_detached_version_falls_through(
    router: &dyn TrafficRouter,
    harness: &dyn RouterHarness,
) -> CheckResult {
    if !harness.can_send_requests() {
        return requests_skipped();
    }
    let carriers = carriers(router);
    in_fresh_app(router, harness, |app| async move {
        let (v1, v2) = (v("v1"), v("v2"));
        spawn_and_attach(router, harness, &app, &v1, 1).await?;
        spawn_and_attach(router, harness, &app, &v2, 1).await?;
        wait_healthy(router, harness, &app, &v1).await?;
        wait_healthy(router, harness, &app, &v2).await?;
        router.set_weights(&app, &Weights::all_to(v1.clone())).await?;
        router.detach(&app, &v2).await?;
        for carrier in carriers {
            for gone in [&v2, &v("never")] {
                let probe = Probe::new().affinity(carrier, gone.clone());
                wait_landing(
                    harness,
                    &app,
                    &probe,
                    &format!("{carrier:?} affinity to {gone} (not attached) to land on v1"),
                    5,
                    landed_on(&v1),
                )
                .await?;
            }
        }
        Ok(Verdict::Passed)
    })
    .await
}

/// A client pinned to an instance stays on it while it is healthy, and moves to another instance of the
/// same version when it fails its health check.
pub async fn instance_pinning_follows_health(
    router: &dyn TrafficRouter,
    harness: &dyn RouterHarness,
) -> CheckResult {
    if !router.capabilities().instance_pinning {
        return Ok(Verdict::Skipped("capability instance_pinning is off".into()));
    }
    if !harness.can_send_requests() {
        return requests_skipped();
    }
    if !harness.can_control_health() {
        return Ok(Verdict::Skipped("the harness cannot make an upstream fail its health check".into()));
    }
    in_fresh_app(router, harness, |app| async move {
        let v1 = v("v1");
        let targets = spawn_and_attach(router, harness, &app, &v1, 2).await?;
        wait_healthy(router, harness, &app, &v1).await?;
        router.set_weights(&app, &Weights::all_to(v1.clone())).await?;
        for pinned in &targets {
            let probe = Probe::new().pinned_to(pinned.instance.clone());
            let on_it = |r: &Reply| matches!(r, Reply::Landed(l) if l.instance == pinned.instance);
            wait_landing(
                harness,
                &app,
                &probe,
                &format!("requests pinned to {} to land on it", pinned.instance),
                5,
                on_it,
            )
            .await?;
        }
        let (sick, other) = (&targets[1], &targets[0]);
        harness.set_healthy(sick, false).await?;
        let probe = Probe::new().pinned_to(sick.instance.clone());
        let moved =
            |r: &Reply| matches!(r, Reply::Landed(l) if l.instance == other.instance && l.version == v1);
        wait_landing(
            harness,
            &app,
            &probe,
            &format!("requests pinned to unhealthy {} to move to {}", sick.instance, other.instance),
            5,
            moved,
        )
        .await?;
        Ok(Verdict::Passed)
    })
    .await
}

/// Detaching a version that still has weight fails with `Conflict` and changes nothing.
pub async fn detach_with_weight_is_refused(
    router: &dyn TrafficRouter,
    harness: &dyn RouterHarness,
) -> CheckResult {
    in_fresh_app(router, harness, |app| async move {
        let v1 = v("v1");
        spawn_and_attach(router, harness, &app, &v1, 1).await?;
        wait_healthy(router, harness, &app, &v1).await?;
        let all = Weights::all_to(v1.clone());
        router.set_weights(&app, &all).await?;
        match router.detach(&app, &v1).await {
            Err(Error::Conflict { .. }) => {}
            other => {
                return Err(CheckFailure(format!(
                    "detaching a version with weight 100 must fail with Conflict, got {other:?}"
                )))
            }
        }
        let routing = router.routing(&app).await?;
        ensure!(
            routing.weights == all && routing.versions.contains_key(&v1),
            "a refused detach must change nothing: {routing:?}"
        );
        Ok(Verdict::Passed)
    })
    .await
}

/// Detaching twice, and detaching a version that was never attached, succeed.
pub async fn detach_is_idempotent(router: &dyn TrafficRouter, harness: &dyn RouterHarness) -> CheckResult {
    in_fresh_app(router, harness, |app| async move {
        let (v1, v2) = (v("v1"), v("v2"));
        spawn_and_attach(router, harness, &app, &v1, 1).await?;
        spawn_and_attach(router, harness, &app, &v2, 1).await?;
        wait_healthy(router, harness, &app, &v1).await?;
        router.set_weights(&app, &Weights::all_to(v1.clone())).await?;
        router.detach(&app, &v2).await?;
        router.detach(&app, &v2).await?;
        router.detach(&app, &v("never")).await?;
        router.detach(&harness.unique_app(), &v2).await?;
        let routing = router.routing(&app).await?;
        ensure!(
            !routing.versions.contains_key(&v2),
            "a detached version is still listed: {:?}",
            routing.versions.keys()
        );
        ensure!(routing.versions.contains_key(&v1), "detaching v2 detached v1");
        Ok(Verdict::Passed)
    })
    .await
}

/// Request paths that reach an admin endpoint on a server that normalizes paths (dot segments, repeated
/// slashes, percent-encoding): a router must refuse every one of them on its public side.
pub fn admin_path_probes() -> Vec<String> {
    vec![
        format!("{ADMIN_PATH_PREFIX}/drain"),
        format!("{ADMIN_PATH_PREFIX}/status"),
        format!("{ADMIN_PATH_PREFIX}/"),
        ADMIN_PATH_PREFIX.to_string(),
        format!("{ADMIN_PATH_PREFIX}/drain?x=1"),
        "/_pulse/admin/../admin/drain".to_string(),
        "/_pulse/./admin/status".to_string(),
        "/_pulse//admin/drain".to_string(),
        "//_pulse/admin/drain".to_string(),
        "/_pulse/admin%2fdrain".to_string(),
        "/_pulse%2Fadmin/drain".to_string(),
        "/%5fpulse/admin/status".to_string(),
    ]
}

/// Requests for admin paths from the public side never reach an upstream, whatever the affinity.
pub async fn admin_paths_are_not_routed(
    router: &dyn TrafficRouter,
    harness: &dyn RouterHarness,
) -> CheckResult {
    if !harness.can_send_requests() {
        return requests_skipped();
    }
    in_fresh_app(router, harness, |app| async move {
        let v1 = v("v1");
        spawn_and_attach(router, harness, &app, &v1, 1).await?;
        wait_healthy(router, harness, &app, &v1).await?;
        router.set_weights(&app, &Weights::all_to(v1.clone())).await?;
        wait_landing(harness, &app, &Probe::new(), "a plain request to land on v1", 3, landed_on(&v1))
            .await?;
        for path in admin_path_probes() {
            for probe in [
                Probe::new().path(path.clone()),
                Probe::new().path(path.clone()).affinity(AffinityCarrier::Key, v1.clone()),
            ] {
                let reply = harness.request(&app, &probe).await?;
                ensure!(!matches!(reply, Reply::Landed(_)), "{probe:?} reached an upstream: {reply:?}");
            }
        }
        Ok(Verdict::Passed)
    })
    .await
}

/// Weights and attachments of one app do not affect another.
pub async fn apps_are_isolated(router: &dyn TrafficRouter, harness: &dyn RouterHarness) -> CheckResult {
    in_fresh_app(router, harness, |a| async move {
        in_fresh_app(router, harness, |b| async move {
            ensure!(a != b, "the harness returned the same app twice: {a}");
            let v1 = v("v1");
            spawn_and_attach(router, harness, &a, &v1, 1).await?;
            spawn_and_attach(router, harness, &b, &v1, 1).await?;
            wait_healthy(router, harness, &a, &v1).await?;
            router.set_weights(&a, &Weights::all_to(v1.clone())).await?;
            let in_b = router.routing(&b).await?;
            ensure!(in_b.weights.is_empty(), "weights set for app {a} appear in app {b}: {}", in_b.weights);
            ensure!(in_b.versions.len() == 1, "app {b} lists {:?}", in_b.versions.keys());
            router.set_weights(&a, &Weights::default()).await?;
            router.detach(&a, &v1).await?;
            ensure!(
                router.routing(&b).await?.versions.contains_key(&v1),
                "detaching in app {a} detached in app {b}"
            );
            Ok(Verdict::Passed)
        })
        .await
    })
    .await
}
