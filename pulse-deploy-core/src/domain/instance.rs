//! [`Instance`]: one running copy of a version (a container, an ECS task), as its orchestrator reports it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::VersionId;
use crate::Endpoint;

/// The provider's id of an instance (container id, task ARN). Also the id the instance reports in the
/// drain protocol, so the deployer matches acknowledgements to instances.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(pub String);

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstanceId({:?})", self.0)
    }
}

impl From<&str> for InstanceId {
    fn from(s: &str) -> Self {
        InstanceId(s.to_owned())
    }
}

/// Whether an instance passes its health check, as the router sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Not checked yet.
    Unknown,
    /// Passing.
    Healthy,
    /// Failing (draining with no session left, past its deadline, shutting down, or broken).
    Unhealthy,
}

/// Where an instance is in its own life, as its orchestrator reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// Created, process starting.
    Starting,
    /// The process runs.
    Running,
    /// SIGTERM sent; shutting down gracefully.
    Stopping,
    /// The process has exited (crashed, or stopped and not yet removed).
    Exited,
}

/// One instance of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The provider's id.
    pub id: InstanceId,
    /// The version it runs.
    pub version: VersionId,
    /// Its lifecycle state.
    pub state: InstanceState,
    /// Where the router and the deployer reach it (None until the provider knows).
    pub endpoint: Option<Endpoint>,
}

impl Instance {
    /// True while the process runs or starts (it may hold sessions).
    pub fn is_live(&self) -> bool {
        matches!(self.state, InstanceState::Starting | InstanceState::Running)
    }
}
