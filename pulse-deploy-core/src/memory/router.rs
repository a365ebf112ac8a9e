//! [`InMemoryRouter`]: the reference [`TrafficRouter`], and the history of weight changes tests check
//! invariants against.
//!
//! What a real provider must do, shown without a platform in the way:
//! - `attach` upserts a version's targets; a newly attached version has weight 0 and is health-checked;
//! - `set_weights` validates everything first (every weighted version attached, at most
//!   `max_weighted_versions` weighted), then replaces all weights in one step;
//! - `detach` refuses a version that still has weight, and succeeds for one that is not attached;
//! - `routing` reports each target's health as its health check sees it: a drained or shutting-down
//!   instance fails it, a target naming no known instance is `Unknown`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::cluster::InMemoryCluster;
use crate::{
    AppName, Error, Health, Result, RoutedVersion, RouterCapabilities, RoutingState, TargetHealth,
    TrafficRouter, VersionId, VersionRoute, Weights,
};

/// One successful [`TrafficRouter::set_weights`] call, as recorded by the in-memory router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightChange {
    /// When the weights were set.
    pub at: SystemTime,
    /// The app.
    pub app: AppName,
    /// The new weights.
    pub weights: Weights,
    /// For every attached version: whether at least one of its targets passed its health check at that
    /// moment (so it could take the sessions the weights send it).
    pub healthy: BTreeMap<VersionId, bool>,
}

impl WeightChange {
    /// Versions given weight while none of their targets was healthy (must be empty).
    pub fn unhealthy_weighted(&self) -> Vec<VersionId> {
        self.weights
            .iter()
            .filter(|(v, _)| !self.healthy.get(*v).copied().unwrap_or(false))
            .map(|(v, _)| v.clone())
            .collect()
    }
}

/// The in-memory [`TrafficRouter`]. Get one from [`InMemoryCluster::router`]; route sessions through it
/// with [`InMemoryCluster::open_session`].
#[derive(Debug, Clone)]
pub struct InMemoryRouter {
    cluster: InMemoryCluster,
}

impl InMemoryRouter {
    pub(super) fn new(cluster: InMemoryCluster) -> Self {
        InMemoryRouter { cluster }
    }

    /// The cluster this router routes to.
    pub fn cluster(&self) -> &InMemoryCluster {
        &self.cluster
    }
}

#[async_trait]
impl TrafficRouter for InMemoryRouter {
    fn capabilities(&self) -> RouterCapabilities {
        let world = self.cluster.lock();
        let mut caps = RouterCapabilities::new("memory");
        caps.max_weighted_versions = world.config.max_weighted_versions;
        caps.max_attached_versions = world.config.max_attached_versions;
        caps
    }

    async fn attach(&self, route: &VersionRoute) -> Result<()> {
        let now = self.cluster.now();
        let mut world = self.cluster.locked_at(now);
        let max = world.config.max_attached_versions;
        let routing = &mut world.apps.entry(route.app.clone()).or_default().routing;
        if !routing.attached.contains_key(&route.version) && routing.attached.len() >= max {
            return Err(Error::Conflict {
                message: format!(
                    "app {} already has {max} attached versions, the most this router allows; detach a \
                     retired version before attaching {}",
                    route.app, route.version
                ),
            });
        }
        let mut route = route.clone();
        route.targets.sort();
        route.targets.dedup();
        routing.attached.insert(route.version.clone(), route);
        Ok(())
    }

    async fn set_weights(&self, app: &AppName, weights: &Weights) -> Result<()> {
        let now = self.cluster.now();
        let mut world = self.cluster.locked_at(now);
        let max = world.config.max_weighted_versions;
        if weights.len() > max {
            return Err(Error::invalid(
                "weights",
                format!(
                    "{weights} gives weight to {} versions; this router splits between at most {max}",
                    weights.len()
                ),
            ));
        }
        let routing = world.apps.get(app).map(|a| &a.routing);
        if let Some((version, _)) =
            weights.iter().find(|(v, _)| !routing.is_some_and(|r| r.attached.contains_key(*v)))
        {
            return Err(Error::Conflict {
                message: format!(
                    "version {version} of app {app} is not attached to the router; attach it before giving it weight"
                ),
            });
        }
        let healthy: BTreeMap<VersionId, bool> = routing
            .map(|r| {
                r.attached
                    .values()
                    .map(|route| {
                        let any = route
                            .targets
                            .iter()
                            .any(|t| world.target_health(app, &route.version, t, now) == Health::Healthy);
                        (route.version.clone(), any)
                    })
                    .collect()
            })
            .unwrap_or_default();
        tracing::debug!(%app, %weights, "in-memory router: weights set");
        world.weight_history.push(WeightChange {
            at: now,
            app: app.clone(),
            weights: weights.clone(),
            healthy,
        });
        world.apps.entry(app.clone()).or_default().routing.weights = weights.clone();
        Ok(())
    }

    async fn detach(&self, app: &AppName, version: &VersionId) -> Result<()> {
        let now = self.cluster.now();
        let mut world = self.cluster.locked_at(now);
        let Some(routing) = world.apps.get_mut(app).map(|a| &mut a.routing) else {
            return Ok(());
        };
        let weight = routing.weights.get(version);
        if weight > 0 {
            return Err(Error::Conflict {
                message: format!(
                    "version {version} of app {app} still has weight {weight}%; set its weight to 0 before detaching it"
                ),
            });
        }
        routing.attached.remove(version);
        Ok(())
    }

    async fn routing(&self, app: &AppName) -> Result<RoutingState> {
        let now = self.cluster.now();
        let world = self.cluster.locked_at(now);
        let Some(routing) = world.apps.get(app).map(|a| &a.routing) else {
            return Ok(RoutingState::default());
        };
        let versions = routing
            .attached
            .values()
            .map(|route| {
                let targets = route
                    .targets
                    .iter()
                    .map(|t| TargetHealth {
                        target: t.clone(),
                        health: world.target_health(app, &route.version, t, now),
                    })
                    .collect();
                (route.version.clone(), RoutedVersion { route: route.clone(), targets })
            })
            .collect();
        Ok(RoutingState { weights: routing.weights.clone(), versions })
    }
}
