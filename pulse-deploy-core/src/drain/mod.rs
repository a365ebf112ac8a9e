//! The drain protocol's deployer side: the wire types shared with servers ([`wire`]), the
//! [`DrainClient`] trait that delivers the drain signal to one instance and reads its status, the
//! identity check every answer passes ([`verified`]), and the helper that delivers the signal to EVERY
//! instance of a version and records each acknowledgement, with a bounded number of calls in flight
//! ([`DEFAULT_DRAIN_CONCURRENCY`]).
//!
//! The protocol itself is specified in `docs/drain-protocol.md`. Servers implement it with the
//! `pulse-server-drain` crate (Rust) or the Pulse plugin (Python).

mod bounded;
mod broadcast;
#[cfg(feature = "http-drain-client")]
mod http;
pub mod verified;
pub mod wire;

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

pub(crate) use bounded::in_order;
pub use bounded::DEFAULT_DRAIN_CONCURRENCY;
pub use broadcast::{drain_all, drain_all_bounded, DrainAck, DrainReport};
#[cfg(feature = "http-drain-client")]
pub use http::HttpDrainClient;
pub use wire::{DrainRequest, HealthBody, InstanceStatus, ServingState};

use crate::{Instance, Result};

/// Talks the drain protocol to one instance. Implementations hold the secret; none logs it.
///
/// Each call gets the whole [`Instance`] (its id and endpoint), not just an address: a client that
/// cannot reach the endpoint directly (a relay inside a private network) needs the id to find the
/// instance, and the engine refuses an answer that names another instance (see [`verified`], which the
/// engine calls instead of these methods). An instance without an endpoint is
/// [`crate::Error::Unavailable`] for a client that needs one.
#[async_trait]
pub trait DrainClient: Send + Sync + Debug {
    /// `POST /_pulse/admin/drain`: start draining (idempotent) with the given deadline, and return the
    /// instance's status after the call.
    async fn drain(&self, instance: &Instance, deadline: Duration) -> Result<InstanceStatus>;

    /// `GET /_pulse/admin/status`: the instance's state, sessions and deadline.
    async fn status(&self, instance: &Instance) -> Result<InstanceStatus>;

    /// `POST /_pulse/admin/undrain`: a `draining` instance goes back to `serving` (an instant rollback).
    /// A `drained` or `shutting_down` instance refuses with [`crate::Error::Conflict`]: it is replaced,
    /// never revived.
    async fn undrain(&self, instance: &Instance) -> Result<InstanceStatus>;
}
