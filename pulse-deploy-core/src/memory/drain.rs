//! [`InMemoryDrainClient`]: the drain protocol spoken to the in-memory instances, addressed by endpoint
//! like the HTTP client.
//!
//! It models the server side of `docs/drain-protocol.md`: the drain signal is idempotent and keeps the
//! earlier deadline; a draining instance reports `drained` once it holds no session or its deadline has
//! passed (and then fails its health check); an instance shutting down reports `shutting_down`; an
//! unknown or exited instance cannot be reached.

use std::time::Duration;

use async_trait::async_trait;

use super::cluster::InMemoryCluster;
use super::world::DrainMark;
use crate::drain::{wire, DrainClient, InstanceStatus, ServingState};
use crate::{Endpoint, Error, Instance, Result};

/// The in-memory [`DrainClient`]. Get one from [`InMemoryCluster::drain_client`].
#[derive(Debug, Clone)]
pub struct InMemoryDrainClient {
    cluster: InMemoryCluster,
}

impl InMemoryDrainClient {
    pub(super) fn new(cluster: InMemoryCluster) -> Self {
        InMemoryDrainClient { cluster }
    }

    /// The cluster whose instances this client reaches.
    pub fn cluster(&self) -> &InMemoryCluster {
        &self.cluster
    }
}

fn endpoint_of(instance: &Instance) -> Result<&Endpoint> {
    instance.endpoint.as_ref().ok_or_else(|| Error::Unavailable {
        what: format!("instance {}", instance.id),
        message: "it has no endpoint yet".into(),
    })
}

fn unreachable(endpoint: &Endpoint) -> Error {
    Error::Unavailable {
        what: format!("instance at {endpoint}"),
        message: "no running in-memory instance listens there (unknown, or exited)".into(),
    }
}

#[async_trait]
impl DrainClient for InMemoryDrainClient {
    async fn drain(&self, instance: &Instance, deadline: Duration) -> Result<InstanceStatus> {
        let endpoint = endpoint_of(instance)?;
        let now = self.cluster.now();
        let mut world = self.cluster.locked_at(now);
        let id =
            world.instance_at(endpoint).map(|(_, _, i)| i.id.clone()).ok_or_else(|| unreachable(endpoint))?;
        let deadline = now + Duration::from_secs(wire::deadline::wire_secs(deadline));
        if let Some(instance) = world.instance_mut(&id) {
            instance.drain = Some(match instance.drain {
                Some(mark) => DrainMark {
                    since: mark.since,
                    deadline: wire::deadline::keep_earlier(Some(mark.deadline), deadline),
                },
                None => DrainMark { since: now, deadline },
            });
        }
        let (_, version, instance) = world.instance_at(endpoint).ok_or_else(|| unreachable(endpoint))?;
        Ok(world.instance_status(version, instance, now))
    }

    async fn status(&self, instance: &Instance) -> Result<InstanceStatus> {
        let endpoint = endpoint_of(instance)?;
        let now = self.cluster.now();
        let world = self.cluster.locked_at(now);
        let (_, version, instance) = world.instance_at(endpoint).ok_or_else(|| unreachable(endpoint))?;
        Ok(world.instance_status(version, instance, now))
    }

    async fn undrain(&self, instance: &Instance) -> Result<InstanceStatus> {
        let endpoint = endpoint_of(instance)?;
        let now = self.cluster.now();
        let mut world = self.cluster.locked_at(now);
        let (_, _, record) = world.instance_at(endpoint).ok_or_else(|| unreachable(endpoint))?;
        let state = world.serving_state(record, now);
        if matches!(state, ServingState::Drained | ServingState::ShuttingDown) {
            return Err(Error::Conflict {
                message: format!(
                    "instance at {endpoint} is {state:?}: a drained or shutting-down instance is replaced, never revived"
                ),
            });
        }
        let id = record.id.clone();
        if let Some(record) = world.instance_mut(&id) {
            record.drain = None;
        }
        let (_, version, record) = world.instance_at(endpoint).ok_or_else(|| unreachable(endpoint))?;
        Ok(world.instance_status(version, record, now))
    }
}
