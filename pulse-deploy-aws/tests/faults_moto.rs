//! Throttling and 5xx injected between the SDK and moto (a layer around the HTTP client that answers
//! every third call itself, as AWS does when it throttles: the call never reaches the service), and the
//! providers still converge: deploy, attach, shift all new sessions, detach, retire. Prints the AWS API
//! calls per operation. Needs `moto_server` (with `CI=true` a missing one fails).

mod moto_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use moto_support::counting::ApiCalls;
use moto_support::harness::{unique_app, EcsHarness};
use moto_support::infra;
use moto_support::scheduler::NoProcesses;
use moto_support::Emulator;
use pulse_deploy_core::conformance::OrchestratorHarness;
use pulse_deploy_core::{Orchestrator, TrafficRouter, VersionId, VersionRoute, Weights};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_converge_under_injected_throttling_and_5xx() {
    let Some(emulator) = Emulator::start(Arc::new(NoProcesses)).await else { return };
    let faults = ApiCalls::faulty(3);
    let aws = emulator.aws_through(faults.client());
    let orchestrator = pulse_deploy_aws::EcsOrchestrator::new(&aws, emulator.ecs_config());
    let router = emulator.router_on(&aws);
    let harness = EcsHarness { emulator: &emulator };
    let app = unique_app();
    infra::app_load_balancer(&emulator.aws.elbv2(), &emulator.network, &app).await;
    let release = harness.release(&app, &VersionId::new("v1").unwrap(), 2);

    orchestrator.deploy(&release).await.expect("deploy converges through the faults");
    let deadline = Instant::now() + Duration::from_secs(20);
    let state = loop {
        let versions = orchestrator.versions(&app).await.expect("versions through the faults");
        if let Some(s) = versions.into_iter().find(|s| s.live_instances().count() == 2) {
            break s;
        }
        assert!(Instant::now() < deadline, "2 live instances did not appear within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let targets = state
        .live_instances()
        .filter_map(|i| i.endpoint.clone())
        .map(|e| pulse_deploy_aws::alb::target_group::target(&e.host, e.port))
        .collect();
    router.attach(&VersionRoute::for_release(&release, targets)).await.expect("attach converges");
    router.set_weights(&app, &Weights::all_to(release.version.clone())).await.expect("set_weights converges");
    let routing = router.routing(&app).await.expect("routing");
    assert_eq!(routing.weights, Weights::all_to(release.version.clone()));
    assert_eq!(routing.versions[&release.version].targets.len(), 2);
    let before_idle = faults.total();
    router.routing(&app).await.expect("routing");
    orchestrator.versions(&app).await.expect("versions");
    let idle_pass = faults.total() - before_idle;

    router.set_weights(&app, &Weights::default()).await.expect("weights emptied");
    router.detach(&app, &release.version).await.expect("detach converges");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        orchestrator.retire(&app, &release.version).await.expect("retire converges");
        if orchestrator.versions(&app).await.expect("versions").is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the version was not removed within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(router.routing(&app).await.expect("routing").versions.is_empty());
    infra::delete_app_load_balancer(&emulator.aws.elbv2(), &app).await;

    let injected = faults.injected();
    assert!(injected >= 5, "the layer injected only {injected} faults");
    println!(
        "AWS API calls for one version (deploy, attach, shift, detach, retire with polling): {} calls, {injected} \
         answered with throttling/503 by the fault layer; one idle observation (routing + versions, 1 version, \
         2 tasks): {idle_pass} calls",
        faults.total()
    );
    for (op, n) in faults.per_operation().iter() {
        println!("  {op}: {n}");
    }
}
