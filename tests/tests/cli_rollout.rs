//! The `pulse-deploy` binary end to end on Docker + Envoy, one app through a whole life: deploy, deploy
//! over live sessions, status (table and JSON), plan, rollback by undrain, `watch` reaping with no deploy
//! running, rollback by redeploy, Ctrl-C during a deploy and its resume. One scenario, so that the steps
//! share their containers (each step starts from what the previous one left, as a team's app would).
//!
//! Needs Docker and Envoy; with `CI=true` it fails when either is missing, otherwise it skips.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pulse_deploy_core::rollout::AppStatus;
use pulse_deploy_core::{TrafficRouter, VersionId, VersionPhase};
use pulse_deploy_tests::cli::{assert_all_answer, CliRig, STEP_TIMEOUT};
use pulse_deploy_tests::load::Load;
use pulse_deploy_tests::session::Fate;

/// The lines of `pulse-deploy init`'s file the test changes: fast polls and health checks, a reconnect
/// grace of 2 s (so that the steady load's page loads, which open no socket, end soon), drain deadlines
/// far beyond the test.
const TUNE: &[(&str, &str)] = &[
    ("drain_deadline = \"6h\"", "drain_deadline = \"10m\""),
    ("stop_grace = \"30s\"", "stop_grace = \"5s\""),
    ("[env]", "[env]\nPULSE_SESSION_GRACE_SECS = \"2\""),
    ("health_timeout = \"5m\"", "health_timeout = \"90s\""),
    ("poll_interval = \"2s\"", "poll_interval = \"250ms\""),
    ("health_check_interval = \"1s\"", "health_check_interval = \"500ms\""),
];

/// Proves, with the real binary and real providers, in order:
/// 1. `deploy v1` exits 0 and ends with the status table; v1 is ready with 100% of new sessions.
/// 2. `deploy v2` while WebSocket sessions are open on v1 and a steady HTTP load runs: no session is
///    dropped or moved, no page load fails, new sessions land on v2.
/// 3. `status` prints the table (v1 draining 0%, v2* ready 100%, 2/2 healthy) and `status --json` parses
///    as an `AppStatus` saying the same.
/// 4. `plan v3` lists what a deploy would do and changes nothing (same containers, weights and phases).
/// 5. `rollback` while v1 still drains undrains it: it says so, v1 takes new sessions again at once, every
///    session on v1 and v2 is kept.
/// 6. `watch`, with no deploy running, reaps v2 once its sessions close; Ctrl-C stops it with exit 0.
/// 7. `rollback` again, v2 being gone, redeploys v2's release and says so.
/// 8. Ctrl-C (SIGINT) during `deploy v3` stops at a safe point with exit 130 and a resume hint, the
///    traffic untouched; the same command again completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_life_with_the_cli_keeps_every_session() {
    let Some(rig) = CliRig::start(Path::new(env!("CARGO_BIN_EXE_pulse-deploy-cli")), "clilife", TUNE).await
    else {
        return;
    };
    rig.run_scenario(scenario).await;
}

async fn scenario(rig: Arc<CliRig>) {
    let [v1, v2, v3] = ["v1", "v2", "v3"].map(|v| VersionId::new(v).unwrap());

    // 1. The first version.
    let run = rig.run(&["deploy", "v1"]).await.expect(0, "deploy v1");
    assert!(table_line(&run.stdout, "v1*").contains("100%"), "deploy ends with the table: {}", run.stdout);
    let s = rig.status().await;
    assert_eq!(s.target.as_ref(), Some(&v1));
    expect_version(&s, &v1, VersionPhase::Ready, 100);
    assert_eq!(s.version(&v1).unwrap().healthy, 2, "{s:?}");

    // 2. v2 over live sessions on v1 and a steady load of page loads.
    let on_v1 = rig.open_sessions(0, 4, "v1").await;
    let load = Load::start(rig.http.clone(), rig.base.clone(), 2, Duration::from_millis(100));
    let run = rig.run(&["deploy", "v2"]).await.expect(0, "deploy v2");
    assert!(run.stdout.contains("→ deploy v2"), "deploy prints its actions: {}", run.stdout);
    let stats = load.stop().await;
    let (ok, failed) = (stats.ok.load(Ordering::SeqCst), stats.failed.load(Ordering::SeqCst));
    rig.progress(format!("steady load during deploy v2: {ok} page loads ok, {failed} failed"));
    assert_eq!(failed, 0, "page loads failed: {:?}", stats.failures.lock().unwrap());
    assert!(ok > 0, "the load made no request");
    assert_all_answer(&on_v1).await;
    let on_v2 = rig.open_sessions(100, 3, "v2").await;

    // 3. status, as a table and as JSON.
    let run = rig.run(&["status"]).await.expect(0, "status");
    let (l1, l2) = (table_line(&run.stdout, "v1"), table_line(&run.stdout, "v2*"));
    assert!(l1.contains("draining") && l1.contains(" 0% "), "v1's line: {}", run.stdout);
    assert!(l2.contains("ready") && l2.contains("100%") && l2.contains("2/2"), "v2's line: {}", run.stdout);
    let s = rig.status().await;
    assert_eq!(s.target.as_ref(), Some(&v2));
    assert!(s.shifted, "{s:?}");
    expect_version(&s, &v1, VersionPhase::Draining, 0);
    expect_version(&s, &v2, VersionPhase::Ready, 100);
    assert!(s.version(&v1).unwrap().sessions >= 4, "v1 reports its 4 sessions: {s:?}");
    assert!(s.version(&v2).unwrap().sessions >= 3, "v2 reports its 3 sessions: {s:?}");

    // 4. plan v3 shows the next steps and changes nothing.
    let before = snapshot(&rig).await;
    let run = rig.run(&["plan", "v3"]).await.expect(0, "plan v3");
    assert!(run.stdout.contains("next: deploy v3"), "plan names the next step: {}", run.stdout);
    let run = rig.run(&["plan", "v3", "--json"]).await.expect(0, "plan v3 --json");
    let plan: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("plan --json is JSON");
    let actions = plan["actions"].as_array().expect("actions");
    assert!(actions.iter().any(|a| a.as_str().unwrap().starts_with("deploy v3")), "{plan}");
    assert_eq!(snapshot(&rig).await, before, "plan changed something");
    assert_eq!(rig.containers(&v3).await, (0, 0), "plan started v3");

    // 5. Rollback while v1 still drains: v1 is undrained and takes every new session again.
    let run = rig.run(&["rollback"]).await.expect(0, "rollback (undrain)");
    assert!(run.stdout.contains("rolled back by undrain: v1"), "says which rollback: {}", run.stdout);
    let back_on_v1 = rig.open_sessions(200, 3, "v1").await;
    assert_all_answer(on_v1.iter().chain(&on_v2)).await;
    let s = rig.status().await;
    assert_eq!(s.target.as_ref(), Some(&v1), "{s:?}");
    expect_version(&s, &v1, VersionPhase::Ready, 100);
    expect_version(&s, &v2, VersionPhase::Draining, 0);

    // 6. watch reaps v2 once its sessions end, with no deploy running.
    for h in on_v2 {
        let r = h.close().await;
        assert_eq!(r.fate, Fate::Closed, "session {} did not close cleanly: {r:?}", r.n);
    }
    let mut watch = rig.spawn(&["watch"]);
    watch.until_line(STEP_TIMEOUT, |l| l.starts_with("watching")).await;
    let reaping = Instant::now();
    rig.wait_gone(&v2).await;
    rig.progress(format!("watch reaped v2 {:.1} s after it started", reaping.elapsed().as_secs_f64()));
    watch.interrupt();
    let run = watch.finish(STEP_TIMEOUT).await.expect(0, "watch after Ctrl-C");
    assert!(run.stdout.contains("stopped"), "watch says it stopped: {}", run.stdout);
    assert_all_answer(on_v1.iter().chain(&back_on_v1)).await;

    // 7. Rollback again: v2 is gone, so its release is deployed again.
    let run = rig.run(&["rollback"]).await.expect(0, "rollback (redeploy)");
    assert!(run.stdout.contains("rolled back by redeploy: v2"), "says which rollback: {}", run.stdout);
    let again_on_v2 = rig.open_sessions(300, 2, "v2").await;
    assert_all_answer(on_v1.iter().chain(&back_on_v1)).await;
    let s = rig.status().await;
    expect_version(&s, &v2, VersionPhase::Ready, 100);
    expect_version(&s, &v1, VersionPhase::Draining, 0);

    // 8. Ctrl-C during deploy v3 stops at a safe point; the same command resumes.
    let weights_before = rig.observer().await.router.routing(&rig.app).await.expect("routing").weights;
    let mut deploy = rig.spawn(&["deploy", "v3"]);
    let first = deploy.until_line(STEP_TIMEOUT, |l| l.starts_with("→ ")).await;
    rig.progress(format!("SIGINT to `deploy v3` as it started `{first}`"));
    deploy.interrupt();
    let run = deploy.finish(STEP_TIMEOUT).await.expect(130, "deploy v3 after Ctrl-C");
    assert!(
        run.stdout.contains("run `pulse-deploy deploy v3` again to resume"),
        "a resume hint: {}{}",
        run.stdout,
        run.stderr
    );
    let weights = rig.observer().await.router.routing(&rig.app).await.expect("routing").weights;
    assert_eq!(weights, weights_before, "the stopped deploy must not have shifted traffic");
    let run = rig.run(&["deploy", "v3"]).await.expect(0, "deploy v3 again");
    assert!(table_line(&run.stdout, "v3*").contains("100%"), "{}", run.stdout);
    assert_eq!(rig.containers(&v3).await, (2, 2), "the resumed deploy adopted the stopped one's containers");
    rig.open_sessions(400, 2, "v3").await;
    assert_all_answer(on_v1.iter().chain(&back_on_v1).chain(&again_on_v2)).await;
}

/// The table line whose first cell is `version` (e.g. `v2*`).
fn table_line<'a>(table: &'a str, version: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(version))
        .unwrap_or_else(|| panic!("no line for {version} in:\n{table}"))
}

fn expect_version(s: &AppStatus, v: &VersionId, phase: VersionPhase, weight: u32) {
    let got = s.version(v).unwrap_or_else(|| panic!("{v} is not in the status: {s:?}"));
    assert_eq!((got.phase, got.weight), (phase, weight), "{v}: {s:?}");
}

/// What `plan` must not change: the app's containers, the weights, and each version's phase and instances.
async fn snapshot(rig: &CliRig) -> (Vec<String>, String, Vec<(VersionId, VersionPhase, u32, usize)>) {
    let weights = rig.observer().await.router.routing(&rig.app).await.expect("routing").weights.to_string();
    let s = rig.status().await;
    let versions = s.versions.iter().map(|v| (v.version.clone(), v.phase, v.weight, v.instances)).collect();
    (rig.container_ids().await, weights, versions)
}
