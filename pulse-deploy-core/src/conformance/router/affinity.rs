//! Router checks of keeping clients where their session is: version affinity honoured at weight 0, a
//! detached version's affinity falling through, instance pinning following health.

use super::harness::{Probe, Reply, RouterHarness};
use super::support::*;
use crate::conformance::report::{CheckResult, Verdict};
use crate::{TrafficRouter, Weights};

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
