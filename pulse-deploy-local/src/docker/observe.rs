//! Reading state back from Docker: a listed container becomes a [`ManagedContainer`], and the containers
//! of an app group into the [`VersionState`]s the [`pulse_deploy_core::Orchestrator`] reports.
//!
//! Pure functions over Engine API list entries; no I/O here.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use pulse_deploy_core::{
    Endpoint, Instance, InstanceId, InstanceState, Release, Result, VersionId, VersionState,
};

use super::labels::{self, RetireMark};

/// The host address instance ports are published on. Never 0.0.0.0: instances are reached from this
/// machine only.
pub(super) const PUBLISH_HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// One container created by pulse-deploy, as read back from a container list.
#[derive(Debug, Clone)]
pub(super) struct ManagedContainer {
    /// Docker's container id.
    pub docker_id: String,
    /// The instance id (from its label).
    pub instance: InstanceId,
    /// The release stored with it.
    pub release: Release,
    /// When its version was created.
    pub version_created_at: SystemTime,
    /// When this container was created (whole seconds, as the Engine lists it).
    pub created: SystemTime,
    /// Docker's state of the container.
    pub state: ContainerSummaryStateEnum,
    /// The retiring mark its name carries (None: not retiring).
    pub retire_mark: Option<RetireMark>,
    /// Where it is reached, once its port is published.
    pub endpoint: Option<Endpoint>,
}

impl ManagedContainer {
    /// Reads a listed container; `Err` when its labels are unusable (the caller logs and skips it).
    pub(super) fn from_summary(c: &ContainerSummary) -> Result<Self> {
        let docker_id = c.id.clone().unwrap_or_default();
        let name = c.names.as_ref().and_then(|n| n.first()).map(|n| n.trim_start_matches('/').to_owned());
        let name_for_errors = name.clone().unwrap_or_else(|| docker_id.clone());
        let empty = Default::default();
        let labels = c.labels.as_ref().unwrap_or(&empty);
        let release = labels::decode_release(labels, &name_for_errors)?;
        let instance = labels
            .get(labels::INSTANCE)
            .map(|s| InstanceId(s.clone()))
            .unwrap_or_else(|| InstanceId(name_for_errors.clone()));
        let created = UNIX_EPOCH + Duration::from_secs(c.created.unwrap_or(0).max(0) as u64);
        let version_created_at = labels::decode_created_at(labels).unwrap_or(created);
        let endpoint = c.ports.iter().flatten().find_map(|p| {
            let host_ok = p.ip.as_deref().is_some_and(|ip| ip == PUBLISH_HOST.to_string());
            match (p.private_port == release.port && host_ok, p.public_port) {
                (true, Some(public)) if public != 0 => Some(Endpoint::new(PUBLISH_HOST.to_string(), public)),
                _ => None,
            }
        });
        Ok(ManagedContainer {
            docker_id,
            instance,
            release,
            version_created_at,
            created,
            state: c.state.unwrap_or(ContainerSummaryStateEnum::EMPTY),
            retire_mark: name.as_deref().and_then(labels::retire_mark),
            endpoint,
        })
    }

    /// True while the process runs, starts or could start (created but not yet started).
    pub(super) fn is_live(&self) -> bool {
        matches!(
            self.state,
            ContainerSummaryStateEnum::CREATED
                | ContainerSummaryStateEnum::RUNNING
                | ContainerSummaryStateEnum::RESTARTING
                | ContainerSummaryStateEnum::PAUSED
        )
    }

    /// True when a process runs in it (it can receive a signal).
    pub(super) fn has_process(&self) -> bool {
        matches!(
            self.state,
            ContainerSummaryStateEnum::RUNNING
                | ContainerSummaryStateEnum::RESTARTING
                | ContainerSummaryStateEnum::PAUSED
                | ContainerSummaryStateEnum::STOPPING
        )
    }

    /// The instance as the core reports it.
    ///
    /// A container that was created and never started (a deploy interrupted between its create and its
    /// start call: `docker start` returns once the container runs, so nothing else leaves one) reads as
    /// `Exited`: nothing would ever start it, and reported as `Starting` it would count as a live replica,
    /// the planner would wait for its health and never ask for the deploy that starts it (seen: a deployer
    /// SIGKILLed as it began `deploy v2`, and the next run waiting on v2 for good). As `Exited` it is a
    /// missing replica: the planner deploys, and [`Orchestrator::deploy`] starts it (and creates nothing
    /// more, since it counts created containers as live).
    ///
    /// [`Orchestrator::deploy`]: pulse_deploy_core::Orchestrator::deploy
    pub(super) fn to_instance(&self) -> Instance {
        let state = match (self.state, self.retire_mark.is_some()) {
            (
                ContainerSummaryStateEnum::EXITED
                | ContainerSummaryStateEnum::DEAD
                | ContainerSummaryStateEnum::REMOVING
                | ContainerSummaryStateEnum::CREATED,
                _,
            ) => InstanceState::Exited,
            (_, true) => InstanceState::Stopping,
            (ContainerSummaryStateEnum::STOPPING, false) => InstanceState::Stopping,
            (ContainerSummaryStateEnum::RUNNING | ContainerSummaryStateEnum::PAUSED, false) => {
                InstanceState::Running
            }
            (_, false) => InstanceState::Starting,
        };
        let endpoint = if state == InstanceState::Exited { None } else { self.endpoint.clone() };
        Instance { id: self.instance.clone(), version: self.release.version.clone(), state, endpoint }
    }
}

/// Reads every listed container, logging and skipping those whose labels are unusable.
pub(super) fn read_all(list: &[ContainerSummary]) -> Vec<ManagedContainer> {
    list.iter()
        .filter_map(|c| match ManagedContainer::from_summary(c) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(container = ?c.names, error = %e, "skipping a pulse-deploy container with unusable labels");
                None
            }
        })
        .collect()
}

/// Groups an app's containers into versions, ordered by creation (then version id). A version is
/// retiring once any of its containers carries the retiring mark.
pub(super) fn group_versions(containers: &[ManagedContainer]) -> Vec<VersionState> {
    let mut by_version: BTreeMap<VersionId, Vec<&ManagedContainer>> = BTreeMap::new();
    for c in containers {
        by_version.entry(c.release.version.clone()).or_default().push(c);
    }
    let mut versions: Vec<VersionState> = by_version
        .into_values()
        .map(|cs| {
            let oldest = cs.iter().min_by_key(|c| c.version_created_at).copied().unwrap_or(cs[0]);
            let mut instances: Vec<Instance> = cs.iter().map(|c| c.to_instance()).collect();
            instances.sort_by(|a, b| a.id.cmp(&b.id));
            VersionState {
                release: oldest.release.clone(),
                created_at: oldest.version_created_at,
                retiring: cs.iter().any(|c| c.retire_mark.is_some()),
                instances,
            }
        })
        .collect();
    versions.sort_by(|a, b| (a.created_at, a.version()).cmp(&(b.created_at, b.version())));
    versions
}

#[cfg(test)]
mod tests {
    use bollard::models::{PortSummary, PortSummaryTypeEnum};

    use super::*;

    fn summary(
        release: &Release,
        name: &str,
        state: ContainerSummaryStateEnum,
        created_ms: u64,
    ) -> ContainerSummary {
        let id = InstanceId(name.split('.').next().unwrap().to_owned());
        let labels =
            labels::instance_labels(release, &id, UNIX_EPOCH + Duration::from_millis(created_ms)).unwrap();
        ContainerSummary {
            id: Some(format!("id-{name}")),
            names: Some(vec![format!("/{name}")]),
            labels: Some(labels),
            state: Some(state),
            created: Some((created_ms / 1000) as i64),
            ports: Some(vec![
                PortSummary {
                    ip: Some("127.0.0.1".into()),
                    private_port: release.port,
                    public_port: Some(49153),
                    typ: Some(PortSummaryTypeEnum::TCP),
                },
                PortSummary { ip: None, private_port: 9999, public_port: None, typ: None },
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn groups_orders_and_marks_retiring() {
        let v1 = Release::builder("shop", "v1", "shop:v1").build().unwrap();
        let v2 = Release::builder("shop", "v2", "shop:v2").build().unwrap();
        let list = vec![
            summary(&v2, "pulse-shop-v2-aaaaaa", ContainerSummaryStateEnum::RUNNING, 2_000_500),
            summary(
                &v1,
                "pulse-shop-v1-bbbbbb.sigterm-3000000",
                ContainerSummaryStateEnum::RUNNING,
                2_000_100,
            ),
            summary(&v1, "pulse-shop-v1-cccccc", ContainerSummaryStateEnum::EXITED, 2_000_100),
        ];
        let versions = group_versions(&read_all(&list));
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0].version().as_str(), "v1", "ordered by creation, at millisecond precision");
        assert!(versions[0].retiring);
        assert!(!versions[1].retiring);
        assert_eq!(versions[0].release, v1);
        let states: Vec<_> = versions[0].instances.iter().map(|i| (i.id.0.as_str(), i.state)).collect();
        assert_eq!(
            states,
            vec![
                ("pulse-shop-v1-bbbbbb", InstanceState::Stopping),
                ("pulse-shop-v1-cccccc", InstanceState::Exited)
            ]
        );
        assert_eq!(versions[1].instances[0].endpoint, Some(Endpoint::new("127.0.0.1", 49153)));
        assert_eq!(versions[0].instances[1].endpoint, None, "an exited instance has no endpoint");
    }

    #[test]
    fn unusable_labels_are_skipped() {
        let v1 = Release::builder("shop", "v1", "shop:v1").build().unwrap();
        let mut bad = summary(&v1, "pulse-shop-v1-dddddd", ContainerSummaryStateEnum::RUNNING, 1);
        bad.labels.as_mut().unwrap().insert(labels::RELEASE.into(), "nope".into());
        let ok = summary(&v1, "pulse-shop-v1-eeeeee", ContainerSummaryStateEnum::CREATED, 1);
        let read = read_all(&[bad, ok]);
        assert_eq!(read.len(), 1);
        assert!(read[0].is_live() && !read[0].has_process());
        assert_eq!(
            read[0].to_instance().state,
            InstanceState::Exited,
            "never started: a missing replica that the next deploy starts"
        );
    }
}
