//! [`Observed`]: one snapshot of an app as the providers report it — the planner's only input about the
//! world. Built by the executor from `Orchestrator::versions`, `TrafficRouter::routing` and the drain
//! status of every live instance.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::drain::InstanceStatus;
use crate::{AppName, Health, Instance, InstanceId, RoutingState, VersionId, VersionState};

/// What the deployer learned from one instance's status endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceReport {
    /// The instance answered.
    Status(InstanceStatus),
    /// It could not be asked (no endpoint, refused, timed out); the message says why.
    Unreachable(String),
}

/// One version as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedVersion {
    /// What the orchestrator runs.
    pub state: VersionState,
    /// The drain-protocol status of each live instance.
    pub reports: BTreeMap<InstanceId, InstanceReport>,
}

impl ObservedVersion {
    /// The version id.
    pub fn id(&self) -> &VersionId {
        &self.state.release.version
    }

    /// Live instances (starting or running).
    pub fn live(&self) -> impl Iterator<Item = &Instance> {
        self.state.live_instances()
    }

    /// The status an instance reported, if it answered.
    pub fn status(&self, instance: &InstanceId) -> Option<&InstanceStatus> {
        match self.reports.get(instance) {
            Some(InstanceReport::Status(s)) => Some(s),
            _ => None,
        }
    }

    /// Sessions reported by the instances that answered.
    pub fn known_sessions(&self) -> u64 {
        self.reports
            .values()
            .filter_map(|r| match r {
                InstanceReport::Status(s) => Some(s.active_sessions),
                InstanceReport::Unreachable(_) => None,
            })
            .sum()
    }
}

/// A snapshot of one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The app.
    pub app: AppName,
    /// When the snapshot was taken.
    pub at: SystemTime,
    /// Versions the orchestrator runs, oldest first.
    pub versions: Vec<ObservedVersion>,
    /// The router's view.
    pub routing: RoutingState,
}

impl Observed {
    /// The observed version with this id.
    pub fn version(&self, id: &VersionId) -> Option<&ObservedVersion> {
        self.versions.iter().find(|v| v.id() == id)
    }

    /// The current weight of a version.
    pub fn weight(&self, id: &VersionId) -> u32 {
        self.routing.weights.get(id)
    }

    /// Whether the router has the version attached.
    pub fn attached(&self, id: &VersionId) -> bool {
        self.routing.versions.contains_key(id)
    }

    /// The router's health for one instance of a version (Unknown if not a target).
    ///
    /// Routers see addresses, orchestrators see ids: a target is matched to the instance by the
    /// instance's endpoint (see [`crate::Target`]), so a router that knows only IP and port (the ALB)
    /// reports health the engine can use.
    pub fn health(&self, version: &VersionId, instance: &InstanceId) -> Health {
        let Some(endpoint) = self
            .version(version)
            .and_then(|v| v.state.instances.iter().find(|i| &i.id == instance))
            .and_then(|i| i.endpoint.as_ref())
        else {
            return Health::Unknown;
        };
        self.routing
            .versions
            .get(version)
            .and_then(|rv| rv.targets.iter().find(|t| &t.target.endpoint == endpoint))
            .map(|t| t.health)
            .unwrap_or(Health::Unknown)
    }

    /// Live instances of a version that the router reports healthy.
    pub fn healthy_instances(&self, v: &ObservedVersion) -> usize {
        v.live().filter(|i| self.health(v.id(), &i.id) == Health::Healthy).count()
    }
}
