//! The core router conformance suite against EnvoyRouter: a real Envoy, real HTTP upstreams on loopback,
//! requests sent through Envoy's public listener (each app chosen by `Host: {app}.localhost`).
//!
//! Needs Envoy (`cargo xtask install-tools`); with `CI=true` a missing Envoy fails, otherwise it skips.

mod envoy_common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use envoy_common::*;
use pulse_deploy_core::affinity::{INSTANCE_COOKIE, VERSION_COOKIE, VERSION_HEADER, VERSION_QUERY};
use pulse_deploy_core::conformance::{
    run_router_suite, AffinityCarrier, Landing, Probe, Reply, RouterHarness,
};
use pulse_deploy_core::{AppName, Error, InstanceId, Result, Target, VersionId};
use pulse_deploy_local::envoy::instance_cookie_value;

struct EnvoyHarness {
    base: String,
    http: Http,
    upstreams: Mutex<BTreeMap<AppName, Vec<Upstream>>>,
    /// Alternate the per-tab key between header and query parameter, so both carriers are exercised.
    key_by_query: std::sync::atomic::AtomicBool,
}

impl EnvoyHarness {
    fn addr_of(&self, instance: &InstanceId) -> Option<std::net::SocketAddr> {
        let ups = self.upstreams.lock().unwrap();
        ups.values().flatten().find(|u| u.instance == instance.0).map(|u| u.addr)
    }
}

#[async_trait]
impl RouterHarness for EnvoyHarness {
    fn unique_app(&self) -> AppName {
        AppName::new(format!("c{:08x}", rand::random::<u32>())).unwrap()
    }

    async fn spawn_version(&self, app: &AppName, version: &VersionId, replicas: u32) -> Result<Vec<Target>> {
        let mut started = Vec::new();
        for i in 0..replicas {
            started.push(Upstream::start(version.as_str(), &format!("{app}-{version}-{i}")).await);
        }
        let targets = started.iter().map(Upstream::target).collect();
        self.upstreams.lock().unwrap().entry(app.clone()).or_default().extend(started);
        Ok(targets)
    }

    async fn request(&self, app: &AppName, probe: &Probe) -> Result<Reply> {
        let host = format!("{app}.localhost");
        let mut path = probe.path.clone();
        let mut cookies = Vec::new();
        let mut header = None;
        match &probe.affinity {
            Some((AffinityCarrier::Cookie, v)) => cookies.push(format!("{VERSION_COOKIE}={v}")),
            Some((AffinityCarrier::Key, v)) => {
                if self.key_by_query.fetch_xor(true, std::sync::atomic::Ordering::SeqCst) {
                    path.push(if path.contains('?') { '&' } else { '?' });
                    path.push_str(&format!("{VERSION_QUERY}={v}"));
                } else {
                    header = Some(v.to_string());
                }
            }
            None => {}
        }
        if let Some(instance) = &probe.pinned_instance {
            let addr = self
                .addr_of(instance)
                .ok_or_else(|| Error::NotFound { what: format!("upstream {instance}") })?;
            cookies.push(format!("{INSTANCE_COOKIE}={}", instance_cookie_value(addr)));
        }
        let cookie = cookies.join("; ");
        let mut headers: Vec<(&str, &str)> = vec![("host", &host)];
        if !cookie.is_empty() {
            headers.push(("cookie", &cookie));
        }
        if let Some(h) = &header {
            headers.push((VERSION_HEADER, h));
        }
        let resp = self.http.get(&format!("{}{path}", self.base), &headers).await;
        Ok(match (resp.version(), resp.instance()) {
            (Some(v), Some(i)) => {
                Reply::Landed(Landing { version: VersionId::new(v)?, instance: InstanceId(i.into()) })
            }
            _ => Reply::Refused { status: resp.status },
        })
    }

    async fn set_healthy(&self, target: &Target, healthy: bool) -> Result<()> {
        let ups = self.upstreams.lock().unwrap();
        let up = ups
            .values()
            .flatten()
            .find(|u| u.instance == target.instance.0)
            .ok_or_else(|| Error::NotFound { what: format!("upstream {}", target.instance) })?;
        up.set_healthy(healthy);
        Ok(())
    }

    async fn cleanup(&self, app: &AppName) -> Result<()> {
        self.upstreams.lock().unwrap().remove(app);
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(20)
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(50)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_router_passes_the_router_conformance_suite() {
    require_envoy!();
    let router = TestRouter::start().await;
    let harness = EnvoyHarness {
        base: router.public_url(),
        http: Http::new(),
        upstreams: Mutex::new(BTreeMap::new()),
        key_by_query: Default::default(),
    };
    let report = run_router_suite(router.router(), &harness).await;
    eprintln!("{report}");
    report.assert_passed();
    assert!(
        report.skipped_checks().is_empty(),
        "nothing skipped against a real Envoy: {:?}",
        report.skipped_checks()
    );
    assert!(router.apps().unwrap().is_empty(), "every app was cleaned up");
}
