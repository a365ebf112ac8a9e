//! `pulse-deploy rollback` interrupted by Ctrl-C (SIGINT), the real binary on Docker + Envoy, with live
//! WebSocket sessions on every instance and a steady HTTP load throughout:
//! - by redeploy (the previous version reaped), SIGINT as its first action starts: it stops at a safe
//!   point, exit 130, and names the `deploy` that finishes it; that command does;
//! - by undrain (the previous version still draining), SIGINT as the undrain starts: undrain, weights and
//!   the current version's drain signal are one step, so it completes, exit 0;
//! - the states a second Ctrl-C (abort at once) can leave inside that step, made by the test: one instance
//!   undrained (`rollback` again finishes the rollback), the weights moved but the newer version not yet
//!   signalled (`rollback` refuses and names the `deploy` that finishes it, which does).
//!
//! The SIGINTs are sent when the binary's `--json` progress says it reached the point, never after a
//! sleep. Needs Docker and Envoy; with `CI=true` it fails when either is missing, otherwise it skips.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use pulse_deploy_core::drain::{verified, ServingState};
use pulse_deploy_core::rollout::{discard, AppStatus};
use pulse_deploy_core::{Orchestrator, TrafficRouter, VersionId, VersionPhase, Weights};
use pulse_deploy_tests::cli::{assert_all_answer, CliRig, Run, STEP_TIMEOUT};
use pulse_deploy_tests::load::Load;
use pulse_deploy_tests::session::{Fate, SessionHandle};

/// Proves, in order, over sessions on every instance of the live versions and a steady load of page loads
/// (none may fail; no session may be dropped or moved):
/// 1. `rollback --json` by redeploy (v1 reaped, v2 current), SIGINT as it starts its first action: exit
///    130, its last line `{"event": "stopped", "resume": "pulse-deploy deploy v1"}`, the weights untouched;
///    running that resume command finishes the rollback (v1 100% ready with its 2 containers, v2 drains).
/// 2. `rollback --json` by undrain (v2 draining), SIGINT as the undrain starts: exit 0, the rollback whole
///    (v2 100% and every instance serving, v1 drains).
/// 3. One instance of v1 undrained by the test (a second Ctrl-C after the first undrain): `rollback`
///    finishes the rollback to v1.
/// 4. v2 undrained and given the weights by the test (a second Ctrl-C after the weights): `rollback` exits 1
///    naming `pulse-deploy deploy v2`, which finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_stopped_by_ctrl_c_is_finished_by_what_it_prints_keeping_every_session() {
    let binary = Path::new(env!("CARGO_BIN_EXE_pulse-deploy-cli"));
    let Some(rig) = CliRig::start_fast(binary, "clirbint", Duration::from_secs(2)).await else { return };
    rig.run_scenario(scenario).await;
}

async fn scenario(rig: Arc<CliRig>) {
    let [v1, v2] = ["v1", "v2"].map(|v| VersionId::new(v).unwrap());

    // v1, then v2 with --settle: v1 (no session) drains and is reaped.
    rig.run(&["deploy", "v1"]).await.expect(0, "deploy v1");
    rig.run(&["deploy", "v2", "--settle"]).await.expect(0, "deploy v2 --settle");
    rig.wait_gone(&v1).await;
    let mut sessions = on_every_instance(&rig, 0, &v2).await;
    let load = Load::start(rig.http.clone(), rig.base.clone(), 2, Duration::from_millis(100));

    // 1. By redeploy, SIGINT as the first action starts.
    let weights_before = rig.observer().await.router.routing(&rig.app).await.expect("routing").weights;
    let mut run = rig.spawn(&["rollback", "--json"]);
    let started = run.until_line(STEP_TIMEOUT, |l| event(l).is_some_and(|e| e == "rollback_started")).await;
    let started: serde_json::Value = serde_json::from_str(&started).unwrap();
    assert_eq!((&started["by"], &started["version"]), (&"redeploy".into(), &"v1".into()), "{started}");
    let action = run.until_line(STEP_TIMEOUT, |l| event(l).is_some_and(|e| e == "action_started")).await;
    rig.progress(format!("SIGINT to `rollback` (redeploy of v1) as it started {action}"));
    run.interrupt();
    let done = run.finish(STEP_TIMEOUT).await.expect(130, "rollback by redeploy after Ctrl-C");
    let stopped = last_event(&done, "stopped");
    assert_eq!(stopped["resume"], "pulse-deploy deploy v1", "the resume hint: {stopped}");
    let weights = rig.observer().await.router.routing(&rig.app).await.expect("routing").weights;
    assert_eq!(weights, weights_before, "the stopped rollback must not have shifted traffic");
    assert_all_answer(&sessions).await;
    let resume: Vec<&str> = stopped["resume"].as_str().unwrap().split_whitespace().skip(1).collect();
    rig.run(&resume).await.expect(0, "the resume command");
    let s = rig.status().await;
    expect_version(&s, &v1, VersionPhase::Ready, 100);
    expect_version(&s, &v2, VersionPhase::Draining, 0);
    assert_eq!(rig.containers(&v1).await, (2, 2), "the resume adopted the stopped rollback's v1");
    assert_all_answer(&sessions).await;
    sessions.extend(on_every_instance(&rig, 100, &v1).await);

    // 2. By undrain, SIGINT as the undrain starts: one step, completed.
    let mut run = rig.spawn(&["rollback", "--json"]);
    let started = run.until_line(STEP_TIMEOUT, |l| event(l).is_some_and(|e| e == "rollback_started")).await;
    let started: serde_json::Value = serde_json::from_str(&started).unwrap();
    assert_eq!((&started["by"], &started["version"]), (&"undrain".into(), &"v2".into()), "{started}");
    rig.progress("SIGINT to `rollback` (undrain of v2) as the undrain starts");
    run.interrupt();
    let done = run.finish(STEP_TIMEOUT).await.expect(0, "rollback by undrain after Ctrl-C (one step)");
    let status: AppStatus = serde_json::from_value(last_event(&done, "status")["status"].clone()).unwrap();
    assert_eq!(status.target.as_ref(), Some(&v2), "{status:?}");
    expect_rolled_back(&rig, &v2, &v1).await;
    assert_all_answer(&sessions).await;

    // 3. A second Ctrl-C right after the first undrain: one instance of v1 serves again, nothing else.
    undrain(&rig, &v1, 1).await;
    let run = rig.run(&["rollback"]).await.expect(0, "rollback after an abort inside the undrain");
    assert!(run.stdout.contains("rolled back by undrain: v1"), "{}", run.stdout);
    expect_rolled_back(&rig, &v1, &v2).await;
    assert_all_answer(&sessions).await;

    // 4. A second Ctrl-C right after the weights: v2 undrained and 100%, v1 not signalled yet.
    undrain(&rig, &v2, 2).await;
    rig.observer().await.router.set_weights(&rig.app, &Weights::all_to(v2.clone())).await.expect("weights");
    assert_all_answer(&sessions).await;
    let run = rig.run(&["rollback"]).await.expect(1, "rollback after an abort after the weights");
    assert!(
        run.stderr.contains("`pulse-deploy deploy v2`"),
        "names the deploy that finishes it: {}",
        run.stderr
    );
    rig.run(&["deploy", "v2"]).await.expect(0, "deploy v2 (what rollback named)");
    expect_rolled_back(&rig, &v2, &v1).await;
    assert_all_answer(&sessions).await;

    let stats = load.stop().await;
    let (ok, failed) = (stats.ok.load(Ordering::SeqCst), stats.failed.load(Ordering::SeqCst));
    rig.progress(format!(
        "steady load during the interrupted rollbacks: {ok} page loads ok, {failed} failed"
    ));
    assert_eq!(failed, 0, "page loads failed: {:?}", stats.failures.lock().unwrap());
    assert!(ok > 0, "the load made no request");
    for h in sessions {
        let r = h.close().await;
        assert_eq!(r.fate, Fate::Closed, "session {} did not close cleanly: {r:?}", r.n);
        assert!(r.moves.is_empty(), "session {} moved: {r:?}", r.n);
    }
}

/// Opens sessions on `version`, numbered from `first`, one at a time until each of its 2 instances holds
/// one (a draining instance without sessions is drained, and a drained one cannot be undrained).
async fn on_every_instance(rig: &CliRig, first: usize, version: &VersionId) -> Vec<SessionHandle> {
    let mut sessions = Vec::new();
    let mut instances = std::collections::BTreeSet::new();
    for n in first..first + 16 {
        let h = rig.open_sessions(n, 1, version.as_str()).await.pop().expect("one session");
        instances.insert(h.record().instance);
        sessions.push(h);
        if instances.len() == 2 {
            return sessions;
        }
    }
    panic!("16 sessions all landed on one instance of {version}: {instances:?}");
}

/// `to` has 100% of new sessions and every instance serving; `from` has 0% and every instance draining.
async fn expect_rolled_back(rig: &CliRig, to: &VersionId, from: &VersionId) {
    let s = rig.status().await;
    expect_version(&s, to, VersionPhase::Ready, 100);
    expect_version(&s, from, VersionPhase::Draining, 0);
    let observed = rig.executor(discard()).await.observe(&rig.app).await.expect("observe");
    for (v, serving) in [(to, true), (from, false)] {
        let o = observed.version(v).unwrap_or_else(|| panic!("{v} runs"));
        let states: Vec<_> = o.live().map(|i| o.status(&i.id).map(|s| s.state)).collect();
        let want = |s: &Option<ServingState>| s.is_some_and(|s| (s == ServingState::Serving) == serving);
        assert!(states.iter().all(want), "{v}: serving {serving} expected, got {states:?}");
    }
}

/// Undrains the first `n` live instances of `version`, as the rollback does.
async fn undrain(rig: &CliRig, version: &VersionId, n: usize) {
    let observer = rig.observer().await;
    let versions = observer.orchestrator.versions(&rig.app).await.expect("versions");
    let state = versions.iter().find(|v| v.version() == version).expect("the version runs");
    for i in state.live_instances().take(n) {
        verified::undrain(observer.drain.as_ref(), i).await.expect("undrain");
    }
}

/// The `event` of a `--json` progress line, if it is one.
fn event(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v["event"].as_str().map(str::to_owned)
}

/// The last JSON line of a `--json` run; it must be the event `kind`.
fn last_event(run: &Run, kind: &str) -> serde_json::Value {
    let last = run.stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {last}"));
    assert_eq!(v["event"], kind, "the last line: {}", run.stdout);
    v
}

fn expect_version(s: &AppStatus, v: &VersionId, phase: VersionPhase, weight: u32) {
    let got = s.version(v).unwrap_or_else(|| panic!("{v} is not in the status: {s:?}"));
    assert_eq!((got.phase, got.weight), (phase, weight), "{v}: {s:?}");
}
