//! Pure generation of Envoy configuration from the router's state: the bootstrap (admin, the fixed public
//! listener, where to find the xDS files), the clusters (CDS, one per attached version) and the routes (RDS).
//!
//! Nothing here touches the filesystem or a process; [`super::xds`] writes what this module produces and
//! [`super::router`] decides when. Every output is plain JSON (Envoy reads `.json` xDS files natively), so it
//! can be inspected, diffed and checked with `envoy --mode validate` (see [`validation_bootstrap`]).
//!
//! One virtual host per app, matching `Host: {app}` and `Host: {app}.localhost` (any port), plus a
//! default virtual host (`*`) with the routes of the default app (the builder's, or the only app). Routes
//! of a virtual host, in match order:
//! 1. `/_pulse/admin` (any case, after path normalisation) → direct 404: admin paths never reach an instance
//!    from the public side;
//! 2. the per-tab affinity key: header `x-pulse-version: V`, then query `pulse_version=V` → version V's
//!    cluster (for each attached version whose affinity mode includes the key), whatever V's weight;
//! 3. the version cookie `pulse-version=V` (anchored regex: `v1` never matches `v10`) → V's cluster;
//! 4. everything else → the weighted split of new sessions; each entry sets the version cookie. With no
//!    weight above 0 this route answers 503 directly (a valid config in every state).
//!
//! Affinity for a version that is not attached matches no route of steps 2-3 and falls through to the split.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use pulse_deploy_core::affinity::{
    ADMIN_PATH_PREFIX, INSTANCE_COOKIE, VERSION_COOKIE, VERSION_HEADER, VERSION_QUERY,
};
use pulse_deploy_core::{AffinityMode, AppName, VersionId, VersionRoute};
use serde_json::{json, Value};

use super::state::AppRouting;
use super::xds::XdsPaths;

/// Name of the route configuration served through RDS.
pub(super) const ROUTE_CONFIG_NAME: &str = "pulse-public";
/// Name of the fixed public listener.
pub(super) const LISTENER_NAME: &str = "pulse-public";

const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
const ROUTE_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

/// Tunables of the generated configuration (not persisted: a new router may change them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ConfigSettings {
    /// Active health-check interval, used for every host state (including no traffic, so weight-0
    /// versions are checked as often as weighted ones).
    pub health_interval: Duration,
    /// Timeout of one health-check request.
    pub health_timeout: Duration,
    /// Consecutive failures before a host is unhealthy.
    pub unhealthy_threshold: u32,
    /// Consecutive successes before a host is healthy.
    pub healthy_threshold: u32,
    /// Upstream connect timeout.
    pub connect_timeout: Duration,
    /// Route timeout for plain requests; `None` disables it (upgraded WebSockets are never cut by it).
    pub route_timeout: Option<Duration>,
}

impl Default for ConfigSettings {
    fn default() -> Self {
        ConfigSettings {
            health_interval: Duration::from_millis(1000),
            health_timeout: Duration::from_millis(1000),
            unhealthy_threshold: 2,
            healthy_threshold: 1,
            connect_timeout: Duration::from_secs(2),
            route_timeout: None,
        }
    }
}

/// The routing state that configuration is generated from.
#[derive(Debug, Clone, Copy)]
pub(super) struct RoutingInput<'a> {
    /// The app served on the default virtual host (requests whose `Host` names no app).
    pub default_app: Option<&'a AppName>,
    /// Routing per app.
    pub apps: &'a BTreeMap<AppName, AppRouting>,
}

/// The Envoy cluster name of one version: `pulse--{app}--{version}` (`--` never occurs in either name).
pub(super) fn cluster_name(app: &AppName, version: &VersionId) -> String {
    format!("pulse--{app}--{version}")
}

fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

fn socket_address(addr: SocketAddr) -> Value {
    json!({ "socket_address": { "address": addr.ip().to_string(), "port_value": addr.port() } })
}

fn path_source(file: &Path, dir: &Path) -> Value {
    json!({
        "resource_api_version": "V3",
        "path_config_source": {
            "path": file.display().to_string(),
            "watched_directory": { "path": dir.display().to_string() }
        }
    })
}

fn http_filters() -> Value {
    json!([
        {
            "name": "envoy.filters.http.stateful_session",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSession",
                "session_state": {
                    "name": "envoy.http.stateful_session.cookie",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.http.stateful_session.cookie.v3.CookieBasedSessionState",
                        "cookie": { "name": INSTANCE_COOKIE, "path": "/" }
                    }
                },
                "strict": false
            }
        },
        {
            "name": "envoy.filters.http.router",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
        }
    ])
}

fn connection_manager(rds: Value) -> Value {
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "pulse_public",
        "codec_type": "AUTO",
        // Path normalisation before route matching, so `/_pulse//admin`, `/x/../_pulse/admin`,
        // `/_pulse%2Fadmin` and `/_pulse/%61dmin` all meet the admin 404 route.
        "normalize_path": true,
        "merge_slashes": true,
        "path_with_escaped_slashes_action": "UNESCAPE_AND_FORWARD",
        "use_remote_address": true,
        "upgrade_configs": [ { "upgrade_type": "websocket" } ],
        // A WebSocket session may sit idle for a long time while its version drains: never cut an open
        // stream for idleness (the drain deadline bounds its life instead).
        "stream_idle_timeout": "0s",
        "http_filters": http_filters()
    });
    let obj = hcm.as_object_mut().expect("object literal");
    for (k, v) in rds.as_object().expect("object literal") {
        obj.insert(k.clone(), v.clone());
    }
    hcm
}

/// The bootstrap: admin on loopback, the fixed public listener (static: it never changes after start), RDS
/// and CDS from the watched xDS directory.
pub(super) fn bootstrap(listener: SocketAddr, admin: SocketAddr, xds: XdsPaths<'_>, node_id: &str) -> Value {
    let rds = json!({
        "rds": {
            "route_config_name": ROUTE_CONFIG_NAME,
            "config_source": path_source(xds.rds, xds.dir)
        }
    });
    json!({
        "node": { "id": node_id, "cluster": "pulse-deploy" },
        "admin": { "address": socket_address(admin) },
        "dynamic_resources": { "cds_config": path_source(xds.cds, xds.dir) },
        "static_resources": { "listeners": [ public_listener(listener, connection_manager(rds)) ] },
        "overload_manager": overload_manager()
    })
}

/// A bound on open downstream connections (each WebSocket session holds one), so a flood cannot exhaust
/// file descriptors; far above what one laptop's sessions need.
pub(super) const MAX_DOWNSTREAM_CONNECTIONS: u64 = 50_000;

fn overload_manager() -> Value {
    json!({
        "resource_monitors": [ {
            "name": "envoy.resource_monitors.global_downstream_max_connections",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                "max_active_downstream_connections": MAX_DOWNSTREAM_CONNECTIONS
            }
        } ]
    })
}

fn public_listener(listener: SocketAddr, hcm: Value) -> Value {
    json!({
        "name": LISTENER_NAME,
        "address": socket_address(listener),
        "filter_chains": [ {
            "filters": [ { "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm } ]
        } ]
    })
}

/// One cluster per attached version: static endpoints, active HTTP health checks on the release's health
/// path at the same interval whether or not the version gets traffic, round robin for new sessions (the
/// stateful-session cookie pins a client to its host afterwards), and the default 50% panic threshold so
/// a version whose hosts all fail health (drained, still serving their last sessions' reloads) is still
/// reached by clients that carry its affinity instead of getting 503 "no healthy upstream".
pub(super) fn cluster(route: &VersionRoute, settings: &ConfigSettings) -> Value {
    let name = cluster_name(&route.app, &route.version);
    let endpoints: Vec<Value> = route
        .targets
        .iter()
        .map(|t| {
            let addr = target_ip(&t.endpoint.host).map(|ip| SocketAddr::new(ip, t.endpoint.port));
            let address = match addr {
                Some(a) => socket_address(a),
                // Validated before generation; kept total so generation never panics.
                None => {
                    json!({ "socket_address": { "address": t.endpoint.host, "port_value": t.endpoint.port } })
                }
            };
            json!({ "endpoint": { "address": address } })
        })
        .collect();
    let interval = duration(settings.health_interval);
    json!({
        "@type": CLUSTER_TYPE,
        "name": name,
        "type": "STATIC",
        "connect_timeout": duration(settings.connect_timeout),
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": { "cluster_name": name, "endpoints": [ { "lb_endpoints": endpoints } ] },
        "health_checks": [ {
            "timeout": duration(settings.health_timeout),
            "interval": interval,
            "no_traffic_interval": interval,
            "no_traffic_healthy_interval": interval,
            "unhealthy_interval": interval,
            "unhealthy_threshold": settings.unhealthy_threshold,
            "healthy_threshold": settings.healthy_threshold,
            "http_health_check": { "path": route.health_path }
        } ],
        "circuit_breakers": { "thresholds": [ {
            "max_connections": 100000,
            "max_pending_requests": 100000,
            "max_requests": 100000,
            "max_retries": 100
        } ] }
    })
}

/// The IP address Envoy connects to for a target host: an IP literal, or `localhost` as 127.0.0.1.
/// Other names are refused by the router before any configuration is written.
pub(super) fn target_ip(host: &str) -> Option<std::net::IpAddr> {
    if host.eq_ignore_ascii_case("localhost") {
        return Some(std::net::IpAddr::from([127, 0, 0, 1]));
    }
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// The CDS resources for `input`, sorted by name.
pub(super) fn clusters(input: RoutingInput<'_>, settings: &ConfigSettings) -> Vec<Value> {
    let mut out: Vec<Value> =
        input.apps.values().flat_map(|a| a.versions.values()).map(|r| cluster(r, settings)).collect();
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    out
}

/// The value of the instance cookie ([`INSTANCE_COOKIE`]) that pins a client to the host at `addr`, as
/// Envoy's cookie-based stateful session writes it: a quoted base64 protobuf whose field 1 is `ip:port`.
/// Clients never need it (Envoy sets it); tests and tools use it to pin a request to a chosen instance.
pub fn instance_cookie_value(addr: SocketAddr) -> String {
    let address = addr.to_string();
    let mut proto = vec![0x0a];
    let mut len = address.len();
    while len >= 0x80 {
        proto.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    proto.push(len as u8);
    proto.extend_from_slice(address.as_bytes());
    format!("\"{}\"", base64(&proto))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An anchored RE2 expression matching a whole `cookie` header that holds `name=value` as one cookie.
pub(super) fn cookie_regex(name: &str, value: &str) -> String {
    format!(r"(.*;\s*)?{}={}(\s*;.*)?", regex_escape(name), regex_escape(value))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn retry_policy() -> Value {
    json!({
        "retry_on": "connect-failure,refused-stream",
        "num_retries": 2,
        "retry_host_predicate": [ {
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
            }
        } ],
        "host_selection_retry_max_attempts": 3
    })
}

fn route_action(target: Value, settings: &ConfigSettings) -> Value {
    let mut action = target;
    let obj = action.as_object_mut().expect("object literal");
    obj.insert("timeout".into(), json!(settings.route_timeout.map(duration).unwrap_or_else(|| "0s".into())));
    obj.insert("retry_policy".into(), retry_policy());
    action
}

/// The version cookie a weighted-split response sets: `pulse-version=V; Path=/; SameSite=Lax; HttpOnly`.
pub(super) fn version_set_cookie(version: &VersionId) -> String {
    format!("{VERSION_COOKIE}={version}; Path=/; SameSite=Lax; HttpOnly")
}

fn uses_key(mode: AffinityMode) -> bool {
    matches!(mode, AffinityMode::Key | AffinityMode::CookieAndKey)
}

fn uses_cookie(mode: AffinityMode) -> bool {
    matches!(mode, AffinityMode::Cookie | AffinityMode::CookieAndKey)
}

fn admin_route() -> Value {
    json!({
        "name": "pulse-admin-blocked",
        "match": { "prefix": ADMIN_PATH_PREFIX, "case_sensitive": false },
        "direct_response": { "status": 404, "body": { "inline_string": "not found\n" } }
    })
}

/// The routes of one app's virtual host, in match order (see the module docs).
pub(super) fn routes(app: &AppName, routing: &AppRouting, settings: &ConfigSettings) -> Vec<Value> {
    let mut routes = vec![admin_route()];
    let cluster_of = |v: &VersionId| json!({ "cluster": cluster_name(app, v) });
    let versions = &routing.versions;
    for (v, r) in versions.iter().filter(|(_, r)| uses_key(r.affinity)) {
        routes.push(json!({
            "name": format!("key-header--{v}"),
            "match": { "prefix": "/", "headers": [ {
                "name": VERSION_HEADER, "string_match": { "exact": v.as_str() }
            } ] },
            "route": route_action(cluster_of(&r.version), settings)
        }));
    }
    for (v, r) in versions.iter().filter(|(_, r)| uses_key(r.affinity)) {
        routes.push(json!({
            "name": format!("key-query--{v}"),
            "match": { "prefix": "/", "query_parameters": [ {
                "name": VERSION_QUERY, "string_match": { "exact": v.as_str() }
            } ] },
            "route": route_action(cluster_of(&r.version), settings)
        }));
    }
    for (v, r) in versions.iter().filter(|(_, r)| uses_cookie(r.affinity)) {
        routes.push(json!({
            "name": format!("cookie--{v}"),
            "match": { "prefix": "/", "headers": [ {
                "name": "cookie",
                "string_match": { "safe_regex": { "regex": cookie_regex(VERSION_COOKIE, v.as_str()) } }
            } ] },
            "route": route_action(cluster_of(&r.version), settings)
        }));
    }
    let entries: Vec<Value> = routing
        .weights
        .iter()
        .map(|(v, w)| {
            let mut entry = json!({ "name": cluster_name(app, v), "weight": w });
            let sets_cookie = versions.get(v).is_none_or(|r| uses_cookie(r.affinity));
            if sets_cookie {
                entry.as_object_mut().expect("object literal").insert(
                    "response_headers_to_add".into(),
                    json!([ {
                        "header": { "key": "set-cookie", "value": version_set_cookie(v) },
                        "append_action": "APPEND_IF_EXISTS_OR_ADD"
                    } ]),
                );
            }
            entry
        })
        .collect();
    if entries.is_empty() {
        routes.push(no_version_route(&format!("no version of {app} receives new sessions yet")));
    } else {
        routes.push(json!({
            "name": "split",
            "match": { "prefix": "/" },
            "route": route_action(json!({ "weighted_clusters": { "clusters": entries } }), settings)
        }));
    }
    routes
}

/// The `Host` values (any port) that select `app`'s virtual host.
pub(super) fn app_domains(app: &AppName) -> Vec<String> {
    vec![format!("{app}"), format!("{app}:*"), format!("{app}.localhost"), format!("{app}.localhost:*")]
}

fn no_version_route(message: &str) -> Value {
    json!({
        "name": "no-version",
        "match": { "prefix": "/" },
        "direct_response": { "status": 503, "body": { "inline_string": format!("{message}\n") } }
    })
}

/// The RDS resource: one route configuration with a virtual host per app and the default one.
pub(super) fn route_configuration(input: RoutingInput<'_>, settings: &ConfigSettings) -> Value {
    let mut vhosts: Vec<Value> = input
        .apps
        .iter()
        .map(|(app, routing)| json!({ "name": format!("app--{app}"), "domains": app_domains(app), "routes": routes(app, routing, settings) }))
        .collect();
    let default_routes = match input.default_app {
        Some(app) => routes(app, input.apps.get(app).unwrap_or(&AppRouting::default()), settings),
        None if input.apps.is_empty() => {
            vec![admin_route(), no_version_route("no app is attached to this router yet")]
        }
        None => vec![
            admin_route(),
            no_version_route("this router serves several apps: send `Host: {app}.localhost` to choose one"),
        ],
    };
    vhosts.push(json!({ "name": "default", "domains": ["*"], "routes": default_routes }));
    json!({ "@type": ROUTE_TYPE, "name": ROUTE_CONFIG_NAME, "virtual_hosts": vhosts })
}

/// A self-contained bootstrap with the same listener, clusters and routes inlined as static resources, for
/// `envoy --mode validate` (validation mode does not read xDS files).
pub(super) fn validation_bootstrap(
    listener: SocketAddr,
    admin: SocketAddr,
    input: RoutingInput<'_>,
    settings: &ConfigSettings,
) -> Value {
    let mut route_config = route_configuration(input, settings);
    route_config.as_object_mut().expect("object literal").remove("@type");
    let clusters: Vec<Value> = clusters(input, settings)
        .into_iter()
        .map(|mut c| {
            c.as_object_mut().expect("object literal").remove("@type");
            c
        })
        .collect();
    let hcm = connection_manager(json!({ "route_config": route_config }));
    json!({
        "node": { "id": "pulse-deploy-validate", "cluster": "pulse-deploy" },
        "admin": { "address": socket_address(admin) },
        "static_resources": {
            "listeners": [ public_listener(listener, hcm) ],
            "clusters": clusters
        },
        "overload_manager": overload_manager()
    })
}

#[cfg(test)]
mod tests {
    use pulse_deploy_core::{Endpoint, Target, Weights};

    use super::*;

    fn route(version: &str, mode: AffinityMode) -> VersionRoute {
        VersionRoute {
            app: AppName::new("shop").unwrap(),
            version: VersionId::new(version).unwrap(),
            targets: vec![Target { instance: "i-1".into(), endpoint: Endpoint::new("127.0.0.1", 9001) }],
            health_path: "/health".into(),
            affinity: mode,
        }
    }

    fn names(routes: &[Value]) -> Vec<String> {
        routes.iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn route_order_admin_key_cookie_split() {
        let app = AppName::new("shop").unwrap();
        let mut routing = AppRouting::default();
        for (v, m) in [("v1", AffinityMode::CookieAndKey), ("v2", AffinityMode::Cookie)] {
            let r = route(v, m);
            routing.versions.insert(r.version.clone(), r);
        }
        routing.weights = Weights::all_to(VersionId::new("v2").unwrap());
        let routes = routes(&app, &routing, &ConfigSettings::default());
        assert_eq!(
            names(&routes),
            ["pulse-admin-blocked", "key-header--v1", "key-query--v1", "cookie--v1", "cookie--v2", "split"]
        );
        let split = &routes[5]["route"]["weighted_clusters"]["clusters"];
        assert_eq!(split.as_array().unwrap().len(), 1);
        assert_eq!(split[0]["name"], "pulse--shop--v2");
        assert_eq!(
            split[0]["response_headers_to_add"][0]["header"]["value"],
            "pulse-version=v2; Path=/; SameSite=Lax; HttpOnly"
        );
    }

    #[test]
    fn no_weights_is_a_direct_503() {
        let app = AppName::new("shop").unwrap();
        let routes = routes(&app, &AppRouting::default(), &ConfigSettings::default());
        assert_eq!(names(&routes), ["pulse-admin-blocked", "no-version"]);
        assert_eq!(routes[1]["direct_response"]["status"], 503);
    }

    #[test]
    fn one_virtual_host_per_app_and_a_default() {
        let (shop, blog) = (AppName::new("shop").unwrap(), AppName::new("blog").unwrap());
        let apps = BTreeMap::from([(shop.clone(), AppRouting::default()), (blog, AppRouting::default())]);
        let settings = ConfigSettings::default();
        let rc = route_configuration(RoutingInput { default_app: Some(&shop), apps: &apps }, &settings);
        let vhosts: Vec<&str> =
            rc["virtual_hosts"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert_eq!(vhosts, ["app--blog", "app--shop", "default"]);
        assert_eq!(rc["virtual_hosts"][1]["domains"][2], "shop.localhost");
        let rc = route_configuration(RoutingInput { default_app: None, apps: &apps }, &settings);
        let body =
            rc["virtual_hosts"][2]["routes"][1]["direct_response"]["body"]["inline_string"].as_str().unwrap();
        assert!(body.contains("several apps"), "{body}");
    }

    #[test]
    fn cookie_regex_is_anchored() {
        // RE2 full-match semantics, checked here with a tiny matcher for the generated shape.
        let re = cookie_regex("pulse-version", "v1");
        assert_eq!(re, r"(.*;\s*)?pulse\-version=v1(\s*;.*)?");
    }

    #[test]
    fn instance_cookie_matches_envoys_encoding() {
        // Seen from Envoy 1.40 for a host at 127.0.0.1:42445.
        assert_eq!(instance_cookie_value("127.0.0.1:42445".parse().unwrap()), "\"Cg8xMjcuMC4wLjE6NDI0NDU=\"");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn durations_render_as_proto_json() {
        assert_eq!(duration(Duration::from_millis(1500)), "1.500s");
        assert_eq!(duration(Duration::from_secs(2)), "2s");
        assert_eq!(duration(Duration::from_millis(50)), "0.050s");
    }

    #[test]
    fn cluster_checks_health_at_zero_traffic() {
        let c = cluster(&route("v1", AffinityMode::Cookie), &ConfigSettings::default());
        assert_eq!(c["name"], "pulse--shop--v1");
        assert_eq!(c["health_checks"][0]["no_traffic_interval"], "1s");
        assert_eq!(c["health_checks"][0]["http_health_check"]["path"], "/health");
        assert_eq!(
            c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
                ["port_value"],
            9001
        );
    }

    #[test]
    fn localhost_targets_become_loopback() {
        assert_eq!(target_ip("localhost"), Some(std::net::IpAddr::from([127, 0, 0, 1])));
        assert_eq!(target_ip("::1"), Some("::1".parse().unwrap()));
        assert_eq!(target_ip("db.internal"), None);
    }
}
