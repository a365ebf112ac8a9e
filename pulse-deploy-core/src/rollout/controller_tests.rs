//! The controller on the in-memory providers (virtual time): deploys, drains and reaps in its loop,
//! publishes its status, and stops at a safe point on the first signal.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::memory::InMemoryCluster;
use crate::rollout::{Executor, RolloutPolicy};
use crate::{Orchestrator, VersionId, VersionPhase};

const WAIT: Duration = Duration::from_secs(3600);

fn app() -> AppName {
    AppName::new("shop").unwrap()
}

fn v(s: &str) -> VersionId {
    VersionId::new(s).unwrap()
}

fn release(version: &str) -> Release {
    Release::builder("shop", version, format!("shop:{version}")).replicas(2).build().unwrap()
}

fn executor(cluster: &InMemoryCluster) -> Executor {
    let policy = RolloutPolicy { poll_interval: Duration::from_millis(100), ..Default::default() };
    Executor::builder(cluster.orchestrator(), cluster.router(), cluster.drain_client()).policy(policy).build()
}

#[tokio::test(start_paused = true)]
async fn deploys_drains_and_reaps_in_its_loop_and_publishes_status() {
    let cluster = InMemoryCluster::new();
    let controller = Controller::start(executor(&cluster), app(), Duration::from_millis(100));
    controller.deploy(release("v1"));
    controller.wait_for("v1 settled", WAIT, |p| p.settled && p.target == Some(v("v1"))).await.unwrap();
    let session = cluster.open_session(&app(), None).unwrap();

    controller.deploy(release("v2"));
    controller
        .wait_for("v2 shifted, v1 draining", WAIT, |p| {
            p.shifted && p.phases.get(&v("v1")) == Some(&VersionPhase::Draining)
        })
        .await
        .unwrap();
    let mut updates = controller.status_updates();
    let status = updates
        .wait_for(|s| {
            s.as_ref().is_some_and(|s| s.version(&v("v1")).is_some_and(|x| x.drain_deadline.is_some()))
        })
        .await
        .unwrap()
        .clone()
        .unwrap();
    let old = status.version(&v("v1")).unwrap();
    assert_eq!((old.phase, old.weight, old.sessions, old.instances), (VersionPhase::Draining, 0, 1, 2));
    let new = status.version(&v("v2")).unwrap();
    assert_eq!((new.weight, new.healthy, new.replicas, new.image.as_str()), (100, 2, 2, "shop:v2"));
    assert_eq!(status.target, Some(v("v2")));
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["versions"][0]["phase"], "draining");
    assert!(json["at"].as_str().unwrap().ends_with('Z'), "RFC 3339 time: {json}");
    let back: AppStatus = serde_json::from_value(json).unwrap();
    assert_eq!(back.versions.len(), 2);

    // The session ends: the same loop reaps v1, with no new deploy.
    assert!(cluster.close_session(session));
    controller.wait_for("v1 reaped", WAIT, |p| p.settled && !p.phases.contains_key(&v("v1"))).await.unwrap();
    assert_eq!(cluster.versions_running(&app()), vec![v("v2")]);
    assert_eq!(controller.errors(), 0, "{:?}", controller.last_error());
    controller.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_first_signal_stops_before_any_further_action_the_second_aborts() {
    let cluster = InMemoryCluster::new();
    let stopper = Stopper::new();
    assert_eq!(stopper.signal(), StopSignal::Graceful);
    let desired = Desired { app: app(), target: Some(release("v1")) };
    let controller = Controller::start_with(executor(&cluster), desired, Duration::from_millis(100), stopper);
    tokio::time::timeout(WAIT, async {
        while !controller.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the controller ends after the first signal");
    assert!(cluster.orchestrator().versions(&app()).await.unwrap().is_empty(), "no action after the signal");
    assert_eq!(controller.stopper().signal(), StopSignal::Forced);
    controller.join().await;
}

#[tokio::test(start_paused = true)]
async fn an_executor_stopped_mid_rollout_returns_stopped_and_a_new_run_resumes() {
    let cluster = InMemoryCluster::new();
    let stopper = Stopper::new();
    let stop = stopper.clone();
    let events: crate::rollout::EventSink = Arc::new(move |e| {
        if matches!(e, crate::rollout::RolloutEvent::ActionStarted { action } if action.starts_with("deploy"))
        {
            stop.signal();
        }
    });
    let stoppable = Executor::builder(cluster.orchestrator(), cluster.router(), cluster.drain_client())
        .events(events)
        .stop_on(stopper.graceful())
        .build();
    let outcome = stoppable.deploy(&release("v1"), crate::rollout::Goal::Shifted).await.unwrap();
    assert!(outcome.stopped, "{outcome:?}");
    let last = outcome.actions.last().expect("an action");
    assert!(last.starts_with("deploy"), "the action in flight completes, no later one starts: {outcome:?}");
    let status = executor(&cluster).status(&app()).await.unwrap();
    assert_eq!(status.versions.len(), 1);
    assert_eq!(status.versions[0].weight, 0, "not routed yet: {status:?}");

    let resumed = executor(&cluster).deploy(&release("v1"), crate::rollout::Goal::Shifted).await.unwrap();
    assert!(!resumed.stopped);
    assert!(!resumed.actions.iter().any(|a| a.starts_with("deploy")), "resumed, not redeployed: {resumed:?}");
    assert_eq!(executor(&cluster).status(&app()).await.unwrap().versions[0].weight, 100);
}

#[tokio::test(start_paused = true)]
async fn a_controller_follows_versions_deployed_by_another_process() {
    // The one-writer hand-off: `deploy` elsewhere only creates the version through the orchestrator; the
    // controller (no target of its own) takes it as the target, shifts to it, drains and reaps the old one.
    let cluster = InMemoryCluster::new();
    let controller = Controller::start(executor(&cluster), app(), Duration::from_millis(100));
    let outside = cluster.orchestrator();
    outside.deploy(&release("v1")).await.unwrap();
    controller.wait_for("v1 adopted", WAIT, |p| p.settled && p.target == Some(v("v1"))).await.unwrap();
    let session = cluster.open_session(&app(), None).unwrap();

    // Created at the same (virtual) instant as v1: the orchestrator's order decides which is newer.
    outside.deploy(&release("v2")).await.unwrap();
    controller
        .wait_for("v2 shifted, v1 draining", WAIT, |p| {
            p.shifted && p.target == Some(v("v2")) && p.phases.get(&v("v1")) == Some(&VersionPhase::Draining)
        })
        .await
        .unwrap();
    assert!(controller.desired().target.is_none(), "the controller was never given a release");
    assert!(cluster.close_session(session));
    controller.wait_for("v1 reaped", WAIT, |p| p.settled && !p.phases.contains_key(&v("v1"))).await.unwrap();
    assert_eq!(cluster.versions_running(&app()), vec![v("v2")]);
    assert_eq!(controller.errors(), 0, "{:?}", controller.last_error());
    controller.stop().await;
}
