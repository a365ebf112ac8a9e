//! Router checks of the split of new sessions: weights applied atomically, invalid or too many weights
//! refused, apps isolated from each other.

use std::collections::BTreeSet;

use super::harness::{Probe, Reply, RouterHarness};
use super::support::*;
use crate::conformance::report::{CheckFailure, CheckResult, Verdict};
use crate::conformance::wait::{ensure, eventually};
use crate::{Error, TrafficRouter, VersionId, Weights};

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
