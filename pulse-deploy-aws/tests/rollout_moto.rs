//! The engine's rollouts (`pulse_deploy_core::rollout::Executor` with `HttpDrainClient`) on
//! `EcsOrchestrator` + `AlbRouter` against moto, with real `pulse-demo-app` processes as the tasks (see
//! `moto_support` for every stand-in). Sessions are WebSockets opened straight on the tasks' addresses,
//! since moto routes nothing. After each scenario nothing of the app is left on AWS.
//!
//! Needs `moto_server` (`cargo xtask install-tools`); with `CI=true` a missing one fails, otherwise the
//! tests skip.

mod moto_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use moto_support::counting::{format_calls, ApiCalls};
use moto_support::rollouts::{page_load, poll, Rig, Session, STEP};
use pulse_deploy_core::drain::ServingState;
use pulse_deploy_core::rollout::{
    discard, Desired, EventSink, Executor, Goal, Outcome, PlanMemory, RolloutEvent,
};
use pulse_deploy_core::{Error, Result, TrafficRouter, VersionId, Weights};

const LONG: Duration = Duration::from_secs(600);

fn v(id: &str) -> VersionId {
    VersionId::new(id).expect("version")
}

/// Every instance of `version` has the drain signal.
async fn assert_draining(rig: &Rig, version: &str) {
    let instances = rig.instances(version).await;
    assert_eq!(instances.len(), 2, "{version} keeps its 2 tasks while it drains");
    for i in &instances {
        let s = rig.status(i).await;
        assert!(s.state.is_draining(), "{version} {} must drain: {s:?}", i.id);
    }
}

/// v1 -> v2 -> v3 with three live versions and sessions held on v1 and v2; then v2 is reaped at its
/// (short) drain deadline while its session is still open, and v1 once its last session ends. Prints
/// the AWS API calls of a rollout and of an idle controller pass, and the pass latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_live_versions_reaped_at_zero_sessions_and_at_the_deadline() {
    let Some(rig) = Rig::start().await else { return };
    let calls = ApiCalls::counting();
    let aws = rig.emulator.aws_through(calls.client());
    let executor = rig.executor_on(&aws, rig.policy(), discard());

    let t = Instant::now();
    executor.deploy(&rig.release("v1", LONG), Goal::Shifted).await.expect("deploying v1");
    let first_rollout = calls.per_operation();
    println!(
        "v1 (first version, 2 tasks) shifted in {:.1} s: {}",
        t.elapsed().as_secs_f64(),
        format_calls(&first_rollout)
    );
    assert_eq!(rig.weights().await, Weights::all_to(v("v1")));
    let mut s1 = Session::open(&rig.instances("v1").await[0]).await;
    s1.increment().await;

    let before = calls.per_operation();
    let t = Instant::now();
    executor.deploy(&rig.release("v2", Duration::from_secs(3)), Goal::Shifted).await.expect("deploying v2");
    let rollout = calls.since(&before);
    println!("v1 -> v2 shifted in {:.1} s: {}", t.elapsed().as_secs_f64(), format_calls(&rollout));
    assert_eq!(rig.weights().await, Weights::all_to(v("v2")));
    assert_draining(&rig, "v1").await;
    s1.increment().await;
    let mut s2 = Session::open(&rig.instances("v2").await[0]).await;
    s2.increment().await;

    executor.deploy(&rig.release("v3", LONG), Goal::Shifted).await.expect("deploying v3");
    assert_eq!(rig.weights().await, Weights::all_to(v("v3")));
    assert_eq!(rig.versions().await, ["v1", "v2", "v3"], "three live versions");
    assert_draining(&rig, "v1").await;
    assert_draining(&rig, "v2").await;
    let v2_deadline = rig.status(&rig.instances("v2").await[0]).await.deadline.expect("v2 has a deadline");
    s1.increment().await;
    s2.increment().await;
    let mut s3 = Session::open(&rig.instances("v3").await[0]).await;
    s3.increment().await;

    // Settle in the background: v2 goes at its deadline (its session still open), v1 only once s1 ends.
    let settle = {
        let executor = executor.clone();
        let app = rig.app.clone();
        tokio::spawn(async move { executor.reconcile(&app, Goal::Settled).await })
    };
    let code = s2.closed_by_server(STEP).await;
    let closed_at = SystemTime::now();
    assert_eq!(code, Some(1001), "v2's session is closed by its server's shutdown (going away)");
    assert!(closed_at >= v2_deadline, "v2 was stopped before its drain deadline");
    poll("v2 to be reaped", STEP, || async {
        (!rig.versions().await.contains(&"v2".to_owned())).then_some(())
    })
    .await;
    assert!(rig.versions().await.contains(&"v1".to_owned()), "v1 holds a session before its deadline: kept");
    s1.increment().await;
    assert!(!settle.is_finished(), "the settle waits for v1's session");
    s1.end().await;
    let t = Instant::now();
    settle.await.expect("settle task").expect("settling");
    println!("v1 reaped {:.1} s after its last session ended", t.elapsed().as_secs_f64());
    assert_eq!(rig.versions().await, ["v3"]);
    s3.increment().await;

    // An idle controller pass: one version (2 tasks), nothing to do.
    let desired = Desired { app: rig.app.clone(), target: None };
    let mut memory = PlanMemory::default();
    let _warm = executor.pass(&desired, &mut memory).await.expect("warm pass");
    let mut latencies = Vec::new();
    let before = calls.per_operation();
    for _ in 0..5 {
        let t = Instant::now();
        let plan = executor.pass(&desired, &mut memory).await.expect("idle pass");
        latencies.push(t.elapsed());
        assert!(plan.actions.is_empty(), "an idle pass applies nothing: {:?}", plan.actions);
    }
    let idle = calls.since(&before);
    latencies.sort();
    println!(
        "idle controller pass (1 version, 2 tasks), per pass: {} calls; over 5 passes: {}; latency median {:.0} ms, max {:.0} ms",
        idle.values().sum::<u32>() / 5,
        format_calls(&idle),
        latencies[2].as_secs_f64() * 1e3,
        latencies[4].as_secs_f64() * 1e3
    );
    s3.end().await;
    rig.assert_nothing_left().await;
}

/// A new version that never becomes healthy is rolled back, twice: v2 answers its health check path
/// with 404 (the release names a path the app does not serve), v3 exits at start (a bad setting), so
/// ECS (the stand-in) replaces its tasks again and again. v1 keeps every new session, its session keeps
/// answering, and the failed versions are removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_that_never_becomes_healthy_is_rolled_back() {
    let Some(rig) = Rig::start().await else { return };
    let policy =
        pulse_deploy_core::rollout::RolloutPolicy { health_timeout: Duration::from_secs(4), ..rig.policy() };
    let executor = rig.executor_on(&rig.emulator.aws, policy, discard());
    executor.deploy(&rig.release("v1", LONG), Goal::Shifted).await.expect("deploying v1");
    let mut s1 = Session::open(&rig.instances("v1").await[0]).await;

    let bad_health = rig.release_with("v2", LONG, |b| b.health_path("/ready"));
    let exits = rig.release_with("v3", LONG, |b| b.env("PULSE_SESSION_GRACE_SECS", "forever"));
    for (release, why) in [(bad_health, "health check 404"), (exits, "exits at start")] {
        let started = rig.tasks.started_tasks().len();
        let err = executor.deploy(&release, Goal::Settled).await.expect_err("the deploy must fail");
        assert!(matches!(err, Error::RolledBack { .. }), "{why}: {err}");
        println!("{} ({why}) rolled back: {err}", release.version);
        assert_eq!(rig.weights().await, Weights::all_to(v("v1")), "{why}: v1 keeps every new session");
        assert_eq!(rig.versions().await, ["v1"], "{why}: the failed version is removed");
        assert!(rig.tasks.started_tasks().len() > started, "{why}: its tasks were started");
        for i in rig.instances("v1").await {
            assert_eq!(rig.status(&i).await.state, ServingState::Serving, "{why}: v1 was never drained");
        }
        s1.increment().await;
    }
    s1.end().await;
    rig.assert_nothing_left().await;
}

/// A task of a draining version crashes and ECS (the stand-in scheduler) starts a replacement: the
/// replacement never takes a new session. Its version never returns to the listener's forward action,
/// and the controller drains it on its next pass: from then on a page load is turned away (307) and a
/// WebSocket without a session refused (409), while the old session on the other task keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_task_in_a_draining_version_never_takes_a_new_session() {
    let Some(rig) = Rig::start().await else { return };
    let executor = rig.executor();
    executor.deploy(&rig.release("v1", LONG), Goal::Shifted).await.expect("deploying v1");
    let v1 = rig.instances("v1").await;
    let mut s1 = Session::open(&v1[0]).await;
    executor.deploy(&rig.release("v2", LONG), Goal::Shifted).await.expect("deploying v2");
    assert_draining(&rig, "v1").await;

    // Watch the listener throughout: v1 must never get weight again.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (router, app, stop) = (rig.router(), rig.app.clone(), stop.clone());
        tokio::spawn(async move {
            let mut samples = 0;
            while !stop.load(Ordering::SeqCst) {
                let w = router.routing(&app).await.expect("routing").weights;
                assert_eq!(w.get(&VersionId::new("v1").unwrap()), 0, "v1 is back in the forward action: {w}");
                samples += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            samples
        })
    };
    let controller = pulse_deploy_core::rollout::Controller::start(
        executor.clone(),
        rig.app.clone(),
        Duration::from_millis(200),
    );

    rig.tasks.crash(&v1[1].id.0);
    let replacement = poll("ECS to replace the crashed v1 task", STEP, || async {
        rig.instances("v1").await.into_iter().find(|i| i.id != v1[0].id && i.id != v1[1].id)
    })
    .await;
    let status = poll("the replacement to learn that v1 drains", STEP, || async {
        let s = rig.try_status(&replacement).await?;
        s.state.is_draining().then_some(s)
    })
    .await;
    println!("replacement {} of v1 drains: {status:?}", replacement.id);
    let endpoint = replacement.endpoint.as_ref().expect("endpoint");
    assert_eq!(
        page_load(endpoint).await,
        307,
        "a page load on the replacement is sent back to the load balancer"
    );
    s1.increment().await;
    let sessions = rig.status(&replacement).await.active_sessions;
    assert_eq!(sessions, 0, "the replacement holds no session");

    controller.stop().await;
    stop.store(true, Ordering::SeqCst);
    let samples = watcher.await.expect("the listener never gave v1 weight");
    assert!(samples > 0);
    s1.end().await;
    executor.reconcile(&rig.app, Goal::Settled).await.expect("settling");
    assert_eq!(rig.versions().await, ["v2"]);
    rig.assert_nothing_left().await;
}

/// Runs `run` with a fresh executor (fresh providers, drain client and memory, all from the
/// configuration) again and again; run number `r` is dropped mid-flight as it starts its `kill_at(r)`-th
/// action, as a SIGKILLed deployer would stop. Returns the kills and the last run's outcome.
async fn with_kills<F, Fut>(
    rig: &Rig,
    what: &str,
    kill_at: impl Fn(usize) -> usize,
    run: F,
) -> (usize, Outcome)
where
    F: Fn(Executor) -> Fut,
    Fut: std::future::Future<Output = Result<Outcome>>,
{
    let mut kills = 0;
    for run_number in 1.. {
        assert!(run_number <= 40, "{what} did not converge after {kills} kills");
        let k = kill_at(run_number);
        let started = Arc::new(AtomicUsize::new(0));
        let kill = Arc::new(tokio::sync::Notify::new());
        let actions = Arc::new(Mutex::new(Vec::new()));
        let sink: EventSink = {
            let (started, kill, actions) = (started.clone(), kill.clone(), actions.clone());
            Arc::new(move |e: &RolloutEvent| {
                if let RolloutEvent::ActionStarted { action } = e {
                    actions.lock().unwrap().push(action.clone());
                    if started.fetch_add(1, Ordering::SeqCst) + 1 == k {
                        kill.notify_one();
                    }
                }
            })
        };
        let executor = rig.executor_on(&rig.emulator.aws, rig.policy(), sink);
        tokio::select! {
            outcome = run(executor) => {
                let outcome = outcome.unwrap_or_else(|e| panic!("{what}: run {run_number} (not killed) failed: {e}"));
                println!("{what}: run {run_number} finished on its own after {kills} kills; its actions: {:?}", outcome.actions);
                return (kills, outcome);
            }
            () = kill.notified() => {
                kills += 1;
                println!("{what}: run {run_number} killed as it started action {k}: {:?}", actions.lock().unwrap());
            }
        }
    }
    unreachable!()
}

/// The deployer is killed between every pair of actions (each run completes exactly one action and is
/// dropped as it starts the next) through v1, v1 -> v2 and the settle, and every new run resumes from
/// AWS state alone: the end state is the one an undisturbed run reaches, nothing was created twice,
/// the session on v1 kept answering on its task, and nothing is left after the teardown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployer_killed_between_every_pair_of_actions_resumes_from_aws_state() {
    let Some(rig) = Rig::start().await else { return };
    let every_pair = |run: usize| if run == 1 { 1 } else { 2 };
    let (release1, release2) = (rig.release("v1", LONG), rig.release("v2", LONG));

    let (kills1, _) = with_kills(&rig, "v1", every_pair, |e| {
        let r = release1.clone();
        async move { e.deploy(&r, Goal::Shifted).await }
    })
    .await;
    assert_eq!(rig.weights().await, Weights::all_to(v("v1")));
    let mut s1 = Session::open(&rig.instances("v1").await[0]).await;

    let (kills2, _) = with_kills(&rig, "v1 -> v2", every_pair, |e| {
        let r = release2.clone();
        async move { e.deploy(&r, Goal::Shifted).await }
    })
    .await;
    assert_eq!(rig.weights().await, Weights::all_to(v("v2")));
    assert_draining(&rig, "v1").await;
    s1.increment().await;
    assert_eq!(rig.instances("v1").await.len(), 2, "v1: exactly 2 tasks");
    assert_eq!(rig.instances("v2").await.len(), 2, "v2: exactly 2 tasks");
    assert_eq!(rig.tasks.running().len(), 4, "4 processes: no task was started twice");
    let routing = rig.router().routing(&rig.app).await.expect("routing");
    assert_eq!(routing.versions.len(), 2, "one target group per version");
    for (version, rv) in &routing.versions {
        assert_eq!(rv.targets.len(), 2, "{version}: its 2 tasks registered once each");
    }

    s1.end().await;
    let app = rig.app.clone();
    let (kills3, _) = with_kills(&rig, "settle", every_pair, |e| {
        let app = app.clone();
        async move { e.reconcile(&app, Goal::Settled).await }
    })
    .await;
    assert_eq!(rig.versions().await, ["v2"]);
    println!(
        "{} kills in all ({kills1} during v1, {kills2} during v1 -> v2, {kills3} during the settle)",
        kills1 + kills2 + kills3
    );
    assert!(kills1 > 0 && kills2 > 0 && kills3 > 0, "every phase was interrupted at least once");
    rig.assert_nothing_left().await;
}

/// Every third AWS call of the deployer is answered with throttling or a 503 by the layer between the
/// SDK and moto (as AWS does when it throttles), through v1, v1 -> v2 and the settle: the rollout
/// converges to the same end state, the session on v1 answers throughout, nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_converges_under_injected_throttling_and_5xx() {
    let Some(rig) = Rig::start().await else { return };
    let faults = ApiCalls::faulty(3);
    let aws = rig.emulator.aws_through(faults.client());
    let executor = rig.executor_on(&aws, rig.policy(), discard());
    executor.deploy(&rig.release("v1", LONG), Goal::Shifted).await.expect("v1 through the faults");
    let mut s1 = Session::open(&rig.instances("v1").await[0]).await;
    executor.deploy(&rig.release("v2", LONG), Goal::Shifted).await.expect("v1 -> v2 through the faults");
    assert_eq!(rig.weights().await, Weights::all_to(v("v2")));
    assert_draining(&rig, "v1").await;
    s1.increment().await;
    s1.end().await;
    executor.reconcile(&rig.app, Goal::Settled).await.expect("settling through the faults");
    assert_eq!(rig.versions().await, ["v2"]);
    assert_eq!(rig.instances("v2").await.len(), 2, "v2: exactly 2 tasks");
    println!(
        "rollout through the fault layer: {} AWS calls, {} answered with throttling/503",
        faults.total(),
        faults.injected()
    );
    assert!(faults.injected() >= 20, "only {} faults injected", faults.injected());
    rig.assert_nothing_left().await;
}
