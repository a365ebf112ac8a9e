//! The checker's HTTP/1.1 and WebSocket client: one request, its whole answer, summarised for the report.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A whole answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `STATUS, name: value..., body: excerpt` for the named headers.
    pub(crate) fn saw(&self, headers: &[&str]) -> String {
        let mut s = self.status.to_string();
        for name in headers {
            for v in self.headers.get_all(*name) {
                s.push_str(&format!(", {name}: {}", v.to_str().unwrap_or("<binary>")));
            }
        }
        let body = String::from_utf8_lossy(&self.body);
        let body = body.trim();
        if !body.is_empty() {
            let flat = body.split_whitespace().collect::<Vec<_>>().join(" ");
            let mut excerpt: String = flat.chars().take(240).collect();
            if flat.chars().count() > 240 {
                excerpt.push_str("...");
            }
            s.push_str(&format!(", body: {excerpt}"));
        }
        s
    }

    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("body is not the expected JSON: {e}"))
    }
}

/// HTTP client bound to one base URL (`http://host:port`).
pub(crate) struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    timeout: Duration,
}

impl Http {
    pub(crate) fn new(base: &str, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Http { client, base: base.trim_end_matches('/').to_owned(), timeout }
    }

    pub(crate) fn ws_base(&self) -> String {
        self.base.replacen("http://", "ws://", 1)
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> Result<Answer, String> {
        let mut req = http::Request::builder().method(method.clone()).uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
            let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
            req = req.header(name, value);
        }
        if !body.is_empty() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(Bytes::from(body.to_owned()))).map_err(|e| e.to_string())?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("{method} {path}: request failed: {e}"))?;
            let (parts, body) = resp.into_parts();
            let body =
                body.collect().await.map_err(|e| format!("{method} {path}: reading the body failed: {e}"))?;
            Ok(Answer { status: parts.status, headers: parts.headers, body: body.to_bytes() })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("{method} {path}: no answer within {:?}", self.timeout))?
    }
}

/// An open WebSocket.
pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket with extra request `headers`: `Ok(socket)` on 101, `Err(Ok(answer))` on another HTTP
/// answer, `Err(Err(msg))` on an I/O failure.
pub(crate) async fn websocket(
    url: &str,
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<Socket, Result<Answer, String>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().map_err(|e| Err(format!("{url}: {e}")))?;
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| Err(e.to_string()))?;
        let value = HeaderValue::from_str(value).map_err(|e| Err(e.to_string()))?;
        request.headers_mut().append(name, value);
    }
    match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(request)).await {
        Err(_) => Err(Err(format!("{url}: no answer within {timeout:?}"))),
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
            let (parts, body) = resp.into_parts();
            Err(Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body: Bytes::from(body.unwrap_or_default()),
            }))
        }
        Ok(Err(e)) => Err(Err(format!("{url}: {e}"))),
    }
}
