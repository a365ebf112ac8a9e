//! Delivering the drain signal to every instance of a version, concurrently, recording each answer.
//!
//! A signal sent once through a load balancer reaches one instance; this sends it to each instance's own
//! endpoint instead, and reports per instance whether it acknowledged.

use std::time::Duration;

use futures::future::join_all;

use super::{verified, DrainClient, InstanceStatus};
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

/// Sends `POST /_pulse/admin/drain` to every live instance, concurrently, and checks that each answer
/// names its instance ([`verified`]). A failed instance is reported as such (the executor retries it on
/// its next pass).
pub async fn drain_all(client: &dyn DrainClient, instances: &[Instance], deadline: Duration) -> DrainReport {
    let calls = instances.iter().filter(|i| i.is_live()).map(|instance| async move {
        let result = verified::drain(client, instance, deadline).await;
        DrainAck { instance: instance.id.clone(), result }
    });
    DrainReport { acks: join_all(calls).await }
}
