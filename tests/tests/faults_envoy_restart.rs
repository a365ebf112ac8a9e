//! Fault: Envoy is SIGKILLed in the middle of a rollout.
//!
//! Needs Docker and Envoy; with `CI=true` it fails when either is missing, otherwise it skips.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use pulse_deploy_core::rollout::{discard, Goal, RolloutEvent};
use pulse_deploy_core::{TrafficRouter, VersionId};
use pulse_deploy_local::envoy::process;
use pulse_deploy_tests::faults::{poll, Rig, STEP_TIMEOUT};
use pulse_deploy_tests::session::{Fate, OnError};

/// Proves that the router's state lives in its files, not in the Envoy process: Envoy SIGKILLed while a
/// deploy of v2 runs (as the executor starts the instances of v2, right after attaching it) is started
/// again by the deployer's next router call, with the same routing; every v1 client whose WebSocket
/// was cut reconnects with its cookies and session id and resumes the SAME session (same id, counter
/// intact) on the same version and instance — cookie routing is stateless, and the app keeps a
/// disconnected session for its grace period; and the rollout completes (v2 gets every new session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_killed_mid_rollout_comes_back_and_clients_resume_their_sessions() {
    let Some(rig) = Rig::start("envoykill").await else { return };
    rig.run(scenario).await;
}

async fn scenario(rig: Arc<Rig>) {
    let v2 = VersionId::new("v2").unwrap();
    rig.executor(discard()).deploy(&rig.release("v1"), Goal::Shifted).await.expect("deploying v1");
    let resume = OnError::Resume { within: Duration::from_secs(45) };
    let sessions = rig.open_sessions(0, 10, "v1", resume).await;
    let pins: BTreeMap<usize, (String, String)> =
        sessions.iter().map(|h| (h.record().n, (h.record().instance, h.record().session))).collect();
    rig.progress(format!("v1 serves {} sessions (clients resume after a cut connection)", sessions.len()));

    // Deploy v2 in the background; kill Envoy as the executor starts creating v2's instances.
    let (tx, mut started) = tokio::sync::mpsc::unbounded_channel::<String>();
    let events = Arc::new(move |ev: &RolloutEvent| {
        if let RolloutEvent::ActionStarted { action } = ev {
            let _ = tx.send(action.clone());
        }
    });
    let executor = rig.executor(events);
    let release = rig.release("v2");
    let deploy = tokio::spawn(async move { executor.deploy(&release, Goal::Shifted).await });
    let mut before_kill = Vec::new();
    loop {
        let action = tokio::time::timeout(STEP_TIMEOUT, started.recv())
            .await
            .expect("the deploy of v2 started no action in time")
            .expect("the deploy ended before creating v2's instances");
        before_kill.push(action.clone());
        if action.starts_with("deploy v2") {
            break;
        }
    }
    let old = rig.router.envoy_pid().expect("Envoy runs before the kill");
    process::signal(old, Signal::SIGKILL);
    let killed = Instant::now();
    assert!(process::wait_gone(old, Duration::from_secs(5)).await, "Envoy {old} survived SIGKILL");
    rig.progress(format!("SIGKILLed Envoy (pid {old}) after the deploy's actions {before_kill:?}"));

    // The executor's next router call starts Envoy again from its files.
    let new = poll("Envoy to be back", STEP_TIMEOUT, || async {
        let pid = rig.router.envoy_pid().filter(|p| *p != old)?;
        tokio::net::TcpStream::connect(&rig.base).await.ok()?;
        Some(pid)
    })
    .await;
    let back = killed.elapsed();
    rig.progress(format!("Envoy is back (pid {new}) {:.0} ms after the kill", back.as_secs_f64() * 1000.0));

    // The rollout completes.
    let outcome = tokio::time::timeout(STEP_TIMEOUT, deploy)
        .await
        .expect("the deploy of v2 did not finish in time")
        .expect("deploy task")
        .expect("deploying v2 after the Envoy restart");
    let after: Vec<&String> = outcome.actions.iter().skip(before_kill.len()).collect();
    rig.progress(format!("the rollout completed; actions after the kill: {after:?}"));
    let routing = rig.router.routing(&rig.app).await.expect("routing");
    assert_eq!(routing.weights.get(&v2), 100, "v2 must have every new session: {}", routing.weights);
    assert_eq!(rig.envoy_processes(), vec![new], "exactly the restarted Envoy runs");

    // Every session was cut by the kill, resumed on its version and instance, and answers again.
    let resumed = poll("every session to resume and answer again", STEP_TIMEOUT, || async {
        let records: Vec<_> = sessions.iter().map(|h| h.record()).collect();
        for r in &records {
            assert_eq!(r.fate, Fate::Open, "session {} was dropped: {r:?}", r.n);
        }
        records.iter().all(|r| !r.resumes.is_empty()).then_some(records)
    })
    .await;
    let before: Vec<u64> = resumed.iter().map(|r| r.answers).collect();
    poll("every session to answer after resuming", Duration::from_secs(10), || async {
        sessions.iter().zip(&before).all(|(h, b)| h.record().answers > *b).then_some(())
    })
    .await;
    let mut worst = Duration::ZERO;
    let mut last_resumed = killed;
    for r in sessions.iter().map(|h| h.record()) {
        let (instance, session) = &pins[&r.n];
        assert_eq!(
            (r.version.as_str(), &r.instance, &r.session, r.fate.clone()),
            ("v1", instance, session, Fate::Open),
            "session {} did not stay on v1/{instance} as session {session}: {r:?}",
            r.n
        );
        assert!(r.moves.is_empty(), "session {} moved: {r:?}", r.n);
        worst = worst.max(r.resumes.iter().map(|x| x.outage).max().unwrap_or_default());
        last_resumed = last_resumed.max(r.resumes.iter().map(|x| x.at).max().unwrap_or(killed));
    }
    rig.progress(format!(
        "all {} sessions resumed on v1 and their instance (same session id, counter intact); the last {:.0} ms \
         after the kill; longest outage seen by a client {:.0} ms",
        sessions.len(),
        last_resumed.duration_since(killed).as_secs_f64() * 1000.0,
        worst.as_secs_f64() * 1000.0
    ));
    let fresh = rig.open_sessions(100, 2, "v2", OnError::Drop).await;
    for h in sessions.into_iter().chain(fresh) {
        let r = h.close().await;
        assert_eq!(r.fate, Fate::Closed, "session {} did not close cleanly: {r:?}", r.n);
    }
}
