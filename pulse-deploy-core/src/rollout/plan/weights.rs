//! Stage 4, weights: weight goes only to versions whose instances are healthy — the target once all its
//! replicas are healthy, stepping through the shift policy, the rest to the previous primary. With no
//! healthy version the weights stay as they are: the total never drops to 0.

use super::{Ctx, Plan};
use crate::drain::ServingState;
use crate::rollout::observed::ObservedVersion;
use crate::rollout::Action;
use crate::{VersionId, VersionPhase, Weights};

/// Plans the weights (a `SetWeights` when they change) and returns the weights after this plan.
pub(super) fn stage(ctx: &Ctx<'_>, target_usable: bool, out: &mut Plan) -> Weights {
    let current = &ctx.observed.routing.weights;
    match next(ctx, target_usable, out) {
        Some(w) => {
            if w != *current {
                out.actions.push(Action::SetWeights(w.clone()));
            }
            w
        }
        None => current.clone(),
    }
}

/// The weights to set, or `None` to leave them as they are.
fn next(ctx: &Ctx<'_>, target_usable: bool, out: &mut Plan) -> Option<Weights> {
    let observed = ctx.observed;
    let current = &observed.routing.weights;
    let healthy = |id: &VersionId| {
        observed.version(id).is_some_and(|v| observed.healthy_instances(v) > 0) && observed.attached(id)
    };
    let primary = previous_primary(ctx, out, &healthy);

    let Some(tid) = ctx.target_id().filter(|_| target_usable) else {
        // No usable target: keep the primary (if the current split names unhealthy versions, move them to it).
        return match primary {
            Some(p) if current.iter().any(|(v, _)| !healthy(v)) || current.is_empty() => {
                Some(Weights::all_to(p))
            }
            _ => None,
        };
    };
    let mut t_new = target_weight(ctx, tid, healthy(tid), out);
    match &primary {
        None if t_new > 0 => t_new = 100,
        None => {
            // Neither the target nor an old version is healthy: leave weights alone.
            if !current.is_empty() {
                out.waiting.push("no healthy version to route to; weights left unchanged".into());
            }
            return None;
        }
        Some(_) => {}
    }
    match primary {
        Some(p) if t_new < 100 => Weights::split(tid.clone(), t_new, p).ok(),
        _ => Some(Weights::all_to(tid.clone())),
    }
}

/// The previous primary: a healthy, attached, serving version other than the target, preferring the one
/// with the most weight, then the newest.
fn previous_primary(ctx: &Ctx<'_>, out: &Plan, healthy: &dyn Fn(&VersionId) -> bool) -> Option<VersionId> {
    let current = &ctx.observed.routing.weights;
    ctx.observed
        .versions
        .iter()
        .filter(|v| !ctx.is_target(v.id()) && !v.state.retiring && !ctx.failed(v.id()))
        .filter(|v| matches!(out.phases.get(v.id()), Some(VersionPhase::Ready | VersionPhase::Starting)))
        .filter(|v| healthy(v.id()) && serving(v))
        .max_by_key(|v| (current.get(v.id()), v.state.created_at))
        .map(|v| v.id().clone())
}

/// The target's next weight: the next step of the shift policy once ready and baked, what it has while
/// degraded but healthy, 0 otherwise.
fn target_weight(ctx: &Ctx<'_>, tid: &VersionId, healthy: bool, out: &mut Plan) -> u32 {
    let (observed, policy) = (ctx.observed, ctx.policy);
    let t_now = observed.routing.weights.get(tid);
    if out.phases.get(tid) != Some(&VersionPhase::Ready) {
        return if t_now > 0 && healthy { t_now } else { 0 }; // degraded but still serving: keep what it has
    }
    if t_now == 0 {
        return policy.next_step(0);
    }
    if t_now >= 100 {
        return 100;
    }
    let since = ctx.memory.last_shift_at.unwrap_or(observed.at);
    if observed.at >= since + policy.bake() {
        return policy.next_step(t_now);
    }
    out.waiting.push(format!(
        "{tid}: baking at {t_now}% until {}",
        humantime::format_rfc3339_seconds(since + policy.bake())
    ));
    t_now
}

/// Positive evidence that a version serves new sessions: an instance answered `serving`, none answered a
/// draining state. A version whose instances cannot be asked is NOT serving as far as the planner knows —
/// a draining version must never win traffic back because its status call failed once.
fn serving(v: &ObservedVersion) -> bool {
    v.live().any(|i| v.status(&i.id).is_some_and(|s| s.state == ServingState::Serving)) && !signalled(v)
}

/// True once any live instance of the version has received the drain signal.
pub(super) fn signalled(v: &ObservedVersion) -> bool {
    v.live().any(|i| v.status(&i.id).is_some_and(|s| s.state.is_draining()))
}
