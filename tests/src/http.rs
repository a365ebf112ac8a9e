//! A minimal HTTP/1.1 client for the end-to-end clients: a GET or a JSON POST with headers, the answer's status,
//! headers and body. Plain hyper, so a failure is a real failure (no retries hidden in a library).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Answer {
    /// A header as a string (empty if absent).
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }

    /// Every `Set-Cookie` as (name, value); a cleared cookie (`Max-Age=0`) has an empty value.
    pub fn set_cookies(&self) -> Vec<(String, String)> {
        self.headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| {
                let first = v.split(';').next()?;
                let (name, value) = first.split_once('=')?;
                let cleared = v.to_ascii_lowercase().contains("max-age=0");
                Some((name.trim().to_owned(), if cleared { String::new() } else { value.trim().to_owned() }))
            })
            .collect()
    }
}

/// A shared HTTP client (connection pooling on).
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client whose requests time out after 10 s.
    pub fn new() -> Self {
        let mut c = HttpConnector::new();
        c.set_nodelay(true);
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build(c),
            timeout: Duration::from_secs(10),
        }
    }

    /// `GET url` with `headers`.
    pub async fn get(&self, url: &str, headers: &[(&str, String)]) -> Result<Answer, String> {
        self.send(http::Method::GET, url, headers, Bytes::new()).await
    }

    /// `POST url` with a JSON `body` and `headers`.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        let mut all = headers.to_vec();
        all.push(("content-type", "application/json".into()));
        self.send(http::Method::POST, url, &all, body.into()).await
    }

    async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Answer, String> {
        let mut req = Request::builder().method(method.clone()).uri(url);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req.body(Full::new(body)).map_err(|e| format!("{method} {url}: {e}"))?;
        let call = async {
            let res = self.client.request(req).await.map_err(|e| format!("{method} {url}: {e}"))?;
            let (parts, body) = res.into_parts();
            let body = body.collect().await.map_err(|e| format!("{method} {url}: body: {e}"))?.to_bytes();
            Ok(Answer { status: parts.status, headers: parts.headers, body })
        };
        tokio::time::timeout(self.timeout, call).await.map_err(|_| format!("{method} {url}: timed out"))?
    }
}
