//! The conformance harnesses on the emulator: unique app names, releases, crashes (a task stopped from
//! outside), and upstreams for the router (in-process HTTP responders on loopback that answer with
//! their version and instance, or 503 once told to fail: the launcher's health check sees it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use pulse_deploy_core::conformance::{OrchestratorHarness, Probe, Reply, RouterHarness};
use pulse_deploy_core::{AppName, Error, Instance, Release, Result, Target, VersionId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use super::{infra, Emulator, CLUSTER};

static NEXT_APP: AtomicU32 = AtomicU32::new(0);
static NEXT_IP: AtomicU32 = AtomicU32::new(0);

/// A fresh app name: `t` + process id + a counter (at most 16 characters).
pub(crate) fn unique_app() -> AppName {
    let n = NEXT_APP.fetch_add(1, Ordering::SeqCst);
    AppName::new(format!("t{}x{n}", std::process::id() % 100_000)).expect("a valid app name")
}

/// The orchestrator harness.
pub(crate) struct EcsHarness<'a> {
    /// The emulator.
    pub emulator: &'a Emulator,
}

#[async_trait]
impl OrchestratorHarness for EcsHarness<'_> {
    fn unique_app(&self) -> AppName {
        unique_app()
    }

    fn release(&self, app: &AppName, version: &VersionId, replicas: u32) -> Release {
        Release::builder(app.as_str(), version.as_str(), "pulse-demo-app:test")
            .replicas(replicas)
            .stop_grace(Duration::from_secs(10))
            .build()
            .expect("a valid release")
    }

    async fn crash(&self, instance: &Instance) -> Result<()> {
        self.emulator
            .aws
            .ecs()
            .stop_task()
            .cluster(CLUSTER)
            .task(&instance.id.0)
            .reason("Essential container in task exited")
            .send()
            .await
            .map_err(|e| Error::provider("ecs", format!("crashing a task: {e}"), false))?;
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(20)
    }
}

/// The router harness: in-process upstreams, a load balancer per app; requests cannot be sent (moto has
/// no data plane); an upstream fails its health check (503) when told to.
pub(crate) struct AlbHarness<'a> {
    /// The emulator.
    pub emulator: &'a Emulator,
    upstreams: Mutex<HashMap<AppName, Vec<JoinHandle<()>>>>,
    healthy: Mutex<HashMap<Target, Arc<AtomicBool>>>,
    balancers: tokio::sync::Mutex<Vec<AppName>>,
}

impl<'a> AlbHarness<'a> {
    /// A harness on `emulator`.
    pub(crate) fn new(emulator: &'a Emulator) -> Self {
        AlbHarness {
            emulator,
            upstreams: Mutex::new(HashMap::new()),
            healthy: Mutex::new(HashMap::new()),
            balancers: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// Deletes every load balancer the harness created.
    pub(crate) async fn teardown(&self) {
        let elbv2 = self.emulator.aws.elbv2();
        for app in self.balancers.lock().await.drain(..) {
            infra::delete_app_load_balancer(&elbv2, &app).await;
        }
    }
}

/// An HTTP upstream on 127.0.x.y that answers every request with its version and instance (200), or
/// with 503 while its flag says unhealthy.
async fn upstream(version: &VersionId) -> (Target, Arc<AtomicBool>, JoinHandle<()>) {
    // One loopback address per upstream, as every task has its own IP (moto also keys targets by IP).
    let n = NEXT_IP.fetch_add(1, Ordering::SeqCst);
    let ip = format!("127.0.{}.{}", 1 + n / 250, 1 + n % 250);
    let listener = tokio::net::TcpListener::bind((ip.as_str(), 0)).await.expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    let target = pulse_deploy_aws::alb::target_group::target(&ip, addr.port());
    let body = format!("{{\"version\":\"{version}\",\"instance\":\"{}\"}}", target.instance);
    let healthy = Arc::new(AtomicBool::new(true));
    let flag = healthy.clone();
    let handle = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let body = body.clone();
            let status = if flag.load(Ordering::SeqCst) { "200 OK" } else { "503 Service Unavailable" };
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (target, healthy, handle)
}

#[async_trait]
impl RouterHarness for AlbHarness<'_> {
    fn unique_app(&self) -> AppName {
        unique_app()
    }

    async fn spawn_version(&self, app: &AppName, version: &VersionId, replicas: u32) -> Result<Vec<Target>> {
        {
            let mut balancers = self.balancers.lock().await;
            if !balancers.contains(app) {
                infra::app_load_balancer(&self.emulator.aws.elbv2(), &self.emulator.network, app).await;
                balancers.push(app.clone());
            }
        }
        let mut targets = Vec::new();
        for _ in 0..replicas {
            let (target, healthy, handle) = upstream(version).await;
            self.healthy.lock().expect("health flags").insert(target.clone(), healthy);
            self.upstreams.lock().expect("upstreams").entry(app.clone()).or_default().push(handle);
            targets.push(target);
        }
        Ok(targets)
    }

    fn can_send_requests(&self) -> bool {
        false
    }

    async fn request(&self, _app: &AppName, _probe: &Probe) -> Result<Reply> {
        Err(Error::invalid("probe", "moto has no data plane: no request goes through its load balancers"))
    }

    fn can_control_health(&self) -> bool {
        true
    }

    async fn set_healthy(&self, target: &Target, healthy: bool) -> Result<()> {
        let flags = self.healthy.lock().expect("health flags");
        let flag =
            flags.get(target).ok_or_else(|| Error::invalid("target", "not an upstream of this harness"))?;
        flag.store(healthy, Ordering::SeqCst);
        Ok(())
    }

    async fn cleanup(&self, app: &AppName) -> Result<()> {
        for h in self.upstreams.lock().expect("upstreams").remove(app).unwrap_or_default() {
            h.abort();
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(20)
    }
}
