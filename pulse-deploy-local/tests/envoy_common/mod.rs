//! Shared helpers of the Envoy router tests: in-process test upstreams (axum), a small HTTP client that
//! shows response headers, routers in temporary state directories that are stopped on drop, and polling.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use pulse_deploy_core::{AffinityMode, AppName, Endpoint, InstanceId, Target, VersionId, VersionRoute};
use pulse_deploy_local::envoy::{EnvoyRouter, EnvoyRouterBuilder};

/// True if Envoy can be found. With `CI=true` a missing Envoy fails the test; otherwise the test is
/// skipped with a printed reason.
pub(crate) fn envoy_available() -> bool {
    pulse_deploy_local::preflight::or_skip("Envoy", pulse_deploy_local::preflight::envoy()).is_some()
}

/// Returns early from a test when Envoy is missing (outside CI).
#[macro_export]
macro_rules! require_envoy {
    () => {
        if !envoy_common::envoy_available() {
            return;
        }
    };
}

/// One in-process test instance: answers `/health` (toggleable), `/ws` (WebSocket echo, replies
/// `version/instance:text`) and every other path with headers `x-pulse-version` / `x-pulse-instance`.
pub(crate) struct Upstream {
    pub version: String,
    pub instance: String,
    pub addr: SocketAddr,
    pub healthy: Arc<AtomicBool>,
    pub admin_hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct UpState {
    version: String,
    instance: String,
    healthy: Arc<AtomicBool>,
    admin_hits: Arc<AtomicUsize>,
}

impl Upstream {
    pub(crate) async fn start(version: &str, instance: &str) -> Upstream {
        let healthy = Arc::new(AtomicBool::new(true));
        let admin_hits = Arc::new(AtomicUsize::new(0));
        let state = UpState {
            version: version.into(),
            instance: instance.into(),
            healthy: healthy.clone(),
            admin_hits: admin_hits.clone(),
        };
        let app = Router::new()
            .route("/health", get(health))
            .route("/ws", get(ws))
            .fallback(any_path)
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Upstream { version: version.into(), instance: instance.into(), addr, healthy, admin_hits, task }
    }

    pub(crate) fn target(&self) -> Target {
        Target {
            instance: InstanceId(self.instance.clone()),
            endpoint: Endpoint::new(self.addr.ip().to_string(), self.addr.port()),
        }
    }

    pub(crate) fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn health(State(s): State<UpState>) -> impl IntoResponse {
    if s.healthy.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    }
}

async fn any_path(State(s): State<UpState>, uri: axum::http::Uri) -> impl IntoResponse {
    if uri.path().to_ascii_lowercase().contains("_pulse") {
        s.admin_hits.fetch_add(1, Ordering::SeqCst);
    }
    let mut h = HeaderMap::new();
    h.insert("x-pulse-version", s.version.parse().unwrap());
    h.insert("x-pulse-instance", s.instance.parse().unwrap());
    (StatusCode::OK, h, format!("{}/{}", s.version, s.instance))
}

async fn ws(State(s): State<UpState>, upgrade: WebSocketUpgrade) -> impl IntoResponse {
    upgrade.on_upgrade(move |socket| echo(socket, s))
}

async fn echo(mut socket: WebSocket, s: UpState) {
    while let Some(Ok(msg)) = socket.next().await {
        if let Message::Text(t) = msg {
            let reply = format!("{}/{}:{}", s.version, s.instance, t.as_str());
            if socket.send(Message::Text(reply.into())).await.is_err() {
                break;
            }
        }
    }
}

/// A response as the tests look at it.
#[derive(Debug)]
pub(crate) struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Resp {
    pub(crate) fn version(&self) -> Option<&str> {
        self.headers.get("x-pulse-version").and_then(|v| v.to_str().ok())
    }
    pub(crate) fn instance(&self) -> Option<&str> {
        self.headers.get("x-pulse-instance").and_then(|v| v.to_str().ok())
    }
    /// Cookies set by the response, name → value.
    pub(crate) fn set_cookies(&self) -> BTreeMap<String, String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|c| {
                let first = c.split(';').next()?;
                let (k, v) = first.split_once('=')?;
                Some((k.trim().to_owned(), v.trim().to_owned()))
            })
            .collect()
    }
}

/// A plain HTTP/1 client without connection reuse surprises.
#[derive(Clone)]
pub(crate) struct Http {
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Http {
    pub(crate) fn new() -> Self {
        Http { client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()) }
    }

    pub(crate) async fn request(&self, method: &str, url: &str, headers: &[(&str, &str)]) -> Resp {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp =
            tokio::time::timeout(Duration::from_secs(10), self.client.request(b.body(Empty::new()).unwrap()))
                .await
                .expect("request timed out")
                .expect("request failed");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
    }

    pub(crate) async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Resp {
        self.request("GET", url, headers).await
    }
}

/// A router in a fresh temporary state directory; Envoy is stopped (and the directory removed) on drop.
pub(crate) struct TestRouter {
    pub router: Option<EnvoyRouter>,
    pub dir: PathBuf,
}

impl TestRouter {
    pub(crate) fn builder() -> (EnvoyRouterBuilder, PathBuf) {
        let dir = std::env::temp_dir().join(format!("pulse-envoy-test-{}", rand::random::<u64>()));
        let b = EnvoyRouter::builder(&dir)
            .health_check_interval(Duration::from_millis(200))
            .health_check_timeout(Duration::from_millis(500))
            .unhealthy_threshold(1)
            .concurrency(1);
        (b, dir)
    }

    pub(crate) async fn start() -> TestRouter {
        let (b, dir) = Self::builder();
        TestRouter { router: Some(b.build().await.expect("start Envoy")), dir }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.router().public_url(), path)
    }

    pub(crate) fn router(&self) -> &EnvoyRouter {
        self.router.as_ref().unwrap()
    }
}

impl std::ops::Deref for TestRouter {
    type Target = EnvoyRouter;
    fn deref(&self) -> &EnvoyRouter {
        self.router()
    }
}

impl Drop for TestRouter {
    fn drop(&mut self) {
        // Stop whatever Envoy serves this directory, even after a panic (no async here: signal by pid).
        let pid_file = self.dir.join("envoy.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn app() -> AppName {
    AppName::new("shop").unwrap()
}

pub(crate) fn v(s: &str) -> VersionId {
    VersionId::new(s).unwrap()
}

pub(crate) fn route(version: &str, upstreams: &[&Upstream]) -> VersionRoute {
    let mut targets: Vec<Target> = upstreams.iter().map(|u| u.target()).collect();
    targets.sort();
    VersionRoute {
        app: app(),
        version: v(version),
        targets,
        health_path: "/health".into(),
        affinity: AffinityMode::CookieAndKey,
    }
}

/// Polls `check` until it returns `Some`, failing the test after `timeout`.
pub(crate) async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = check().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens a WebSocket through the router with optional extra headers, returns the stream.
pub(crate) async fn ws_connect(
    url: &str,
    headers: &[(&str, &str)],
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    let (stream, _) = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(req))
        .await
        .expect("WebSocket connect timed out")
        .expect("WebSocket connect failed");
    stream
}

/// Sends `text` and returns the echo.
pub(crate) async fn ws_echo(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    text: &str,
) -> String {
    use tokio_tungstenite::tungstenite::Message as M;
    ws.send(M::Text(text.into())).await.expect("WebSocket send");
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("WebSocket echo timed out")
            .expect("WebSocket closed")
            .expect("WebSocket error");
        if let M::Text(t) = msg {
            return t.as_str().to_owned();
        }
    }
}
