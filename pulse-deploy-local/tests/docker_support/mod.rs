//! Shared helpers of the Docker tests: connecting (skip with a reason, or fail under CI=true), the test
//! image, unique app names with a cleanup guard, a raw HTTP client and polling against deadlines.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use bollard::models::EventMessage;
use bollard::query_parameters::{EventsOptionsBuilder, RemoveContainerOptionsBuilder};
use bollard::Docker;
use futures::StreamExt;
use pulse_deploy_core::{AppName, Endpoint, Secret};
use pulse_deploy_local::docker::{
    build_scratch_image, build_workspace_binaries, labels, remove_app_containers,
};
use pulse_deploy_local::preflight;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OnceCell;

/// The tag of the test server image.
pub(crate) const TEST_IMAGE: &str = "pulse-docker-test-server:local";

/// The Docker client, or `None` (with the reason printed) when Docker is unreachable outside CI.
/// Under `CI=true` an unreachable Docker fails the test.
pub(crate) async fn docker_or_skip() -> Option<Docker> {
    preflight::or_skip("Docker", preflight::docker().await)
}

static IMAGE: OnceCell<()> = OnceCell::const_new();

/// Builds the static test server and its image once per test process.
pub(crate) async fn test_image(docker: &Docker) -> &'static str {
    IMAGE
        .get_or_init(|| async {
            let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
            let started = Instant::now();
            // With the workspace's other static binaries: one cargo invocation, one dependency build.
            let binary = build_workspace_binaries(&workspace)
                .await
                .expect("building the static test server")
                .docker_test_server;
            build_scratch_image(docker, &binary, TEST_IMAGE, &[]).await.expect("building the test image");
            eprintln!("test image ready in {:?}", started.elapsed());
        })
        .await;
    TEST_IMAGE
}

/// A unique app name (`dt-<prefix>-<random>`, at most 16 characters).
pub(crate) fn unique_app(prefix: &str) -> AppName {
    let suffix: String = (0..5).map(|_| (b'a' + rand::random::<u8>() % 26) as char).collect();
    AppName::new(format!("{}-{suffix}", &prefix[..prefix.len().min(10)])).unwrap()
}

/// A drain secret for tests.
pub(crate) fn test_secret() -> Secret {
    Secret::new("test", format!("test-secret-{:016x}", rand::random::<u64>())).unwrap()
}

/// Removes every container of the app (managed or not: tests also create unmanaged ones carrying the app
/// label or the given extra names) and the state dir when dropped, even if the test panicked.
pub(crate) struct AppGuard {
    pub docker: Docker,
    pub app: AppName,
    pub state_dir: PathBuf,
    pub extra_containers: Vec<String>,
}

impl AppGuard {
    pub(crate) fn new(docker: &Docker, app: &AppName) -> Self {
        let state_dir = std::env::temp_dir().join(format!("pulse-docker-test-{app}"));
        AppGuard { docker: docker.clone(), app: app.clone(), state_dir, extra_containers: vec![] }
    }
}

impl Drop for AppGuard {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let app = self.app.clone();
        let extra = self.extra_containers.clone();
        let state_dir = self.state_dir.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                remove_app_containers(&docker, &app).await;
                for name in extra {
                    let opts = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
                    let _ = docker.remove_container(&name, Some(opts)).await;
                }
            });
            let _ = std::fs::remove_dir_all(state_dir);
        })
        .join()
        .ok();
    }
}

/// Polls `check` until it returns `Some`, failing the test with `what` after `timeout`.
pub(crate) async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut interval = tokio::time::interval(Duration::from_millis(50));
    loop {
        interval.tick().await;
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
    }
}

/// A plain HTTP/1.1 GET; `(status, body)`, or `None` when the connection fails.
pub(crate) async fn http_get(
    endpoint: &Endpoint,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String)> {
    let mut stream = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
    )
    .await
    .ok()?
    .ok()?;
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: {endpoint}\r\nconnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// Collects the container events of one app from now on.
pub(crate) fn watch_events(
    docker: &Docker,
    app: &AppName,
) -> tokio::sync::mpsc::UnboundedReceiver<EventMessage> {
    let since = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs().to_string();
    let filters = HashMap::from([
        ("type", vec!["container".to_owned()]),
        ("label", vec![format!("{}={app}", labels::APP)]),
    ]);
    let opts = EventsOptionsBuilder::new().since(&since).filters(&filters).build();
    let docker = docker.clone();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut events = docker.events(Some(opts));
        while let Some(Ok(e)) = events.next().await {
            if tx.send(e).is_err() {
                break;
            }
        }
    });
    rx
}

/// One container event: action, `signal` and `exitCode` attributes.
pub(crate) type Seen = (String, Option<String>, Option<String>);

pub(crate) fn attr(e: &EventMessage, key: &str) -> Option<String> {
    e.actor.as_ref()?.attributes.as_ref()?.get(key).cloned()
}

/// Reads `events` until every one of `instances` was destroyed; returns each instance's events.
pub(crate) async fn events_until_destroyed(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<EventMessage>,
    instances: &[String],
    timeout: Duration,
) -> HashMap<String, Vec<Seen>> {
    let mut seen: HashMap<String, Vec<Seen>> = HashMap::new();
    poll("kill, die and destroy events of every instance", timeout, || {
        while let Ok(e) = events.try_recv() {
            if let Some(instance) = attr(&e, labels::INSTANCE) {
                let action = e.action.clone().unwrap_or_default();
                seen.entry(instance).or_default().push((action, attr(&e, "signal"), attr(&e, "exitCode")));
            }
        }
        let done =
            instances.iter().all(|i| seen.get(i).is_some_and(|ev| ev.iter().any(|(a, _, _)| a == "destroy")));
        std::future::ready(done.then_some(()))
    })
    .await;
    seen
}
