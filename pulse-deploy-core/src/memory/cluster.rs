//! [`InMemoryCluster`]: the shared in-memory world behind the in-memory providers, and the test controls
//! that act on it from outside the provider traits (crashes, broken versions, failing health checks).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::drain::InMemoryDrainClient;
use super::orchestrator::InMemoryOrchestrator;
use super::router::{InMemoryRouter, WeightChange};
use super::world::{EndKind, World};
use crate::clock::{Clock, TokioClock};
use crate::{AppName, InstanceId, Target, VersionId};

/// A simulated platform: an orchestrator running instances, a router splitting and pinning sessions, and
/// the instances' drain endpoints, all over one shared state. Cheap to clone; clones share the state.
///
/// Time comes from a [`Clock`] (by default a [`TokioClock`], virtual under `tokio::time::pause()`), so
/// startup times, shutdown times and drain deadlines follow the test's clock. Random choices (the weighted
/// split) come from a seeded generator, so a run is repeatable.
///
/// Settings (`seed`, `startup_time`, ...) apply to the whole cluster, including clones made before.
#[derive(Clone)]
pub struct InMemoryCluster {
    pub(super) world: Arc<Mutex<World>>,
    pub(super) clock: Arc<dyn Clock>,
}

impl fmt::Debug for InMemoryCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("InMemoryCluster");
        // try_lock: formatting must never wait for (or deadlock on) the world's lock.
        if let Ok(world) = self.world.try_lock() {
            out.field("apps", &world.apps.keys().collect::<Vec<_>>())
                .field("open_sessions", &world.sessions.len());
        }
        out.field("clock", &self.clock).finish()
    }
}

impl Default for InMemoryCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryCluster {
    /// An empty cluster on a [`TokioClock`]: instances start and stop at once, the split is seeded with 0,
    /// the router accepts up to 5 weighted and 50 attached versions per app.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(TokioClock::new()))
    }

    /// An empty cluster whose time comes from `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        InMemoryCluster { world: Arc::new(Mutex::new(World::new())), clock }
    }

    /// Reseeds the generator behind random choices (the weighted split).
    pub fn seed(self, seed: u64) -> Self {
        self.lock().rng = StdRng::seed_from_u64(seed);
        self
    }

    /// How long a new instance takes to pass its health check (default 0).
    pub fn startup_time(self, d: Duration) -> Self {
        self.lock().config.startup_time = d;
        self
    }

    /// How long an instance takes to exit after SIGTERM (default 0), capped by its release's `stop_grace`
    /// (after which it is killed).
    pub fn shutdown_time(self, d: Duration) -> Self {
        self.lock().config.shutdown_time = d;
        self
    }

    /// How many versions of one app the router lets receive new sessions at once (default 5, like an ALB
    /// forward action).
    pub fn max_weighted_versions(self, n: usize) -> Self {
        self.lock().config.max_weighted_versions = n;
        self
    }

    /// How many versions of one app may be attached to the router at once (default 50).
    pub fn max_attached_versions(self, n: usize) -> Self {
        self.lock().config.max_attached_versions = n;
        self
    }

    /// The orchestrator over this cluster.
    pub fn orchestrator(&self) -> Arc<InMemoryOrchestrator> {
        Arc::new(InMemoryOrchestrator::new(self.clone()))
    }

    /// The router over this cluster.
    pub fn router(&self) -> Arc<InMemoryRouter> {
        Arc::new(InMemoryRouter::new(self.clone()))
    }

    /// The drain-protocol client reaching this cluster's instances by endpoint.
    pub fn drain_client(&self) -> Arc<InMemoryDrainClient> {
        Arc::new(InMemoryDrainClient::new(self.clone()))
    }

    /// The cluster's current time.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Makes every instance of `app`/`version` (present and future) fail its health check, or heals them.
    /// Use it to test rollbacks of a version that never becomes healthy.
    pub fn set_broken(&self, app: &AppName, version: &VersionId, broken: bool) {
        let mut world = self.lock();
        let key = (app.clone(), version.clone());
        if broken {
            world.broken.insert(key);
        } else {
            world.broken.remove(&key);
        }
    }

    /// Makes one instance fail its health check (`healthy = false`) or pass it again. The process keeps
    /// running and keeps its sessions; the router stops sending new sessions to it.
    pub fn set_instance_healthy(&self, instance: &InstanceId, healthy: bool) {
        let mut world = self.lock();
        if healthy {
            world.failing_health.remove(instance);
        } else {
            world.failing_health.insert(instance.clone());
        }
    }

    /// Crashes an instance: it exits at once and its sessions are lost (recorded in
    /// [`InMemoryCluster::lost_by_crash`], not blamed on the engine). The next `deploy` of its version
    /// replaces it unless the version is retiring. Returns false if the instance is unknown or had exited.
    pub fn crash_instance(&self, instance: &InstanceId) -> bool {
        let now = self.now();
        let mut world = self.locked_at(now);
        let mut crashed = false;
        for app in world.apps.values_mut() {
            for version in &mut app.versions {
                for i in version.instances.iter_mut().filter(|i| &i.id == instance && !i.exited) {
                    i.exited = true;
                    crashed = true;
                }
            }
        }
        if crashed {
            tracing::debug!(%instance, "in-memory cluster: instance crashed");
            world.end_sessions_on(instance, now, EndKind::LostByCrash);
            world.remove_retired_versions();
        }
        crashed
    }

    /// The versions of `app` the orchestrator still lists (including retiring ones), in creation order.
    pub fn versions_running(&self, app: &AppName) -> Vec<VersionId> {
        let world = self.locked_at(self.now());
        world
            .apps
            .get(app)
            .map(|a| a.versions.iter().map(|v| v.release.version.clone()).collect())
            .unwrap_or_default()
    }

    /// The live instances of `app`/`version` as router targets (what a provider passes to
    /// [`crate::TrafficRouter::attach`]).
    pub fn targets(&self, app: &AppName, version: &VersionId) -> Vec<Target> {
        let world = self.locked_at(self.now());
        let mut targets: Vec<Target> = world
            .version(app, version)
            .map(|v| {
                v.instances
                    .iter()
                    .filter(|i| !i.exited)
                    .map(|i| Target { instance: i.id.clone(), endpoint: i.endpoint.clone() })
                    .collect()
            })
            .unwrap_or_default();
        targets.sort();
        targets
    }

    /// Every successful `set_weights`, in order, with the health of each attached version at that moment.
    pub fn weight_history(&self) -> Vec<WeightChange> {
        self.lock().weight_history.clone()
    }

    /// Locks the world without advancing it.
    pub(super) fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Locks the world and applies every time-driven change up to `now`.
    pub(super) fn locked_at(&self, now: SystemTime) -> MutexGuard<'_, World> {
        let mut world = self.lock();
        world.advance(now);
        world
    }
}
