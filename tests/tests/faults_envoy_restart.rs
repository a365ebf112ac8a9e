//! Fault: Envoy is SIGKILLed in the middle of a rollout.
//!
//! Needs Docker and Envoy; with `CI=true` it fails when either is missing, otherwise it skips.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pulse_deploy_core::rollout::{discard, Goal, RolloutEvent};
use pulse_deploy_core::{TrafficRouter, VersionId};
use pulse_deploy_tests::cli::{CliRig, STEP_TIMEOUT};
use pulse_deploy_tests::faults;
use pulse_deploy_tests::poll::poll;
use pulse_deploy_tests::session::{Fate, OnError};

/// The app keeps a disconnected session this long: far longer than Envoy takes to come back.
const GRACE: Duration = Duration::from_secs(120);

/// Proves that the router's state lives in its files, not in the Envoy process. Envoy is SIGKILLed twice
/// while a deploy of v2 runs: as the executor starts creating v2's instances (the next observation starts
/// Envoy again from its files, with the same routing) and as it starts setting the weights (the router
/// call itself starts Envoy, already with the new weights). Every v1 client whose WebSocket was cut
/// reconnects with its cookies and session id and resumes the SAME session (same id, counter intact) on
/// the same version and instance — cookie routing is stateless, and the app keeps a disconnected session
/// for its grace period — even though v2 has every new session by then. The rollout completes, exactly one
/// Envoy runs, and its configuration passes `envoy --mode validate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_killed_mid_rollout_comes_back_and_clients_resume_their_sessions() {
    let binary = Path::new(env!("CARGO_BIN_EXE_pulse-deploy-cli"));
    let Some(rig) = faults::rig(binary, "envoykill", GRACE).await else { return };
    rig.run_scenario(scenario).await;
}

async fn scenario(rig: Arc<CliRig>) {
    let router = rig.observer().await.router;
    let v2 = VersionId::new("v2").unwrap();
    rig.executor(discard()).await.deploy(&rig.release("v1"), Goal::Shifted).await.expect("deploying v1");
    let resume = OnError::Resume { within: Duration::from_secs(45) };
    let sessions = rig.open_sessions_with(0, 10, "v1", resume).await;
    let pins: BTreeMap<usize, (String, String)> =
        sessions.iter().map(|h| (h.record().n, (h.record().instance, h.record().session))).collect();
    rig.progress(format!("v1 serves {} sessions (clients resume after a cut connection)", sessions.len()));

    // Deploy v2; Envoy is SIGKILLed twice, each time as the executor starts an action (and only once it
    // is gone does the action run): as it creates v2's instances (Envoy is started again by the next
    // observation) and as it sets the weights (the router call itself starts Envoy, with the new weights).
    let kills: Arc<Mutex<Vec<Kill>>> = Arc::default();
    let events = {
        let (router, kills) = (router.clone(), kills.clone());
        Arc::new(move |ev: &RolloutEvent| {
            let RolloutEvent::ActionStarted { action } = ev else { return };
            if !(action.starts_with("deploy v2") || action.starts_with("set weights")) {
                return;
            }
            let pid = router.envoy_pid().expect("Envoy runs before the kill");
            kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("SIGKILL Envoy");
            let at = Instant::now();
            while router.envoy_processes().contains(&pid) {
                assert!(at.elapsed() < Duration::from_secs(5), "Envoy {pid} survived SIGKILL");
                std::thread::yield_now();
            }
            kills.lock().unwrap().push(Kill { pid, at, action: action.clone(), back: None });
        })
    };
    let executor = rig.executor(events).await;
    let release = rig.release("v2");
    let deploy = tokio::spawn(async move { executor.deploy(&release, Goal::Shifted).await });

    // Watch Envoy come back after each kill: a new pid serving our bootstrap, routing requests to the app.
    let monitor = {
        let (rig, router, kills) = (rig.clone(), router.clone(), kills.clone());
        tokio::spawn(async move {
            loop {
                let up = match router.envoy_pid() {
                    Some(pid) => {
                        let url = format!("http://{}/health", rig.base);
                        let answer =
                            tokio::time::timeout(Duration::from_secs(2), rig.http.get(&url, &[])).await;
                        matches!(answer, Ok(Ok(a)) if a.status == http::StatusCode::OK).then_some(pid)
                    }
                    None => None,
                };
                if let Some(pid) = up {
                    for k in kills.lock().unwrap().iter_mut().filter(|k| k.back.is_none() && k.pid != pid) {
                        k.back = Some(k.at.elapsed());
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await; // sampling period of a measurement
            }
        })
    };

    // The rollout completes.
    let outcome = tokio::time::timeout(STEP_TIMEOUT, deploy)
        .await
        .expect("the deploy of v2 did not finish in time")
        .expect("deploy task")
        .expect("deploying v2 across the Envoy restarts");
    rig.progress(format!("the rollout completed; its actions: {:?}", outcome.actions));
    let kills = poll("Envoy to be back after each kill", STEP_TIMEOUT, || async {
        let k = kills.lock().unwrap().clone();
        k.iter().all(|k| k.back.is_some()).then_some(k)
    })
    .await;
    monitor.abort();
    assert_eq!(kills.len(), 2, "Envoy should have been killed twice: {kills:?}");
    for k in &kills {
        rig.progress(format!(
            "Envoy (pid {}) SIGKILLed as the executor started `{}`: back {:.0} ms later",
            k.pid,
            k.action,
            k.back.unwrap_or_default().as_secs_f64() * 1000.0
        ));
    }
    let killed = kills[kills.len() - 1].at;
    let routing = router.routing(&rig.app).await.expect("routing");
    assert_eq!(routing.weights.get(&v2), 100, "v2 must have every new session: {}", routing.weights);
    let envoys = rig.envoy_processes().await;
    assert_eq!(envoys, router.envoy_pid().into_iter().collect::<Vec<_>>(), "exactly one Envoy runs");
    assert!(kills.iter().all(|k| !envoys.contains(&k.pid)), "a killed Envoy runs again?");
    router.validate_config().await.expect("the configuration Envoy was restarted with validates");

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
         after the last kill; longest outage seen by a client {:.0} ms",
        sessions.len(),
        last_resumed.duration_since(killed).as_secs_f64() * 1000.0,
        worst.as_secs_f64() * 1000.0
    ));
    let resumes: usize = sessions.iter().map(|h| h.record().resumes.len()).sum();
    rig.progress(format!("{resumes} resumes in all over {} sessions", sessions.len()));
    let fresh = rig.open_sessions(100, 2, "v2").await;
    for h in sessions.into_iter().chain(fresh) {
        let r = h.close().await;
        assert_eq!(r.fate, Fate::Closed, "session {} did not close cleanly: {r:?}", r.n);
    }
}

/// One SIGKILL of Envoy.
#[derive(Debug, Clone)]
struct Kill {
    /// The killed process.
    pid: u32,
    /// When it was gone.
    at: Instant,
    /// The action the executor was starting.
    action: String,
    /// From the kill until a new Envoy answered a request with the app's answer.
    back: Option<Duration>,
}
