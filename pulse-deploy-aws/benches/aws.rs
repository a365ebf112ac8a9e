//! `cargo xtask bench aws`: AWS API calls per full rollout and per idle controller pass, per API, and the
//! pass latency, for the engine on `EcsOrchestrator` + `AlbRouter` against moto with `pulse-demo-app`
//! processes as the tasks (the fixture of `tests/rollout_moto.rs`, every stand-in listed in
//! `docs/aws.md`). Calls are counted in a layer around the SDK's HTTP client. A benchmark that prints,
//! not a test; the latency is the emulator's (moto is a Python server on this machine), not AWS's.
//!
//! Run with `cargo bench -p pulse-deploy-aws --bench aws` (or through xtask, which builds it in the dev
//! profile so that no release build of the SDK is needed). Needs `moto_server`.

#[path = "../tests/moto_support/mod.rs"]
mod moto_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use moto_support::counting::{format_calls, ApiCalls};
use moto_support::rollouts::{Rig, Session};
use pulse_deploy_core::rollout::{discard, Desired, Executor, Goal, PlanMemory};

const PASSES: usize = 20;
const LONG: Duration = Duration::from_secs(600);

fn per_api(calls: &BTreeMap<String, u32>, divide: u32) -> String {
    let mut out: Vec<String> = Vec::new();
    for (op, n) in calls {
        let each = f64::from(*n) / f64::from(divide);
        out.push(format!("{op} {each:.1}"));
    }
    out.join(", ")
}

/// `PASSES` idle passes: calls per pass per API, and latency.
async fn idle(executor: &Executor, rig: &Rig, calls: &ApiCalls, versions: usize) {
    let desired = Desired { app: rig.app.clone(), target: None };
    let mut memory = PlanMemory::default();
    let _warm = executor.pass(&desired, &mut memory).await.expect("warm pass");
    let before = calls.per_operation();
    let mut latencies = Vec::new();
    for _ in 0..PASSES {
        let t = Instant::now();
        let plan = executor.pass(&desired, &mut memory).await.expect("idle pass");
        latencies.push(t.elapsed());
        assert!(plan.actions.is_empty(), "an idle pass applies nothing: {:?}", plan.actions);
    }
    let used = calls.since(&before);
    let total: u32 = used.values().sum();
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "idle pass, {versions} version(s) x 2 tasks: {:.1} AWS calls per pass ({}); latency p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms ({PASSES} passes)",
        f64::from(total) / PASSES as f64,
        per_api(&used, PASSES as u32),
        ms(latencies[PASSES / 2]),
        ms(latencies[PASSES * 9 / 10]),
        ms(latencies[PASSES - 1]),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(rig) = Rig::start().await else {
        eprintln!("moto_server is not installed: run `cargo xtask install-tools`");
        std::process::exit(2);
    };
    let calls = ApiCalls::counting();
    let aws = rig.emulator.aws_through(calls.client());
    let executor = rig.executor_on(&aws, rig.policy(), discard());

    let t = Instant::now();
    executor.deploy(&rig.release("v1", LONG), Goal::Shifted).await.expect("v1");
    println!(
        "first deploy (v1 until shifted, {:.1} s): {}",
        t.elapsed().as_secs_f64(),
        format_calls(&calls.per_operation())
    );
    idle(&executor, &rig, &calls, 1).await;

    let before = calls.per_operation();
    let t = Instant::now();
    executor.deploy(&rig.release("v2", LONG), Goal::Settled).await.expect("v2");
    println!(
        "full rollout v1 -> v2 (deploy, shift, drain, reap v1 at 0 sessions; {:.1} s): {}",
        t.elapsed().as_secs_f64(),
        format_calls(&calls.since(&before))
    );

    // Three live versions: sessions hold v2 and v3 while v4 takes the new ones.
    let s2 = Session::open(&rig.instances("v2").await[0]).await;
    executor.deploy(&rig.release("v3", LONG), Goal::Shifted).await.expect("v3");
    let s3 = Session::open(&rig.instances("v3").await[0]).await;
    executor.deploy(&rig.release("v4", LONG), Goal::Shifted).await.expect("v4");
    idle(&executor, &rig, &calls, 3).await;
    s2.end().await;
    s3.end().await;
    rig.assert_nothing_left().await;
    println!(
        "everything counted above (deploys, rollouts, idle passes): {}",
        format_calls(&calls.per_operation())
    );
}
