//! Error paths of the executor, with mockall providers asserting exactly which calls are made.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mockall::{mock, Sequence};

use super::*;
use crate::drain::InstanceStatus;
use crate::{
    Endpoint, Instance, InstanceId, InstanceState, OrchestratorCapabilities, RouterCapabilities,
    RoutingState, VersionRoute, VersionState, Weights,
};

mock! {
    #[derive(Debug)]
    Orch {}
    #[async_trait]
    impl Orchestrator for Orch {
        fn capabilities(&self) -> OrchestratorCapabilities;
        async fn deploy(&self, release: &Release) -> Result<()>;
        async fn versions(&self, app: &AppName) -> Result<Vec<VersionState>>;
        async fn retire(&self, app: &AppName, version: &VersionId) -> Result<()>;
    }
}

mock! {
    #[derive(Debug)]
    Router {}
    #[async_trait]
    impl TrafficRouter for Router {
        fn capabilities(&self) -> RouterCapabilities;
        async fn attach(&self, route: &VersionRoute) -> Result<()>;
        async fn set_weights(&self, app: &AppName, weights: &Weights) -> Result<()>;
        async fn detach(&self, app: &AppName, version: &VersionId) -> Result<()>;
        async fn routing(&self, app: &AppName) -> Result<RoutingState>;
    }
}

mock! {
    #[derive(Debug)]
    Drain {}
    #[async_trait]
    impl DrainClient for Drain {
        async fn drain(&self, instance: &Instance, deadline: Duration) -> Result<InstanceStatus>;
        async fn status(&self, instance: &Instance) -> Result<InstanceStatus>;
        async fn undrain(&self, instance: &Instance) -> Result<InstanceStatus>;
    }
}

fn release() -> Release {
    Release::builder("shop", "v2", "shop:v2").build().unwrap()
}

fn router_caps(r: &mut MockRouter) {
    r.expect_capabilities().returning(|| RouterCapabilities::new("mock"));
}

fn executor(o: MockOrch, r: MockRouter, d: MockDrain) -> Executor {
    Executor::builder(Arc::new(o), Arc::new(r), Arc::new(d))
        .policy(RolloutPolicy { poll_interval: Duration::from_millis(10), ..Default::default() })
        .build()
}

fn retryable() -> Error {
    Error::provider("mock", "throttled", true)
}

#[tokio::test(start_paused = true)]
async fn invalid_release_fails_before_any_provider_call() {
    // No expectations: any provider call would panic.
    let mut r = MockRouter::new();
    router_caps(&mut r);
    let mut bad = release();
    bad.replicas = 0;
    let err = executor(MockOrch::new(), r, MockDrain::new()).deploy(&bad, Goal::Shifted).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { field: "release.replicas", .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn unsupported_affinity_is_refused_before_any_provider_call() {
    let mut r = MockRouter::new();
    r.expect_capabilities().returning(|| {
        let mut c = RouterCapabilities::new("mock");
        c.key_affinity = false;
        c
    });
    let err =
        executor(MockOrch::new(), r, MockDrain::new()).deploy(&release(), Goal::Shifted).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { field: "release.affinity", .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn fatal_error_stops_at_once() {
    let mut o = MockOrch::new();
    o.expect_versions().times(1).returning(|_| Err(Error::provider("mock", "access denied", false)));
    let mut r = MockRouter::new();
    router_caps(&mut r);
    r.expect_routing().returning(|_| Ok(RoutingState::default())); // read together with the versions
    r.expect_attach().times(0);
    let err = executor(o, r, MockDrain::new()).deploy(&release(), Goal::Shifted).await.unwrap_err();
    assert!(err.to_string().contains("access denied"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried_then_the_plan_continues() {
    let mut seq = Sequence::new();
    let mut o = MockOrch::new();
    o.expect_versions().times(2).in_sequence(&mut seq).returning(|_| Err(retryable()));
    o.expect_versions().times(1).in_sequence(&mut seq).returning(|_| Ok(vec![]));
    let mut r = MockRouter::new();
    router_caps(&mut r);
    r.expect_routing().returning(|_| Ok(RoutingState::default()));
    r.expect_attach().times(1).in_sequence(&mut seq).returning(|_| Ok(()));
    o.expect_deploy()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(Error::invalid("release.image", "no such image")));
    let err = executor(o, r, MockDrain::new()).deploy(&release(), Goal::Shifted).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { field: "release.image", .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn retries_are_bounded() {
    let mut o = MockOrch::new();
    o.expect_versions().returning(|_| Ok(vec![]));
    o.expect_deploy().times(RolloutPolicy::default().retry.attempts as usize).returning(|_| Err(retryable()));
    let mut r = MockRouter::new();
    router_caps(&mut r);
    r.expect_routing().returning(|_| Ok(RoutingState::default()));
    r.expect_attach().returning(|_| Ok(()));
    let started = tokio::time::Instant::now();
    let err = executor(o, r, MockDrain::new()).deploy(&release(), Goal::Shifted).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    // 4 backoffs: 200 + 400 + 800 + 1600 ms of (virtual) time.
    assert_eq!(started.elapsed(), Duration::from_millis(3000));
}

#[tokio::test(start_paused = true)]
async fn refused_drain_secret_stops_the_rollout() {
    let v1 = Release::builder("shop", "v1", "shop:v1").build().unwrap();
    let instance = Instance {
        id: InstanceId("i-1".into()),
        version: v1.version.clone(),
        state: InstanceState::Running,
        endpoint: Some(Endpoint::new("127.0.0.1", 9)),
    };
    let state = VersionState {
        release: v1.clone(),
        created_at: std::time::SystemTime::UNIX_EPOCH,
        retiring: false,
        instances: vec![instance],
    };
    let mut o = MockOrch::new();
    o.expect_versions().returning(move |_| Ok(vec![state.clone()]));
    let mut r = MockRouter::new();
    router_caps(&mut r);
    r.expect_routing().returning(|_| Ok(RoutingState::default()));
    let mut d = MockDrain::new();
    d.expect_status()
        .returning(|_| Err(Error::Unauthorized { what: "status".into(), message: "bad secret".into() }));
    d.expect_drain().times(0);
    // The status call is refused: the rollout stops before deciding anything (no drain, no retire).
    let err = executor(o, r, d).reconcile(&v1.app, Goal::Settled).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
}
