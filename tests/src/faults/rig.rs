//! [`Rig`]: one fault test's world — a uniquely named app, the demo image, a [`DockerOrchestrator`] and an
//! [`EnvoyRouter`] whose state directories a separate deployer process can adopt, the drain secret in a
//! file, and a cleanup that removes every container of the app, stops Envoy and deletes the directories.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use pulse_deploy_core::drain::HttpDrainClient;
use pulse_deploy_core::rollout::{EventSink, Executor, RolloutPolicy};
use pulse_deploy_core::{AppName, Orchestrator, Release, Secret, TrafficRouter, VersionId};
use pulse_deploy_local::docker::{build_demo_image, remove_app_containers, DEMO_IMAGE};
use pulse_deploy_local::preflight;
use pulse_deploy_local::{DockerOrchestrator, EnvoyRouter, LocalConfig, LocalProvider};
use rand::Rng;
use tokio::sync::OnceCell;

use crate::http::HttpClient;
use crate::session::{self, OnError, SessionHandle};

/// How long any single wait of a fault test may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Envoy's active health-check interval, the same in the test and in the deployer process.
pub(super) const HEALTH_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// The demo image, built once per test process.
static IMAGE: OnceCell<()> = OnceCell::const_new();

/// One fault test's app on Docker and Envoy. Everything lives under [`Rig::dir`]:
/// `docker/` (the orchestrator's state), `envoy/` (the router's), `drain-secret`.
pub struct Rig {
    /// When the test started (progress lines count from here).
    pub t0: Instant,
    /// The app, unique per test run.
    pub app: AppName,
    /// The root state directory.
    pub dir: PathBuf,
    /// The file holding the drain secret (what the deployer process reads).
    pub secret_file: PathBuf,
    /// The Docker client.
    pub docker: Docker,
    /// The orchestrator (this process's).
    pub orchestrator: Arc<DockerOrchestrator>,
    /// The router (this process's; Envoy outlives it).
    pub router: Arc<EnvoyRouter>,
    /// The drain client.
    pub drain: Arc<HttpDrainClient>,
    /// Envoy's public listener, `127.0.0.1:PORT`.
    pub base: String,
    /// HTTP client for page loads.
    pub http: HttpClient,
    /// The rollout policy of in-process executors (fast polls for tests).
    pub policy: RolloutPolicy,
}

impl Rig {
    /// Prepares a rig for the test `name`: checks Docker and Envoy (skip outside CI, fail under
    /// `CI=true`), builds the demo image, starts Envoy for a fresh app.
    pub async fn start(name: &str) -> Option<Rig> {
        let t0 = Instant::now();
        let docker = preflight::or_skip("Docker", preflight::docker().await)?;
        preflight::or_skip("Envoy", preflight::envoy())?;
        let workspace = crate::workspace_root();
        IMAGE
            .get_or_init(|| async {
                build_demo_image(&docker, &workspace, DEMO_IMAGE).await.expect("building the demo image");
            })
            .await;
        let suffix: String = (0..5).map(|_| (b'a' + rand::thread_rng().gen_range(0..26u8)) as char).collect();
        let app = AppName::new(format!("f{}-{suffix}", &name[..name.len().min(8)])).expect("app name");
        let dir = std::env::temp_dir().join(format!("pulse-faults-{app}"));
        std::fs::create_dir_all(&dir).expect("state dir");
        let token: String = (0..32).map(|_| format!("{:x}", rand::thread_rng().gen_range(0..16u8))).collect();
        let secret_file = dir.join("drain-secret");
        write_private(&secret_file, &token);
        let secret = Secret::new("fault test drain secret", token).expect("secret");
        let mut config = LocalConfig::new(&dir, secret);
        config.docker = Some(docker.clone());
        config.retire_wait = Some(Duration::from_secs(2));
        config.default_app = Some(app.clone());
        config.listen = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        config.health_check_interval = Some(HEALTH_CHECK_INTERVAL);
        let LocalProvider { orchestrator, router, drain } =
            LocalProvider::connect(config).await.expect("the local provider");
        let base = router.listener_addr().to_string();
        let policy = RolloutPolicy {
            health_timeout: Duration::from_secs(90),
            poll_interval: Duration::from_millis(250),
            ..Default::default()
        };
        let rig = Rig {
            t0,
            app,
            dir,
            secret_file,
            docker,
            orchestrator,
            router,
            drain,
            base,
            http: HttpClient::new(),
            policy,
        };
        rig.progress(format!(
            "app {} on Envoy http://{} (state in {})",
            rig.app,
            rig.base,
            rig.dir.display()
        ));
        Some(rig)
    }

    /// Prints one progress line with the time since the test started.
    pub fn progress(&self, msg: impl AsRef<str>) {
        eprintln!("[{:>6.1}s] {}", self.t0.elapsed().as_secs_f64(), msg.as_ref());
    }

    /// An executor in this process over the rig's providers, reporting to `events`.
    pub fn executor(&self, events: EventSink) -> Executor {
        Executor::builder(self.orchestrator.clone(), self.router.clone(), self.drain.clone())
            .policy(self.policy.clone())
            .events(events)
            .build()
    }

    /// The release of `version` every fault test deploys: the demo app, 2 replicas, a drain deadline far
    /// beyond the test, and the app's reconnect grace `session_grace` (how long a session whose socket
    /// went away is kept; a page load that never opens its socket holds the version that long, too).
    pub fn release(&self, version: &str, session_grace: Duration) -> Release {
        Release::builder(self.app.as_str(), version, DEMO_IMAGE)
            .replicas(2)
            .port(8000)
            .drain_deadline(Duration::from_secs(600))
            .stop_grace(Duration::from_secs(5))
            .env("PULSE_SESSION_GRACE_SECS", session_grace.as_secs().to_string())
            .build()
            .expect("release")
    }

    /// Opens `n` sessions through Envoy, numbered from `first`; each must land on `version`.
    pub async fn open_sessions(
        &self,
        first: usize,
        n: usize,
        version: &str,
        on_error: OnError,
    ) -> Vec<SessionHandle> {
        let tick = Duration::from_millis(500);
        let opens =
            (first..first + n).map(|i| session::open_with(i, &self.http, &self.base, None, tick, on_error));
        let sessions: Vec<SessionHandle> = futures::future::join_all(opens)
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("opening sessions: {e}"));
        for h in &sessions {
            let r = h.record();
            assert_eq!(r.first_version, version, "session {} opened on the wrong version: {r:?}", r.n);
        }
        sessions
    }

    /// `(live, all)` containers of `version`.
    pub async fn containers(&self, version: &VersionId) -> (usize, usize) {
        let versions = self.orchestrator.versions(&self.app).await.expect("versions");
        versions
            .iter()
            .find(|v| v.version() == version)
            .map(|v| (v.live_instances().count(), v.instances.len()))
            .unwrap_or((0, 0))
    }

    /// Pids of every live Envoy process started with this rig's bootstrap (there must be one).
    pub fn envoy_processes(&self) -> Vec<u32> {
        self.router.envoy_processes()
    }

    /// Waits until `version` has no container and no route left.
    pub async fn wait_gone(&self, version: &VersionId, timeout: Duration) {
        poll(&format!("{version} to be gone (containers and routes)"), timeout, || async {
            let containers = self.orchestrator.versions(&self.app).await.ok()?;
            let routing = self.router.routing(&self.app).await.ok()?;
            let left =
                containers.iter().any(|v| v.version() == version) || routing.versions.contains_key(version);
            (!left).then_some(())
        })
        .await
    }

    /// Removes every container of the app (forcibly: the test is over), stops Envoy, deletes the state
    /// directory. Returns what could not be removed (empty when clean).
    pub async fn cleanup(&self) -> Vec<String> {
        let mut left = remove_app_containers(&self.docker, &self.app).await;
        if let Err(e) = self.router.stop().await {
            left.push(format!("Envoy: {e}"));
        }
        for pid in self.envoy_processes() {
            left.push(format!("Envoy process {pid} still runs"));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        left
    }

    /// Runs `scenario` and cleans up afterwards whatever happened (a failed assertion included), then
    /// fails the test if the scenario failed or anything was left behind.
    pub async fn run<F, Fut>(self, scenario: F)
    where
        F: FnOnce(Arc<Rig>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let rig = Arc::new(self);
        let outcome = tokio::spawn(scenario(rig.clone())).await;
        let left = rig.cleanup().await;
        rig.progress(format!("cleanup done; left behind: {left:?}"));
        if let Err(e) = outcome {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("scenario task: {e}"),
            }
        }
        assert!(left.is_empty(), "cleanup left resources behind: {left:?}");
    }
}

/// Polls `check` every 50 ms until it returns `Some`, panicking with `what` after `timeout`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes `content` to a file only its owner can read.
fn write_private(path: &Path, content: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .expect("secret file");
    f.write_all(content.as_bytes()).expect("writing the secret file");
}

impl std::fmt::Debug for Rig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rig").finish_non_exhaustive()
    }
}
