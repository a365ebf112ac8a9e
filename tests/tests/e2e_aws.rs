//! The end-to-end scenario on the AWS emulator (`cargo xtask e2e --provider aws`), run by the real
//! `pulse-deploy` binary the way a team runs it in production:
//! - the controller: `pulse-deploy watch` as the task of the ECS service `controller` (created as the
//!   Terraform module creates it, `moto_support::controller`), started by the emulator's scheduler
//!   stand-in and run by its data plane with the container definition's command and environment and the
//!   task role's credentials;
//! - the CI job: `pulse-deploy deploy v1|v2|v3 --image ...` from a directory holding the team's
//!   `pulse-deploy.toml` (`provider = "aws"`), each handing over to the running controller and following
//!   its progress, `status --json` checked at each step, `down` at the end.
//!
//! Live WebSocket sessions on v1 and v2 and a steady page-load load go through `alb_evaluator` (the
//! stand-in for the ALB's data plane). Checks: no failed request, no dropped session, new sessions on the
//! newest version, affinity rules that send `v1` to v1 and never `v10`, the admin paths never forwarded,
//! the old versions reaped by the controller alone once their sessions end, nothing left on AWS, and no
//! output of any `pulse-deploy` process containing the drain secret. Writes `target/e2e-aws/report.json`
//! (the local e2e's fields where they apply, the AWS API calls of each `pulse-deploy` process counted at
//! the emulator, and `leftover_aws_resources`).
//!
//! The fixture is `pulse-deploy-aws`'s (`#[path]`): this crate builds the binary (`pulse-deploy-cli`),
//! which a test of `pulse-deploy-aws` could not get. Needs `moto_server` (`cargo xtask install-tools`);
//! with `CI=true` a missing one fails, otherwise the test skips.

#[path = "../../pulse-deploy-aws/tests/moto_support/mod.rs"]
mod moto_support;

#[path = "e2e_aws/browser.rs"]
mod browser;
#[path = "e2e_aws/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use browser::{answer_all, first_session_on, open_sessions, page_load, request, start_load};
use cli::{versions, Deployer, DEPLOYER_ACCESS_KEY};
use moto_support::alb_evaluator::AlbEvaluator;
use moto_support::controller;
use moto_support::counting::{format_calls, ApiCalls};
use moto_support::demo_tasks::CONTROLLER_ACCESS_KEY;
use moto_support::rollouts::{poll, Rig, STEP};
use pulse_deploy_aws::AwsProvider;

/// Sessions opened on v1 and on v2.
const SESSIONS: usize = 4;

/// The controller's time to drain an old version after a shift (its ALB default, 10 s) plus a few of its
/// 2 s passes: how long a step waits for the controller.
const CONTROLLER_STEP: Duration = Duration::from_secs(45);

/// The team's configuration: the demo app on the rig's port, 2 replicas, the release settings of the
/// engine's rollout tests; the deployer follows every 200 ms.
fn config(rig: &Rig) -> String {
    format!(
        r#"provider = "aws"
app = "{app}"
image = "pulse-demo-app:test"
replicas = 2
port = {port}
drain_deadline = "10m"
stop_grace = "10s"

[env]
PORT = "{port}"
PULSE_SESSION_GRACE_SECS = "1"
PULSE_SHUTDOWN_TIMEOUT_SECS = "5"

[rollout]
health_timeout = "20s"
poll_interval = "200ms"
"#,
        app = rig.app,
        port = rig.port
    )
}

/// The built `pulse-deploy` binary (the controller's image runs the same command).
fn pulse_deploy_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pulse-deploy-cli"))
}

/// `deploy VERSION --image ...`: handed over to the controller, exit 0 once VERSION has every new session.
async fn deploy(deployer: &Deployer, version: &str) {
    let run = deployer.run(&["deploy", version, "--image", &format!("pulse-demo-app:{version}")]).await;
    let run = run.expect(0, &format!("deploy {version}"));
    assert!(
        run.stdout.contains(&format!("handing {version} over to it")),
        "deploy {version} hands over to the controller: {}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!("✓ {version} has every new session")), "{}", run.stdout);
}

/// The status the binary prints, as `(version, phase, weight)`, and its target.
async fn status(deployer: &Deployer) -> (Vec<(String, String, u64)>, Option<String>) {
    let s = deployer.status().await;
    (versions(&s), s["target"].as_str().map(str::to_owned))
}

fn row(version: &str, phase: &str, weight: u64) -> (String, String, u64) {
    (version.to_owned(), phase.to_owned(), weight)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_v1_v2_v3_through_the_listener_rules_with_live_sessions_and_steady_load() {
    let Some(rig) = Rig::start().await else { return };
    rig.tasks.run_controller_with(pulse_deploy_binary());
    let listener = rig.router().listener(&rig.app).await.expect("the app's listener");
    let started = Instant::now();
    let evaluator_calls = ApiCalls::counting();
    let env = controller::environment(&rig.emulator, &rig.app, &listener);
    let deployer = Deployer::new(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-aws").join(rig.app.as_str()),
        &config(&rig),
        &env,
        &rig.emulator.moto.url(),
    );
    let mut steps: Vec<serde_json::Value> = Vec::new();
    let mut step = |name: &str, t: Instant| {
        println!("[{:5.1} s] {name} ({:.1} s)", started.elapsed().as_secs_f64(), t.elapsed().as_secs_f64());
        steps.push(serde_json::json!({"name": name, "seconds": t.elapsed().as_secs_f64()}));
    };
    // What the binary decides by: `AwsProvider::controller_running` over the emulator's ECS state.
    let provider = AwsProvider::new(
        rig.emulator.aws.clone(),
        rig.emulator.ecs_config(),
        rig.emulator.alb_config(),
        rig.emulator.drain_secret.clone(),
    );

    // 0. The controller: its service as the module creates it; ECS starts `pulse-deploy watch`.
    let t = Instant::now();
    assert!(!provider.controller_running(&rig.app).await.expect("controller_running"), "none yet");
    controller::create(&rig.emulator, &rig.app, &env).await;
    poll("the controller's task to run `pulse-deploy watch`", STEP, || async {
        let watching = format!("watching {}", rig.app);
        rig.tasks.controller_output().iter().any(|l| l.contains(&watching)).then_some(())
    })
    .await;
    poll("ECS to report the controller's running task", STEP, || async {
        provider.controller_running(&rig.app).await.expect("controller_running").then_some(())
    })
    .await;
    step("0. the controller's service, its task runs `pulse-deploy watch`", t);

    // 1. deploy v1 (handed over), sessions and the load.
    let t = Instant::now();
    deploy(&deployer, "v1").await;
    assert_eq!(status(&deployer).await, (vec![row("v1", "ready", 100)], Some("v1".into())));
    let evaluator = AlbEvaluator::start(&rig.emulator.aws_through(evaluator_calls.client()), &listener).await;
    let proxy = evaluator.addr;
    poll("a page load through the evaluator to reach v1", STEP, || async {
        page_load(proxy).await.ok().filter(|(version, _)| version == "v1")
    })
    .await;
    let mut s1 = open_sessions(proxy, SESSIONS, "v1").await;
    let (stop, stats, load) = start_load(proxy, 4, Duration::from_millis(100));
    // Instance pinning inside the version: the stickiness cookie keeps a browser on its task.
    let first = request(proxy, "GET", "/", &[]).await.expect("page load");
    let pin =
        first.header("set-cookie").and_then(|c| c.split(';').next()).expect("a stickiness cookie").to_owned();
    for _ in 0..4 {
        let again = request(proxy, "GET", "/", &[("Cookie", &pin)]).await.expect("page load");
        assert_eq!(again.header("x-pulse-instance"), first.header("x-pulse-instance"), "pinned by {pin}");
    }
    let admin =
        request(proxy, "POST", "/_pulse/admin/drain", &[("x-pulse-version", "v1")]).await.expect("admin");
    assert_eq!(admin.status, 404, "the admin block answers, not the task");
    assert_eq!(admin.header("x-pulse-version"), None, "the admin path never reaches a task");
    step("1. deploy v1, open sessions, start the load", t);

    // 2. v2 takes every new session; the controller drains v1, which keeps its sessions and its rules.
    let t = Instant::now();
    deploy(&deployer, "v2").await;
    let (rows, target) = status(&deployer).await;
    assert_eq!(target.as_deref(), Some("v2"));
    assert_eq!(rows.iter().map(|r| (r.0.as_str(), r.2)).collect::<Vec<_>>(), [("v1", 0), ("v2", 100)]);
    answer_all(&mut s1).await;
    let s2 = first_session_on(proxy, "v2").await;
    let mut s2 = {
        let mut more = open_sessions(proxy, SESSIONS - 1, "v2").await;
        more.insert(0, s2);
        more
    };
    // The rules: v1's cookie reaches v1 (once drained it answers with the stale-affinity redirect), v10's
    // cookie matches no rule and takes the default action (v2).
    poll("the controller to drain v1 (v1's cookie answered 307 by v1)", CONTROLLER_STEP, || async {
        let a = request(proxy, "GET", "/", &[("Cookie", "a=b; pulse-version=v1")]).await.ok()?;
        ((a.status, a.header("x-pulse-version")) == (307, Some("v1"))).then_some(())
    })
    .await;
    assert_eq!(
        status(&deployer).await,
        (vec![row("v1", "draining", 0), row("v2", "ready", 100)], Some("v2".into()))
    );
    let ten = request(proxy, "GET", "/", &[("Cookie", "pulse-version=v10")]).await.expect("v10 cookie");
    assert_eq!(
        (ten.status, ten.header("x-pulse-version")),
        (200, Some("v2")),
        "no rule of v1 matches v10: {ten:?}"
    );
    let key =
        request(proxy, "GET", "/?pulse_version=v1", &[("Cookie", "pulse-version=v2")]).await.expect("key");
    assert_eq!(key.header("x-pulse-version"), Some("v1"), "the key rule beats the cookie rule: {key:?}");
    answer_all(&mut s1).await;
    step("2. deploy v2, the controller drains v1", t);

    // 3. v3: three live versions.
    let t = Instant::now();
    deploy(&deployer, "v3").await;
    answer_all(&mut s1).await;
    answer_all(&mut s2).await;
    let mut s3 = first_session_on(proxy, "v3").await;
    poll("the controller to drain v2 (v2's cookie answered 307 by v2)", CONTROLLER_STEP, || async {
        let a = request(proxy, "GET", "/", &[("Cookie", "pulse-version=v2")]).await.ok()?;
        ((a.status, a.header("x-pulse-version")) == (307, Some("v2"))).then_some(())
    })
    .await;
    assert_eq!(
        status(&deployer).await,
        (
            vec![row("v1", "draining", 0), row("v2", "draining", 0), row("v3", "ready", 100)],
            Some("v3".into())
        ),
        "three live versions"
    );
    answer_all(&mut s1).await;
    answer_all(&mut s2).await;
    step("3. deploy v3, v1 and v2 drain", t);

    // 4. v1's sessions end: the controller reaps v1; v2 (sessions open, deadline far) is kept.
    let t = Instant::now();
    let sessions_opened = (s1.len() + s2.len() + 1) as u64;
    let mut session_answers = 0;
    for s in s1 {
        session_answers += s.answers();
        s.end().await;
    }
    let v1_closed = Instant::now();
    poll("the controller to reap v1", CONTROLLER_STEP, || async {
        (!rig.versions().await.contains(&"v1".to_owned())).then_some(())
    })
    .await;
    let v1_reap = v1_closed.elapsed().as_secs_f64();
    assert_eq!(
        status(&deployer).await,
        (vec![row("v2", "draining", 0), row("v3", "ready", 100)], Some("v3".into()))
    );
    answer_all(&mut s2).await;
    step("4. v1's sessions end, the controller reaps v1", t);

    // 5. v2's sessions end: the controller reaps v2.
    let t = Instant::now();
    for s in s2 {
        session_answers += s.answers();
        s.end().await;
    }
    let v2_closed = Instant::now();
    poll("the controller to reap v2", CONTROLLER_STEP, || async {
        (rig.versions().await == ["v3"]).then_some(())
    })
    .await;
    let v2_reap = v2_closed.elapsed().as_secs_f64();
    assert_eq!(status(&deployer).await, (vec![row("v3", "ready", 100)], Some("v3".into())));
    s3.increment().await;
    step("5. v2's sessions end, the controller reaps v2", t);

    // 6. Stop the load; the controller stopped as `terraform destroy` stops it; `down`; nothing left.
    let t = Instant::now();
    stop.store(true, Ordering::SeqCst);
    for l in load {
        l.await.expect("load worker");
    }
    session_answers += s3.answers();
    s3.end().await;
    controller::scale_to_zero(&rig.emulator).await;
    poll("ECS to stop the controller's task", STEP, || async {
        let stopped = !provider.controller_running(&rig.app).await.expect("controller_running");
        (stopped && rig.tasks.running().iter().all(|(_, v, _)| v != "controller")).then_some(())
    })
    .await;
    let controller_calls = rig.emulator.moto.calls_by(CONTROLLER_ACCESS_KEY);
    let down = deployer.run(&["down"]).await.expect(0, "down");
    assert!(down.stdout.contains("v3"), "down removes v3: {}", down.stdout);
    controller::delete(&rig.emulator, &rig.app).await;
    poll("every task process to exit", STEP, || async { rig.tasks.running().is_empty().then_some(()) }).await;
    let leftovers = rig.leftovers().await;
    let deployer_calls = rig.emulator.moto.calls_by(DEPLOYER_ACCESS_KEY);
    step("6. stop the load and the controller, `down`", t);

    // Nothing any `pulse-deploy` process printed holds the drain secret.
    let secret = rig.emulator.drain_secret.expose();
    let controller_output = rig.tasks.controller_output().join("\n");
    assert!(!controller_output.is_empty(), "the controller printed its progress");
    assert!(!controller_output.contains(secret), "the controller printed the drain secret");
    assert!(!deployer.printed().contains(secret), "a deployer command printed the drain secret");

    let log = evaluator.log();
    let admin_forwarded =
        log.iter().filter(|r| r.path.starts_with("/_pulse/admin") && r.target.is_some()).count();
    let mut lat = stats.latencies_us.lock().unwrap().clone();
    lat.sort_unstable();
    let ms = |q: usize| lat.get(lat.len() * q / 100).map(|us| *us as f64 / 1000.0);
    let failed = stats.failed.load(Ordering::SeqCst);
    let failures = stats.failures.lock().unwrap().clone();
    let mut all_calls = controller_calls.clone();
    for (op, n) in &deployer_calls {
        *all_calls.entry(op.clone()).or_default() += n;
    }
    let report = serde_json::json!({
        "passed": failed == 0 && leftovers.is_empty() && admin_forwarded == 0,
        "provider": "aws (moto + ALB evaluator), the pulse-deploy binary as controller and CI job",
        "failed_requests": failed,
        "ok_requests": stats.ok.load(Ordering::SeqCst),
        "load_redirects_followed": stats.redirects.load(Ordering::SeqCst),
        "load_longest_redirect_chain": stats.longest_redirect_chain.load(Ordering::SeqCst),
        "evaluator_propagation_ms": moto_support::alb_evaluator::CACHE_FOR.as_millis() as u64,
        "load_versions": *stats.versions.lock().unwrap(),
        "load_latency_ms": {"p50": ms(50), "p99": ms(99)},
        // Every session is checked on every step (same version, instance and counter) and ended by
        // the client; any loss fails the test before this report is written.
        "dropped_sessions": 0,
        "sessions_moved": 0,
        "sessions_opened": sessions_opened,
        "session_answers": session_answers,
        "last_session_to_removal_seconds": v1_reap,
        "v2_last_session_to_removal_seconds": v2_reap,
        "steps": steps,
        "requests_through_evaluator": log.len(),
        "admin_requests_forwarded": admin_forwarded,
        // Counted at the emulator (its launcher logs each call with the access key that signed it).
        "aws_api_calls": all_calls,
        "aws_api_calls_total": all_calls.values().sum::<u32>(),
        "controller_aws_api_calls": controller_calls,
        "controller_aws_api_calls_total": controller_calls.values().sum::<u32>(),
        "deployer_aws_api_calls": deployer_calls,
        "deployer_aws_api_calls_total": deployer_calls.values().sum::<u32>(),
        "evaluator_aws_api_calls": evaluator_calls.per_operation(),
        "leftover_aws_resources": leftovers.len(),
        "leftovers": leftovers,
        "seconds": started.elapsed().as_secs_f64(),
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-aws");
    std::fs::create_dir_all(&out).expect("report dir");
    std::fs::write(out.join("report.json"), serde_json::to_string_pretty(&report).expect("json"))
        .expect("report");
    println!("controller AWS API calls: {}", format_calls(&controller_calls));
    println!("deployer AWS API calls: {}", format_calls(&deployer_calls));
    println!("evaluator AWS API calls: {}", format_calls(&evaluator_calls.per_operation()));
    println!(
        "report ({}): {}",
        out.join("report.json").display(),
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert_eq!(failed, 0, "failed page loads: {failures:?}");
    assert_eq!(admin_forwarded, 0, "an admin path was forwarded to a task");
    assert!(leftovers.is_empty(), "left on AWS after the scenario: {leftovers:#?}");
}
