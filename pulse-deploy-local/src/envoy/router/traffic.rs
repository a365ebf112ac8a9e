//! The [`TrafficRouter`] implementation: attach, set weights and detach change the persisted state and
//! apply it; `routing` reads it back with Envoy's view of each target's health.
//!
//! `routing` is called on every pass of the engine, so it is also where an Envoy that was killed comes back
//! when no change is pending: it makes sure Envoy runs before it reads (see `supervise.rs`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use async_trait::async_trait;
use pulse_deploy_core::{
    AppName, Error, Health, Result, RoutedVersion, RouterCapabilities, RoutingState, TargetHealth,
    TrafficRouter, VersionId, VersionRoute, Weights,
};

use super::{EnvoyRouter, MAX_ATTACHED_VERSIONS, MAX_WEIGHTED_VERSIONS};
use crate::envoy::config;

fn check_route(route: &VersionRoute) -> Result<()> {
    for t in &route.targets {
        if config::target_ip(&t.endpoint.host).is_none() {
            return Err(Error::invalid(
                "route.targets",
                format!(
                    "{} of instance {} is not an IP address; EnvoyRouter routes to IP addresses (or localhost)",
                    t.endpoint, t.instance
                ),
            ));
        }
        if t.endpoint.port == 0 {
            return Err(Error::invalid("route.targets", format!("instance {} has port 0", t.instance)));
        }
    }
    let h = &route.health_path;
    if !h.starts_with('/')
        || h.contains(char::is_whitespace)
        || h.starts_with(pulse_deploy_core::affinity::ADMIN_PATH_PREFIX)
    {
        return Err(Error::invalid(
            "route.health_path",
            format!("`{h}` must be a path starting with '/', without spaces, outside /_pulse/admin"),
        ));
    }
    Ok(())
}

#[async_trait]
impl TrafficRouter for EnvoyRouter {
    fn capabilities(&self) -> RouterCapabilities {
        let mut caps = RouterCapabilities::new("envoy");
        caps.max_weighted_versions = MAX_WEIGHTED_VERSIONS;
        caps.max_attached_versions = MAX_ATTACHED_VERSIONS;
        caps
    }

    async fn attach(&self, route: &VersionRoute) -> Result<()> {
        check_route(route)?;
        let mut route = route.clone();
        route.targets.sort();
        route.targets.dedup();
        tracing::info!(app = %route.app, version = %route.version, targets = route.targets.len(), "envoy: attach");
        self.mutate(|state| {
            if state.default_app.is_none() {
                state.default_app = Some(route.app.clone());
                state.default_app_explicit = false;
            }
            let app = state.apps.entry(route.app.clone()).or_default();
            if !app.versions.contains_key(&route.version) && app.versions.len() >= MAX_ATTACHED_VERSIONS {
                return Err(Error::invalid(
                    "route",
                    format!(
                        "{MAX_ATTACHED_VERSIONS} versions of {} are attached already; detach old ones first",
                        route.app
                    ),
                ));
            }
            app.versions.insert(route.version.clone(), route);
            Ok(())
        })
        .await
    }

    async fn set_weights(&self, app: &AppName, weights: &Weights) -> Result<()> {
        if weights.len() > MAX_WEIGHTED_VERSIONS {
            return Err(Error::invalid(
                "weights",
                format!(
                    "{} versions weighted; at most {MAX_WEIGHTED_VERSIONS} may get new sessions",
                    weights.len()
                ),
            ));
        }
        tracing::info!(app = %app, weights = %weights, "envoy: set weights");
        self.mutate(|state| {
            let attached = state.apps.get(app).map(|a| &a.versions);
            if let Some((v, _)) = weights.iter().find(|(v, _)| !attached.is_some_and(|a| a.contains_key(*v)))
            {
                return Err(Error::invalid(
                    "weights",
                    format!("version {v} of {app} is not attached; attach it before giving it a weight"),
                ));
            }
            if let Some(a) = state.apps.get_mut(app) {
                a.weights = weights.clone();
            }
            Ok(())
        })
        .await
    }

    async fn detach(&self, app: &AppName, version: &VersionId) -> Result<()> {
        tracing::info!(app = %app, version = %version, "envoy: detach");
        self.mutate(|state| {
            let Some(routing) = state.apps.get_mut(app) else { return Ok(()) };
            if !routing.versions.contains_key(version) {
                return Ok(());
            }
            let w = routing.weights.get(version);
            if w > 0 {
                return Err(Error::Conflict {
                    message: format!(
                        "version {version} of {app} still has weight {w}%; set its weight to 0 before detaching it"
                    ),
                });
            }
            routing.versions.remove(version);
            if routing.is_empty() {
                state.apps.remove(app);
                if state.default_app.as_ref() == Some(app) && !state.default_app_explicit {
                    state.default_app = None;
                }
            }
            Ok(())
        })
        .await
    }

    async fn routing(&self, app: &AppName) -> Result<RoutingState> {
        self.ensure_running().await?;
        let state = self.load_state()?;
        let Some(routing) = state.apps.get(app) else { return Ok(RoutingState::default()) };
        let health = self.admin.host_health().await?;
        let mut versions = BTreeMap::new();
        for (v, route) in &routing.versions {
            let hosts = health.get(&config::cluster_name(app, v));
            let targets = route
                .targets
                .iter()
                .map(|t| {
                    let addr =
                        config::target_ip(&t.endpoint.host).map(|ip| SocketAddr::new(ip, t.endpoint.port));
                    let h =
                        addr.and_then(|a| hosts.and_then(|m| m.get(&a))).copied().unwrap_or(Health::Unknown);
                    TargetHealth { target: t.clone(), health: h }
                })
                .collect();
            versions.insert(v.clone(), RoutedVersion { route: route.clone(), targets });
        }
        Ok(RoutingState { weights: routing.weights.clone(), versions })
    }
}
