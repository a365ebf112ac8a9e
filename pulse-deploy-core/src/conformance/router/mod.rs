//! The router suite: checks every [`TrafficRouter`] must pass, and the [`RouterHarness`] a provider
//! supplies: real upstreams that answer with their version and instance, and a client that sends requests
//! through the router's public side.
//!
//! Checks that send requests are skipped when the harness cannot send any
//! ([`RouterHarness::can_send_requests`], e.g. a cloud API emulator without a data plane); checks of
//! optional features are skipped when the router's [`crate::RouterCapabilities`] say it lacks them.

mod admin;
mod affinity;
mod harness;
mod lifecycle;
mod support;
mod weights;

use super::report::ConformanceReport;
use super::suite::{run_suite, suite, CheckFuture};
use crate::TrafficRouter;

pub use admin::{admin_path_probes, admin_paths_are_not_routed};
pub use affinity::{
    affinity_to_detached_version_falls_through, affinity_to_weight_zero_version_is_honoured,
    instance_pinning_follows_health,
};
pub use harness::{AffinityCarrier, Landing, Probe, Reply, RouterHarness};
pub use lifecycle::{
    attach_starts_at_weight_zero, attach_updates_targets, detach_is_idempotent,
    detach_with_weight_is_refused, health_is_reported_at_weight_zero,
};
pub use weights::{
    apps_are_isolated, invalid_weights_are_refused, too_many_weighted_versions_are_refused,
    weights_apply_atomically,
};

/// The function of one router check.
pub type RouterCheckFn =
    for<'a> fn(&'a (dyn TrafficRouter + 'a), &'a (dyn RouterHarness + 'a)) -> CheckFuture<'a>;

suite!(
    /// The checks of the router suite, in the order [`run_router_suite`] runs them
    /// (the one list of them: names, order and functions).
    ROUTER_CHECKS: RouterCheckFn;
    attach_starts_at_weight_zero,
    attach_updates_targets,
    health_is_reported_at_weight_zero,
    weights_apply_atomically,
    invalid_weights_are_refused,
    too_many_weighted_versions_are_refused,
    affinity_to_weight_zero_version_is_honoured,
    affinity_to_detached_version_falls_through,
    instance_pinning_follows_health,
    detach_with_weight_is_refused,
    detach_is_idempotent,
    admin_paths_are_not_routed,
    apps_are_isolated,
);

/// Runs every router check and reports which ran and which passed. Checks turned off by a capability or
/// by the harness are reported as skipped.
pub async fn run_router_suite(router: &dyn TrafficRouter, harness: &dyn RouterHarness) -> ConformanceReport {
    let provider = router.capabilities().provider;
    run_suite("router", provider, ROUTER_CHECKS, |run| run(router, harness)).await
}
