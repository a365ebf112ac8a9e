//! Stage 1, the target: which release gets new sessions, and the actions that bring it up (attach at
//! weight 0, deploy, replace crashed instances).

use super::{phase_of, Ctx, Plan, PlanFailure, PlanMemory};
use crate::rollout::observed::{Observed, ObservedVersion};
use crate::rollout::Action;
use crate::{Release, Target, VersionPhase, VersionRoute};

/// Without an explicit target (a controller following the providers' state): the version with the most
/// weight, unless a NEWER version was deployed since (by `deploy` from elsewhere, handing its release to
/// the controller through the orchestrator): the newest version that is not retiring, not failed, never
/// signalled, and has at least one instance that answered `serving` in this pass. The positive answer is
/// required so that a version whose status calls fail (a drained one after a rollback, say) never takes
/// new sessions back from the primary. Without a primary: the newest version never signalled, healthy or
/// not (a version whose instances crashed is being replaced, and must not be drained for it).
pub(super) fn infer(observed: &Observed, memory: &PlanMemory) -> Option<Release> {
    let usable = |v: &&ObservedVersion| {
        !v.state.retiring
            && !memory.failed.contains(v.id())
            && !super::weights::signalled(v)
            && !was_signalled(v, memory)
    };
    let primary = observed.routing.weights.primary().and_then(|p| observed.version(p)).filter(usable);
    let newest = observed.versions.iter().rfind(usable);
    let chosen = match (primary, newest) {
        (Some(p), Some(n)) if newer(observed, n, p) && answered_serving(n) => n,
        (Some(p), _) => p,
        (None, n) => n?,
    };
    Some(chosen.state.release.clone())
}

/// Whether `a` was created after `b`: later in the orchestrator's order (oldest first), which also breaks
/// ties between equal creation times (coarse clocks).
fn newer(observed: &Observed, a: &ObservedVersion, b: &ObservedVersion) -> bool {
    let position = |v: &ObservedVersion| observed.versions.iter().position(|o| o.id() == v.id());
    position(a) > position(b)
}

/// At least one live instance answered `serving` in this pass.
fn answered_serving(v: &ObservedVersion) -> bool {
    v.live().any(|i| v.status(&i.id).is_some_and(|s| s.state == crate::drain::ServingState::Serving))
}

/// An instance of `v` answered draining earlier in this run (its status call may fail now).
fn was_signalled(v: &ObservedVersion, memory: &PlanMemory) -> bool {
    v.live().any(|i| memory.last_status.get(&i.id).is_some_and(|s| s.state.is_draining()))
}

/// Reconciling only: `v` was deployed after the target and never signalled, but has not answered
/// `serving` yet, so it is not the target YET. It is a hand-off in progress, not an old version: it is
/// left alone (never drained) until its instances answer.
pub(super) fn pending_hand_off(ctx: &Ctx<'_>, v: &ObservedVersion) -> bool {
    if ctx.explicit.is_some() || ctx.failed(v.id()) || v.state.retiring {
        return false;
    }
    let Some(target) = ctx.target_id().and_then(|t| ctx.observed.version(t)) else {
        return false;
    };
    newer(ctx.observed, v, target) && !super::weights::signalled(v) && !was_signalled(v, ctx.memory)
}

/// The target's own actions. Returns whether the target exists and may get weight (`Some(false)` while it
/// is being created or an earlier attempt is retired), or `None` when its version id already runs another
/// release: then `out.failure` says so and nothing else may be planned.
pub(super) fn actions(ctx: &Ctx<'_>, out: &mut Plan) -> Option<bool> {
    let Some(t) = &ctx.target else {
        return Some(false);
    };
    let tid = &t.version;
    let observed = ctx.observed;
    match observed.version(tid) {
        None => {
            if !observed.attached(tid) {
                out.actions.push(Action::Attach(VersionRoute::for_release(t, Vec::new())));
            }
            out.actions.push(Action::Deploy(t.clone()));
            out.waiting.push(format!("{tid}: creating {} instances", t.replicas));
            Some(false)
        }
        Some(v) if v.state.retiring => {
            out.waiting.push(format!("{tid}: an earlier attempt is still being retired"));
            Some(false)
        }
        Some(v) if ctx.explicit.is_some() && v.state.release != *t => {
            out.failure = Some(PlanFailure::Conflict {
                version: tid.clone(),
                reason: format!(
                    "version {tid} already runs a different release (image {}); a version id names one release: deploy under a new version id",
                    v.state.release.image
                ),
            });
            None
        }
        Some(v) => {
            if !observed.attached(tid) {
                out.actions.push(Action::Attach(VersionRoute::for_release(&v.state.release, targets_of(v))));
            }
            if (v.live().count() as u32) < v.state.release.replicas {
                out.actions.push(Action::Deploy(v.state.release.clone()));
            }
            if phase_of(out, tid) == Some(VersionPhase::Starting) {
                let healthy = observed.healthy_instances(v);
                out.waiting
                    .push(format!("{tid}: {healthy} of {} instances healthy", v.state.release.replicas));
            }
            Some(true)
        }
    }
}

/// All replicas live and healthy in the router.
pub(super) fn ready(observed: &Observed, v: &ObservedVersion) -> bool {
    observed.attached(v.id()) && observed.healthy_instances(v) as u32 >= v.state.release.replicas
}

/// The live instances of a version as routing targets, sorted.
pub(super) fn targets_of(v: &ObservedVersion) -> Vec<Target> {
    let mut t: Vec<Target> = v
        .live()
        .filter_map(|i| i.endpoint.clone().map(|endpoint| Target { instance: i.id.clone(), endpoint }))
        .collect();
    t.sort();
    t
}
