//! Helpers the router checks share: spawning and attaching a version, waiting for health or for requests
//! to land, and running a check in a fresh app that is cleaned up afterwards.

use std::collections::BTreeMap;

use super::harness::{AffinityCarrier, Probe, Reply, RouterHarness};
use crate::conformance::report::{CheckFailure, CheckResult, Verdict};
use crate::conformance::wait::{ensure, eventually};
use crate::{AppName, Health, Result, RoutingState, Target, TrafficRouter, VersionId, Weights};

pub(super) fn v(id: &str) -> VersionId {
    VersionId::new(id).expect("a valid version id")
}

pub(super) fn weights(pairs: &[(&VersionId, u32)]) -> Result<Weights> {
    Weights::new(pairs.iter().map(|(v, w)| ((*v).clone(), *w)).collect::<BTreeMap<_, _>>())
}

pub(super) fn requests_skipped() -> CheckResult {
    Ok(Verdict::Skipped("the harness cannot send requests through this router".into()))
}

/// Spawns `version` with `replicas` upstreams and attaches it; returns its targets.
pub(super) async fn spawn_and_attach(
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
pub(super) async fn wait_healthy(
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
pub(super) async fn wait_landing(
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

pub(super) fn landed_on(version: &VersionId) -> impl Fn(&Reply) -> bool + '_ {
    move |r| matches!(r, Reply::Landed(l) if &l.version == version)
}

/// Affinity carriers this router supports.
pub(super) fn carriers(router: &dyn TrafficRouter) -> Vec<AffinityCarrier> {
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
pub(super) async fn clean(
    router: &dyn TrafficRouter,
    harness: &dyn RouterHarness,
    app: &AppName,
) -> Result<()> {
    crate::teardown::tear_down(None, Some(router), app, harness.timeout()).await?;
    harness.cleanup(app).await
}

/// Runs `body` in a fresh app and cleans up afterwards, whatever the outcome.
pub(super) async fn in_fresh_app<'a, F, Fut>(
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
    crate::conformance::report::after_cleanup(result, cleanup)
}
