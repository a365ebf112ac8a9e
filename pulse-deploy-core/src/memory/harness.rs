//! [`InMemoryHarness`]: the conformance harness of the in-memory providers — what the suite needs beyond the
//! provider traits (crashing an instance, spawning upstreams, sending requests), done on an
//! [`InMemoryCluster`].

use std::time::Duration;

use async_trait::async_trait;

use super::cluster::InMemoryCluster;
use crate::affinity::ADMIN_PATH_PREFIX;
use crate::conformance::{OrchestratorHarness, Probe, Reply, RouterHarness};
use crate::{AppName, Error, Instance, Orchestrator, Release, Result, Target, VersionId};

/// Runs the conformance suites on an [`InMemoryCluster`].
#[derive(Debug, Clone)]
pub struct InMemoryHarness {
    cluster: InMemoryCluster,
    timeout: Duration,
}

impl InMemoryHarness {
    /// A harness over `cluster`, with a 5 s timeout for eventual expectations.
    pub fn new(cluster: InMemoryCluster) -> Self {
        InMemoryHarness { cluster, timeout: Duration::from_secs(5) }
    }

    /// Changes the timeout for eventual expectations.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The cluster.
    pub fn cluster(&self) -> &InMemoryCluster {
        &self.cluster
    }

    fn release_of(app: &AppName, version: &VersionId, replicas: u32) -> Release {
        Release::builder(app.as_str(), version.as_str(), format!("memory/{app}:{version}"))
            .replicas(replicas)
            .build()
            .expect("app and version are already validated")
    }
}

/// True if `path`, once normalized as a lenient server would (percent-decoding, dot segments, repeated
/// slashes), names an admin endpoint.
fn is_admin_path(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                decoded.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let decoded = String::from_utf8_lossy(&decoded);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let normalized = format!("/{}", segments.join("/"));
    normalized == ADMIN_PATH_PREFIX || normalized.starts_with(&format!("{ADMIN_PATH_PREFIX}/"))
}

fn unique_app() -> AppName {
    AppName::new(format!("conf-{:08x}", rand::random::<u32>())).expect("a valid app name")
}

#[async_trait]
impl OrchestratorHarness for InMemoryHarness {
    fn unique_app(&self) -> AppName {
        unique_app()
    }

    fn release(&self, app: &AppName, version: &VersionId, replicas: u32) -> Release {
        Self::release_of(app, version, replicas)
    }

    async fn crash(&self, instance: &Instance) -> Result<()> {
        self.cluster.crash_instance(&instance.id);
        Ok(())
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(10)
    }
}

#[async_trait]
impl RouterHarness for InMemoryHarness {
    fn unique_app(&self) -> AppName {
        unique_app()
    }

    async fn spawn_version(&self, app: &AppName, version: &VersionId, replicas: u32) -> Result<Vec<Target>> {
        self.cluster.orchestrator().deploy(&Self::release_of(app, version, replicas)).await?;
        Ok(self.cluster.targets(app, version))
    }

    async fn request(&self, app: &AppName, probe: &Probe) -> Result<Reply> {
        if is_admin_path(&probe.path) {
            return Ok(Reply::Refused { status: 404 });
        }
        let affinity = probe.affinity.as_ref().map(|(_, version)| version);
        match self.cluster.route(app, affinity, probe.pinned_instance.as_ref()) {
            Ok(landing) => Ok(Reply::Landed(landing)),
            Err(Error::Unavailable { .. }) => Ok(Reply::Refused { status: 503 }),
            Err(e) => Err(e),
        }
    }

    async fn set_healthy(&self, target: &Target, healthy: bool) -> Result<()> {
        self.cluster.set_instance_healthy(&target.instance, healthy);
        Ok(())
    }

    async fn cleanup(&self, app: &AppName) -> Result<()> {
        let orchestrator = self.cluster.orchestrator();
        for state in orchestrator.versions(app).await? {
            orchestrator.retire(app, state.version()).await?;
            for instance in &state.instances {
                self.cluster.set_instance_healthy(&instance.id, true);
            }
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::admin_path_probes;

    #[test]
    fn admin_paths_are_recognised_however_spelled() {
        for path in admin_path_probes() {
            assert!(is_admin_path(&path), "{path}");
        }
        for path in ["/", "/health", "/_pulse/health", "/_pulse/administrator", "/app/_pulse/admin/../x"] {
            assert!(!is_admin_path(path), "{path}");
        }
    }
}
