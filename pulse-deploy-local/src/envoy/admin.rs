//! A client for Envoy's admin interface on loopback: readiness, identity (which bootstrap a running Envoy
//! was started with), which xDS versions it applied, and the active health of every host.
//!
//! Only GETs of read-only pages plus `POST /quitquitquit` for a clean stop. Never exposed publicly: the
//! admin listener binds 127.0.0.1 only.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use pulse_deploy_core::{Error, Health, Result};
use serde_json::Value;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Talks to one Envoy's admin listener.
#[derive(Debug, Clone)]
pub(super) struct AdminClient {
    addr: SocketAddr,
    client: Client<HttpConnector, Empty<Bytes>>,
}

/// What xDS state Envoy has applied, from `/config_dump?resource=...` (small pages, ~1 ms each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Applied {
    /// Active (warmed) dynamic clusters and the `version_info` of the CDS file that last changed each.
    pub active_clusters: BTreeMap<String, String>,
    /// Clusters still warming (first health-check round not done).
    pub warming_clusters: BTreeSet<String>,
    /// `version_info` of the route configuration Envoy serves.
    pub rds_version: Option<String>,
}

/// Health of every host of every cluster, by cluster name then host address.
pub(super) type HostHealth = BTreeMap<String, BTreeMap<SocketAddr, Health>>;

impl AdminClient {
    /// A client for the admin listener at `addr`.
    pub(super) fn new(addr: SocketAddr) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(2).build(connector);
        AdminClient { addr, client }
    }

    /// The admin address.
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn request(&self, method: http::Method, path: &str) -> Result<(http::StatusCode, String)> {
        let uri: http::Uri = format!("http://{}{}", self.addr, path)
            .parse()
            .map_err(|e| Error::provider_source("envoy", format!("bad admin path {path}"), false, e))?;
        let req = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Empty::new())
            .map_err(|e| Error::provider_source("envoy", "building an admin request", false, e))?;
        let unavailable =
            |message: String| Error::Unavailable { what: format!("Envoy admin at {}", self.addr), message };
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| unavailable(format!("GET {path} failed: {e}; is Envoy running?")))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| unavailable(format!("reading {path}: {e}")))?
                .to_bytes();
            Ok((status, String::from_utf8_lossy(&body).into_owned()))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| Error::Timeout { what: format!("Envoy admin {path}"), after: REQUEST_TIMEOUT })?
    }

    async fn get_json(&self, path: &str) -> Result<Value> {
        let (status, body) = self.request(http::Method::GET, path).await?;
        if !status.is_success() {
            return Err(Error::provider("envoy", format!("admin {path} answered {status}: {body}"), true));
        }
        serde_json::from_str(&body)
            .map_err(|e| Error::provider_source("envoy", format!("admin {path} is not JSON"), true, e))
    }

    /// True when Envoy answers `/ready` with 200 (initialised, serving).
    pub(super) async fn is_ready(&self) -> bool {
        matches!(self.request(http::Method::GET, "/ready").await, Ok((s, _)) if s.is_success())
    }

    /// The bootstrap path the running Envoy was started with (`-c`), from `/server_info`.
    pub(super) async fn config_path(&self) -> Result<String> {
        let info = self.get_json("/server_info").await?;
        Ok(info["command_line_options"]["config_path"].as_str().unwrap_or_default().to_owned())
    }

    /// Asks Envoy to exit cleanly.
    pub(super) async fn quit(&self) -> Result<()> {
        self.request(http::Method::POST, "/quitquitquit").await.map(|_| ())
    }

    async fn config_dump(&self, resource: &str) -> Result<Vec<Value>> {
        let dump = self.get_json(&format!("/config_dump?resource={resource}")).await?;
        Ok(dump["configs"].as_array().cloned().unwrap_or_default())
    }

    /// The active and warming dynamic clusters.
    pub(super) async fn applied_clusters(&self) -> Result<Applied> {
        let mut applied = Applied::default();
        for c in self.config_dump("dynamic_active_clusters").await? {
            if let (Some(name), Some(version)) = (c["cluster"]["name"].as_str(), c["version_info"].as_str()) {
                applied.active_clusters.insert(name.to_owned(), version.to_owned());
            }
        }
        for c in self.config_dump("dynamic_warming_clusters").await? {
            if let Some(name) = c["cluster"]["name"].as_str() {
                applied.warming_clusters.insert(name.to_owned());
            }
        }
        Ok(applied)
    }

    /// The `version_info` of the route configuration Envoy serves.
    pub(super) async fn applied_routes(&self) -> Result<Option<String>> {
        Ok(self
            .config_dump("dynamic_route_configs")
            .await?
            .iter()
            .find(|r| r["route_config"]["name"] == super::config::ROUTE_CONFIG_NAME)
            .and_then(|r| r["version_info"].as_str().map(str::to_owned)))
    }

    /// Active health of every host, from `/clusters?format=json`.
    pub(super) async fn host_health(&self) -> Result<HostHealth> {
        let clusters = self.get_json("/clusters?format=json").await?;
        let mut out = HostHealth::new();
        for cluster in clusters["cluster_statuses"].as_array().into_iter().flatten() {
            let Some(name) = cluster["name"].as_str() else { continue };
            let hosts = out.entry(name.to_owned()).or_default();
            for host in cluster["host_statuses"].as_array().into_iter().flatten() {
                let sa = &host["address"]["socket_address"];
                let (Some(ip), Some(port)) = (sa["address"].as_str(), sa["port_value"].as_u64()) else {
                    continue;
                };
                let (Ok(ip), Ok(port)) = (ip.parse(), u16::try_from(port)) else { continue };
                hosts.insert(SocketAddr::new(ip, port), health_of(&host["health_status"]));
            }
        }
        Ok(out)
    }
}

/// Maps Envoy's per-host health flags to [`Health`]: pending its first active check → Unknown, failed
/// active check → Unhealthy, otherwise Healthy.
pub(super) fn health_of(status: &Value) -> Health {
    let flag = |k: &str| status[k].as_bool().unwrap_or(false);
    if flag("pending_active_hc") {
        Health::Unknown
    } else if flag("failed_active_health_check") || flag("failed_outlier_check") {
        Health::Unhealthy
    } else {
        Health::Healthy
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn health_flags() {
        assert_eq!(health_of(&json!({"eds_health_status": "HEALTHY"})), Health::Healthy);
        assert_eq!(health_of(&json!({"failed_active_health_check": true})), Health::Unhealthy);
        assert_eq!(
            health_of(&json!({"failed_active_health_check": true, "pending_active_hc": true})),
            Health::Unknown
        );
    }
}
