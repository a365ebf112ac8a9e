//! Delivering the drain signal to every instance of a version, concurrently (a bounded number at once),
//! recording each answer.
//!
//! A signal sent once through a load balancer reaches one instance; this sends it to each instance's own
//! endpoint instead, and reports per instance whether it acknowledged.

use std::num::NonZeroUsize;
use std::time::Duration;

use super::{in_order, verified, DrainClient, InstanceStatus, DEFAULT_DRAIN_CONCURRENCY};
use crate::{Error, Instance, InstanceId};

/// One instance's answer to the drain signal.
#[derive(Debug)]
pub struct DrainAck {
    /// The instance.
    pub instance: InstanceId,
    /// Its status after the call, or why the call failed.
    pub result: Result<InstanceStatus, Error>,
}

/// The answers of every instance of a version.
#[derive(Debug, Default)]
pub struct DrainReport {
    /// One entry per instance the signal was sent to.
    pub acks: Vec<DrainAck>,
}

impl DrainReport {
    /// How many instances acknowledged (answered with a draining state).
    pub fn acknowledged(&self) -> usize {
        self.acks.iter().filter(|a| matches!(&a.result, Ok(s) if s.state.is_draining())).count()
    }

    /// True if every instance acknowledged.
    pub fn all_acknowledged(&self) -> bool {
        self.acknowledged() == self.acks.len()
    }

    /// The first error, if any instance failed.
    pub fn first_error(&self) -> Option<&Error> {
        self.acks.iter().find_map(|a| a.result.as_ref().err())
    }
}

/// Sends `POST /_pulse/admin/drain` to every live instance, concurrently with at most
/// [`DEFAULT_DRAIN_CONCURRENCY`] calls in flight, and checks that each answer names its instance
/// ([`verified`]). A failed instance is reported as such (the executor retries it on its next pass).
pub async fn drain_all(client: &dyn DrainClient, instances: &[Instance], deadline: Duration) -> DrainReport {
    drain_all_bounded(client, instances, deadline, DEFAULT_DRAIN_CONCURRENCY).await
}

/// [`drain_all`] with at most `limit` calls in flight. The acknowledgements follow the order of
/// `instances`.
pub async fn drain_all_bounded(
    client: &dyn DrainClient,
    instances: &[Instance],
    deadline: Duration,
    limit: NonZeroUsize,
) -> DrainReport {
    let calls: Vec<_> =
        instances.iter().filter(|i| i.is_live()).map(|instance| ack(client, instance, deadline)).collect();
    DrainReport { acks: in_order(calls, limit).await }
}

async fn ack(client: &dyn DrainClient, instance: &Instance, deadline: Duration) -> DrainAck {
    DrainAck { instance: instance.id.clone(), result: verified::drain(client, instance, deadline).await }
}
