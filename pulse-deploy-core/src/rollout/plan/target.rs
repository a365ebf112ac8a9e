//! Stage 1, the target: which release gets new sessions, and the actions that bring it up (attach at
//! weight 0, deploy, replace crashed instances).

use super::{phase_of, Ctx, Plan, PlanFailure, PlanMemory};
use crate::rollout::observed::{Observed, ObservedVersion};
use crate::rollout::Action;
use crate::{Release, Target, VersionPhase, VersionRoute};

/// Without an explicit target: the version with the most weight, else the newest one never signalled.
pub(super) fn infer(observed: &Observed, memory: &PlanMemory) -> Option<Release> {
    let usable = |v: &&ObservedVersion| {
        !v.state.retiring && !memory.failed.contains(v.id()) && !super::weights::signalled(v)
    };
    if let Some(primary) = observed.routing.weights.primary() {
        if let Some(v) = observed.version(primary).filter(usable) {
            return Some(v.state.release.clone());
        }
    }
    // The primary is draining or gone: the newest version that was never signalled, healthy or not (a
    // version whose instances crashed is being replaced, and must not be drained for it).
    observed.versions.iter().rfind(usable).map(|v| v.state.release.clone())
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
