//! Fault: the deployer — the real `pulse-deploy deploy` — is SIGKILLed between the actions of a rollout
//! and run again.
//!
//! Needs Docker and Envoy; with `CI=true` it fails when either is missing, otherwise it skips.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pulse_deploy_core::rollout::{discard, AppStatus};
use pulse_deploy_core::{TrafficRouter, VersionId};
use pulse_deploy_tests::cli::{CliRig, STEP_TIMEOUT};
use pulse_deploy_tests::faults;
use pulse_deploy_tests::load::Load;
use pulse_deploy_tests::poll::poll;
use pulse_deploy_tests::session::{Fate, SessionHandle};

/// The app's reconnect grace: the steady load's page loads open no socket, and their sessions must end
/// soon so that the old versions can settle.
const GRACE: Duration = Duration::from_secs(3);

/// Proves rule 5 of the planner on real providers with the real command as a separate process
/// (`pulse-deploy deploy VERSION --json`, in a directory set up by `pulse-deploy init`): a rollout whose
/// deployer is SIGKILLed as it starts an action (its `action_started` line read from its stdout), again
/// and again (each new run of the same command adopting what the killed one left: containers by their
/// Docker labels, Envoy and its routing from the state directory), converges once a run is left alone —
/// it exits 0 with the new version the target, the new version has 100% of new sessions, older versions
/// drain, every live WebSocket session kept answering on its version and instance throughout (none
/// dropped), no page load of a steady HTTP load failed, nothing was created twice (exactly 2 containers
/// per version, one Envoy), and a final `deploy --settle` reaps the old versions once their sessions
/// close.
///
/// Two kill schedules, one per rollout: v1 → v2 kills run k at its k-th action (k = 1, 2, 3, …: each run
/// gets one action further); v2 → v3 (with v1 still draining) kills the first run at its first action and
/// every later run at its second, so each run completes exactly one action and dies as the next starts —
/// a kill between every pair of consecutive actions of the rollout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployer_killed_between_every_pair_of_actions_converges_without_dropping_a_session() {
    let binary = Path::new(env!("CARGO_BIN_EXE_pulse-deploy-cli"));
    let Some(rig) = faults::rig(binary, "killdep", GRACE).await else { return };
    rig.run_scenario(scenario).await;
}

async fn scenario(rig: Arc<CliRig>) {
    let [v1, v2, v3] = ["v1", "v2", "v3"].map(|v| VersionId::new(v).unwrap());

    // v1 with 2 instances, deployed by the command (left alone), and live sessions through Envoy.
    rig.run(&["deploy", "v1"]).await.expect(0, "deploy v1");
    let mut sessions = rig.open_sessions(0, 8, "v1").await;
    let mut pins = pins_of(&sessions);
    let load = Load::start(rig.http.clone(), rig.base.clone(), 2, Duration::from_millis(100));
    rig.progress(format!("v1 serves {} sessions and a steady load of page loads", sessions.len()));

    // v1 → v2: run k is killed as it starts its k-th action.
    let kills_v2 = rollout_with_kills(&rig, &v2, &sessions, &pins, |run| run).await;
    expect_shifted(&rig, &v2, &[&v1]).await;
    assert_all_answer(&sessions, &pins).await;
    sessions.extend(rig.open_sessions(100, 6, "v2").await);
    pins = pins_of(&sessions);

    // v2 → v3 while v1 still drains: the first run is killed at its first action, every later run as it
    // starts its second (after completing exactly one).
    let kills_v3 = rollout_with_kills(&rig, &v3, &sessions, &pins, |run| if run == 1 { 1 } else { 2 }).await;
    expect_shifted(&rig, &v3, &[&v1, &v2]).await;
    assert_all_answer(&sessions, &pins).await;
    let fresh = rig.open_sessions(200, 2, "v3").await;
    rig.progress(format!(
        "{} kills in all ({} during v1 → v2, {} during v2 → v3); every session kept its version and instance",
        kills_v2 + kills_v3,
        kills_v2,
        kills_v3
    ));

    let stats = load.stop().await;
    let (ok, failed) = (stats.ok.load(Ordering::SeqCst), stats.failed.load(Ordering::SeqCst));
    rig.progress(format!("steady load during the kills: {ok} page loads ok, {failed} failed"));
    assert_eq!(failed, 0, "page loads failed: {:?}", stats.failures.lock().unwrap());
    assert!(ok > 0, "the load made no request");

    // Settle: every session closes; `deploy v3 --settle` (v3 being deployed already) reaps v1 and v2.
    for h in sessions.into_iter().chain(fresh) {
        let r = h.close().await;
        assert_eq!(r.fate, Fate::Closed, "session {} did not close cleanly: {r:?}", r.n);
        assert!(r.moves.is_empty(), "session {} moved: {r:?}", r.n);
    }
    let settle = Instant::now();
    rig.run(&["deploy", "v3", "--settle"]).await.expect(0, "deploy v3 --settle");
    for v in [&v1, &v2] {
        rig.wait_gone(v).await;
    }
    rig.progress(format!(
        "settled: v1 and v2 reaped {:.1} s after their last sessions closed",
        settle.elapsed().as_secs_f64()
    ));
    assert_eq!(rig.containers(&v3).await, (2, 2), "v3 keeps exactly its 2 instances");
    assert_eq!(rig.envoy_processes().await.len(), 1, "one Envoy");
}

/// Runs `pulse-deploy deploy VERSION --json` again and again, killing run number `r` (from 1) with
/// SIGKILL as it starts its `kill_at(r)`-th action, until a run finishes on its own: it must exit 0, its
/// last line the status with `version` the target. After every kill, every session must still answer on
/// its version and instance. Returns the number of kills.
async fn rollout_with_kills(
    rig: &CliRig,
    version: &VersionId,
    sessions: &[SessionHandle],
    pins: &BTreeMap<usize, (String, String)>,
    kill_at: impl Fn(usize) -> usize,
) -> usize {
    let started = Instant::now();
    let mut kills = 0;
    for run_number in 1.. {
        assert!(run_number <= 30, "deploying {version} did not converge after {kills} kills");
        let k = kill_at(run_number);
        let mut run = rig.spawn(&["deploy", version.as_str(), "--json"]);
        let mut actions = Vec::new();
        while actions.len() < k {
            let Some(line) = run.until_line_or_end(STEP_TIMEOUT, |l| action_started(l).is_some()).await
            else {
                break;
            };
            actions.extend(action_started(&line));
        }
        if actions.len() == k {
            run.kill().await;
            kills += 1;
            rig.progress(format!(
                "{version}: run {run_number} SIGKILLed as it started action {k}; its actions: {actions:?}"
            ));
            assert_all_answer(sessions, pins).await;
            continue;
        }
        let what = format!("run {run_number} of deploy {version} (not killed; its actions: {actions:?})");
        let done = run.finish(STEP_TIMEOUT).await.expect(0, &what);
        let last = done.stdout.lines().last().unwrap_or_default();
        let event: serde_json::Value = serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("{what}: its last line is not JSON ({e}): {last}"));
        assert_eq!(event["event"], "status", "{what} must end with the status: {last}");
        let status: AppStatus = serde_json::from_value(event["status"].clone()).expect("an AppStatus");
        assert_eq!(status.target.as_ref(), Some(version), "{what}: {status:?}");
        rig.progress(format!(
            "{version}: run {run_number} completed on its own; its actions: {actions:?}; {kills} kills, {:.1} s in all",
            started.elapsed().as_secs_f64()
        ));
        break;
    }
    assert!(kills > 0, "the deployer was never killed: the test proved nothing");
    kills
}

/// The action of a `deploy --json` line `{"event": "action_started", "action": ...}`, else `None`.
fn action_started(line: &str) -> Option<String> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    (event["event"] == "action_started").then(|| event["action"].as_str().map(str::to_owned))?
}

/// `target` has 100% of new sessions, every version in `draining` drains, and nothing was duplicated:
/// exactly 2 containers per version and one Envoy.
async fn expect_shifted(rig: &CliRig, target: &VersionId, draining: &[&VersionId]) {
    let routing = rig.observer().await.router.routing(&rig.app).await.expect("routing");
    assert_eq!(routing.weights.get(target), 100, "{target} must have 100%: {}", routing.weights);
    let observed = rig.executor(discard()).await.observe(&rig.app).await.expect("observe");
    for v in draining {
        let o = observed.version(v).unwrap_or_else(|| panic!("{v} must still run (its sessions are open)"));
        assert!(
            o.live().all(|i| o.status(&i.id).is_some_and(|s| s.state.is_draining())),
            "every instance of {v} must have the drain signal: {:?}",
            o.reports
        );
    }
    for v in draining.iter().copied().chain([target]) {
        assert_eq!(rig.containers(v).await, (2, 2), "{v}: expected exactly 2 containers (live, all)");
    }
    let envoys = rig.envoy_processes().await;
    assert_eq!(envoys.len(), 1, "expected exactly one Envoy on the state directory, found pids {envoys:?}");
}

fn pins_of(sessions: &[SessionHandle]) -> BTreeMap<usize, (String, String)> {
    sessions.iter().map(|h| h.record()).map(|r| (r.n, (r.version, r.instance))).collect()
}

/// Every session is open on its first version and instance, and answers at least once more.
async fn assert_all_answer(sessions: &[SessionHandle], pins: &BTreeMap<usize, (String, String)>) {
    let before: Vec<u64> = sessions.iter().map(|h| h.record().answers).collect();
    poll("every session to answer again", Duration::from_secs(10), || async {
        let mut lagging = 0;
        for (h, b) in sessions.iter().zip(&before) {
            let r = h.record();
            assert_eq!(r.fate, Fate::Open, "session {} was dropped: {r:?}", r.n);
            let (version, instance) = &pins[&r.n];
            assert_eq!((&r.version, &r.instance), (version, instance), "session {} moved: {r:?}", r.n);
            if r.answers <= *b {
                lagging += 1;
            }
        }
        (lagging == 0).then_some(())
    })
    .await
}
