//! The planner: a pure function from (desired, observed, memory, policy) to the next [`Action`]s.
//!
//! Level-triggered, like a Kubernetes controller: it looks only at the present snapshot (plus the small
//! [`PlanMemory`] the executor keeps), so a deployer that crashed and restarted plans from what the
//! providers report and converges to the same end state. The rules, in the order they are applied:
//!
//! 1. **Target.** The desired release (or, when reconciling, the version with the most weight) is the
//!    target. It is attached to the router first (weight 0), then deployed; crashed instances are replaced.
//! 2. **Failure.** A target that is not healthy `health_timeout` after its creation has failed: it is
//!    treated as an old version from then on (weight 0, drained, reaped) and the previous version keeps
//!    its traffic.
//! 3. **Weights.** Weight goes only to versions whose instances are healthy: the target once all its
//!    replicas are healthy (stepping through the shift policy), the rest to the previous primary. If no
//!    healthy version exists, weights are left as they are (the total never drops to 0).
//! 4. **Drain.** Every other version with weight 0 gets the drain signal on each live instance.
//! 5. **Reap.** A draining version is reaped once each live instance has no session left or is past its
//!    drain deadline: detached from the router, then retired. Never earlier.
//! 6. **Cleanup.** Retiring versions are retired again until gone; routes of vanished versions detached.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use super::observed::{InstanceReport, Observed, ObservedVersion};
use super::{Action, RolloutPolicy};
use crate::drain::wire::deadline;
use crate::drain::{InstanceStatus, ServingState};
use crate::{AppName, Health, InstanceId, Release, Target, VersionId, VersionPhase, VersionRoute, Weights};

/// What the user wants for one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// The app.
    pub app: AppName,
    /// The release that should receive all new sessions; `None` to only reconcile (drain and reap old
    /// versions, keep the current primary).
    pub target: Option<Release>,
}

/// The little the executor remembers between passes. Everything else is observed. Losing it (a crash)
/// is safe: a fresh memory only makes the next bake start again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanMemory {
    /// When the target's weight last changed (bake times count from here).
    pub last_shift_at: Option<SystemTime>,
    /// Versions that failed during this run and are being rolled back.
    pub failed: BTreeSet<VersionId>,
    /// The last status each instance answered during this run. An instance that stops answering is
    /// judged by it: one that last held sessions before its deadline is waited for, not taken for dead.
    pub last_status: BTreeMap<InstanceId, InstanceStatus>,
}

/// Why the planner stopped the rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanFailure {
    /// The target did not become healthy in time; it is being rolled back.
    Unhealthy {
        /// The failed version.
        version: VersionId,
        /// What was seen.
        reason: String,
    },
    /// The target's version id already runs a different release.
    Conflict {
        /// The version.
        version: VersionId,
        /// What differs.
        reason: String,
    },
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Actions to perform, in order.
    pub actions: Vec<Action>,
    /// The phase of every observed version.
    pub phases: BTreeMap<VersionId, VersionPhase>,
    /// The version that receives new sessions at the end.
    pub target: Option<VersionId>,
    /// Why the plan waits (human-readable), when it does.
    pub waiting: Vec<String>,
    /// A failure detected in this snapshot.
    pub failure: Option<PlanFailure>,
    /// The target has all new sessions and every other version has received the drain signal.
    pub shifted: bool,
    /// Only the target is left, and there is nothing to do.
    pub settled: bool,
}

/// Plans the next actions. Pure: no I/O, no clock (time comes from `observed.at`).
pub fn plan(desired: &Desired, observed: &Observed, memory: &PlanMemory, policy: &RolloutPolicy) -> Plan {
    let now = observed.at;
    let mut out = Plan::default();

    // 1. Choose the target.
    let explicit = desired.target.as_ref().filter(|r| !memory.failed.contains(&r.version));
    let target: Option<Release> = match explicit {
        Some(r) => Some(r.clone()),
        None => infer_target(observed, memory),
    };
    let target_id = target.as_ref().map(|r| r.version.clone());
    out.target = target_id.clone();

    // 2. Phases (and the target's failure).
    let mut failed_now: Option<VersionId> = None;
    for v in &observed.versions {
        let phase = if v.state.retiring {
            VersionPhase::Retiring
        } else if memory.failed.contains(v.id()) {
            drain_phase(observed, memory, v).unwrap_or(VersionPhase::Failed)
        } else if Some(v.id()) == target_id.as_ref() {
            let ready = target_ready(observed, v);
            let timed_out = now >= v.state.created_at + policy.health_timeout;
            if ready {
                VersionPhase::Ready
            } else if timed_out && explicit.is_some() {
                failed_now = Some(v.id().clone());
                VersionPhase::Failed
            } else {
                VersionPhase::Starting
            }
        } else {
            drain_phase(observed, memory, v).unwrap_or_else(|| {
                if observed.healthy_instances(v) > 0 {
                    VersionPhase::Ready
                } else {
                    VersionPhase::Starting
                }
            })
        };
        out.phases.insert(v.id().clone(), phase);
    }
    if let Some(version) = failed_now {
        let v = observed.version(&version).expect("observed");
        let healthy = observed.healthy_instances(v);
        out.failure = Some(PlanFailure::Unhealthy {
            reason: format!(
                "{healthy} of {} instances healthy {} after it was created; rolling back",
                v.state.release.replicas,
                humantime::format_duration(policy.health_timeout)
            ),
            version: version.clone(),
        });
        // Plan the rollback right away, as if the version were already known to have failed.
        let mut memory = memory.clone();
        memory.failed.insert(version);
        let mut rollback = plan(desired, observed, &memory, policy);
        rollback.failure = out.failure;
        return rollback;
    }
    let phase_of = |id: &VersionId| out.phases.get(id).copied();

    // 1b. The target's own actions.
    let mut target_usable = false;
    if let (Some(t), Some(tid)) = (&target, &target_id) {
        match observed.version(tid) {
            None => {
                if !observed.attached(tid) {
                    out.actions.push(Action::Attach(VersionRoute::for_release(t, Vec::new())));
                }
                out.actions.push(Action::Deploy(t.clone()));
                out.waiting.push(format!("{tid}: creating {} instances", t.replicas));
            }
            Some(v) if v.state.retiring => {
                out.waiting.push(format!("{tid}: an earlier attempt is still being retired"));
            }
            Some(v) if explicit.is_some() && v.state.release != *t => {
                out.failure = Some(PlanFailure::Conflict {
                    version: tid.clone(),
                    reason: format!(
                        "version {tid} already runs a different release (image {}); a version id names one release: deploy under a new version id",
                        v.state.release.image
                    ),
                });
                return out;
            }
            Some(v) => {
                target_usable = true;
                if !observed.attached(tid) {
                    out.actions
                        .push(Action::Attach(VersionRoute::for_release(&v.state.release, targets_of(v))));
                }
                let live = v.live().count() as u32;
                if live < v.state.release.replicas {
                    out.actions.push(Action::Deploy(v.state.release.clone()));
                }
                if phase_of(tid) == Some(VersionPhase::Starting) {
                    let healthy = observed.healthy_instances(v);
                    out.waiting
                        .push(format!("{tid}: {healthy} of {} instances healthy", v.state.release.replicas));
                }
            }
        }
    }

    // Keep every attached, non-retiring version's targets equal to its live instances.
    for v in &observed.versions {
        if v.state.retiring {
            continue;
        }
        if let Some(rv) = observed.routing.versions.get(v.id()) {
            // Targets are identified by endpoint (a router may not know instance ids).
            let endpoints = |t: &[Target]| t.iter().map(|t| t.endpoint.clone()).collect::<BTreeSet<_>>();
            if endpoints(&rv.route.targets) != endpoints(&targets_of(v)) {
                out.actions.push(Action::Attach(VersionRoute::for_release(&v.state.release, targets_of(v))));
            }
        }
    }

    // Replace crashed instances of an old version that still carries traffic (the target's are above).
    for v in &observed.versions {
        let id = v.id();
        let serving = matches!(phase_of(id), Some(VersionPhase::Ready | VersionPhase::Starting));
        let old_and_serving = Some(id) != target_id.as_ref() && serving && observed.weight(id) > 0;
        if old_and_serving
            && !memory.failed.contains(id)
            && (v.live().count() as u32) < v.state.release.replicas
        {
            out.actions.push(Action::Deploy(v.state.release.clone()));
        }
    }

    // 3. Weights.
    let new_weights = plan_weights(
        observed,
        target_id.as_ref(),
        target_usable,
        &out.phases,
        memory,
        policy,
        &mut out.waiting,
    );
    if let Some(w) = &new_weights {
        if *w != observed.routing.weights {
            out.actions.push(Action::SetWeights(w.clone()));
        }
    }
    let weights_after = new_weights.unwrap_or_else(|| observed.routing.weights.clone());

    // 4 and 5. Drain and reap every version that is not the target.
    for v in &observed.versions {
        let id = v.id();
        if Some(id) == target_id.as_ref() && !memory.failed.contains(id) {
            continue;
        }
        if v.state.retiring {
            continue;
        }
        if weights_after.get(id) > 0 {
            continue; // still the primary, sharing traffic with the target during a stepped shift
        }
        match phase_of(id) {
            Some(VersionPhase::Drained) => {
                if observed.attached(id) {
                    out.actions.push(Action::Detach(id.clone()));
                }
                out.actions.push(Action::Retire(id.clone()));
            }
            Some(VersionPhase::Draining) if drain_progress(observed, memory, v).unsignalled > 0 => {
                out.actions
                    .push(Action::Drain { version: id.clone(), deadline: v.state.release.drain_deadline });
            }
            Some(VersionPhase::Draining) => {
                let sessions = v.known_sessions();
                let deadline = v
                    .reports
                    .values()
                    .filter_map(|r| match r {
                        InstanceReport::Status(s) => s.deadline,
                        InstanceReport::Unreachable(_) => None,
                    })
                    .max();
                let until = deadline
                    .map(|d| format!(" (deadline {})", humantime::format_rfc3339_seconds(d)))
                    .unwrap_or_default();
                out.waiting.push(format!("{id}: draining, {sessions} sessions left{until}"));
            }
            _ => out
                .actions
                .push(Action::Drain { version: id.clone(), deadline: v.state.release.drain_deadline }),
        }
    }

    // 6. Cleanup: retiring versions until gone; routes whose version vanished.
    for v in &observed.versions {
        if v.state.retiring {
            if observed.attached(v.id()) && weights_after.get(v.id()) == 0 {
                out.actions.push(Action::Detach(v.id().clone()));
            }
            out.actions.push(Action::Retire(v.id().clone()));
            out.waiting.push(format!("{}: retiring", v.id()));
        }
    }
    for id in observed.routing.versions.keys() {
        let known = observed.version(id).is_some() || Some(id) == target_id.as_ref();
        if !known && weights_after.get(id) == 0 {
            out.actions.push(Action::Detach(id.clone()));
        }
    }

    // Goals.
    if let Some(tid) = &target_id {
        let target_has_all = weights_after.get(tid) == 100 && observed.weight(tid) == 100;
        let others_signalled =
            observed.versions.iter().filter(|v| v.id() != tid || memory.failed.contains(v.id())).all(|v| {
                matches!(
                    phase_of(v.id()),
                    Some(VersionPhase::Draining | VersionPhase::Drained | VersionPhase::Retiring)
                )
            });
        out.shifted = target_has_all
            && others_signalled
            && !out.actions.iter().any(|a| matches!(a, Action::Drain { .. } | Action::SetWeights(_)));
        out.settled = out.actions.is_empty()
            && target_has_all
            && observed.versions.len() == 1
            && observed.routing.versions.len() == 1
            && !memory.failed.contains(tid);
    } else if observed.versions.is_empty() && observed.routing.versions.is_empty() {
        out.settled = out.actions.is_empty();
        out.shifted = out.settled;
    }
    out
}

/// Without an explicit target: the version with the most weight, else the newest one never signalled.
fn infer_target(observed: &Observed, memory: &PlanMemory) -> Option<Release> {
    let usable = |v: &&ObservedVersion| !v.state.retiring && !memory.failed.contains(v.id()) && !signalled(v);
    if let Some(primary) = observed.routing.weights.primary() {
        if let Some(v) = observed.version(primary).filter(usable) {
            return Some(v.state.release.clone());
        }
    }
    // The primary is draining or gone: the newest version that was never signalled, healthy or not (a
    // version whose instances crashed is being replaced, and must not be drained for it).
    observed.versions.iter().rfind(usable).map(|v| v.state.release.clone())
}

/// Positive evidence that a version serves new sessions: an instance answered `serving`, none answered a
/// draining state. A version whose instances cannot be asked is NOT serving as far as the planner knows —
/// a draining version must never win traffic back because its status call failed once.
fn serving(v: &ObservedVersion) -> bool {
    v.live().any(|i| v.status(&i.id).is_some_and(|s| s.state == ServingState::Serving)) && !signalled(v)
}

/// True once any live instance of the version has received the drain signal.
fn signalled(v: &ObservedVersion) -> bool {
    v.live().any(|i| v.status(&i.id).is_some_and(|s| s.state.is_draining()))
}

/// All replicas live and healthy in the router.
fn target_ready(observed: &Observed, v: &ObservedVersion) -> bool {
    observed.attached(v.id()) && observed.healthy_instances(v) as u32 >= v.state.release.replicas
}

/// The live instances of a version as routing targets, sorted.
fn targets_of(v: &ObservedVersion) -> Vec<Target> {
    let mut t: Vec<Target> = v
        .live()
        .filter_map(|i| i.endpoint.clone().map(|endpoint| Target { instance: i.id.clone(), endpoint }))
        .collect();
    t.sort();
    t
}

/// How far a version is in draining, per live instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DrainProgress {
    /// Live instances that acknowledged the drain signal (or are dead).
    signalled: usize,
    /// Live instances that did not (yet).
    unsignalled: usize,
    /// Signalled instances that still hold sessions before their deadline.
    holding: usize,
}

/// Counts, per live instance, whether it is signalled and whether it still holds sessions.
///
/// An instance counts as signalled when it reports a draining state, or when it cannot be asked and the
/// router reports it unhealthy (a process that answers neither holds no session — unless the last status
/// it gave during this run said it held sessions before its deadline). A signalled instance holds
/// sessions until it reports none, reports `drained`, or is past its drain deadline.
fn drain_progress(observed: &Observed, memory: &PlanMemory, v: &ObservedVersion) -> DrainProgress {
    let mut p = DrainProgress { signalled: 0, unsignalled: 0, holding: 0 };
    for i in v.live() {
        // Only the router's explicit verdict makes an unanswering instance dead: "unknown" is not enough.
        let dead = observed.health(v.id(), &i.id) == Health::Unhealthy;
        match v.reports.get(&i.id) {
            Some(InstanceReport::Status(s)) if s.state.is_draining() => {
                p.signalled += 1;
                let done = matches!(s.state, ServingState::Drained | ServingState::ShuttingDown)
                    || deadline::is_drained(s.active_sessions, observed.at, s.deadline);
                if !done {
                    p.holding += 1;
                }
            }
            Some(InstanceReport::Unreachable(_)) | None if dead => {
                p.signalled += 1;
                // It last said it held sessions, before its deadline: unresponsive is not dead yet.
                let last = memory.last_status.get(&i.id);
                let held = last.is_some_and(|s| {
                    s.active_sessions > 0
                        && s.state != ServingState::Drained
                        && !deadline::past(observed.at, s.deadline)
                });
                if held {
                    p.holding += 1;
                }
            }
            _ => p.unsignalled += 1,
        }
    }
    p
}

/// Draining or Drained once any instance received the drain signal (or none is alive); `None` before.
fn drain_phase(observed: &Observed, memory: &PlanMemory, v: &ObservedVersion) -> Option<VersionPhase> {
    let p = drain_progress(observed, memory, v);
    let acknowledged = |i: &crate::Instance| match v.reports.get(&i.id) {
        Some(InstanceReport::Status(s)) => s.state.is_draining(),
        _ => memory.last_status.get(&i.id).is_some_and(|s| s.state.is_draining()),
    };
    let any_acknowledged = v.live().any(acknowledged);
    if p.unsignalled == 0 && p.holding == 0 {
        Some(VersionPhase::Drained)
    } else if any_acknowledged {
        Some(VersionPhase::Draining)
    } else {
        None
    }
}

/// The weights to set, or `None` to leave them as they are.
#[allow(clippy::too_many_arguments)]
fn plan_weights(
    observed: &Observed,
    target: Option<&VersionId>,
    target_usable: bool,
    phases: &BTreeMap<VersionId, VersionPhase>,
    memory: &PlanMemory,
    policy: &RolloutPolicy,
    waiting: &mut Vec<String>,
) -> Option<Weights> {
    let current = &observed.routing.weights;
    let healthy = |id: &VersionId| {
        observed.version(id).is_some_and(|v| observed.healthy_instances(v) > 0) && observed.attached(id)
    };

    // The previous primary: a healthy, attached, not-yet-signalled version other than the target.
    let primary = observed
        .versions
        .iter()
        .filter(|v| Some(v.id()) != target && !v.state.retiring && !memory.failed.contains(v.id()))
        .filter(|v| matches!(phases.get(v.id()), Some(VersionPhase::Ready | VersionPhase::Starting)))
        .filter(|v| healthy(v.id()) && serving(v))
        .max_by_key(|v| (current.get(v.id()), v.state.created_at))
        .map(|v| v.id().clone());

    let Some(tid) = target.filter(|_| target_usable) else {
        // No usable target: keep the primary (if the current split names unhealthy versions, move them to it).
        return match primary {
            Some(p) if current.iter().any(|(v, _)| !healthy(v)) || current.is_empty() => {
                Some(Weights::all_to(p))
            }
            _ => None,
        };
    };
    let t_now = current.get(tid);
    let t_ready = phases.get(tid) == Some(&VersionPhase::Ready);
    let mut t_new = if t_ready {
        if t_now == 0 {
            policy.next_step(0)
        } else if t_now < 100 {
            let since = memory.last_shift_at.unwrap_or(observed.at);
            if observed.at >= since + policy.bake() {
                policy.next_step(t_now)
            } else {
                waiting.push(format!(
                    "{tid}: baking at {t_now}% until {}",
                    humantime::format_rfc3339_seconds(since + policy.bake())
                ));
                t_now
            }
        } else {
            100
        }
    } else if t_now > 0 && healthy(tid) {
        t_now // degraded but still serving: keep what it has
    } else {
        0
    };
    match &primary {
        None if t_new > 0 => t_new = 100,
        None => {
            // Neither the target nor an old version is healthy: leave weights alone.
            if !current.is_empty() {
                waiting.push("no healthy version to route to; weights left unchanged".into());
            }
            return None;
        }
        Some(_) => {}
    }
    let weights = match primary {
        Some(p) if t_new < 100 => Weights::split(tid.clone(), t_new, p).ok()?,
        _ => Weights::all_to(tid.clone()),
    };
    Some(weights)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
