//! A layer around the SDK's HTTP client that counts AWS API calls per operation and, when asked,
//! answers every n-th call itself with throttling or a 503, as AWS does when it throttles (the call
//! never reaches the service). Installed with [`pulse_deploy_aws::AwsConfigBuilder::http_client`]
//! (see [`super::Emulator::aws_through`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

/// AWS API calls per operation, and the faults injected.
#[derive(Debug, Default)]
pub(crate) struct ApiCalls {
    /// Answer every `every`-th call with an error (0: never).
    every: u32,
    seen: AtomicU32,
    injected: AtomicU32,
    calls: Mutex<BTreeMap<String, u32>>,
}

impl ApiCalls {
    /// Counts only.
    pub(crate) fn counting() -> Arc<Self> {
        Arc::new(ApiCalls::default())
    }

    /// Counts, and answers every `every`-th call with throttling or a 503.
    pub(crate) fn faulty(every: u32) -> Arc<Self> {
        Arc::new(ApiCalls { every, ..ApiCalls::default() })
    }

    /// The HTTP client that counts into `self`.
    pub(crate) fn client(self: &Arc<Self>) -> SharedHttpClient {
        SharedHttpClient::new(CountingClient {
            inner: pulse_deploy_aws::client::default_http_client(),
            calls: self.clone(),
        })
    }

    /// Calls so far (those answered by the fault layer included).
    pub(crate) fn total(&self) -> u32 {
        self.seen.load(Ordering::SeqCst)
    }

    /// Calls answered with an injected error so far.
    pub(crate) fn injected(&self) -> u32 {
        self.injected.load(Ordering::SeqCst)
    }

    /// Calls per operation so far.
    pub(crate) fn per_operation(&self) -> BTreeMap<String, u32> {
        self.calls.lock().expect("calls").clone()
    }

    /// Calls per operation since `before` (a [`ApiCalls::per_operation`] taken earlier).
    pub(crate) fn since(&self, before: &BTreeMap<String, u32>) -> BTreeMap<String, u32> {
        self.per_operation()
            .into_iter()
            .map(|(op, n)| {
                let d = n - before.get(&op).copied().unwrap_or(0);
                (op, d)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// `op: n` pairs on one line.
pub(crate) fn format_calls(calls: &BTreeMap<String, u32>) -> String {
    let total: u32 = calls.values().sum();
    let each: Vec<String> = calls.iter().map(|(op, n)| format!("{op} {n}")).collect();
    format!("{total} calls ({})", each.join(", "))
}

#[derive(Debug, Clone)]
struct CountingClient {
    inner: SharedHttpClient,
    calls: Arc<ApiCalls>,
}

#[derive(Debug)]
struct CountingConnector {
    inner: SharedHttpConnector,
    calls: Arc<ApiCalls>,
}

impl HttpClient for CountingClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CountingConnector {
            inner: self.inner.http_connector(settings, components),
            calls: self.calls.clone(),
        })
    }
}

/// The operation of a request: `X-Amz-Target` (JSON protocols such as ECS) or `Action=` (query
/// protocols such as ELBv2), and whether it is a JSON protocol.
fn operation(request: &HttpRequest) -> (String, bool) {
    if let Some(target) = request.headers().get("x-amz-target") {
        return (target.rsplit('.').next().unwrap_or(target).to_owned(), true);
    }
    let body = request.body().bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
    let action = body.split('&').find_map(|kv| kv.strip_prefix("Action=")).unwrap_or("unknown").to_owned();
    (action, false)
}

fn injected_error(json: bool, nth: u32) -> HttpResponse {
    let (status, body, content_type) = match (json, nth % 2) {
        (_, 1) => (503, String::new(), "text/plain"),
        (true, _) => (400, r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_owned(), "application/x-amz-json-1.1"),
        (false, _) => (
            400,
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>0</RequestId></ErrorResponse>".to_owned(),
            "text/xml",
        ),
    };
    let mut response = HttpResponse::new(status.try_into().expect("status"), SdkBody::from(body));
    response.headers_mut().insert("content-type", content_type);
    response
}

impl HttpConnector for CountingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (op, json) = operation(&request);
        *self.calls.calls.lock().expect("calls").entry(op).or_default() += 1;
        let n = self.calls.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if self.calls.every > 0 && n.is_multiple_of(self.calls.every) {
            let nth = self.calls.injected.fetch_add(1, Ordering::SeqCst);
            return HttpConnectorFuture::ready(Ok(injected_error(json, nth)));
        }
        self.inner.call(request)
    }
}
