//! Fault: an instance of the draining version crashes.
//!
//! Needs Docker and Envoy; with `CI=true` it fails when either is missing, otherwise it skips.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::KillContainerOptionsBuilder;
use pulse_deploy_core::rollout::Controller;
use pulse_deploy_core::rollout::{discard, Action, Goal};
use pulse_deploy_core::{TrafficRouter, VersionId, VersionPhase};
use pulse_deploy_tests::cli::{CliRig, STEP_TIMEOUT};
use pulse_deploy_tests::faults;
use pulse_deploy_tests::poll::poll;
use pulse_deploy_tests::session::{Fate, SessionHandle};

/// The app's reconnect grace (no client reconnects in this test).
const GRACE: Duration = Duration::from_secs(3);

/// Proves how a crash of a draining version's instance is handled, under the long-running controller:
/// the sessions of the crashed instance are lost (expected, counted apart: the process that held their
/// state is gone), every session of v1's other instance keeps answering on it, the crashed instance is
/// NOT replaced (v1 is draining: a replacement could never receive a session), the router stops
/// targeting it, and v1 is still reaped automatically once its remaining sessions close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_of_a_draining_instance_loses_only_its_sessions_and_v1_is_still_reaped() {
    let binary = Path::new(env!("CARGO_BIN_EXE_pulse-deploy-cli"));
    let Some(rig) = faults::rig(binary, "crash", GRACE).await else { return };
    rig.run_scenario(scenario).await;
}

async fn scenario(rig: Arc<CliRig>) {
    let router = rig.observer().await.router;
    let (v1, v2) = (VersionId::new("v1").unwrap(), VersionId::new("v2").unwrap());
    rig.executor(discard()).await.deploy(&rig.release("v1"), Goal::Shifted).await.expect("deploying v1");
    // Sessions on both instances of v1 (Envoy balances new sessions; open more until both hold some).
    let mut sessions = rig.open_sessions(0, 10, "v1").await;
    while instances_of(&sessions).len() < 2 {
        assert!(sessions.len() < 40, "40 sessions all landed on one instance of v1");
        let more = rig.open_sessions(sessions.len(), 2, "v1").await;
        sessions.extend(more);
    }

    // The controller deploys v2; v1 drains.
    let controller =
        Controller::start(rig.executor(discard()).await, rig.app.clone(), Duration::from_millis(250));
    controller.deploy(rig.release("v2"));
    controller
        .wait_for("v2 to have every new session and v1 to drain", STEP_TIMEOUT, |p| {
            p.target.as_ref() == Some(&v2) && p.shifted && p.phases.get(&v1) == Some(&VersionPhase::Draining)
        })
        .await
        .expect("rollout of v2");
    let by_instance = instances_of(&sessions);
    rig.progress(format!("v1 drains with sessions per instance: {:?}", counts(&by_instance)));

    // Crash the instance holding session 0.
    let victim = sessions[0].record().instance;
    let kill = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
    rig.docker.kill_container(&victim, Some(kill)).await.expect("killing the instance");
    let crashed = Instant::now();
    let lost: BTreeSet<usize> = by_instance[&victim].iter().copied().collect();
    rig.progress(format!("SIGKILLed instance {victim} holding {} sessions", lost.len()));

    // Its sessions are lost; the other instance's sessions keep answering.
    poll("the crashed instance's sessions to be cut", Duration::from_secs(20), || async {
        lost.iter().all(|n| matches!(sessions[*n].record().fate, Fate::Dropped(_))).then_some(())
    })
    .await;
    let how = match sessions[*lost.first().expect("a lost session")].record().fate {
        Fate::Dropped(reason) => reason,
        other => format!("{other:?}"),
    };
    rig.progress(format!(
        "its {} sessions were cut, the last seen {:.0} ms after the crash (e.g. {how})",
        lost.len(),
        crashed.elapsed().as_secs_f64() * 1000.0
    ));
    let survivors: Vec<&SessionHandle> = sessions.iter().filter(|h| !lost.contains(&h.record().n)).collect();
    let before: Vec<u64> = survivors.iter().map(|h| h.record().answers).collect();
    poll("the other instance's sessions to answer again", Duration::from_secs(10), || async {
        let mut all = true;
        for (h, b) in survivors.iter().zip(&before) {
            let r = h.record();
            assert_eq!(r.fate, Fate::Open, "session {} of the surviving instance was dropped: {r:?}", r.n);
            assert_ne!(r.instance, victim, "session {} moved onto the crashed instance: {r:?}", r.n);
            all &= r.answers > *b;
        }
        all.then_some(())
    })
    .await;

    // The controller stops routing to the crashed instance and never replaces it.
    poll("the router to target only v1's surviving instance", STEP_TIMEOUT, || async {
        let routing = router.routing(&rig.app).await.ok()?;
        (routing.versions.get(&v1)?.route.targets.len() == 1).then_some(())
    })
    .await;
    let replaced = AtomicBool::new(false);
    let plans = AtomicUsize::new(0);
    controller
        .wait_for("5 more controller passes", STEP_TIMEOUT, |p| {
            let deploys_v1 = p.actions.iter().any(|a| matches!(a, Action::Deploy(r) if r.version == v1));
            replaced.fetch_or(deploys_v1, Ordering::SeqCst);
            assert_eq!(p.phases.get(&v1), Some(&VersionPhase::Draining), "v1 must keep draining: {p:?}");
            plans.fetch_add(1, Ordering::SeqCst) >= 5
        })
        .await
        .expect("controller passes");
    assert!(!replaced.load(Ordering::SeqCst), "the controller planned a replacement for draining v1");
    assert_eq!(rig.containers(&v1).await, (1, 2), "v1: 1 live instance and the crashed one, no replacement");
    rig.progress("the crashed instance is out of the router and not replaced; v1 keeps draining");

    // The remaining sessions close; the controller reaps v1.
    let mut closed = 0;
    for h in sessions {
        let n = h.record().n;
        let r = h.close().await;
        if lost.contains(&n) {
            continue;
        }
        assert_eq!(r.fate, Fate::Closed, "session {n} did not close cleanly: {r:?}");
        closed += 1;
    }
    let last_closed = Instant::now();
    rig.wait_gone(&v1).await;
    rig.progress(format!(
        "{closed} surviving sessions closed; v1 reaped {:.1} s after the last ({} lost to the crash, counted apart)",
        last_closed.elapsed().as_secs_f64(),
        lost.len()
    ));
    assert_eq!(rig.containers(&v2).await, (2, 2), "v2 keeps exactly its 2 instances");
    assert_eq!(controller.errors(), 0, "controller passes failed");
    controller.stop().await;
}

/// Session numbers per instance.
fn instances_of(sessions: &[SessionHandle]) -> BTreeMap<String, Vec<usize>> {
    let mut by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for h in sessions {
        let r = h.record();
        by.entry(r.instance).or_default().push(r.n);
    }
    by
}

fn counts(by: &BTreeMap<String, Vec<usize>>) -> BTreeMap<&str, usize> {
    by.iter().map(|(k, v)| (k.as_str(), v.len())).collect()
}
