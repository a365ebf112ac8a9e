//! The drain protocol's deployer side: the wire types shared with servers ([`wire`]), the
//! [`DrainClient`] trait that delivers the drain signal to one instance and reads its status, and the
//! helper that delivers it to EVERY instance of a version and records each acknowledgement.
//!
//! The protocol itself is specified in `docs/drain-protocol.md`. Servers implement it with the
//! `pulse-server-drain` crate (Rust) or the Pulse plugin (Python).

mod broadcast;
#[cfg(feature = "http-drain-client")]
mod http;
pub mod wire;

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

pub use broadcast::{drain_all, DrainAck, DrainReport};
#[cfg(feature = "http-drain-client")]
pub use http::HttpDrainClient;
pub use wire::{DrainRequest, HealthBody, InstanceStatus, ServingState};

use crate::{Endpoint, Result};

/// Talks the drain protocol to one instance. Implementations hold the secret; none logs it.
#[async_trait]
pub trait DrainClient: Send + Sync + Debug {
    /// `POST /_pulse/admin/drain`: start draining (idempotent) with the given deadline, and return the
    /// instance's status after the call.
    async fn drain(&self, endpoint: &Endpoint, deadline: Duration) -> Result<InstanceStatus>;

    /// `GET /_pulse/admin/status`: the instance's state, sessions and deadline.
    async fn status(&self, endpoint: &Endpoint) -> Result<InstanceStatus>;
}
