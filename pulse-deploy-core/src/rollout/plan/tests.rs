//! Unit tests of the pure planner: hand-built snapshots in, actions out.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::*;
use crate::drain::{InstanceStatus, ServingState};
use crate::rollout::observed::{InstanceReport, ObservedVersion};
use crate::{
    Endpoint, Health, Instance, InstanceId, InstanceState, RoutedVersion, RoutingState, Target, TargetHealth,
    VersionRoute, VersionState, Weights,
};

fn t0() -> SystemTime {
    humantime::parse_rfc3339("2026-01-01T00:00:00Z").unwrap()
}

fn vid(s: &str) -> VersionId {
    VersionId::new(s).unwrap()
}

fn release(v: &str) -> Release {
    Release::builder("shop", v, format!("shop:{v}"))
        .replicas(2)
        .drain_deadline(Duration::from_secs(3600))
        .build()
        .unwrap()
}

/// A hand-built snapshot: versions with instances, routing, statuses.
#[derive(Clone)]
struct Snapshot {
    at: SystemTime,
    versions: Vec<ObservedVersion>,
    routing: RoutingState,
}

impl Snapshot {
    fn new() -> Self {
        Snapshot {
            at: t0() + Duration::from_secs(60),
            versions: Vec::new(),
            routing: RoutingState::default(),
        }
    }

    /// A version created at t0 + `created` s with `live` running instances, serving, 0 sessions.
    fn version(mut self, v: &str, live: usize, created: u64) -> Self {
        let release = release(v);
        let instances: Vec<Instance> = (0..live)
            .map(|i| Instance {
                id: InstanceId(format!("{v}-{i}")),
                version: vid(v),
                state: InstanceState::Running,
                endpoint: Some(Endpoint::new(format!("{v}-{i}"), 8000)),
            })
            .collect();
        let reports = instances
            .iter()
            .map(|i| {
                (i.id.clone(), InstanceReport::Status(status(v, &i.id.0, ServingState::Serving, 0, None)))
            })
            .collect();
        self.versions.push(ObservedVersion {
            state: VersionState {
                release,
                created_at: t0() + Duration::from_secs(created),
                retiring: false,
                instances,
            },
            reports,
        });
        self
    }

    /// Attaches a version with all its live instances as targets of the given health.
    fn attached(mut self, v: &str, health: Health) -> Self {
        let ov = self.versions.iter().find(|o| o.id().as_str() == v).unwrap();
        let targets: Vec<Target> = ov
            .live()
            .map(|i| Target { instance: i.id.clone(), endpoint: i.endpoint.clone().unwrap() })
            .collect();
        let route = VersionRoute::for_release(&ov.state.release, targets.clone());
        let th = targets.into_iter().map(|target| TargetHealth { target, health }).collect();
        self.routing.versions.insert(vid(v), RoutedVersion { route, targets: th });
        self
    }

    fn weights(mut self, w: &[(&str, u32)]) -> Self {
        self.routing.weights = Weights::new(w.iter().map(|(v, w)| (vid(v), *w)).collect()).unwrap();
        self
    }

    /// Every instance of `v` reports draining with `sessions` each and a deadline at t0 + `deadline` s.
    fn draining(mut self, v: &str, sessions: u64, deadline: u64) -> Self {
        let ov = self.versions.iter_mut().find(|o| o.id().as_str() == v).unwrap();
        for (id, r) in ov.reports.iter_mut() {
            let mut s = status(
                v,
                &id.0,
                ServingState::Draining,
                sessions,
                Some(t0() + Duration::from_secs(deadline)),
            );
            if sessions == 0 {
                s.state = ServingState::Drained;
            }
            *r = InstanceReport::Status(s);
        }
        self
    }

    fn retiring(mut self, v: &str) -> Self {
        self.versions.iter_mut().find(|o| o.id().as_str() == v).unwrap().state.retiring = true;
        self
    }

    fn at(mut self, secs: u64) -> Self {
        self.at = t0() + Duration::from_secs(secs);
        self
    }

    fn observed(&self) -> Observed {
        Observed {
            app: AppName::new("shop").unwrap(),
            at: self.at,
            versions: self.versions.clone(),
            routing: self.routing.clone(),
        }
    }
}

fn status(
    v: &str,
    id: &str,
    state: ServingState,
    sessions: u64,
    deadline: Option<SystemTime>,
) -> InstanceStatus {
    InstanceStatus {
        version: v.into(),
        instance_id: id.into(),
        state,
        active_sessions: sessions,
        draining_since: deadline.map(|_| t0()),
        deadline,
    }
}

fn deploy(v: &str) -> Desired {
    Desired { app: AppName::new("shop").unwrap(), target: Some(release(v)) }
}

fn kinds(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .map(|a| format!("{} {}", a.kind(), a.version().map(|v| v.as_str()).unwrap_or("")).trim().to_string())
        .collect()
}

fn run(d: &Desired, w: &Snapshot) -> Plan {
    plan(d, &w.observed(), &PlanMemory::default(), &RolloutPolicy::default())
}

#[test]
fn fresh_deploy_attaches_then_deploys() {
    let p = run(&deploy("v1"), &Snapshot::new());
    assert_eq!(kinds(&p), ["attach v1", "deploy v1"]);
    // Attach comes first so that a provider whose routing resource must exist before instances (an ALB
    // target group before an ECS service) gets it.
    assert!(matches!(&p.actions[0], Action::Attach(r) if r.targets.is_empty()));
}

#[test]
fn new_instances_become_targets_and_wait_for_health() {
    let mut w = Snapshot::new().version("v1", 2, 0);
    w.routing.versions.insert(
        vid("v1"),
        RoutedVersion { route: VersionRoute::for_release(&release("v1"), vec![]), targets: vec![] },
    );
    let p = run(&deploy("v1"), &w);
    assert_eq!(kinds(&p), ["attach v1"]);
    assert!(matches!(&p.actions[0], Action::Attach(r) if r.targets.len() == 2));
    let p = run(&deploy("v1"), &Snapshot::new().version("v1", 2, 0).attached("v1", Health::Unknown));
    assert!(p.actions.is_empty());
    assert_eq!(p.phases[&vid("v1")], VersionPhase::Starting);
    assert!(p.waiting[0].contains("0 of 2 instances healthy"), "{:?}", p.waiting);
}

#[test]
fn first_version_gets_everything_once_healthy() {
    let p = run(&deploy("v1"), &Snapshot::new().version("v1", 2, 0).attached("v1", Health::Healthy));
    assert_eq!(p.actions, [Action::SetWeights(Weights::all_to(vid("v1")))]);
}

#[test]
fn shift_then_drain_in_that_order() {
    let w = Snapshot::new()
        .version("v1", 2, 0)
        .attached("v1", Health::Healthy)
        .version("v2", 2, 30)
        .attached("v2", Health::Healthy)
        .weights(&[("v1", 100)]);
    let p = run(&deploy("v2"), &w);
    assert_eq!(kinds(&p), ["set_weights", "drain v1"]);
    assert_eq!(p.actions[0], Action::SetWeights(Weights::all_to(vid("v2"))));
}

#[test]
fn new_version_gets_no_weight_until_every_replica_is_healthy() {
    let mut w = Snapshot::new()
        .version("v1", 2, 0)
        .attached("v1", Health::Healthy)
        .version("v2", 2, 30)
        .attached("v2", Health::Healthy)
        .weights(&[("v1", 100)]);
    w.routing.versions.get_mut(&vid("v2")).unwrap().targets[1].health = Health::Unhealthy;
    let p = run(&deploy("v2"), &w);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
}

#[test]
fn draining_version_with_sessions_is_kept_until_its_deadline() {
    let base = || {
        Snapshot::new()
            .version("v1", 2, 0)
            .attached("v1", Health::Healthy)
            .version("v2", 2, 30)
            .attached("v2", Health::Healthy)
            .weights(&[("v2", 100)])
    };
    let p = run(&deploy("v2"), &base().draining("v1", 3, 3600).at(120));
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.phases[&vid("v1")], VersionPhase::Draining);
    assert!(p.shifted && !p.settled);
    // Past the deadline: reaped even with sessions.
    let p = run(&deploy("v2"), &base().draining("v1", 3, 3600).at(3600));
    assert_eq!(kinds(&p), ["detach v1", "retire v1"]);
    // No session left: reaped.
    let p = run(&deploy("v2"), &base().draining("v1", 0, 3600).at(120));
    assert_eq!(kinds(&p), ["detach v1", "retire v1"]);
}

#[test]
fn partially_acknowledged_drain_is_sent_again() {
    let mut w = Snapshot::new()
        .version("v1", 2, 0)
        .attached("v1", Health::Healthy)
        .version("v2", 2, 30)
        .attached("v2", Health::Healthy)
        .weights(&[("v2", 100)])
        .draining("v1", 2, 3600);
    let v1 = w.versions.iter_mut().find(|v| v.id().as_str() == "v1").unwrap();
    let first = v1.reports.keys().next().unwrap().clone();
    v1.reports.insert(first, InstanceReport::Status(status("v1", "v1-0", ServingState::Serving, 2, None)));
    let p = run(&deploy("v2"), &w);
    assert_eq!(kinds(&p), ["drain v1"]);
}

#[test]
fn many_versions_drain_and_are_reaped_independently() {
    let w = Snapshot::new()
        .version("v1", 1, 0)
        .attached("v1", Health::Healthy)
        .version("v2", 1, 10)
        .attached("v2", Health::Healthy)
        .version("v3", 1, 20)
        .attached("v3", Health::Healthy)
        .version("v4", 2, 30)
        .attached("v4", Health::Healthy)
        .weights(&[("v4", 100)])
        .draining("v1", 0, 3600)
        .draining("v2", 5, 3600)
        .draining("v3", 1, 100)
        .at(200);
    let p = run(&deploy("v4"), &w);
    assert_eq!(kinds(&p), ["detach v1", "retire v1", "detach v3", "retire v3"]);
}

#[test]
fn unhealthy_new_version_is_rolled_back_and_old_keeps_everything() {
    let w = Snapshot::new()
        .version("v1", 2, 0)
        .attached("v1", Health::Healthy)
        .version("v2", 2, 30)
        .attached("v2", Health::Unhealthy)
        .weights(&[("v1", 100)])
        .at(30 + 301);
    let p = run(&deploy("v2"), &w);
    assert!(matches!(&p.failure, Some(PlanFailure::Unhealthy { version, .. }) if version.as_str() == "v2"));
    assert_eq!(p.target, Some(vid("v1")));
    assert_eq!(kinds(&p), ["drain v2"]);
    assert_eq!(p.phases[&vid("v1")], VersionPhase::Ready);
    // The failed version, once drained, is reaped; v1 keeps 100 %.
    let mut memory = PlanMemory::default();
    memory.failed.insert(vid("v2"));
    let w = w.draining("v2", 0, 4000);
    let p = plan(&deploy("v2"), &w.observed(), &memory, &RolloutPolicy::default());
    assert_eq!(kinds(&p), ["detach v2", "retire v2"]);
    assert!(!p.actions.iter().any(|a| matches!(a, Action::SetWeights(_))));
}

#[test]
fn stepped_shift_bakes_between_steps() {
    let policy = RolloutPolicy::default().stepped(vec![10, 50, 100], Duration::from_secs(60));
    let w = Snapshot::new()
        .version("v1", 2, 0)
        .attached("v1", Health::Healthy)
        .version("v2", 2, 30)
        .attached("v2", Health::Healthy);
    let first =
        plan(&deploy("v2"), &w.clone_with(&[("v1", 100)]).observed(), &PlanMemory::default(), &policy);
    assert_eq!(first.actions, [Action::SetWeights(Weights::split(vid("v2"), 10, vid("v1")).unwrap())]);
    let memory = PlanMemory { last_shift_at: Some(t0() + Duration::from_secs(60)), ..Default::default() };
    let baking = w.clone_with(&[("v2", 10), ("v1", 90)]).at(100);
    let p = plan(&deploy("v2"), &baking.observed(), &memory, &policy);
    assert!(
        p.actions.is_empty(),
        "no drain of the primary and no step before the bake ends: {:?}",
        p.actions
    );
    let baked = w.clone_with(&[("v2", 10), ("v1", 90)]).at(121);
    let p = plan(&deploy("v2"), &baked.observed(), &memory, &policy);
    assert_eq!(p.actions, [Action::SetWeights(Weights::split(vid("v2"), 50, vid("v1")).unwrap())]);
}

impl Snapshot {
    fn clone_with(&self, w: &[(&str, u32)]) -> Snapshot {
        Snapshot { at: self.at, versions: self.versions.clone(), routing: self.routing.clone() }.weights(w)
    }
}

#[test]
fn no_healthy_version_leaves_weights_alone() {
    let w = Snapshot::new()
        .version("v1", 2, 0)
        .attached("v1", Health::Unhealthy)
        .version("v2", 2, 30)
        .attached("v2", Health::Unknown)
        .weights(&[("v1", 100)]);
    let p = run(&deploy("v2"), &w);
    assert!(!p.actions.iter().any(|a| matches!(a, Action::SetWeights(_))), "{:?}", p.actions);
}

#[test]
fn unhealthy_primary_loses_its_weight_to_a_ready_target() {
    let w = Snapshot::new()
        .version("v1", 2, 0)
        .attached("v1", Health::Unhealthy)
        .version("v2", 2, 30)
        .attached("v2", Health::Healthy)
        .weights(&[("v1", 100)]);
    let p = run(&deploy("v2"), &w);
    assert_eq!(p.actions[0], Action::SetWeights(Weights::all_to(vid("v2"))));
}

#[test]
fn same_version_id_with_another_release_is_a_conflict() {
    let w = Snapshot::new().version("v1", 2, 0).attached("v1", Health::Healthy).weights(&[("v1", 100)]);
    let mut other = release("v1");
    other.image = "shop:other".into();
    let d = Desired { app: AppName::new("shop").unwrap(), target: Some(other) };
    let p = run(&d, &w);
    assert!(matches!(p.failure, Some(PlanFailure::Conflict { .. })));
    assert!(p.actions.is_empty());
}

#[test]
fn settled_world_plans_nothing() {
    let w = Snapshot::new().version("v2", 2, 0).attached("v2", Health::Healthy).weights(&[("v2", 100)]);
    let p = run(&deploy("v2"), &w);
    assert!(p.actions.is_empty() && p.settled && p.shifted, "{p:?}");
    let reconcile = Desired { app: AppName::new("shop").unwrap(), target: None };
    let p = run(&reconcile, &w);
    assert!(p.actions.is_empty() && p.settled, "{p:?}");
}

#[test]
fn retiring_versions_are_retired_until_gone() {
    let w = Snapshot::new()
        .version("v1", 1, 0)
        .retiring("v1")
        .version("v2", 2, 30)
        .attached("v2", Health::Healthy)
        .weights(&[("v2", 100)]);
    let p = run(&deploy("v2"), &w);
    assert_eq!(kinds(&p), ["retire v1"]);
    assert!(!p.settled);
}

#[test]
fn crashed_instance_of_the_target_is_replaced() {
    let w = Snapshot::new().version("v1", 1, 0).attached("v1", Health::Healthy).weights(&[("v1", 100)]);
    let p = run(&deploy("v1"), &w);
    assert_eq!(kinds(&p), ["deploy v1"]);
}

#[test]
fn reconcile_without_target_reaps_drained_versions() {
    let w = Snapshot::new()
        .version("v1", 1, 0)
        .attached("v1", Health::Unhealthy)
        .version("v2", 2, 30)
        .attached("v2", Health::Healthy)
        .weights(&[("v2", 100)])
        .draining("v1", 0, 3600);
    let d = Desired { app: AppName::new("shop").unwrap(), target: None };
    let p = run(&d, &w);
    assert_eq!(p.target, Some(vid("v2")));
    assert_eq!(kinds(&p), ["detach v1", "retire v1"]);
}

#[test]
fn routes_of_vanished_versions_are_detached() {
    let mut w = Snapshot::new().version("v2", 2, 0).attached("v2", Health::Healthy).weights(&[("v2", 100)]);
    w.routing.versions.insert(
        vid("v1"),
        RoutedVersion { route: VersionRoute::for_release(&release("v1"), vec![]), targets: vec![] },
    );
    let p = run(&deploy("v2"), &w);
    assert_eq!(kinds(&p), ["detach v1"]);
    let _ = BTreeMap::<u8, u8>::new();
}

#[test]
fn a_draining_version_never_wins_traffic_back_when_its_status_call_fails() {
    // v2 has everything, its only instance just crashed; v1 drains, but its status call failed this pass.
    let mut w = Snapshot::new()
        .version("v1", 1, 0)
        .attached("v1", Health::Healthy)
        .version("v2", 0, 30)
        .weights(&[("v2", 100)])
        .draining("v1", 1, 3600);
    let v1 = w.versions.iter_mut().find(|v| v.id().as_str() == "v1").unwrap();
    for r in v1.reports.values_mut() {
        *r = InstanceReport::Unreachable("status timed out".into());
    }
    w.routing.versions.insert(
        vid("v2"),
        RoutedVersion { route: VersionRoute::for_release(&release("v2"), vec![]), targets: vec![] },
    );
    let reconcile = Desired { app: AppName::new("shop").unwrap(), target: None };
    let p = run(&reconcile, &w);
    assert_eq!(p.target, Some(vid("v2")), "the crashed newest version stays the target");
    assert!(!p.actions.iter().any(|a| matches!(a, Action::SetWeights(_))), "{:?}", p.actions);
    assert!(p.actions.contains(&Action::Deploy(release("v2"))), "its instance is replaced: {:?}", p.actions);
}

#[test]
fn an_instance_that_stops_answering_after_holding_sessions_is_waited_for() {
    let mut w = Snapshot::new()
        .version("v1", 1, 0)
        .attached("v1", Health::Unhealthy)
        .version("v2", 2, 30)
        .attached("v2", Health::Healthy)
        .weights(&[("v2", 100)])
        .draining("v1", 3, 3600);
    let v1 = w.versions.iter_mut().find(|v| v.id().as_str() == "v1").unwrap();
    let (id, last) = v1.reports.iter().next().map(|(id, r)| (id.clone(), r.clone())).unwrap();
    let InstanceReport::Status(last) = last else { unreachable!() };
    v1.reports.insert(id.clone(), InstanceReport::Unreachable("timed out".into()));
    // Without memory (a fresh deployer), unanswering and unhealthy counts as dead: reaped.
    let p = run(&deploy("v2"), &w);
    assert_eq!(kinds(&p), ["detach v1", "retire v1"]);
    // Having seen it hold sessions before its deadline, the deployer waits.
    let mut memory = PlanMemory::default();
    memory.last_status.insert(id, last);
    let p = plan(&deploy("v2"), &w.observed(), &memory, &RolloutPolicy::default());
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    // Until the deadline.
    let late = w.at(3600);
    let p = plan(&deploy("v2"), &late.observed(), &memory, &RolloutPolicy::default());
    assert_eq!(kinds(&p), ["detach v1", "retire v1"]);
}

#[test]
fn targets_are_matched_to_instances_by_endpoint_not_by_the_routers_id() {
    // A router that keeps only addresses (the ALB) reports `host:port` where the instance id would be.
    let mut w = Snapshot::new().version("v1", 2, 0).attached("v1", Health::Healthy);
    let rv = w.routing.versions.get_mut(&vid("v1")).unwrap();
    for t in rv.route.targets.iter_mut().chain(rv.targets.iter_mut().map(|t| &mut t.target)) {
        t.instance = InstanceId(t.endpoint.to_string());
    }
    let p = run(&deploy("v1"), &w);
    assert_eq!(p.actions, [Action::SetWeights(Weights::all_to(vid("v1")))], "healthy, and no re-attach");
}

fn reconcile() -> Desired {
    Desired { app: AppName::new("shop").unwrap(), target: None }
}

#[test]
fn reconciling_takes_a_version_deployed_after_the_primary_as_the_target() {
    // `deploy v2` from outside the controller created v2 (the hand-off); its instances answer `serving`.
    let w = Snapshot::new()
        .version("v1", 2, 0)
        .attached("v1", Health::Healthy)
        .weights(&[("v1", 100)])
        .version("v2", 2, 30)
        .attached("v2", Health::Healthy);
    let p = run(&reconcile(), &w);
    assert_eq!(p.target, Some(vid("v2")));
    assert_eq!(p.actions.first(), Some(&Action::SetWeights(Weights::all_to(vid("v2")))), "{:?}", p.actions);
}

#[test]
fn reconciling_never_drains_a_newer_version_whose_instances_have_not_answered_yet() {
    let mut w = Snapshot::new()
        .version("v1", 1, 0)
        .attached("v1", Health::Healthy)
        .weights(&[("v1", 100)])
        .version("v2", 2, 30);
    let v2 = w.versions.iter_mut().find(|v| v.id().as_str() == "v2").unwrap();
    for r in v2.reports.values_mut() {
        *r = InstanceReport::Unreachable("connection refused: still starting".into());
    }
    let p = run(&reconcile(), &w);
    assert_eq!(p.target, Some(vid("v1")), "no instance of v2 answered serving yet");
    assert!(!p.actions.iter().any(|a| matches!(a, Action::Drain { .. })), "{:?}", p.actions);
    assert!(p.waiting.iter().any(|w| w.contains("v2: deployed after the target")), "{:?}", p.waiting);
}

#[test]
fn reconciling_after_a_rollback_keeps_the_primary_over_a_newer_drained_version() {
    // v2 was rolled back: v1 serves again with all the weight, v2 drains with sessions left.
    let w = Snapshot::new()
        .version("v1", 1, 0)
        .attached("v1", Health::Healthy)
        .weights(&[("v1", 100)])
        .version("v2", 1, 30)
        .attached("v2", Health::Healthy)
        .draining("v2", 2, 3600);
    let p = run(&reconcile(), &w);
    assert_eq!(p.target, Some(vid("v1")));
    assert!(!p.actions.iter().any(|a| matches!(a, Action::SetWeights(_))), "{:?}", p.actions);
    // Its status calls now fail: the draining answer remembered from earlier keeps it out.
    let mut w = w;
    let v2 = w.versions.iter_mut().find(|v| v.id().as_str() == "v2").unwrap();
    let mut memory = PlanMemory::default();
    for (id, r) in v2.reports.iter_mut() {
        if let InstanceReport::Status(s) = r {
            memory.last_status.insert(id.clone(), s.clone());
        }
        *r = InstanceReport::Unreachable("timed out".into());
    }
    let p = plan(&reconcile(), &w.observed(), &memory, &RolloutPolicy::default());
    assert_eq!(p.target, Some(vid("v1")), "a remembered drain keeps v2 out");
    // And without memory (a restarted controller), no positive `serving` answer: still out.
    let p = run(&reconcile(), &w);
    assert_eq!(p.target, Some(vid("v1")), "an unanswered status never wins traffic back");
}

#[test]
fn with_weight_propagation_the_old_version_is_drained_only_after_it() {
    let policy = RolloutPolicy { drain_after_shift: Duration::from_secs(10), ..Default::default() };
    let w = Snapshot::new()
        .version("v1", 2, 0)
        .attached("v1", Health::Healthy)
        .weights(&[("v1", 100)])
        .version("v2", 2, 30)
        .attached("v2", Health::Healthy);
    // The shift itself: weights now, no drain in the same plan.
    let p = plan(&deploy("v2"), &w.observed(), &PlanMemory::default(), &policy);
    assert_eq!(kinds(&p), ["set_weights"], "{:?}", p.actions);
    assert!(p.waiting.iter().any(|r| r.contains("v1: drained 10s after the shift")), "{:?}", p.waiting);
    // 5 s after the shift: still waiting.
    let shifted = w.clone().weights(&[("v2", 100)]).at(65);
    let memory = PlanMemory { last_shift_at: Some(t0() + Duration::from_secs(60)), ..Default::default() };
    let p = plan(&deploy("v2"), &shifted.observed(), &memory, &policy);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    // 10 s after it: the drain signal.
    let later = shifted.clone().at(70);
    let p = plan(&deploy("v2"), &later.observed(), &memory, &policy);
    assert_eq!(kinds(&p), ["drain v1"], "{:?}", p.actions);
    // Without the policy (a router that applies weights at once): weights and drain in one plan.
    let p = run(&deploy("v2"), &w);
    assert_eq!(kinds(&p), ["set_weights", "drain v1"]);
}
