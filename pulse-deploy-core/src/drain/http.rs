//! [`HttpDrainClient`]: the drain protocol over plain HTTP/1.1 to an instance's own endpoint.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::wire::{DrainRequest, InstanceStatus, DRAIN_PATH, STATUS_PATH, UNDRAIN_PATH};
use super::DrainClient;
use crate::{Endpoint, Error, Instance, Result, Secret};

/// The drain protocol over HTTP/1.1. Holds the secret; `Debug` does not show it.
#[derive(Clone)]
pub struct HttpDrainClient {
    secret: Secret,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl fmt::Debug for HttpDrainClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpDrainClient")
            .field("secret", &self.secret)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HttpDrainClient {
    /// A client that authenticates with `secret`; each call times out after 5 s.
    pub fn new(secret: Secret) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        HttpDrainClient { secret, client, timeout: Duration::from_secs(5) }
    }

    /// Changes the per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn call(
        &self,
        instance: &Instance,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<InstanceStatus> {
        let endpoint: &Endpoint = instance.endpoint.as_ref().ok_or_else(|| Error::Unavailable {
            what: format!("instance {}", instance.id),
            message: "it has no endpoint yet".into(),
        })?;
        let url = format!("{}{path}", endpoint.http_base());
        let what = format!("{method} {url}");
        let mut bearer = http::HeaderValue::try_from(format!("Bearer {}", self.secret.expose()))
            .map_err(|_| Error::invalid("drain secret", "must be printable ASCII to fit a Bearer token"))?;
        bearer.set_sensitive(true); // Debug prints `Sensitive`, never the token
        let request = Request::builder()
            .method(method)
            .uri(&url)
            .header(header::AUTHORIZATION, bearer)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .body(Full::new(body))
            .map_err(|e| Error::invalid("endpoint", format!("cannot build a request to {url}: {e}")))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| Error::Unavailable {
                what: what.clone(),
                message: format!("request failed: {e}"),
            })?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| Error::Unavailable {
                what: what.clone(),
                message: format!("reading the answer failed: {e}"),
            })?;
            Ok::<_, Error>((status, body.to_bytes()))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::Timeout { what: what.clone(), after: self.timeout })??;
        match status {
            StatusCode::OK => serde_json::from_slice(&body).map_err(|e| {
                Error::provider_source("drain-protocol", format!("{what}: the answer is not an instance status"), false, e)
            }),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Error::Unauthorized {
                what,
                message: "the instance refused the drain secret; check that the deployer and the app use the same PULSE_DRAIN_SECRET".into(),
            }),
            StatusCode::CONFLICT => Err(Error::Conflict {
                message: format!(
                    "{what}: the instance refused (409): it is drained or shutting down and cannot serve again; \
                     deploy its release again instead"
                ),
            }),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => {
                Err(Error::provider("drain-protocol", format!("{what}: answered {status}"), true))
            }
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => Err(Error::provider(
                "drain-protocol",
                format!("{what}: answered {status}; does the app speak the drain protocol (docs/drain-protocol.md)?"),
                false,
            )),
            other => Err(Error::provider("drain-protocol", format!("{what}: answered {other}"), other.is_server_error())),
        }
    }
}

#[async_trait]
impl DrainClient for HttpDrainClient {
    async fn drain(&self, instance: &Instance, deadline: Duration) -> Result<InstanceStatus> {
        let body = serde_json::to_vec(&DrainRequest::with_deadline(deadline)).expect("serializable");
        self.call(instance, Method::POST, DRAIN_PATH, Bytes::from(body)).await
    }

    async fn status(&self, instance: &Instance) -> Result<InstanceStatus> {
        self.call(instance, Method::GET, STATUS_PATH, Bytes::new()).await
    }

    async fn undrain(&self, instance: &Instance) -> Result<InstanceStatus> {
        self.call(instance, Method::POST, UNDRAIN_PATH, Bytes::from_static(b"{}")).await
    }
}
