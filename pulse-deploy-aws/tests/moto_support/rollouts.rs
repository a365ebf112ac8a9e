//! The rig of the engine's rollouts on the emulator: one app with its load balancer, demo-app processes
//! as its tasks, fresh providers built from the configuration for every deployer run, a WebSocket
//! session client that talks to a task at its own address (moto routes nothing), and the check that
//! nothing of the app is left on AWS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use pulse_deploy_aws::{AlbRouter, AwsConfig, EcsOrchestrator};
use pulse_deploy_core::drain::{DrainClient, HttpDrainClient, InstanceStatus};
use pulse_deploy_core::rollout::{discard, EventSink, Executor, RolloutPolicy};
use pulse_deploy_core::{
    AppName, Endpoint, Instance, Orchestrator, Release, TrafficRouter, VersionId, Weights,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use super::demo_tasks::DemoTasks;
use super::harness::unique_app;
use super::{infra, Emulator, CLUSTER};

/// How long a rig waits for any one condition.
pub(crate) const STEP: Duration = Duration::from_secs(30);

/// The demo app, built once per test process with the local provider's static build (the binary the
/// local e2e puts in its image).
async fn demo_binary() -> std::path::PathBuf {
    static BINARY: tokio::sync::OnceCell<std::path::PathBuf> = tokio::sync::OnceCell::const_new();
    BINARY
        .get_or_init(|| async {
            let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let artifact = pulse_deploy_local::docker::Artifact::Bin("pulse-demo-app".into());
            pulse_deploy_local::docker::build_static_binary_with(
                &workspace,
                "pulse-server-drain",
                &artifact,
                &["demo"],
            )
            .await
            .expect("building pulse-demo-app")
        })
        .await
        .clone()
}

/// A free TCP port (the container port of the rig's releases: every task listens on it at its own
/// address, and no wildcard listener of another process holds it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0").expect("bind").local_addr().expect("addr").port()
}

/// One app on the emulator.
pub(crate) struct Rig {
    /// The emulator.
    pub emulator: Emulator,
    /// The tasks' processes.
    pub tasks: Arc<DemoTasks>,
    /// The app.
    pub app: AppName,
    /// The container port of every release.
    pub port: u16,
}

impl std::fmt::Debug for Rig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rig").field("app", &self.app).field("port", &self.port).finish()
    }
}

impl Rig {
    /// moto, the demo binary and the app's load balancer; `None` when moto is missing outside CI.
    pub(crate) async fn start() -> Option<Rig> {
        let tasks = Arc::new(DemoTasks::new(demo_binary().await));
        let emulator = Emulator::start(tasks.clone()).await?;
        let app = unique_app();
        infra::app_load_balancer(&emulator.aws.elbv2(), &emulator.network, &app).await;
        Some(Rig { emulator, tasks, app, port: free_port() })
    }

    /// A release of the demo app: 2 replicas, a 1 s reconnect grace, the given drain deadline.
    pub(crate) fn release(&self, version: &str, drain_deadline: Duration) -> Release {
        self.release_with(version, drain_deadline, |b| b)
    }

    /// [`Rig::release`], changed by `edit`.
    pub(crate) fn release_with(
        &self,
        version: &str,
        drain_deadline: Duration,
        edit: impl FnOnce(pulse_deploy_core::ReleaseBuilder) -> pulse_deploy_core::ReleaseBuilder,
    ) -> Release {
        let b = Release::builder(self.app.as_str(), version, "pulse-demo-app:test")
            .replicas(2)
            .port(self.port)
            .env("PORT", self.port.to_string())
            .env("PULSE_SESSION_GRACE_SECS", "1")
            .env("PULSE_SHUTDOWN_TIMEOUT_SECS", "5")
            .drain_deadline(drain_deadline)
            .stop_grace(Duration::from_secs(10));
        edit(b).build().expect("a valid release")
    }

    /// The drain client, with the secret the tasks read from Secrets Manager.
    pub(crate) fn drain_client(&self) -> HttpDrainClient {
        HttpDrainClient::new(self.emulator.drain_secret.clone()).with_timeout(Duration::from_secs(3))
    }

    /// The rollout policy of the tests: poll every 200 ms.
    pub(crate) fn policy(&self) -> RolloutPolicy {
        RolloutPolicy {
            health_timeout: Duration::from_secs(20),
            poll_interval: Duration::from_millis(200),
            ..RolloutPolicy::default()
        }
    }

    /// Fresh providers from the configuration, on `aws`.
    pub(crate) fn providers(&self, aws: &AwsConfig) -> (Arc<EcsOrchestrator>, Arc<AlbRouter>) {
        (
            Arc::new(EcsOrchestrator::new(aws, self.emulator.ecs_config())),
            Arc::new(self.emulator.router_on(aws)),
        )
    }

    /// A fresh executor (fresh providers, drain client and memory) with `policy`, reporting to `events`.
    pub(crate) fn executor_on(&self, aws: &AwsConfig, policy: RolloutPolicy, events: EventSink) -> Executor {
        let (orchestrator, router) = self.providers(aws);
        Executor::builder(orchestrator, router, Arc::new(self.drain_client()))
            .policy(policy)
            .events(events)
            .run_timeout(Duration::from_secs(120))
            .build()
    }

    /// [`Rig::executor_on`] with the emulator's plain configuration and the tests' policy.
    pub(crate) fn executor(&self) -> Executor {
        self.executor_on(&self.emulator.aws, self.policy(), discard())
    }

    /// The orchestrator (a fresh one).
    pub(crate) fn orchestrator(&self) -> EcsOrchestrator {
        EcsOrchestrator::new(&self.emulator.aws, self.emulator.ecs_config())
    }

    /// The router (a fresh one).
    pub(crate) fn router(&self) -> AlbRouter {
        self.emulator.router()
    }

    /// The listener's split of new sessions.
    pub(crate) async fn weights(&self) -> Weights {
        self.router().routing(&self.app).await.expect("routing").weights
    }

    /// The live instances of `version` (sorted by id).
    pub(crate) async fn instances(&self, version: &str) -> Vec<Instance> {
        let v = VersionId::new(version).expect("version");
        let versions = self.orchestrator().versions(&self.app).await.expect("versions");
        versions
            .into_iter()
            .find(|s| s.release.version == v)
            .map(|s| s.live_instances().cloned().collect())
            .unwrap_or_default()
    }

    /// The versions ECS runs for the app.
    pub(crate) async fn versions(&self) -> Vec<String> {
        let versions = self.orchestrator().versions(&self.app).await.expect("versions");
        versions.iter().map(|s| s.release.version.to_string()).collect()
    }

    /// The drain status of an instance, straight from the instance.
    pub(crate) async fn status(&self, instance: &Instance) -> InstanceStatus {
        self.drain_client().status(instance).await.expect("status")
    }

    /// The drain status of an instance, or `None` while it does not answer.
    pub(crate) async fn try_status(&self, instance: &Instance) -> Option<InstanceStatus> {
        self.drain_client().status(instance).await.ok()
    }

    /// Tears the app down (out of the listener, every version retired) and waits until no process of
    /// it runs.
    pub(crate) async fn tear_down(&self) {
        let (orchestrator, router) = self.providers(&self.emulator.aws);
        pulse_deploy_core::teardown::tear_down(
            Some(orchestrator.as_ref()),
            Some(router.as_ref()),
            &self.app,
            STEP,
        )
        .await
        .expect("tear down");
        poll("every task process to exit", STEP, || async { self.tasks.running().is_empty().then_some(()) })
            .await;
    }

    /// What is left of the app on AWS: active services, target groups, listener rules other than the
    /// admin block, active task definitions, a forward action; and task processes still running.
    pub(crate) async fn leftovers(&self) -> Vec<String> {
        let prefix = format!("pulse-{}-", self.app);
        let mut left = Vec::new();
        let ecs = self.emulator.aws.ecs();
        let arns = ecs.list_services().cluster(CLUSTER).send().await.expect("ListServices");
        let mine: Vec<String> = arns
            .service_arns()
            .iter()
            .filter(|a| a.rsplit('/').next().is_some_and(|n| n.starts_with(&prefix)))
            .cloned()
            .collect();
        if !mine.is_empty() {
            let d =
                ecs.describe_services().cluster(CLUSTER).set_services(Some(mine)).send().await.expect("ds");
            for s in d.services().iter().filter(|s| s.status() != Some("INACTIVE")) {
                left.push(format!(
                    "service {} ({})",
                    s.service_name().unwrap_or(""),
                    s.status().unwrap_or("")
                ));
            }
        }
        let tds = ecs
            .list_task_definitions()
            .family_prefix(&prefix)
            .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
            .send()
            .await
            .expect("ListTaskDefinitions");
        left.extend(tds.task_definition_arns().iter().map(|a| format!("task definition {a}")));
        let elbv2 = self.emulator.aws.elbv2();
        let tgs = elbv2.describe_target_groups().send().await.expect("DescribeTargetGroups");
        for tg in tgs.target_groups() {
            if tg.target_group_name().is_some_and(|n| n.starts_with(&prefix)) {
                left.push(format!("target group {}", tg.target_group_name().unwrap_or("")));
            }
        }
        let lbs = elbv2
            .describe_load_balancers()
            .names(format!("pulse-{}", self.app))
            .send()
            .await
            .expect("DescribeLoadBalancers");
        let lb = lbs.load_balancers()[0].load_balancer_arn().expect("lb").to_owned();
        let listeners = elbv2.describe_listeners().load_balancer_arn(&lb).send().await.expect("listeners");
        for l in listeners.listeners() {
            for a in l.default_actions() {
                if a.r#type() != Some(&aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::FixedResponse) {
                    left.push(format!("listener default action {:?}", a.r#type()));
                }
            }
            let rules = elbv2
                .describe_rules()
                .listener_arn(l.listener_arn().unwrap_or_default())
                .send()
                .await
                .expect("DescribeRules");
            for r in rules.rules() {
                if !r.is_default().unwrap_or(false) && r.priority() != Some("1") {
                    left.push(format!("listener rule {}", r.priority().unwrap_or("")));
                }
            }
        }
        left.extend(
            self.tasks.running().into_iter().map(|(arn, v, e)| format!("process of {v} {arn} at {e}")),
        );
        left
    }

    /// Tears down and asserts that nothing of the app is left.
    pub(crate) async fn assert_nothing_left(&self) {
        self.tear_down().await;
        let left = self.leftovers().await;
        assert!(left.is_empty(), "left on AWS after the scenario: {left:#?}");
    }
}

/// Polls `check` every 50 ms until it returns `Some`, panicking after `timeout` naming `what`.
pub(crate) async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
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

/// A page load (`GET /`, no session named) straight to an instance: the HTTP status code.
pub(crate) async fn page_load(endpoint: &Endpoint) -> u16 {
    let mut s =
        tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await.expect("connect");
    let req = format!("GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", endpoint.host);
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out);
    text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"))
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A live demo-app session over its WebSocket, opened straight on one instance.
pub(crate) struct Session {
    ws: Ws,
    /// The session id.
    pub id: String,
    /// The version that answered the hello.
    pub version: String,
    /// The instance that answered the hello.
    pub instance: String,
    counter: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("version", &self.version).field("instance", &self.instance).finish()
    }
}

fn parse(msg: &Message) -> serde_json::Value {
    match msg {
        Message::Text(t) => serde_json::from_str(t.as_str()).expect("a JSON message"),
        other => panic!("expected a text message, got {other:?}"),
    }
}

impl Session {
    /// Opens a new session on `instance` (`/ws` without a session id creates one).
    pub(crate) async fn open(instance: &Instance) -> Session {
        let e = instance.endpoint.as_ref().expect("a live instance has an endpoint");
        let url = format!("ws://{}:{}/ws?pulse_version={}", e.host, e.port, instance.version);
        let s = Session::open_url(&url).await;
        assert_eq!(s.version, instance.version.as_str());
        assert_eq!(s.instance, instance.id.0, "the demo app takes the task ARN as its id");
        s
    }

    /// Opens a new session at `url` (a `/ws` URL without a session id), wherever it is routed.
    pub(crate) async fn open_url(url: &str) -> Session {
        Session::try_open_url(url).await.unwrap_or_else(|e| panic!("WebSocket to {url}: {e}"))
    }

    /// [`Session::open_url`], or the error when the handshake is refused (e.g. 409 from a draining
    /// version that a load balancer still sends new sessions to).
    pub(crate) async fn try_open_url(url: &str) -> Result<Session, String> {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.map_err(|e| e.to_string())?;
        let hello =
            tokio::time::timeout(STEP, ws.next()).await.expect("hello in time").expect("open").expect("ok");
        let hello = parse(&hello);
        assert_eq!(hello["type"], "hello", "{hello}");
        let s = Session {
            ws,
            id: hello["session"].as_str().expect("session").to_owned(),
            version: hello["version"].as_str().expect("version").to_owned(),
            instance: hello["instance"].as_str().expect("instance").to_owned(),
            counter: hello["counter"].as_u64().expect("counter"),
        };
        Ok(s)
    }

    /// Answers checked on this session so far (the hello not included).
    pub(crate) fn answers(&self) -> u64 {
        self.counter
    }

    /// One increment, answered by the same version and instance with the next counter value.
    pub(crate) async fn increment(&mut self) {
        self.ws.send(Message::Text(r#"{"type":"increment"}"#.into())).await.expect("send");
        let reply = tokio::time::timeout(STEP, self.ws.next()).await.expect("answer in time");
        let reply = parse(&reply.expect("open").expect("ok"));
        self.counter += 1;
        assert_eq!(reply["type"], "counter", "{reply}");
        assert_eq!(reply["counter"].as_u64(), Some(self.counter), "{reply}");
        assert_eq!(
            (reply["version"].as_str(), reply["instance"].as_str()),
            (Some(&*self.version), Some(&*self.instance))
        );
    }

    /// Ends the session (the server forgets it at once) and closes the socket.
    pub(crate) async fn end(mut self) {
        self.ws.send(Message::Text(r#"{"type":"end"}"#.into())).await.expect("send");
        let reply = tokio::time::timeout(STEP, self.ws.next()).await.expect("answer in time");
        assert_eq!(parse(&reply.expect("open").expect("ok"))["type"], "ended");
    }

    /// Waits for the server to close the socket; returns the close code.
    pub(crate) async fn closed_by_server(&mut self, timeout: Duration) -> Option<u16> {
        let wait = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return None,
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.expect("the server closed the session in time")
    }
}
