//! The core conformance suite for `EcsOrchestrator` and `AlbRouter` against moto (see `moto_support`
//! for the stand-ins). Needs `moto_server` (`cargo xtask install-tools`); with `CI=true` a missing one
//! fails, otherwise the test skips.

mod moto_support;

use std::sync::Arc;

use moto_support::harness::{AlbHarness, EcsHarness};
use moto_support::scheduler::NoProcesses;
use moto_support::Emulator;
use pulse_deploy_core::conformance::{run_orchestrator_suite, run_router_suite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_and_alb_pass_the_conformance_suite_on_moto() {
    let Some(emulator) = Emulator::start(Arc::new(NoProcesses)).await else { return };
    let orchestrator = emulator.orchestrator();
    let report = run_orchestrator_suite(&orchestrator, &EcsHarness { emulator: &emulator }).await;
    println!("{report:?}");
    let router = emulator.router();
    let harness = AlbHarness::new(&emulator);
    let router_report = run_router_suite(&router, &harness).await;
    harness.teardown().await;
    println!("{router_report:?}");
    report.assert_passed();
    router_report.assert_passed();
}
