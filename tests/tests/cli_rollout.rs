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
use pulse_deploy_core::{Orchestrator, TrafficRouter, VersionId, VersionPhase};
use pulse_deploy_tests::cli::{assert_all_answer, CliRig, STEP_TIMEOUT};
use pulse_deploy_tests::load::Load;
use pulse_deploy_tests::session::Fate;

/// Proves, with the real binary and real providers, in order:
/// 1. `deploy v1` exits 0, its progress plain lines (piped, so no spinner) saying how many instances are
///    healthy, and ends with the status table; v1 is ready with 100% of new sessions.
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
///    traffic untouched; the same command again completes. Every session is then closed cleanly, none
///    having been dropped or moved.
/// 9. `timeline --out` writes a well-formed SVG of all of it (every version, every rollout event), its
///    time axis starting at the first event; `timeline --json` lists the journal.
/// 10. `check-app` passes on an instance of the demo app and fails (exit 1) with a wrong secret and on a
///     server that does not speak the drain protocol; the secrets are never printed.
/// 11. `down` removes every container of the app and stops Envoy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_life_with_the_cli_keeps_every_session() {
    let Some(rig) = CliRig::start_fast(
        Path::new(env!("CARGO_BIN_EXE_pulse-deploy-cli")),
        "clilife",
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

    // 1. The first version.
    // Piped (not a terminal), even outside CI: plain lines, no spinner, saying how many are healthy.
    let run = rig.run_outside_ci(&["deploy", "v1"]).await.expect(0, "deploy v1");
    assert!(table_line(&run.stdout, "v1*").contains("100%"), "deploy ends with the table: {}", run.stdout);
    assert!(
        !run.stdout.contains('\x1b') && !run.stdout.contains('\r'),
        "no spinner when piped: {:?}",
        run.stdout
    );
    assert!(
        run.stdout.lines().any(|l| l.starts_with("· v1 ") && l.contains("2/2 healthy")),
        "progress says how many instances are healthy: {}",
        run.stdout
    );
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
    let on_v3 = rig.open_sessions(400, 2, "v3").await;
    assert_all_answer(on_v1.iter().chain(&back_on_v1).chain(&again_on_v2).chain(&on_v3)).await;
    for h in on_v1.into_iter().chain(back_on_v1).chain(again_on_v2).chain(on_v3) {
        let r = h.close().await;
        assert_eq!(r.fate, Fate::Closed, "session {} did not close cleanly: {r:?}", r.n);
        assert!(r.moves.is_empty(), "session {} moved: {r:?}", r.n);
    }

    // 9. timeline: everything the commands recorded, as a picture whose time axis starts at the first
    //    rollout event (`deploy v1`), with every version and event on it.
    let file = rig.dir.join("rollouts.svg");
    let run = rig.run(&["timeline", "--out", file.to_str().unwrap()]).await.expect(0, "timeline");
    assert!(run.stdout.contains("7 rollout events"), "{}", run.stdout);
    let svg = std::fs::read_to_string(&file).expect("the SVG written");
    if let Some(keep) = std::env::var_os("PULSE_CLI_TIMELINE_OUT") {
        let _ = std::fs::write(keep, &svg);
    }
    assert_well_formed(&svg);
    for v in ["v1", "v2", "v3"] {
        assert!(svg.contains(&format!("<title>{v}</title>")), "{v} is not drawn:\n{svg}");
    }
    let labels = [
        "deploy v1",
        "deploy v2",
        "rollback to v1 (undrain)",
        "rollback to v2 (redeploy)",
        "deploy v3",
        "deploy v3 stopped by Ctrl-C",
    ];
    for label in labels {
        assert!(svg.contains(&format!(". {label}</text>")), "`{label}` is not marked:\n{svg}");
    }
    let first_mark = svg.lines().find(|l| l.contains(r#"class="mark""#)).expect("marks drawn");
    let left = format!(r#"x1="{:.1}""#, pulse_deploy::timeline::LEFT);
    assert!(first_mark.contains(&left), "the axis must start at the first event: {first_mark}");
    let run = rig.run(&["timeline", "--json"]).await.expect(0, "timeline --json");
    let entries: Vec<serde_json::Value> = serde_json::from_str(run.stdout.trim()).expect("JSON");
    assert_eq!(entries[0]["kind"], "mark", "the journal starts with the first deploy: {:?}", entries[0]);
    assert_eq!(entries[0]["label"], "deploy v1");

    // 10. check-app: an instance of v3 (no session left on it) passes every rule; a wrong secret and a
    //     server that does not speak the protocol fail; no secret is ever printed. The checker drains
    //     what it checks, so this comes last.
    let secret = std::fs::read_to_string(rig.dir.join(".pulse-deploy/drain-secret")).unwrap();
    let versions = rig.observer().await.orchestrator.versions(&rig.app).await.expect("versions");
    let v3_state = versions.iter().find(|s| s.version() == &v3).expect("v3 runs");
    let urls: Vec<String> = v3_state
        .live_instances()
        .map(|i| format!("http://{}", i.endpoint.as_ref().expect("an endpoint")))
        .collect();
    let run = rig.run(&["check-app", &urls[0]]).await.expect(0, "check-app on the demo app");
    assert!(run.stdout.contains("PASS") && !run.stdout.contains("FAIL"), "{}", run.stdout);
    let wrong = rig.dir.join("wrong-secret");
    std::fs::write(&wrong, "not-the-drain-secret-0123456789abcdef").unwrap();
    let run = rig
        .run(&["check-app", &urls[1], "--secret-file", wrong.to_str().unwrap()])
        .await
        .expect(1, "check-app with a wrong secret");
    assert!(run.stdout.contains("FAIL"), "{}", run.stdout);
    let broken = always_ok_server().await;
    let run = rig.run(&["check-app", &broken, "--json"]).await.expect(1, "check-app on a broken server");
    let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("check-app --json");
    assert_eq!(report["passed"], false, "{report}");
    let failed = report["checks"].as_array().unwrap().iter().filter(|c| c["outcome"] == "failed").count();
    rig.progress(format!("check-app on a server answering 200 to everything: {failed} rules failed"));
    assert!(failed >= 3, "{report}");
    let run = rig.run(&["check-app", "https://example.com"]).await.expect(2, "check-app on https");
    assert!(run.stderr.contains("http://HOST:PORT"), "{}", run.stderr);
    for leaked in [secret.trim(), "not-the-drain-secret"] {
        assert!(!run.stdout.contains(leaked) && !run.stderr.contains(leaked), "a secret was printed");
    }

    // 11. down: every container of the app removed, Envoy stopped.
    let envoys = rig.observer().await.router.envoy_processes();
    assert_eq!(envoys.len(), 1, "one Envoy before down: {envoys:?}");
    let run = rig.run(&["down"]).await.expect(0, "down");
    assert!(run.stdout.contains("v3"), "down names what it removed: {}", run.stdout);
    assert_eq!(rig.container_ids().await, Vec::<String>::new(), "down left containers");
    let left = rig.observer().await.router.envoy_processes();
    assert!(left.is_empty(), "down left Envoy running: pids {left:?}");
}

/// A server that answers `200 ok` to every request: it does not speak the drain protocol at all.
async fn always_ok_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

/// Panics unless `svg` is well-formed XML: every token parses and every element is closed in order.
fn assert_well_formed(svg: &str) {
    let mut open: Vec<String> = Vec::new();
    for token in xmlparser::Tokenizer::from(svg) {
        match token.unwrap_or_else(|e| panic!("not XML ({e}):\n{svg}")) {
            xmlparser::Token::ElementStart { local, .. } => open.push(local.to_string()),
            xmlparser::Token::ElementEnd { end: xmlparser::ElementEnd::Empty, .. } => {
                open.pop();
            }
            xmlparser::Token::ElementEnd { end: xmlparser::ElementEnd::Close(_, name), .. } => {
                assert_eq!(open.pop().as_deref(), Some(name.as_str()), "unbalanced </{name}>")
            }
            _ => {}
        }
    }
    assert!(open.is_empty(), "unclosed elements: {open:?}");
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
