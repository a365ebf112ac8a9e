//! The [`Orchestrator`] trait: runs the instances of each version of an app.
//!
//! The orchestrator is the source of truth for what runs: everything the engine needs after a restart
//! (the release of each version, its instances, whether it is being retired, when it was created) is
//! read back from the provider, never kept only in the deployer's memory.

use std::fmt::Debug;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{AppName, Instance, OrchestratorCapabilities, Release, Result, VersionId};

/// What the orchestrator runs for one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionState {
    /// The release, as stored with the version.
    pub release: Release,
    /// When the version was first created (durable: it survives deployer restarts).
    pub created_at: SystemTime,
    /// True once `retire` was called: the version is on its way out and no instance is replaced.
    pub retiring: bool,
    /// Its instances, including exited ones not yet removed.
    pub instances: Vec<Instance>,
}

impl VersionState {
    /// The version id.
    pub fn version(&self) -> &VersionId {
        &self.release.version
    }

    /// Instances that run or start.
    pub fn live_instances(&self) -> impl Iterator<Item = &Instance> {
        self.instances.iter().filter(|i| i.is_live())
    }
}

/// Runs versions. Every method is idempotent: calling it again after a success, a failure or a crash of
/// the caller converges to the same state and creates nothing twice.
///
/// Implement it for a new platform and run [`crate::conformance`] against it.
#[async_trait]
pub trait Orchestrator: Send + Sync + Debug {
    /// What this orchestrator can do.
    fn capabilities(&self) -> OrchestratorCapabilities;

    /// Ensures `release` runs with `release.replicas` live instances: creates the version if it does not
    /// exist, replaces crashed instances of a version that is not retiring, does nothing to a retiring
    /// version. Returns without waiting for instances to become healthy.
    ///
    /// If the version exists with a different release (same app and version id, other image or settings),
    /// returns [`crate::Error::Conflict`]: a version id names one immutable release.
    async fn deploy(&self, release: &Release) -> Result<()>;

    /// Every version of `app` this orchestrator runs, including retiring ones, ordered by creation.
    async fn versions(&self, app: &AppName) -> Result<Vec<VersionState>>;

    /// Retires a version gracefully: marks it retiring (durably), sends SIGTERM to each instance, allows
    /// `release.stop_grace` before SIGKILL, and removes the instances and the version's resources.
    /// May return before removal finishes; the engine calls it again until [`Orchestrator::versions`] no
    /// longer lists the version. Retiring a version that does not exist succeeds.
    async fn retire(&self, app: &AppName, version: &VersionId) -> Result<()>;
}
