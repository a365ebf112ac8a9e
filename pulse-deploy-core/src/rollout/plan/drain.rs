//! Stage 5, drain and reap: every version other than the target that has no weight left gets the drain
//! signal on each live instance; a drained one (no session left or past its deadline on every live
//! instance) is detached, then retired. Never earlier. A version deployed after the target that is not the
//! target yet (a hand-off to a controller, see `target::infer`) is never drained.

use super::phases::drain_progress;
use super::{phase_of, Ctx, Plan};
use crate::rollout::observed::InstanceReport;
use crate::rollout::Action;
use crate::{VersionPhase, Weights};

/// While new weights may not have reached every node of the router (this plan changes them, or they
/// changed less than `policy.drain_after_shift` ago): how long the first drain signal waits.
fn propagating(ctx: &Ctx<'_>, weights: &Weights) -> Option<String> {
    let wait = ctx.policy.drain_after_shift;
    if wait.is_zero() {
        return None;
    }
    let changing = weights != &ctx.observed.routing.weights;
    let recent = ctx.memory.last_shift_at.is_some_and(|t| ctx.observed.at < t + wait);
    (changing || recent).then(|| humantime::format_duration(wait).to_string())
}

/// Plans drain, detach and retire for every old version (`weights` are the weights after this plan).
pub(super) fn drain_and_reap(ctx: &Ctx<'_>, weights: &Weights, out: &mut Plan) {
    for v in &ctx.observed.versions {
        let id = v.id();
        if (ctx.is_target(id) && !ctx.failed(id)) || v.state.retiring {
            continue;
        }
        if weights.get(id) > 0 {
            continue; // still the primary, sharing traffic with the target during a stepped shift
        }
        if super::target::pending_hand_off(ctx, v) {
            out.waiting.push(format!("{id}: deployed after the target; waiting for its instances to answer"));
            continue;
        }
        let drain = Action::Drain { version: id.clone(), deadline: v.state.release.drain_deadline };
        let signalled = matches!(phase_of(out, id), Some(VersionPhase::Draining | VersionPhase::Drained));
        if let Some(wait) = propagating(ctx, weights).filter(|_| !signalled) {
            out.waiting.push(format!(
                "{id}: drained {wait} after the shift, once every router node has the new weights"
            ));
            continue;
        }
        match phase_of(out, id) {
            Some(VersionPhase::Drained) => {
                if ctx.observed.attached(id) {
                    out.actions.push(Action::Detach(id.clone()));
                }
                out.actions.push(Action::Retire(id.clone()));
            }
            Some(VersionPhase::Draining) if drain_progress(ctx.observed, ctx.memory, v).unsignalled > 0 => {
                out.actions.push(drain);
            }
            Some(VersionPhase::Draining) => {
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
                out.waiting.push(format!("{id}: draining, {} sessions left{until}", v.known_sessions()));
            }
            _ => out.actions.push(drain),
        }
    }
}
