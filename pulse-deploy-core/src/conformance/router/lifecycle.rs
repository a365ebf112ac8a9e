//! Router checks of a version's attachment: attach at weight 0, update targets, health at weight 0,
//! detach refused with weight, detach idempotent.

use super::harness::RouterHarness;
use super::support::*;
use crate::conformance::report::{CheckFailure, CheckResult, Verdict};
use crate::conformance::wait::{ensure, eventually};
use crate::{Error, Health, Target, TrafficRouter, Weights};

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
