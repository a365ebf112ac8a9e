//! The orchestrator suite: checks every [`Orchestrator`] must pass, and the [`OrchestratorHarness`] a
//! provider supplies for what the suite cannot do through the trait.
//!
//! Each check works in its own app ([`OrchestratorHarness::unique_app`]) and retires what it deployed,
//! even when it fails, so checks can run in parallel and after a crash.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;

use super::report::{CheckFailure, CheckResult, ConformanceReport, Verdict};
use super::suite::{run_suite, suite, CheckFuture};
use super::wait::{ensure, eventually};
use crate::{AppName, Error, Instance, InstanceId, Orchestrator, Release, Result, VersionId, VersionState};

/// What the orchestrator suite needs from a provider's test setup beyond the [`Orchestrator`] trait.
#[async_trait]
pub trait OrchestratorHarness: Send + Sync {
    /// A fresh app name no other test uses (e.g. with a random suffix).
    fn unique_app(&self) -> AppName;

    /// A release of `app` at `version` with `replicas` instances that this provider can run (an image that
    /// exists for it). The suite may add environment variables and change durations; it keeps the image.
    fn release(&self, app: &AppName, version: &VersionId, replicas: u32) -> Release;

    /// Makes a live instance exit as if it crashed (e.g. `docker kill`, stop an ECS task).
    async fn crash(&self, instance: &Instance) -> Result<()>;

    /// How long any eventual expectation may take on this provider.
    fn timeout(&self) -> Duration;

    /// How often eventual expectations are polled.
    fn poll_interval(&self) -> Duration {
        Duration::from_millis(100)
    }
}

/// The function of one orchestrator check.
pub type OrchestratorCheckFn =
    for<'a> fn(&'a (dyn Orchestrator + 'a), &'a (dyn OrchestratorHarness + 'a)) -> CheckFuture<'a>;

suite!(
    /// The checks of the orchestrator suite, in the order [`run_orchestrator_suite`] runs them
    /// (the one list of them: names, order and functions).
    ORCHESTRATOR_CHECKS: OrchestratorCheckFn;
    deploy_creates_the_replicas,
    deploy_is_idempotent,
    conflicting_release_is_rejected,
    invalid_release_is_rejected,
    release_reads_back_unchanged,
    versions_are_ordered_by_creation,
    apps_are_isolated,
    crashed_instance_is_replaced,
    retire_removes_the_version_gracefully,
    retire_is_idempotent,
);

/// Runs every orchestrator check and reports which ran and which passed. Checks that a capability turns
/// off are reported as skipped.
pub async fn run_orchestrator_suite(
    orchestrator: &dyn Orchestrator,
    harness: &dyn OrchestratorHarness,
) -> ConformanceReport {
    let provider = orchestrator.capabilities().provider;
    run_suite("orchestrator", provider, ORCHESTRATOR_CHECKS, |run| run(orchestrator, harness)).await
}

fn v(id: &str) -> VersionId {
    VersionId::new(id).expect("a valid version id")
}

async fn version_of(
    orchestrator: &dyn Orchestrator,
    app: &AppName,
    version: &VersionId,
) -> Result<Option<VersionState>> {
    Ok(orchestrator.versions(app).await?.into_iter().find(|s| s.version() == version))
}

fn live_ids(state: &VersionState) -> BTreeSet<InstanceId> {
    state.live_instances().map(|i| i.id.clone()).collect()
}

/// Waits until `version` lists `replicas` live instances with endpoints, and returns its state.
async fn wait_live(
    orchestrator: &dyn Orchestrator,
    harness: &dyn OrchestratorHarness,
    app: &AppName,
    version: &VersionId,
    replicas: usize,
) -> Result<VersionState, CheckFailure> {
    eventually(
        &format!("{replicas} live instances of {app}/{version}"),
        harness.timeout(),
        harness.poll_interval(),
        || async {
            Ok(match version_of(orchestrator, app, version).await? {
                Some(s)
                    if s.live_instances().count() == replicas
                        && s.live_instances().all(|i| i.endpoint.is_some()) =>
                {
                    Ok(s)
                }
                Some(s) => Err(format!("instances {:?}", s.instances)),
                None => Err("the version is not listed".into()),
            })
        },
    )
    .await
}

/// Runs `body` in a fresh app and cleans the app up afterwards, whatever the outcome. A failed cleanup
/// fails a check that otherwise passed.
async fn in_fresh_app<'a, F, Fut>(
    orchestrator: &'a dyn Orchestrator,
    harness: &'a dyn OrchestratorHarness,
    body: F,
) -> CheckResult
where
    F: FnOnce(AppName) -> Fut,
    Fut: std::future::Future<Output = CheckResult> + 'a,
{
    let app = harness.unique_app();
    let result = body(app.clone()).await;
    let cleanup = crate::teardown::tear_down(Some(orchestrator), None, &app, harness.timeout()).await;
    super::report::after_cleanup(result, cleanup)
}

/// `deploy` creates `replicas` live instances, each with its own id and endpoint, listed by `versions`.
pub async fn deploy_creates_the_replicas(
    orchestrator: &dyn Orchestrator,
    harness: &dyn OrchestratorHarness,
) -> CheckResult {
    in_fresh_app(orchestrator, harness, |app| async move {
        let release = harness.release(&app, &v("v1"), 2);
        orchestrator.deploy(&release).await?;
        let state = wait_live(orchestrator, harness, &app, &release.version, 2).await?;
        ensure!(!state.retiring, "a freshly deployed version is reported as retiring");
        let endpoints: BTreeSet<_> = state.live_instances().filter_map(|i| i.endpoint.clone()).collect();
        ensure!(
            live_ids(&state).len() == 2 && endpoints.len() == 2,
            "instances must have distinct ids and endpoints: {:?}",
            state.instances
        );
        ensure!(
            state.instances.iter().all(|i| i.version == release.version),
            "every instance must report the version it runs: {:?}",
            state.instances
        );
        Ok(Verdict::Passed)
    })
    .await
}

/// Deploying the same release twice yields the same instances: nothing is duplicated.
pub async fn deploy_is_idempotent(
    orchestrator: &dyn Orchestrator,
    harness: &dyn OrchestratorHarness,
) -> CheckResult {
    in_fresh_app(orchestrator, harness, |app| async move {
        let release = harness.release(&app, &v("v1"), 2);
        orchestrator.deploy(&release).await?;
        let first = wait_live(orchestrator, harness, &app, &release.version, 2).await?;
        orchestrator.deploy(&release).await?;
        orchestrator.deploy(&release).await?;
        let versions = orchestrator.versions(&app).await?;
        ensure!(
            versions.len() == 1,
            "deploying twice must not create a second version: {:?}",
            versions.iter().map(VersionState::version).collect::<Vec<_>>()
        );
        let again = &versions[0];
        ensure!(
            live_ids(again) == live_ids(&first),
            "deploying the same release again must keep the same instances: before {:?}, after {:?}",
            live_ids(&first),
            live_ids(again)
        );
        ensure!(
            again.created_at == first.created_at,
            "created_at changed on redeploy: {:?} -> {:?}",
            first.created_at,
            again.created_at
        );
        Ok(Verdict::Passed)
    })
    .await
}

/// Deploying another release under an existing version id fails with `Conflict` and changes nothing.
pub async fn conflicting_release_is_rejected(
    orchestrator: &dyn Orchestrator,
    harness: &dyn OrchestratorHarness,
) -> CheckResult {
    in_fresh_app(orchestrator, harness, |app| async move {
        let release = harness.release(&app, &v("v1"), 1);
        orchestrator.deploy(&release).await?;
        let before = wait_live(orchestrator, harness, &app, &release.version, 1).await?;
        let mut other = release.clone();
        other.env.insert("CONFORMANCE_VARIANT".into(), "other".into());
        match orchestrator.deploy(&other).await {
            Err(Error::Conflict { .. }) => {}
            other => {
                return Err(CheckFailure(format!(
                    "a different release under an existing version id must fail with Conflict, got {other:?}"
                )))
            }
        }
        let after = version_of(orchestrator, &app, &release.version).await?;
        ensure!(
            after.as_ref().map(|s| &s.release) == Some(&release),
            "the stored release changed after a refused deploy: {after:?}"
        );
        ensure!(
            after.as_ref().map(live_ids) == Some(live_ids(&before)),
            "instances changed after a refused deploy: {after:?}"
        );
        Ok(Verdict::Passed)
    })
    .await
}

/// An invalid release (here 0 replicas) fails with `InvalidInput` before anything is created.
pub async fn invalid_release_is_rejected(
    orchestrator: &dyn Orchestrator,
    harness: &dyn OrchestratorHarness,
) -> CheckResult {
    in_fresh_app(orchestrator, harness, |app| async move {
        let mut release = harness.release(&app, &v("v1"), 1);
        release.replicas = 0;
        match orchestrator.deploy(&release).await {
            Err(Error::InvalidInput { .. }) => {}
            other => {
                return Err(CheckFailure(format!(
                    "a release with 0 replicas must fail with InvalidInput, got {other:?}"
                )))
            }
        }
        let versions = orchestrator.versions(&app).await?;
        ensure!(
            versions.is_empty(),
            "a refused release must create nothing, found {:?}",
            versions.iter().map(VersionState::version).collect::<Vec<_>>()
        );
        Ok(Verdict::Passed)
    })
    .await
}

/// `versions` returns the release exactly as deployed (environment, durations, affinity), and a durable
/// `created_at` that does not change between reads.
pub async fn release_reads_back_unchanged(
    orchestrator: &dyn Orchestrator,
    harness: &dyn OrchestratorHarness,
) -> CheckResult {
    in_fresh_app(orchestrator, harness, |app| async move {
        let mut release = harness.release(&app, &v("v1"), 1);
        release.env.insert("CONFORMANCE_PLAIN".into(), "value".into());
        release.env.insert("CONFORMANCE_TRICKY".into(), "a b=c;d,\"e\" ü".into());
        release.drain_deadline = Duration::from_secs(4321);
        release.stop_grace = Duration::from_secs(7);
        release.validate()?;
        orchestrator.deploy(&release).await?;
        let first = wait_live(orchestrator, harness, &app, &release.version, 1).await?;
        ensure!(
            first.release == release,
            "the release read back differs:\n deployed {release:?}\n read     {:?}",
            first.release
        );
        ensure!(first.release.env == release.env, "environment values read back differ");
        let second = version_of(orchestrator, &app, &release.version).await?;
        ensure!(
            second.as_ref().map(|s| s.created_at) == Some(first.created_at),
            "created_at must be durable, read {:?} then {:?}",
            first.created_at,
            second.map(|s| s.created_at)
        );
        Ok(Verdict::Passed)
    })
    .await
}

/// `versions` lists versions in creation order.
pub async fn versions_are_ordered_by_creation(
    orchestrator: &dyn Orchestrator,
    harness: &dyn OrchestratorHarness,
) -> CheckResult {
    in_fresh_app(orchestrator, harness, |app| async move {
        let ids = [v("v2"), v("v10"), v("v1")];
        for id in &ids {
            orchestrator.deploy(&harness.release(&app, id, 1)).await?;
            wait_live(orchestrator, harness, &app, id, 1).await?;
        }
        let listed: Vec<VersionId> =
            orchestrator.versions(&app).await?.iter().map(|s| s.version().clone()).collect();
        ensure!(listed == ids, "versions must be listed in creation order {ids:?}, got {listed:?}");
        Ok(Verdict::Passed)
    })
    .await
}

/// Versions of one app are invisible to another, and retiring in one app leaves the other alone.
pub async fn apps_are_isolated(
    orchestrator: &dyn Orchestrator,
    harness: &dyn OrchestratorHarness,
) -> CheckResult {
    in_fresh_app(orchestrator, harness, |a| async move {
        in_fresh_app(orchestrator, harness, |b| async move {
            ensure!(a != b, "the harness returned the same app twice: {a}");
            let version = v("v1");
            orchestrator.deploy(&harness.release(&a, &version, 1)).await?;
            orchestrator.deploy(&harness.release(&b, &version, 1)).await?;
            let in_a = wait_live(orchestrator, harness, &a, &version, 1).await?;
            let in_b = wait_live(orchestrator, harness, &b, &version, 1).await?;
            ensure!(in_a.release.app == a && in_b.release.app == b, "each app must list its own release");
            ensure!(
                live_ids(&in_a).is_disjoint(&live_ids(&in_b)),
                "two apps share instances: {:?} / {:?}",
                in_a.instances,
                in_b.instances
            );
            crate::teardown::tear_down(Some(orchestrator), None, &a, harness.timeout()).await?;
            let still = version_of(orchestrator, &b, &version).await?;
            ensure!(
                still.as_ref().is_some_and(|s| !s.retiring && live_ids(s) == live_ids(&in_b)),
                "retiring app {a} touched app {b}: {still:?}"
            );
            Ok(Verdict::Passed)
        })
        .await
    })
    .await
}

/// A crashed instance is replaced by calling `deploy` again (as the engine does on every pass), with a new
/// instance; the crashed one is no longer live. Skipped if the orchestrator does not replace crashed
/// instances.
pub async fn crashed_instance_is_replaced(
    orchestrator: &dyn Orchestrator,
    harness: &dyn OrchestratorHarness,
) -> CheckResult {
    if !orchestrator.capabilities().replaces_crashed_instances {
        return Ok(Verdict::Skipped("capability replaces_crashed_instances is off".into()));
    }
    in_fresh_app(orchestrator, harness, |app| async move {
        let release = harness.release(&app, &v("v1"), 2);
        orchestrator.deploy(&release).await?;
        let state = wait_live(orchestrator, harness, &app, &release.version, 2).await?;
        let victim = state.live_instances().next().expect("two live instances").clone();
        harness.crash(&victim).await?;
        eventually(
            &format!("instance {} to be replaced", victim.id),
            harness.timeout(),
            harness.poll_interval(),
            || async {
                orchestrator.deploy(&release).await?;
                Ok(match version_of(orchestrator, &app, &release.version).await? {
                    Some(s) if s.live_instances().count() == 2 && !live_ids(&s).contains(&victim.id) => {
                        Ok(())
                    }
                    other => Err(format!("{:?}", other.map(|s| s.instances))),
                })
            },
        )
        .await?;
        let versions = orchestrator.versions(&app).await?;
        ensure!(versions.len() == 1, "replacing an instance must not create a version: {versions:?}");
        Ok(Verdict::Passed)
    })
    .await
}

/// `retire` marks the version retiring at once (a later `deploy` does not revive it), and the version
/// disappears from `versions` after its instances stopped; calls keep succeeding meanwhile.
pub async fn retire_removes_the_version_gracefully(
    orchestrator: &dyn Orchestrator,
    harness: &dyn OrchestratorHarness,
) -> CheckResult {
    in_fresh_app(orchestrator, harness, |app| async move {
        let keep = harness.release(&app, &v("v1"), 1);
        let release = harness.release(&app, &v("v2"), 2);
        orchestrator.deploy(&keep).await?;
        orchestrator.deploy(&release).await?;
        let before = wait_live(orchestrator, harness, &app, &release.version, 2).await?;
        orchestrator.retire(&app, &release.version).await?;
        eventually(
            &format!("{app}/{} to disappear after retire", release.version),
            harness.timeout(),
            harness.poll_interval(),
            || async {
                // While it is listed, a retiring version must say so, and a deploy (the engine keeps deploying
                // what it wants) must neither revive it nor give it new instances.
                let Some(state) = version_of(orchestrator, &app, &release.version).await? else {
                    return Ok(Ok(()));
                };
                if !state.retiring {
                    return Err(Error::Conflict {
                        message: format!("a retired version is listed as not retiring: {state:?}"),
                    });
                }
                orchestrator.deploy(&release).await?;
                if let Some(s) = version_of(orchestrator, &app, &release.version).await? {
                    if s.created_at != before.created_at {
                        // It finished disappearing just before the deploy, which created it anew: that is
                        // deploy's contract, and the removal was observed. Cleanup retires the new one.
                        return Ok(Ok(()));
                    }
                    if !s.retiring || live_ids(&s).iter().any(|id| !live_ids(&before).contains(id)) {
                        return Err(Error::Conflict {
                            message: format!("deploy revived a retiring version: {s:?}"),
                        });
                    }
                }
                orchestrator.retire(&app, &release.version).await?;
                Ok(Err(format!("still listed with {:?}", state.instances)))
            },
        )
        .await?;
        let other = version_of(orchestrator, &app, &keep.version).await?;
        ensure!(other.is_some_and(|s| !s.retiring), "retiring {} touched {}", release.version, keep.version);
        Ok(Verdict::Passed)
    })
    .await
}

/// Retiring twice, retiring a version that is gone, one that never existed, and one in an unknown app
/// all succeed.
pub async fn retire_is_idempotent(
    orchestrator: &dyn Orchestrator,
    harness: &dyn OrchestratorHarness,
) -> CheckResult {
    in_fresh_app(orchestrator, harness, |app| async move {
        let release = harness.release(&app, &v("v1"), 1);
        orchestrator.deploy(&release).await?;
        wait_live(orchestrator, harness, &app, &release.version, 1).await?;
        orchestrator.retire(&app, &release.version).await?;
        orchestrator.retire(&app, &release.version).await?;
        crate::teardown::tear_down(Some(orchestrator), None, &app, harness.timeout()).await?;
        orchestrator.retire(&app, &release.version).await?;
        orchestrator.retire(&app, &v("never")).await?;
        orchestrator.retire(&harness.unique_app(), &release.version).await?;
        let left = orchestrator.versions(&app).await?;
        ensure!(left.is_empty(), "nothing may be listed after retiring everything: {left:?}");
        Ok(Verdict::Passed)
    })
    .await
}
