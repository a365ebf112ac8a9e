//! Unit tests of the in-memory world: instances, drain, routing, sessions and their accounting, faults.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::drain::{DrainClient, ServingState};
use crate::{
    AppName, Error, Health, InstanceState, Orchestrator, Release, TrafficRouter, VersionId, VersionRoute,
    VersionState, Weights,
};

fn app() -> AppName {
    AppName::new("shop").unwrap()
}

fn v(s: &str) -> VersionId {
    VersionId::new(s).unwrap()
}

fn release(version: &str, replicas: u32) -> Release {
    Release::builder("shop", version, format!("shop:{version}")).replicas(replicas).build().unwrap()
}

async fn state(cluster: &InMemoryCluster, version: &str) -> Option<VersionState> {
    cluster
        .orchestrator()
        .versions(&app())
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.version().as_str() == version)
}

/// Deploys `version`, attaches it with all its instances.
async fn deploy_attached(cluster: &InMemoryCluster, version: &str, replicas: u32) -> Release {
    let r = release(version, replicas);
    cluster.orchestrator().deploy(&r).await.unwrap();
    cluster
        .router()
        .attach(&VersionRoute::for_release(&r, cluster.targets(&r.app, &r.version)))
        .await
        .unwrap();
    r
}

async fn all_to(cluster: &InMemoryCluster, version: &str) {
    cluster.router().set_weights(&app(), &Weights::all_to(v(version))).await.unwrap();
}

async fn health(cluster: &InMemoryCluster, version: &str) -> Vec<Health> {
    let routing = cluster.router().routing(&app()).await.unwrap();
    routing.versions[&v(version)].targets.iter().map(|t| t.health).collect()
}

async fn drain_version(cluster: &InMemoryCluster, version: &str, deadline: Duration) {
    for instance in state(cluster, version).await.unwrap().instances {
        cluster.drain_client().drain(&instance, deadline).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn instances_start_then_pass_their_health_check() {
    let cluster = InMemoryCluster::new().startup_time(Duration::from_secs(10));
    deploy_attached(&cluster, "v1", 3).await;
    let s = state(&cluster, "v1").await.unwrap();
    assert_eq!(s.instances.len(), 3);
    assert!(s.instances.iter().all(|i| i.state == InstanceState::Starting));
    let endpoints: std::collections::BTreeSet<_> =
        s.instances.iter().map(|i| i.endpoint.clone().unwrap()).collect();
    assert_eq!(endpoints.len(), 3, "endpoints are unique");
    assert_eq!(health(&cluster, "v1").await, vec![Health::Unhealthy; 3]);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(state(&cluster, "v1").await.unwrap().instances.iter().all(|i| i.state == InstanceState::Running));
    assert_eq!(health(&cluster, "v1").await, vec![Health::Healthy; 3], "health is reported at weight 0");
}

#[tokio::test]
async fn deploy_is_idempotent_and_refuses_another_release_under_the_same_id() {
    let cluster = InMemoryCluster::new();
    let orchestrator = cluster.orchestrator();
    let r = release("v1", 2);
    orchestrator.deploy(&r).await.unwrap();
    let first = state(&cluster, "v1").await.unwrap();
    orchestrator.deploy(&r).await.unwrap();
    assert_eq!(state(&cluster, "v1").await.unwrap(), first);
    let other = Release::builder("shop", "v1", "shop:other").replicas(2).build().unwrap();
    let e = orchestrator.deploy(&other).await.unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }) && e.to_string().contains("new version id"), "{e}");
    let mut bad = r.clone();
    bad.replicas = 0;
    assert!(matches!(
        orchestrator.deploy(&bad).await,
        Err(Error::InvalidInput { field: "release.replicas", .. })
    ));
}

#[tokio::test]
async fn a_crashed_instance_loses_its_sessions_and_is_replaced_by_deploy() {
    let cluster = InMemoryCluster::new();
    let r = deploy_attached(&cluster, "v1", 2).await;
    all_to(&cluster, "v1").await;
    let session = cluster.open_session(&app(), None).unwrap();
    let victim = cluster.session_instance(session).unwrap();
    assert!(cluster.crash_instance(&victim));
    assert!(!cluster.crash_instance(&victim), "an exited instance cannot crash again");
    assert_eq!(cluster.session_version(session), None);
    assert_eq!(cluster.lost_by_crash().len(), 1);
    assert!(cluster.dropped_sessions().is_empty(), "a crash is not blamed on the engine");
    let s = state(&cluster, "v1").await.unwrap();
    assert_eq!(s.live_instances().count(), 1);
    assert!(s.instances.iter().any(|i| i.id == victim && i.state == InstanceState::Exited));
    cluster.orchestrator().deploy(&r).await.unwrap();
    let s = state(&cluster, "v1").await.unwrap();
    assert_eq!(s.instances.len(), 2);
    assert!(s.instances.iter().all(|i| i.is_live() && i.id != victim));
    assert_eq!(s.created_at, cluster.orchestrator().versions(&app()).await.unwrap()[0].created_at);
}

#[tokio::test]
async fn drain_keeps_the_earlier_deadline_and_reports_drained_at_zero_sessions() {
    let cluster = InMemoryCluster::new();
    deploy_attached(&cluster, "v1", 1).await;
    all_to(&cluster, "v1").await;
    let session = cluster.open_session(&app(), None).unwrap();
    let endpoint = state(&cluster, "v1").await.unwrap().instances[0].clone();
    let client = cluster.drain_client();
    assert_eq!(client.status(&endpoint).await.unwrap().state, ServingState::Serving);
    let first = client.drain(&endpoint, Duration::from_secs(60)).await.unwrap();
    assert_eq!(first.state, ServingState::Draining);
    assert_eq!(first.active_sessions, 1);
    let second = client.drain(&endpoint, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(second.deadline, first.deadline, "the earlier deadline is kept");
    assert_eq!(second.draining_since, first.draining_since);
    let shorter = client.drain(&endpoint, Duration::from_secs(10)).await.unwrap();
    assert!(shorter.deadline < first.deadline);
    assert_eq!(
        health(&cluster, "v1").await,
        vec![Health::Healthy],
        "a draining instance with sessions passes"
    );
    assert!(cluster.close_session(session));
    assert!(!cluster.close_session(session));
    assert_eq!(client.status(&endpoint).await.unwrap().state, ServingState::Drained);
    assert_eq!(
        health(&cluster, "v1").await,
        vec![Health::Unhealthy],
        "a drained instance fails its health check"
    );
    let unknown = crate::Instance { endpoint: Some(crate::Endpoint::new("mem-999", 1)), ..endpoint.clone() };
    assert!(matches!(client.status(&unknown).await, Err(Error::Unavailable { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_draining_instance_is_drained_past_its_deadline_and_shuts_down_when_retired() {
    let cluster = InMemoryCluster::new().shutdown_time(Duration::from_secs(5));
    deploy_attached(&cluster, "v1", 1).await;
    all_to(&cluster, "v1").await;
    cluster.open_session(&app(), None).unwrap();
    let endpoint = state(&cluster, "v1").await.unwrap().instances[0].clone();
    let client = cluster.drain_client();
    client.drain(&endpoint, Duration::from_secs(30)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let status = client.status(&endpoint).await.unwrap();
    assert_eq!((status.state, status.active_sessions), (ServingState::Drained, 1));
    cluster.orchestrator().retire(&app(), &v("v1")).await.unwrap();
    assert_eq!(client.status(&endpoint).await.unwrap().state, ServingState::ShuttingDown);
    let s = state(&cluster, "v1").await.unwrap();
    assert!(s.retiring && s.instances[0].state == InstanceState::Stopping);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(state(&cluster, "v1").await.is_none(), "the version disappears once its instances stopped");
    assert!(matches!(client.status(&endpoint).await, Err(Error::Unavailable { .. })));
    assert_eq!(cluster.moved_sessions().len(), 1, "past the deadline the session moves: not a drop");
    assert!(cluster.dropped_sessions().is_empty());
}

#[tokio::test]
async fn retiring_before_the_deadline_drops_sessions() {
    let cluster = InMemoryCluster::new();
    deploy_attached(&cluster, "v1", 1).await;
    all_to(&cluster, "v1").await;
    let session = cluster.open_session(&app(), None).unwrap();
    drain_version(&cluster, "v1", Duration::from_secs(60)).await;
    cluster.router().set_weights(&app(), &Weights::default()).await.unwrap();
    cluster.orchestrator().retire(&app(), &v("v1")).await.unwrap();
    let dropped = cluster.dropped_sessions();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].session, session);
    assert!(dropped[0].drain_deadline.is_some());
    assert_eq!(cluster.session_stats().dropped, 1);
    assert!(cluster.versions_running(&app()).is_empty());
}

#[tokio::test(start_paused = true)]
async fn retire_is_idempotent_and_a_retiring_version_is_not_redeployed() {
    let cluster = InMemoryCluster::new().shutdown_time(Duration::from_secs(60));
    let r = deploy_attached(&cluster, "v1", 2).await;
    let orchestrator = cluster.orchestrator();
    orchestrator.retire(&app(), &v("v1")).await.unwrap();
    orchestrator.retire(&app(), &v("v1")).await.unwrap();
    let ids: Vec<_> = state(&cluster, "v1").await.unwrap().instances.into_iter().map(|i| i.id).collect();
    cluster.crash_instance(&ids[0]);
    orchestrator.deploy(&r).await.unwrap();
    let s = state(&cluster, "v1").await.unwrap();
    assert!(s.retiring);
    assert_eq!(s.instances.iter().map(|i| i.id.clone()).collect::<Vec<_>>(), ids, "nothing replaced");
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(cluster.versions_running(&app()), vec![v("v1")], "shutdown takes its time");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(cluster.versions_running(&app()).is_empty(), "capped by the release's stop_grace (30 s)");
    orchestrator.retire(&app(), &v("v1")).await.unwrap();
    orchestrator.retire(&app(), &v("nope")).await.unwrap();
}

#[tokio::test]
async fn weights_are_validated_and_detach_needs_weight_zero() {
    let cluster = InMemoryCluster::new().max_weighted_versions(2);
    let router = cluster.router();
    assert_eq!(router.capabilities().max_weighted_versions, 2);
    for version in ["v1", "v2", "v3"] {
        deploy_attached(&cluster, version, 1).await;
    }
    assert_eq!(router.routing(&app()).await.unwrap().weights, Weights::default(), "attached at weight 0");
    let unattached = Weights::split(v("v9"), 50, v("v1")).unwrap();
    let e = router.set_weights(&app(), &unattached).await.unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }) && e.to_string().contains("v9"), "{e}");
    let three = Weights::new(BTreeMap::from([(v("v1"), 34), (v("v2"), 33), (v("v3"), 33)])).unwrap();
    let e = router.set_weights(&app(), &three).await.unwrap_err();
    assert!(matches!(e, Error::InvalidInput { field: "weights", .. }), "{e}");
    assert!(cluster.weight_history().is_empty(), "refused calls are not recorded");
    all_to(&cluster, "v1").await;
    let e = router.detach(&app(), &v("v1")).await.unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }) && e.to_string().contains("weight"), "{e}");
    router.detach(&app(), &v("v2")).await.unwrap();
    router.detach(&app(), &v("v2")).await.unwrap();
    let routing = router.routing(&app()).await.unwrap();
    assert_eq!(routing.versions.keys().cloned().collect::<Vec<_>>(), vec![v("v1"), v("v3")]);
    assert_eq!(routing.weights, Weights::all_to(v("v1")));
}

#[tokio::test]
async fn targets_naming_no_instance_are_unknown() {
    let cluster = InMemoryCluster::new();
    let r = release("v1", 1);
    let ghost = crate::Target { instance: "ghost".into(), endpoint: crate::Endpoint::new("mem-0", 1) };
    cluster.router().attach(&VersionRoute::for_release(&r, vec![ghost])).await.unwrap();
    assert_eq!(health(&cluster, "v1").await, vec![Health::Unknown]);
}

#[tokio::test]
async fn the_weight_history_records_health_at_each_change() {
    let cluster = InMemoryCluster::new();
    deploy_attached(&cluster, "v1", 1).await;
    let r2 = deploy_attached(&cluster, "v2", 1).await;
    cluster.set_broken(&app(), &r2.version, true);
    all_to(&cluster, "v1").await;
    all_to(&cluster, "v2").await; // an engine bug: v2 is broken
    let history = cluster.weight_history();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].healthy, BTreeMap::from([(v("v1"), true), (v("v2"), false)]));
    assert!(history[0].unhealthy_weighted().is_empty());
    assert_eq!(history[1].unhealthy_weighted(), vec![v("v2")]);
    assert!(
        matches!(cluster.open_session(&app(), None), Err(Error::Unavailable { .. })),
        "the split hits a broken version"
    );
}

#[tokio::test]
async fn affinity_wins_over_weights_until_its_version_drains_or_detaches() {
    let cluster = InMemoryCluster::new();
    assert!(matches!(cluster.open_session(&app(), None), Err(Error::Unavailable { .. })), "nothing routed");
    deploy_attached(&cluster, "v1", 1).await;
    deploy_attached(&cluster, "v2", 1).await;
    assert!(matches!(cluster.open_session(&app(), None), Err(Error::Unavailable { .. })), "no weight yet");
    all_to(&cluster, "v2").await;
    let old = cluster.open_session(&app(), Some(&v("v1"))).unwrap();
    assert_eq!(cluster.session_version(old), Some(v("v1")), "affinity to a weight-0 version is honoured");
    let fresh = cluster.open_session(&app(), None).unwrap();
    assert_eq!(cluster.session_version(fresh), Some(v("v2")));
    let stranger = cluster.open_session(&app(), Some(&v("v7"))).unwrap();
    assert_eq!(cluster.session_version(stranger), Some(v("v2")), "unknown affinity falls through");
    drain_version(&cluster, "v1", Duration::from_secs(600)).await;
    let turned_away = cluster.open_session(&app(), Some(&v("v1"))).unwrap();
    assert_eq!(
        cluster.session_version(turned_away),
        Some(v("v2")),
        "a draining version turns new sessions away"
    );
    assert_eq!(cluster.session_version(old), Some(v("v1")), "existing sessions stay");
    cluster.router().detach(&app(), &v("v1")).await.unwrap();
    let after = cluster.open_session(&app(), Some(&v("v1"))).unwrap();
    assert_eq!(cluster.session_version(after), Some(v("v2")));
    assert_eq!(cluster.sessions_on(&app(), &v("v1")), 1);
    assert_eq!(cluster.sessions_on(&app(), &v("v2")), 4);
    assert_eq!(cluster.open_sessions(&app()).len(), 5);
    let other = AppName::new("blog").unwrap();
    assert!(cluster.open_sessions(&other).is_empty(), "sessions are per app");
}

#[tokio::test]
async fn sessions_spread_over_instances_and_the_split_is_seeded() {
    async fn run(seed: u64) -> Vec<VersionId> {
        let cluster = InMemoryCluster::new().seed(seed);
        deploy_attached(&cluster, "v1", 2).await;
        deploy_attached(&cluster, "v2", 2).await;
        cluster.router().set_weights(&app(), &Weights::split(v("v2"), 20, v("v1")).unwrap()).await.unwrap();
        let sessions: Vec<SessionId> =
            (0..500).map(|_| cluster.open_session(&app(), None).unwrap()).collect();
        let per_instance: BTreeMap<_, usize> = sessions.iter().fold(BTreeMap::new(), |mut m, s| {
            *m.entry(cluster.session_instance(*s).unwrap()).or_default() += 1;
            m
        });
        for (version, total) in
            [("v1", cluster.sessions_on(&app(), &v("v1"))), ("v2", cluster.sessions_on(&app(), &v("v2")))]
        {
            let counts: Vec<usize> =
                per_instance.iter().filter(|(i, _)| i.0.contains(version)).map(|(_, n)| *n).collect();
            assert!(
                counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
                "{version}: {counts:?}"
            );
            assert_eq!(counts.iter().sum::<usize>(), total);
        }
        let v2 = cluster.sessions_on(&app(), &v("v2"));
        assert!((60..=140).contains(&v2), "20% of 500 sessions, got {v2}");
        sessions.iter().map(|s| cluster.session_version(*s).unwrap()).collect()
    }
    assert_eq!(run(7).await, run(7).await, "same seed, same choices");
    assert_ne!(run(7).await, run(8).await);
}

#[tokio::test]
async fn an_instance_failing_its_health_check_takes_no_new_session() {
    let cluster = InMemoryCluster::new();
    deploy_attached(&cluster, "v1", 2).await;
    all_to(&cluster, "v1").await;
    let targets = cluster.targets(&app(), &v("v1"));
    cluster.set_instance_healthy(&targets[0].instance, false);
    for _ in 0..5 {
        let s = cluster.open_session(&app(), None).unwrap();
        assert_eq!(cluster.session_instance(s), Some(targets[1].instance.clone()));
    }
    assert_eq!(health(&cluster, "v1").await, vec![Health::Unhealthy, Health::Healthy]);
    let landing = cluster.route(&app(), None, Some(&targets[1].instance)).unwrap();
    assert_eq!(landing.instance, targets[1].instance);
    cluster.set_instance_healthy(&targets[0].instance, true);
    assert_eq!(
        cluster.route(&app(), None, None).unwrap().instance,
        targets[0].instance,
        "fewest sessions first"
    );
}

#[tokio::test]
async fn faults_are_injected_by_the_wrapper() {
    let cluster = InMemoryCluster::new();
    let orchestrator = Faulty::builder(cluster.orchestrator())
        .fail_nth_call(2, false)
        .lose_nth_response(3, true)
        .fail_calls_matching("retire", 2, true)
        .build()
        .unwrap();
    let r = release("v1", 1);
    orchestrator.deploy(&r).await.unwrap();
    let e = orchestrator.versions(&app()).await.unwrap_err();
    assert!(matches!(e, Error::Provider { provider: "fault", retryable: false, .. }), "{e}");
    assert!(orchestrator.versions(&app()).await.unwrap_err().is_retryable(), "the answer was lost");
    assert!(orchestrator.retire(&app(), &v("v1")).await.is_err());
    assert!(orchestrator.retire(&app(), &v("v1")).await.is_err());
    assert_eq!(cluster.versions_running(&app()), vec![v("v1")], "failed calls never reached the provider");
    orchestrator.retire(&app(), &v("v1")).await.unwrap();
    assert!(cluster.versions_running(&app()).is_empty());
    assert_eq!(
        (orchestrator.calls(), orchestrator.calls_to("retire"), orchestrator.injected_faults()),
        (6, 3, 4)
    );

    let router = Faulty::builder(cluster.router()).lose_nth_response(1, true).build().unwrap();
    deploy_attached(&cluster, "v2", 1).await;
    assert!(router.set_weights(&app(), &Weights::all_to(v("v2"))).await.is_err());
    assert_eq!(cluster.router().routing(&app()).await.unwrap().weights, Weights::all_to(v("v2")), "applied");

    let e =
        Faulty::builder(cluster.drain_client()).fail_calls_matching("drian", 1, true).build().unwrap_err();
    assert!(e.to_string().contains("drian") && e.to_string().contains("drain"), "{e}");
    assert!(Faulty::builder(cluster.drain_client()).fail_with_probability(1.5, 0, true).build().is_err());
}

#[tokio::test(start_paused = true)]
async fn probabilistic_faults_are_seeded_and_latency_follows_the_virtual_clock() {
    async fn pattern(seed: u64) -> Vec<bool> {
        let cluster = InMemoryCluster::new();
        let faulty = Faulty::builder(cluster.router() as std::sync::Arc<dyn TrafficRouter>)
            .fail_with_probability(0.3, seed, true)
            .latency(Duration::from_millis(250))
            .build()
            .unwrap();
        let mut out = Vec::new();
        for _ in 0..50 {
            out.push(faulty.routing(&app()).await.is_err());
        }
        let injected = out.iter().filter(|f| **f).count();
        assert_eq!(faulty.injected_faults(), injected);
        assert!((5..=25).contains(&injected), "{injected}");
        faulty.heal();
        assert!(faulty.routing(&app()).await.is_ok());
        out
    }
    let start = tokio::time::Instant::now();
    assert_eq!(pattern(1).await, pattern(1).await);
    assert_eq!(start.elapsed(), Duration::from_millis(250 * 51 * 2));
}

#[tokio::test]
async fn crash_after_stops_every_later_call_until_healed() {
    let cluster = InMemoryCluster::new();
    let orchestrator = Faulty::builder(cluster.orchestrator()).crash_after(1).build().unwrap();
    orchestrator.deploy(&release("v1", 1)).await.unwrap();
    for _ in 0..3 {
        let e = orchestrator.retire(&app(), &v("v1")).await.unwrap_err();
        assert!(!e.is_retryable(), "{e}");
    }
    assert_eq!(cluster.versions_running(&app()), vec![v("v1")]);
    orchestrator.heal();
    orchestrator.retire(&app(), &v("v1")).await.unwrap();
    assert!(cluster.versions_running(&app()).is_empty());
}

#[tokio::test]
async fn undrain_takes_a_draining_instance_back_to_serving_but_never_revives_a_drained_one() {
    let cluster = InMemoryCluster::new();
    deploy_attached(&cluster, "v1", 1).await;
    all_to(&cluster, "v1").await;
    let session = cluster.open_session(&app(), None).unwrap();
    let instance = state(&cluster, "v1").await.unwrap().instances[0].clone();
    let client = cluster.drain_client();
    assert_eq!(client.undrain(&instance).await.unwrap().state, ServingState::Serving, "serving: a no-op");
    client.drain(&instance, Duration::from_secs(60)).await.unwrap();
    let back = client.undrain(&instance).await.unwrap();
    assert_eq!((back.state, back.draining_since, back.deadline), (ServingState::Serving, None, None));
    client.drain(&instance, Duration::from_secs(60)).await.unwrap();
    assert!(cluster.close_session(session));
    assert_eq!(client.status(&instance).await.unwrap().state, ServingState::Drained);
    assert!(matches!(client.undrain(&instance).await, Err(Error::Conflict { .. })));
    assert_eq!(
        client.status(&instance).await.unwrap().state,
        ServingState::Drained,
        "a refusal changes nothing"
    );
}
