//! The conformance suite every provider runs: in-memory now, local (Docker + Envoy) and AWS next.
//!
//! The suite is a set of public async check functions over `&dyn Orchestrator` ([`orchestrator`]) and
//! `&dyn TrafficRouter` ([`router`]), each listed once in [`ORCHESTRATOR_CHECKS`] / [`ROUTER_CHECKS`]
//! (name, order, function), plus [`run_orchestrator_suite`] and [`run_router_suite`] that run them all and return a
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

pub mod orchestrator;
mod report;
pub mod router;
mod suite;
mod wait;

pub use orchestrator::{
    run_orchestrator_suite, OrchestratorCheckFn, OrchestratorHarness, ORCHESTRATOR_CHECKS,
};
pub use report::{CheckFailure, CheckOutcome, CheckResult, CheckStatus, ConformanceReport, Verdict};
pub use router::{
    admin_path_probes, run_router_suite, AffinityCarrier, Landing, Probe, Reply, RouterCheckFn,
    RouterHarness, ROUTER_CHECKS,
};
pub use suite::{names, run_suite, Check, CheckFuture};
