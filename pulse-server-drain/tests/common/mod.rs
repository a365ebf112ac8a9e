//! Helpers shared by the integration tests: an in-process demo app on a real loopback socket, a plain
//! HTTP client and WebSocket helpers. Every wait polls a condition against a deadline.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use pulse_deploy_core::drain::HttpDrainClient;
use pulse_deploy_core::{Endpoint, Instance, InstanceState, Secret, VersionId};
use pulse_server_drain::demo::{self, DemoConfig};
use pulse_server_drain::{DrainConfig, DrainState, ShutdownReport};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The test secret.
pub(crate) const SECRET: &str = "test-secret-0123456789abcdef";

/// A WebSocket client stream.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A demo app served in-process on 127.0.0.1 (no signal handlers).
pub(crate) struct Demo {
    pub addr: SocketAddr,
    pub state: DrainState,
    pub instance: String,
    pub server: JoinHandle<pulse_deploy_core::Result<ShutdownReport>>,
}

/// A unique instance id.
pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

pub(crate) fn secret() -> Secret {
    Secret::new("test", SECRET).unwrap()
}

/// Starts the demo app with the given session grace.
pub(crate) async fn start_demo(grace: Duration) -> Demo {
    start_demo_with(grace, |b| b).await
}

/// Starts the demo app, letting the test adjust the drain config.
pub(crate) async fn start_demo_with(
    grace: Duration,
    adjust: impl FnOnce(pulse_server_drain::DrainConfigBuilder) -> pulse_server_drain::DrainConfigBuilder,
) -> Demo {
    let instance = unique("demo");
    let builder = DrainConfig::builder("v1").instance_id(&instance).secret(secret()).handle_signals(false);
    let config = adjust(builder).build().unwrap();
    let state = DrainState::start(config).await.unwrap();
    let app = demo::app(state.clone(), DemoConfig { session_grace: grace, ..DemoConfig::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(pulse_server_drain::serve(listener, app, state.clone()));
    Demo { addr, state, instance, server }
}

impl Demo {
    /// The demo as the deployer sees it: its instance id and endpoint.
    pub(crate) fn as_instance(&self) -> Instance {
        Instance {
            id: self.instance.as_str().into(),
            version: VersionId::new("v1").unwrap(),
            state: InstanceState::Running,
            endpoint: Some(Endpoint::new("127.0.0.1", self.addr.port())),
        }
    }

    pub(crate) fn drain_client(&self) -> HttpDrainClient {
        HttpDrainClient::new(secret())
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }
}

/// A plain answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends one HTTP/1.1 request over a fresh client.
pub(crate) async fn request(method: Method, url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req)).await.unwrap().unwrap();
    let (parts, body) = resp.into_parts();
    Answer { status: parts.status, headers: parts.headers, body: body.collect().await.unwrap().to_bytes() }
}

pub(crate) async fn get(url: &str) -> Answer {
    request(Method::GET, url, &[], "").await
}

/// Opens a WebSocket and reads its hello message.
pub(crate) async fn open_ws(url: &str) -> (Ws, serde_json::Value) {
    let (mut ws, resp) = tokio_tungstenite::connect_async(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    (ws, hello)
}

/// The next text message as JSON.
pub(crate) async fn next_json(ws: &mut Ws) -> serde_json::Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// Sends a client message and returns the answer.
pub(crate) async fn say(ws: &mut Ws, kind: &str) -> serde_json::Value {
    ws.send(Message::Text(format!("{{\"type\":\"{kind}\"}}").into())).await.unwrap();
    next_json(ws).await
}

/// Polls `f` until it returns `Some`, failing after `within`.
pub(crate) async fn eventually<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Reads until the server's close frame; returns its code and reason.
pub(crate) async fn expect_close(ws: &mut Ws) -> (u16, String) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a close frame within 10 s")
        {
            Some(Ok(Message::Close(Some(frame)))) => return (frame.code.into(), frame.reason.to_string()),
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}
