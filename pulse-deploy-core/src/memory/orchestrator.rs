//! [`InMemoryOrchestrator`]: the reference [`Orchestrator`].
//!
//! What a real provider must do, shown without a platform in the way:
//! - `deploy` validates the release before creating anything, refuses a different release under an existing
//!   version id, creates the missing instances (replacing exited ones) and never touches a retiring version;
//! - `versions` reads everything back from the provider's state, including `created_at` and `retiring`;
//! - `retire` marks the version retiring first (durably), then sends SIGTERM to every live instance; the
//!   version stays listed until its last instance has exited.

use std::time::SystemTime;

use async_trait::async_trait;

use super::cluster::InMemoryCluster;
use super::world::{InstanceRecord, VersionRecord, World};
use crate::{
    AppName, Endpoint, Error, InstanceId, Orchestrator, OrchestratorCapabilities, Release, Result, VersionId,
    VersionState,
};

/// The in-memory [`Orchestrator`]. Get one from [`InMemoryCluster::orchestrator`].
#[derive(Debug, Clone)]
pub struct InMemoryOrchestrator {
    cluster: InMemoryCluster,
}

impl InMemoryOrchestrator {
    pub(super) fn new(cluster: InMemoryCluster) -> Self {
        InMemoryOrchestrator { cluster }
    }

    /// The cluster this orchestrator runs on.
    pub fn cluster(&self) -> &InMemoryCluster {
        &self.cluster
    }
}

fn new_instance(world: &mut World, release: &Release, now: SystemTime) -> InstanceRecord {
    let n = world.next_number();
    let record = InstanceRecord {
        id: InstanceId(format!("{}-{}-{n}", release.app, release.version)),
        endpoint: Endpoint::new(format!("mem-{n}"), release.port),
        created_at: now,
        drain: None,
        sigterm_at: None,
        stop_at: None,
        exited: false,
    };
    world.register(&release.app, &release.version, &record);
    record
}

#[async_trait]
impl Orchestrator for InMemoryOrchestrator {
    fn capabilities(&self) -> OrchestratorCapabilities {
        OrchestratorCapabilities::new("memory")
    }

    async fn deploy(&self, release: &Release) -> Result<()> {
        release.validate()?;
        let now = self.cluster.now();
        let mut world = self.cluster.locked_at(now);
        let existing = world.version(&release.app, &release.version).map(|v| (v.release.clone(), v.retiring));
        match existing {
            Some((stored, _)) if &stored != release => Err(Error::Conflict {
                message: format!(
                    "version {} of app {} already runs another release (image `{}`); a version id names one \
                     immutable release: deploy under a new version id",
                    release.version, release.app, stored.image
                ),
            }),
            Some((_, true)) => Ok(()),
            Some((_, false)) => {
                let live = world
                    .version(&release.app, &release.version)
                    .map_or(0, |v| v.instances.iter().filter(|i| !i.exited).count());
                let missing = (release.replicas as usize).saturating_sub(live);
                let fresh: Vec<InstanceRecord> =
                    (0..missing).map(|_| new_instance(&mut world, release, now)).collect();
                let version = world
                    .apps
                    .get_mut(&release.app)
                    .and_then(|a| a.versions.iter_mut().find(|v| v.release.version == release.version))
                    .expect("the version was just found");
                version.instances.retain(|i| !i.exited);
                if !fresh.is_empty() {
                    tracing::debug!(app = %release.app, version = %release.version, replaced = fresh.len(),
                        "in-memory orchestrator: replacing exited instances");
                }
                version.instances.extend(fresh);
                Ok(())
            }
            None => {
                let instances: Vec<InstanceRecord> =
                    (0..release.replicas).map(|_| new_instance(&mut world, release, now)).collect();
                tracing::debug!(app = %release.app, version = %release.version, replicas = release.replicas,
                    "in-memory orchestrator: version created");
                world.apps.entry(release.app.clone()).or_default().versions.push(VersionRecord {
                    release: release.clone(),
                    created_at: now,
                    retiring: false,
                    instances,
                });
                Ok(())
            }
        }
    }

    async fn versions(&self, app: &AppName) -> Result<Vec<VersionState>> {
        let now = self.cluster.now();
        let world = self.cluster.locked_at(now);
        Ok(world
            .apps
            .get(app)
            .map(|a| a.versions.iter().map(|v| world.version_view(v, now)).collect())
            .unwrap_or_default())
    }

    async fn retire(&self, app: &AppName, version: &VersionId) -> Result<()> {
        let now = self.cluster.now();
        let mut world = self.cluster.locked_at(now);
        let shutdown_time = world.config.shutdown_time;
        let Some(record) = world
            .apps
            .get_mut(app)
            .and_then(|a| a.versions.iter_mut().find(|v| &v.release.version == version))
        else {
            return Ok(());
        };
        if !record.retiring {
            tracing::debug!(%app, %version, "in-memory orchestrator: retiring version");
        }
        record.retiring = true;
        let stop_after = shutdown_time.min(record.release.stop_grace);
        let mut signalled = false;
        for instance in record.instances.iter_mut().filter(|i| !i.exited && i.sigterm_at.is_none()) {
            instance.sigterm_at = Some(now);
            instance.stop_at = Some(now + stop_after);
            signalled = true;
        }
        if signalled {
            world.stop_due(now + stop_after);
        }
        world.advance(now);
        Ok(())
    }
}
