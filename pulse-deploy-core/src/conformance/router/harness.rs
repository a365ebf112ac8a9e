//! What the router suite needs from a provider's test setup: the [`RouterHarness`] (real upstreams,
//! requests through the router's public side) and the vocabulary of its requests and answers.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{AffinityMode, AppName, InstanceId, Result, Target, VersionId, VersionRoute};

/// How a request carries its version affinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AffinityCarrier {
    /// The version cookie ([`crate::affinity::VERSION_COOKIE`]).
    Cookie,
    /// The per-tab key, as header ([`crate::affinity::VERSION_HEADER`]) or query parameter.
    Key,
}

/// A request the suite asks the harness to send through the router's public side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// The path, e.g. `/` or `/_pulse/admin/drain`.
    pub path: String,
    /// The version affinity the client carries, and how.
    pub affinity: Option<(AffinityCarrier, VersionId)>,
    /// The instance the client is pinned to ([`crate::affinity::INSTANCE_COOKIE`]).
    pub pinned_instance: Option<InstanceId>,
}

impl Probe {
    /// A plain request for `/` without affinity.
    pub fn new() -> Self {
        Probe { path: "/".into(), affinity: None, pinned_instance: None }
    }

    /// The same request for another path.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The same request carrying the affinity of `version`.
    pub fn affinity(mut self, carrier: AffinityCarrier, version: VersionId) -> Self {
        self.affinity = Some((carrier, version));
        self
    }

    /// The same request pinned to `instance`.
    pub fn pinned_to(mut self, instance: InstanceId) -> Self {
        self.pinned_instance = Some(instance);
        self
    }
}

impl Default for Probe {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a request landed: the upstream that answered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Landing {
    /// The version that answered.
    pub version: VersionId,
    /// The instance that answered.
    pub instance: InstanceId,
}

/// The router's answer to a [`Probe`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// An upstream answered.
    Landed(Landing),
    /// The router answered itself with this HTTP status (404, 503, ...) without reaching an upstream.
    Refused {
        /// The HTTP status.
        status: u16,
    },
}

/// What the router suite needs from a provider's test setup beyond the [`TrafficRouter`] trait.
#[async_trait]
pub trait RouterHarness: Send + Sync {
    /// A fresh app name no other test uses (e.g. with a random suffix).
    fn unique_app(&self) -> AppName;

    /// Starts `replicas` upstreams of `app` at `version` that answer every request (any path) with their
    /// version and instance and pass their health check, and returns them as targets.
    async fn spawn_version(&self, app: &AppName, version: &VersionId, replicas: u32) -> Result<Vec<Target>>;

    /// The route attached for a spawned version (override for another health path).
    fn route(&self, app: &AppName, version: &VersionId, targets: Vec<Target>) -> VersionRoute {
        let mut targets = targets;
        targets.sort();
        VersionRoute {
            app: app.clone(),
            version: version.clone(),
            targets,
            health_path: crate::drain::wire::DEFAULT_HEALTH_PATH.into(),
            affinity: AffinityMode::CookieAndKey,
        }
    }

    /// Whether [`RouterHarness::request`] can send requests through the router.
    fn can_send_requests(&self) -> bool {
        true
    }

    /// Sends `probe` through the router's public side for `app` and reports who answered.
    async fn request(&self, app: &AppName, probe: &Probe) -> Result<Reply>;

    /// Whether [`RouterHarness::set_healthy`] can make an upstream fail its health check (an API emulator
    /// whose targets are always healthy cannot).
    fn can_control_health(&self) -> bool {
        true
    }

    /// Makes an upstream fail (`false`) or pass (`true`) its health check; it keeps answering requests.
    async fn set_healthy(&self, target: &Target, healthy: bool) -> Result<()>;

    /// Stops every upstream spawned for `app` (called after the router no longer routes to them).
    async fn cleanup(&self, app: &AppName) -> Result<()>;

    /// How long any eventual expectation may take (health checks, configuration propagation).
    fn timeout(&self) -> Duration;

    /// How often eventual expectations are polled.
    fn poll_interval(&self) -> Duration {
        Duration::from_millis(100)
    }
}
