//! Throttling and 5xx injected between the SDK and moto (a layer around the HTTP client that answers
//! every third call itself, as AWS does when it throttles: the call never reaches the service), and the
//! providers still converge: deploy, attach, shift all new sessions, detach, retire. Prints the AWS API
//! calls per operation. Needs `moto_server` (with `CI=true` a missing one fails).

mod moto_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use moto_support::harness::{unique_app, EcsHarness};
use moto_support::infra;
use moto_support::scheduler::NoProcesses;
use moto_support::Emulator;
use pulse_deploy_core::conformance::OrchestratorHarness;
use pulse_deploy_core::{Orchestrator, TrafficRouter, VersionId, VersionRoute, Weights};

/// Counts calls per operation and answers every `every`-th call itself with an error.
#[derive(Debug, Default)]
struct Faults {
    every: u32,
    seen: AtomicU32,
    injected: AtomicU32,
    calls: Mutex<BTreeMap<String, u32>>,
}

#[derive(Debug, Clone)]
struct FaultyClient {
    inner: SharedHttpClient,
    faults: Arc<Faults>,
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    faults: Arc<Faults>,
}

impl HttpClient for FaultyClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            faults: self.faults.clone(),
        })
    }
}

/// The operation of a request: `X-Amz-Target` (JSON protocols such as ECS) or `Action=` (query
/// protocols such as ELBv2).
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

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (op, json) = operation(&request);
        *self.faults.calls.lock().unwrap().entry(op).or_default() += 1;
        let n = self.faults.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n % self.faults.every == 0 {
            let nth = self.faults.injected.fetch_add(1, Ordering::SeqCst);
            return HttpConnectorFuture::ready(Ok(injected_error(json, nth)));
        }
        self.inner.call(request)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_converge_under_injected_throttling_and_5xx() {
    let Some(emulator) = Emulator::start(Arc::new(NoProcesses)).await else { return };
    let faults = Arc::new(Faults { every: 3, ..Faults::default() });
    let http = SharedHttpClient::new(FaultyClient {
        inner: pulse_deploy_aws::client::default_http_client(),
        faults: faults.clone(),
    });
    let aws = emulator.aws_through(http);
    let orchestrator = pulse_deploy_aws::EcsOrchestrator::new(&aws, emulator.ecs_config());
    let router = emulator.router_on(&aws);
    let harness = EcsHarness { emulator: &emulator };
    let app = unique_app();
    infra::app_load_balancer(&emulator.aws.elbv2(), &emulator.network, &app).await;
    let release = harness.release(&app, &VersionId::new("v1").unwrap(), 2);

    orchestrator.deploy(&release).await.expect("deploy converges through the faults");
    let deadline = Instant::now() + Duration::from_secs(20);
    let state = loop {
        let versions = orchestrator.versions(&app).await.expect("versions through the faults");
        if let Some(s) = versions.into_iter().find(|s| s.live_instances().count() == 2) {
            break s;
        }
        assert!(Instant::now() < deadline, "2 live instances did not appear within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let targets = state
        .live_instances()
        .filter_map(|i| i.endpoint.clone())
        .map(|e| pulse_deploy_aws::alb::target_group::target(&e.host, e.port))
        .collect();
    router.attach(&VersionRoute::for_release(&release, targets)).await.expect("attach converges");
    router.set_weights(&app, &Weights::all_to(release.version.clone())).await.expect("set_weights converges");
    let routing = router.routing(&app).await.expect("routing");
    assert_eq!(routing.weights, Weights::all_to(release.version.clone()));
    assert_eq!(routing.versions[&release.version].targets.len(), 2);
    let before_idle = faults.seen.load(Ordering::SeqCst);
    router.routing(&app).await.expect("routing");
    orchestrator.versions(&app).await.expect("versions");
    let idle_pass = faults.seen.load(Ordering::SeqCst) - before_idle;

    router.set_weights(&app, &Weights::default()).await.expect("weights emptied");
    router.detach(&app, &release.version).await.expect("detach converges");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        orchestrator.retire(&app, &release.version).await.expect("retire converges");
        if orchestrator.versions(&app).await.expect("versions").is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the version was not removed within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(router.routing(&app).await.expect("routing").versions.is_empty());
    infra::delete_app_load_balancer(&emulator.aws.elbv2(), &app).await;

    let injected = faults.injected.load(Ordering::SeqCst);
    assert!(injected >= 5, "the layer injected only {injected} faults");
    println!(
        "AWS API calls for one version (deploy, attach, shift, detach, retire with polling): {} calls, {injected} \
         answered with throttling/503 by the fault layer; one idle observation (routing + versions, 1 version, \
         2 tasks): {idle_pass} calls",
        faults.seen.load(Ordering::SeqCst)
    );
    for (op, n) in faults.calls.lock().unwrap().iter() {
        println!("  {op}: {n}");
    }
}
