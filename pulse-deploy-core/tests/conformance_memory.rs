//! The conformance suites on the in-memory providers: the reference implementation must pass every check,
//! with instant instances and with slow ones on a virtual clock (which exercises the suite's polling).

use std::time::Duration;

use pulse_deploy_core::conformance::{
    names, run_orchestrator_suite, run_router_suite, ORCHESTRATOR_CHECKS, ROUTER_CHECKS,
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
    assert_eq!(report.passed_checks(), names(ORCHESTRATOR_CHECKS), "every check runs on memory, in order");
    assert!(cluster.dropped_sessions().is_empty());
}

#[tokio::test]
async fn router_suite_passes_on_memory() {
    let cluster = InMemoryCluster::new();
    let harness = InMemoryHarness::new(cluster.clone());
    let report = run_router_suite(cluster.router().as_ref(), &harness).await;
    println!("{report}");
    report.assert_passed();
    assert_eq!(report.passed_checks(), names(ROUTER_CHECKS), "every check runs on memory, in order");
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
    assert_eq!(router.passed_checks(), names(ROUTER_CHECKS));
}

/// Providers that break one rule each, to prove the suite notices.
mod sloppy {
    use std::sync::Arc;

    use async_trait::async_trait;
    use pulse_deploy_core::memory::{InMemoryOrchestrator, InMemoryRouter};
    use pulse_deploy_core::{
        AppName, Error, Orchestrator, OrchestratorCapabilities, Release, Result, RouterCapabilities,
        RoutingState, TrafficRouter, VersionId, VersionRoute, VersionState, Weights,
    };

    /// Swallows conflicts and refuses to retire what does not exist.
    #[derive(Debug)]
    pub(crate) struct Orch(pub Arc<InMemoryOrchestrator>);

    #[async_trait]
    impl Orchestrator for Orch {
        fn capabilities(&self) -> OrchestratorCapabilities {
            self.0.capabilities()
        }
        async fn deploy(&self, release: &Release) -> Result<()> {
            match self.0.deploy(release).await {
                Err(Error::Conflict { .. }) => Ok(()),
                other => other,
            }
        }
        async fn versions(&self, app: &AppName) -> Result<Vec<VersionState>> {
            self.0.versions(app).await
        }
        async fn retire(&self, app: &AppName, version: &VersionId) -> Result<()> {
            if !self.0.versions(app).await?.iter().any(|s| s.version() == version) {
                return Err(Error::NotFound { what: format!("{app}/{version}") });
            }
            self.0.retire(app, version).await
        }
    }

    /// Gives a newly attached version all the traffic, and detaches whatever its weight.
    #[derive(Debug)]
    pub(crate) struct Router(pub Arc<InMemoryRouter>);

    #[async_trait]
    impl TrafficRouter for Router {
        fn capabilities(&self) -> RouterCapabilities {
            self.0.capabilities()
        }
        async fn attach(&self, route: &VersionRoute) -> Result<()> {
            self.0.attach(route).await?;
            self.0.set_weights(&route.app, &Weights::all_to(route.version.clone())).await
        }
        async fn set_weights(&self, app: &AppName, weights: &Weights) -> Result<()> {
            self.0.set_weights(app, weights).await
        }
        async fn detach(&self, app: &AppName, version: &VersionId) -> Result<()> {
            self.0.set_weights(app, &Weights::default()).await?;
            self.0.detach(app, version).await
        }
        async fn routing(&self, app: &AppName) -> Result<RoutingState> {
            self.0.routing(app).await
        }
    }
}

fn failed_names(report: &pulse_deploy_core::conformance::ConformanceReport) -> Vec<&str> {
    report.failed().iter().map(|c| &*c.name).collect()
}

#[tokio::test]
async fn the_suites_catch_providers_that_break_the_rules() {
    let cluster = InMemoryCluster::new();
    let harness = InMemoryHarness::new(cluster.clone()).with_timeout(Duration::from_millis(500));
    let report = run_orchestrator_suite(&sloppy::Orch(cluster.orchestrator()), &harness).await;
    println!("{report}");
    assert_eq!(failed_names(&report), ["conflicting_release_is_rejected", "retire_is_idempotent"]);

    let report = run_router_suite(&sloppy::Router(cluster.router()), &harness).await;
    println!("{report}");
    let failed = failed_names(&report);
    assert!(failed.contains(&"attach_starts_at_weight_zero"), "{report}");
    assert!(failed.contains(&"detach_with_weight_is_refused"), "{report}");
}
