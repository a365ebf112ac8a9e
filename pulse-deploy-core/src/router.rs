//! The [`TrafficRouter`] trait: splits new sessions between versions and keeps every client on the
//! version (and instance) that holds its session.

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{
    AffinityMode, AppName, Endpoint, Health, InstanceId, Release, Result, RouterCapabilities, VersionId,
    Weights,
};

/// One instance as a routing target.
///
/// A target is identified by its **endpoint**: that is what a router routes to and health-checks. The
/// engine matches targets to the orchestrator's instances by endpoint. `instance` is the orchestrator's
/// id as given to [`TrafficRouter::attach`]; a router that stores only addresses (the ALB keeps IP and
/// port) reports the endpoint's text (`host:port`) there instead, and nothing in the engine relies on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Target {
    /// The instance's id.
    pub instance: InstanceId,
    /// Where the router sends its traffic.
    pub endpoint: Endpoint,
}

/// Everything a router needs to route to one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRoute {
    /// The app.
    pub app: AppName,
    /// The version.
    pub version: VersionId,
    /// The instances to send traffic to (may be empty while the version starts).
    pub targets: Vec<Target>,
    /// The path the router health-checks.
    pub health_path: String,
    /// How clients are kept on this version.
    pub affinity: AffinityMode,
}

impl VersionRoute {
    /// The route for `release` with the given targets.
    pub fn for_release(release: &Release, mut targets: Vec<Target>) -> Self {
        targets.sort();
        VersionRoute {
            app: release.app.clone(),
            version: release.version.clone(),
            targets,
            health_path: release.health_path.clone(),
            affinity: release.affinity,
        }
    }
}

/// A target and its health as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealth {
    /// The target.
    pub target: Target,
    /// Its health.
    pub health: Health,
}

/// The router's view of one attached version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutedVersion {
    /// The route as attached.
    pub route: VersionRoute,
    /// Health per target.
    pub targets: Vec<TargetHealth>,
}

impl RoutedVersion {
    /// Number of targets passing their health check.
    pub fn healthy_targets(&self) -> usize {
        self.targets.iter().filter(|t| t.health == Health::Healthy).count()
    }
}

/// The router's view of one app.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RoutingState {
    /// The split of new sessions.
    pub weights: Weights,
    /// Attached versions.
    pub versions: BTreeMap<VersionId, RoutedVersion>,
}

/// Splits and pins traffic. Every method is idempotent.
///
/// Rules every implementation keeps (checked by [`crate::conformance`]):
/// - a client carrying the affinity of an attached version reaches that version, whatever its weight;
/// - a client carrying the affinity of a version that is not attached falls through to the weighted split;
/// - inside a version, a client stays on its instance while that instance is healthy;
/// - admin paths (`/_pulse/admin/...`) are never routed from the public side;
/// - attached versions are health-checked at weight 0.
#[async_trait]
pub trait TrafficRouter: Send + Sync + Debug {
    /// What this router can do.
    fn capabilities(&self) -> RouterCapabilities;

    /// Attaches a version, or updates its targets: afterwards clients with its affinity reach it, and its
    /// targets are health-checked. A newly attached version has weight 0.
    async fn attach(&self, route: &VersionRoute) -> Result<()>;

    /// Sets the weights of every version of the app in one atomic step. Every version with a weight above
    /// 0 must be attached; versions not named get 0.
    async fn set_weights(&self, app: &AppName, weights: &Weights) -> Result<()>;

    /// Detaches a version: its affinity no longer routes anywhere (clients fall through to the split).
    /// Its weight must already be 0. Detaching a version that is not attached succeeds.
    async fn detach(&self, app: &AppName, version: &VersionId) -> Result<()>;

    /// The current routing of `app`: weights, attached versions and target health.
    async fn routing(&self, app: &AppName) -> Result<RoutingState>;
}
