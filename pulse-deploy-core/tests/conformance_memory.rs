//! The conformance suites on the in-memory providers: the reference implementation must pass every check,
//! with instant instances and with slow ones on a virtual clock (which exercises the suite's polling).

use std::time::Duration;

use pulse_deploy_core::conformance::{
    run_orchestrator_suite, run_router_suite, ORCHESTRATOR_CHECKS, ROUTER_CHECKS,
};
use pulse_deploy_core::memory::{InMemoryCluster, InMemoryHarness};

#[tokio::test]
async fn orchestrator_suite_passes_on_memory() {
    let cluster = InMemoryCluster::new();
    let harness = InMemoryHarness::new(cluster.clone());
    let report = run_orchestrator_suite(cluster.orchestrator().as_ref(), &harness).await;
    println!("{report}");
    report.assert_passed();
    assert_eq!(report.checks.len(), ORCHESTRATOR_CHECKS.len());
    assert_eq!(report.passed_checks(), ORCHESTRATOR_CHECKS, "every check runs on memory, in order");
    assert!(cluster.dropped_sessions().is_empty());
}

#[tokio::test]
async fn router_suite_passes_on_memory() {
    let cluster = InMemoryCluster::new();
    let harness = InMemoryHarness::new(cluster.clone());
    let report = run_router_suite(cluster.router().as_ref(), &harness).await;
    println!("{report}");
    report.assert_passed();
    assert_eq!(report.passed_checks(), ROUTER_CHECKS, "every check runs on memory, in order");
}

#[tokio::test(start_paused = true)]
async fn suites_pass_with_slow_instances_on_a_virtual_clock() {
    let cluster = InMemoryCluster::new()
        .startup_time(Duration::from_secs(3))
        .shutdown_time(Duration::from_secs(5))
        .max_weighted_versions(2);
    let harness = InMemoryHarness::new(cluster.clone()).with_timeout(Duration::from_secs(60));
    let orchestrator = run_orchestrator_suite(cluster.orchestrator().as_ref(), &harness).await;
    println!("{orchestrator}");
    orchestrator.assert_passed();
    let router = run_router_suite(cluster.router().as_ref(), &harness).await;
    println!("{router}");
    router.assert_passed();
    assert_eq!(router.passed_checks(), ROUTER_CHECKS);
}
