//! One writer, with the real binary on Docker + Envoy: while `pulse-deploy watch` runs (the controller,
//! holding the app's lease), `deploy` hands the new release over and only follows; the controller shifts,
//! drains and reaps. A second `watch` for the same app is refused; a controller killed mid-rollout is
//! replaced by a new one that finishes the rollout.
//!
//! Needs Docker and Envoy; with `CI=true` it fails when either is missing, otherwise it skips.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pulse_deploy_core::{VersionId, VersionPhase};
use pulse_deploy_tests::cli::{assert_all_answer, CliRig, STEP_TIMEOUT};
use pulse_deploy_tests::session::Fate;

/// 1. `deploy v1` with no controller runs the engine itself.
/// 2. `watch` starts; a second `watch` exits 1 naming the holder's pid.
/// 3. `deploy v2` with sessions open on v1 says it hands over, creates v2 and returns once the controller
///    gave v2 every new session; v1 drains, its sessions answer.
/// 4. The sessions close: the controller reaps v1 with no deploy running.
/// 5. `deploy v3` is handed over and the controller SIGKILLed right after; a new `watch` takes over and
///    the deploy completes; v2's sessions answer throughout; v2 is reaped once they close; Ctrl-C stops
///    the controller with exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_hands_over_to_a_running_controller() {
    let Some(rig) = CliRig::start_fast(
        Path::new(env!("CARGO_BIN_EXE_pulse-deploy-cli")),
        "clihand",
        Duration::from_secs(2),
    )
    .await
    else {
        return;
    };
    rig.run_scenario(scenario).await;
}

async fn scenario(rig: Arc<CliRig>) {
    let [v1, v2, v3] = ["v1", "v2", "v3"].map(|v| VersionId::new(v).unwrap());
    let run = rig.run(&["deploy", "v1"]).await.expect(0, "deploy v1");
    assert!(!run.stdout.contains("handing"), "no controller runs yet: {}", run.stdout);

    let mut watch = rig.spawn(&["watch"]);
    watch.until_line(STEP_TIMEOUT, |l| l.starts_with("watching")).await;
    let second = rig.run(&["watch"]).await.expect(1, "a second watch");
    assert!(
        second.stderr.contains("pid ") && second.stderr.contains("one controller per app"),
        "{}",
        second.stderr
    );

    let on_v1 = rig.open_sessions(0, 3, "v1").await;
    let run = rig.run(&["deploy", "v2"]).await.expect(0, "deploy v2 through the controller");
    assert!(run.stdout.contains("handing v2 over"), "says it hands over: {}", run.stdout);
    assert!(run.stdout.contains("v2 has every new session"), "{}", run.stdout);
    assert!(!run.stdout.contains("→ set weights"), "deploy applied weights itself: {}", run.stdout);
    let s = rig.status().await;
    assert_eq!(s.target.as_ref(), Some(&v2), "{s:?}");
    assert_eq!(s.version(&v2).map(|v| v.weight), Some(100), "{s:?}");
    assert_eq!(s.version(&v1).map(|v| v.phase), Some(VersionPhase::Draining), "{s:?}");
    assert_all_answer(&on_v1).await;
    let on_v2 = rig.open_sessions(100, 2, "v2").await;

    for h in on_v1 {
        let r = h.close().await;
        assert_eq!(r.fate, Fate::Closed, "session {} did not close cleanly: {r:?}", r.n);
    }
    rig.wait_gone(&v1).await;

    // 5. The controller is SIGKILLed mid-rollout, right after v3 is handed over; a new one takes over
    //    from what the providers show (the kernel released the lease) and the deploy still completes.
    let mut deploy = rig.spawn(&["deploy", "v3"]);
    deploy.until_line(STEP_TIMEOUT, |l| l.contains("created v3")).await;
    watch.kill().await;
    let mut watch = rig.spawn(&["watch"]);
    watch.until_line(STEP_TIMEOUT, |l| l.starts_with("watching")).await;
    let run = deploy.finish(STEP_TIMEOUT).await.expect(0, "deploy v3 across a controller restart");
    assert!(run.stdout.contains("v3 has every new session"), "{}", run.stdout);
    let s = rig.status().await;
    assert_eq!(s.target.as_ref(), Some(&v3), "{s:?}");
    assert_eq!(s.version(&v2).map(|v| v.phase), Some(VersionPhase::Draining), "{s:?}");
    assert_all_answer(&on_v2).await;
    for h in on_v2 {
        let r = h.close().await;
        assert_eq!(r.fate, Fate::Closed, "session {} did not close cleanly: {r:?}", r.n);
    }
    rig.wait_gone(&v2).await;
    watch.interrupt();
    let run = watch.finish(STEP_TIMEOUT).await.expect(0, "watch after Ctrl-C");
    assert!(run.stdout.contains("stopped"), "{}", run.stdout);
}
