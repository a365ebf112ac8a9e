//! The end-to-end run's environment: the demo image, the Docker orchestrator, the Envoy router, the
//! executor printing live progress, the controller, the timeline sampler — and the cleanup that removes
//! all of it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use pulse_deploy_core::drain::{HttpDrainClient, InstanceStatus};
use pulse_deploy_core::rollout::{Executor, RolloutEvent, RolloutPolicy};
use pulse_deploy_core::{AppName, Orchestrator, Secret, TrafficRouter, VersionId};
use pulse_deploy_local::docker::{build_demo_image, connect_docker, DEMO_IMAGE};
use pulse_deploy_local::{DockerOrchestrator, EnvoyRouter, LocalConfig, LocalProvider};
use rand::Rng;

use super::{progress, sample, AppKind, E2eConfig, Timeline};
use crate::http::HttpClient;
use crate::session::SessionHandle;
use pulse_deploy::timeline::{Mark, Sample};
use pulse_deploy_core::rollout::Controller;

/// What is left after cleanup.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// Containers of the run's app.
    pub containers: u64,
    /// Whether the run's Envoy still runs.
    pub envoy_running: bool,
}

/// The running environment of one end-to-end run.
pub struct Env {
    /// When the run started.
    pub t0: Instant,
    /// The run's app (unique per run).
    pub app: AppName,
    /// The image every version runs.
    pub image: String,
    /// The app deployed.
    pub kind: AppKind,
    /// The Pulse app's own session-cookie secret (`PULSE_SECRET`; not the drain secret).
    pub session_secret: String,
    /// Envoy's public listener, `127.0.0.1:PORT`.
    pub base: String,
    /// HTTP client for page loads.
    pub http: HttpClient,
    /// The deployer.
    pub controller: Controller,
    pub(crate) orchestrator: Arc<DockerOrchestrator>,
    pub(crate) router: Arc<EnvoyRouter>,
    drain: Arc<HttpDrainClient>,
    timeline: Timeline,
    sampler: tokio::task::JoinHandle<()>,
    sessions_opened: std::sync::atomic::AtomicUsize,
}

impl Env {
    /// Builds the image, starts the providers, the controller and the sampler.
    pub async fn start(config: &E2eConfig, t0: Instant) -> Result<Env, String> {
        let e = |e: pulse_deploy_core::Error| e.to_string();
        let docker = connect_docker().await.map_err(e)?;
        let image = match config.app {
            AppKind::Demo => {
                if config.build_image {
                    progress(t0, format!("building the demo app (static binary) and its image {DEMO_IMAGE}"));
                    build_demo_image(&docker, &config.workspace, DEMO_IMAGE).await.map_err(e)?;
                    progress(t0, "image built");
                }
                DEMO_IMAGE.to_string()
            }
            AppKind::Pulse => {
                progress(t0, "the example Pulse app's image (Python images built once, cached by content)");
                let image = crate::python_image::ensure_app_image(&docker, &config.workspace).await?;
                progress(t0, format!("image {image}"));
                image
            }
        };
        let suffix: u32 = rand::thread_rng().gen_range(0..0x10000);
        let app = AppName::new(format!("e2e-{suffix:04x}")).map_err(e)?;
        let token: String = (0..32).map(|_| format!("{:x}", rand::thread_rng().gen_range(0..16u8))).collect();
        let secret = Secret::new("e2e drain secret", token).map_err(e)?;
        progress(t0, format!("starting Envoy for app {app}"));
        let mut local = LocalConfig::new(&config.out_dir, secret);
        local.envoy_dir = config.out_dir.join(format!("envoy-{app}"));
        local.docker = Some(docker);
        local.retire_wait = Some(Duration::from_secs(2));
        local.default_app = Some(app.clone());
        local.listen = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        local.health_check_interval = Some(Duration::from_millis(500));
        let LocalProvider { orchestrator, router, drain } = LocalProvider::connect(local).await.map_err(e)?;
        let base = router.listener_addr().to_string();
        progress(t0, format!("Envoy listens on http://{base}"));
        let policy = RolloutPolicy {
            health_timeout: Duration::from_secs(90),
            poll_interval: Duration::from_millis(500),
            ..Default::default()
        };
        let printer = move |ev: &RolloutEvent| match ev {
            RolloutEvent::ActionStarted { action } => progress(t0, format!("  → {action}")),
            RolloutEvent::ActionRetried { action, attempt, error, .. } => {
                progress(t0, format!("  ↻ {action}: attempt {attempt} failed: {error}"))
            }
            RolloutEvent::DrainSent { version, acknowledged, of } => progress(
                t0,
                format!("  ✓ drain signal: {acknowledged} of {of} instances of {version} acknowledged"),
            ),
            RolloutEvent::RollingBack { version, reason } => {
                progress(t0, format!("  ✗ rolling back {version}: {reason}"))
            }
            RolloutEvent::Observed { versions, .. } => {
                let line: Vec<String> = versions
                    .iter()
                    .map(|v| {
                        format!(
                            "{} {} {}% {}/{} healthy {} sessions",
                            v.version, v.phase, v.weight, v.healthy, v.instances.1, v.sessions
                        )
                    })
                    .collect();
                progress(t0, format!("  · {}", line.join(" | ")));
            }
            _ => {}
        };
        let executor = Executor::builder(orchestrator.clone(), router.clone(), drain.clone())
            .policy(policy.clone())
            .events(Arc::new(printer))
            .build();
        let controller = Controller::start(executor.clone(), app.clone(), Duration::from_millis(500));
        let timeline = Timeline::default();
        let sampler = {
            let (executor, app, timeline) = (executor.clone(), app.clone(), timeline.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                loop {
                    tick.tick().await;
                    if let Ok(observed) = executor.observe(&app).await {
                        let s = sample(&observed, t0.elapsed().as_secs_f64(), &policy);
                        timeline.samples.lock().unwrap().extend(s);
                    }
                }
            })
        };
        Ok(Env {
            t0,
            app,
            image,
            kind: config.app,
            session_secret: (0..32).map(|_| format!("{:x}", rand::thread_rng().gen_range(0..16u8))).collect(),
            base,
            http: HttpClient::new(),
            controller,
            orchestrator,
            router,
            drain,
            timeline,
            sampler,
            sessions_opened: Default::default(),
        })
    }

    /// Marks a step on the timeline, prints it, and returns when it started.
    pub fn mark(&self, label: &str) -> Instant {
        progress(self.t0, format!("STEP {label}"));
        self.timeline
            .marks
            .lock()
            .unwrap()
            .push(Mark { t: self.t0.elapsed().as_secs_f64(), label: label.into() });
        Instant::now()
    }

    /// The samples and marks so far.
    pub fn timeline(&self) -> (Vec<Sample>, Vec<Mark>) {
        (self.timeline.samples.lock().unwrap().clone(), self.timeline.marks.lock().unwrap().clone())
    }

    /// Opens `n` sessions concurrently through Envoy.
    pub async fn open_sessions(
        &self,
        n: usize,
        affinity: Option<&str>,
    ) -> Result<Vec<SessionHandle>, String> {
        let first = self.sessions_opened.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
        let opens = (0..n).map(|i| self.kind.open_session(first + i, &self.http, &self.base, affinity));
        futures::future::join_all(opens).await.into_iter().collect()
    }

    /// Checks that every live instance of `version` answers the drain protocol's status call (an app
    /// without the drain endpoints could never be drained; say so now rather than at a timeout).
    pub async fn check_drain_protocol(&self, version: &VersionId) -> Result<(), String> {
        let versions = self.orchestrator.versions(&self.app).await.map_err(|e| e.to_string())?;
        let v =
            versions.iter().find(|v| v.version() == version).ok_or(format!("{version} is not running"))?;
        for i in v.live_instances() {
            if let Err(e) = pulse_deploy_core::drain::verified::status(self.drain.as_ref(), i).await {
                return Err(format!(
                    "instance {} of {version} does not answer the drain protocol's status ({e}); the app \
                     must implement docs/drain-protocol.md (for a Pulse app: the drain plugin in its App)",
                    i.id
                ));
            }
        }
        Ok(())
    }

    /// The drain deadline the instances of `version` report.
    pub async fn deadline_of(&self, version: &VersionId) -> Result<SystemTime, String> {
        let versions = self.orchestrator.versions(&self.app).await.map_err(|e| e.to_string())?;
        let v =
            versions.iter().find(|v| v.version() == version).ok_or(format!("{version} is not running"))?;
        let mut deadline = None;
        for i in v.live_instances() {
            let status: InstanceStatus = pulse_deploy_core::drain::verified::status(self.drain.as_ref(), i)
                .await
                .map_err(|e| e.to_string())?;
            deadline = deadline.max(status.deadline);
        }
        deadline.ok_or(format!("{version} reports no drain deadline"))
    }

    /// Waits until `version` has no container and no route left.
    pub async fn wait_gone(&self, version: &VersionId, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let containers = self.orchestrator.versions(&self.app).await.map_err(|e| e.to_string())?;
            let routing = self.router.routing(&self.app).await.map_err(|e| e.to_string())?;
            let left =
                containers.iter().any(|v| v.version() == version) || routing.versions.contains_key(version);
            if !left {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{version} still present after {}", humantime::format_duration(timeout)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the controller and the sampler, retires every version of the app, stops Envoy, and reports
    /// what is left.
    pub async fn cleanup(self) -> Leftovers {
        progress(self.t0, "cleaning up: stopping the controller, retiring every version, stopping Envoy");
        self.sampler.abort();
        self.controller.stop().await;
        let torn = pulse_deploy_core::teardown::tear_down(
            Some(self.orchestrator.as_ref()),
            Some(self.router.as_ref()),
            &self.app,
            Duration::from_secs(60),
        )
        .await;
        if let Err(e) = &torn {
            progress(self.t0, format!("  teardown: {e}"));
        }
        let versions = self.orchestrator.versions(&self.app).await.unwrap_or_default();
        let containers = versions.iter().map(|v| v.instances.len() as u64).sum::<u64>();
        let router = Arc::try_unwrap(self.router);
        let envoy_running = match router {
            Ok(r) => r.shutdown().await.is_err(),
            Err(shared) => shared.stop().await.is_err(),
        };
        progress(
            self.t0,
            format!("cleanup done: {containers} containers left, Envoy running: {envoy_running}"),
        );
        Leftovers { containers, envoy_running }
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").finish_non_exhaustive()
    }
}
