//! The conformance suite every provider runs: in-memory now, local (Docker + Envoy) and AWS next.
//!
//! The suite is a set of public async check functions over `&dyn Orchestrator` and `&dyn TrafficRouter`,
//! plus [`run_orchestrator_suite`] and [`run_router_suite`] that run them all and return a
//! [`ConformanceReport`] (which checks ran, passed, were skipped, and why any failed). What a check cannot
//! do through the traits — crash an instance, start upstreams, send a request through the router's public
//! side — it asks of a harness the provider's tests supply ([`OrchestratorHarness`], [`RouterHarness`]).
//!
//! Rules the checks follow, so they run against slow, real platforms as well as in memory:
//! - every expectation about provider state is polled against the harness's timeout, never awaited with a
//!   fixed sleep;
//! - each check works in its own uniquely named app and cleans it up, even when it fails;
//! - a capability the provider lacks ([`crate::OrchestratorCapabilities`], [`crate::RouterCapabilities`])
//!   or a harness that cannot send requests turns the checks that need it into skips — an argument, never a
//!   fork of the suite.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use pulse_deploy_core::conformance::{run_orchestrator_suite, run_router_suite};
//! use pulse_deploy_core::memory::{InMemoryCluster, InMemoryHarness};
//!
//! let cluster = InMemoryCluster::new();
//! let harness = InMemoryHarness::new(cluster.clone());
//! run_orchestrator_suite(cluster.orchestrator().as_ref(), &harness).await.assert_passed();
//! run_router_suite(cluster.router().as_ref(), &harness).await.assert_passed();
//! # });
//! ```

mod orchestrator;
mod report;
mod router;
mod wait;

pub use orchestrator::{
    apps_are_isolated as orchestrator_apps_are_isolated, conflicting_release_is_rejected,
    crashed_instance_is_replaced, deploy_creates_the_replicas, deploy_is_idempotent,
    invalid_release_is_rejected, release_reads_back_unchanged, retire_is_idempotent,
    retire_removes_the_version_gracefully, run_orchestrator_suite, versions_are_ordered_by_creation,
    OrchestratorHarness, ORCHESTRATOR_CHECKS,
};
pub use report::{CheckFailure, CheckOutcome, CheckResult, CheckStatus, ConformanceReport, Verdict};
pub use router::{
    admin_path_probes, admin_paths_are_not_routed, affinity_to_detached_version_falls_through,
    affinity_to_weight_zero_version_is_honoured, apps_are_isolated as router_apps_are_isolated,
    attach_starts_at_weight_zero, attach_updates_targets, detach_is_idempotent,
    detach_with_weight_is_refused, health_is_reported_at_weight_zero, instance_pinning_follows_health,
    invalid_weights_are_refused, run_router_suite, too_many_weighted_versions_are_refused,
    weights_apply_atomically, AffinityCarrier, Landing, Probe, Reply, RouterHarness, ROUTER_CHECKS,
};
