//! Stage 7, goals: whether the target has all new sessions and every other version was signalled
//! (`shifted`, where a deploy may stop following), and whether nothing is left to do (`settled`).

use super::{phase_of, Ctx, Plan};
use crate::rollout::Action;
use crate::{VersionPhase, Weights};

/// Sets `out.shifted` and `out.settled` (`weights` are the weights after this plan).
pub(super) fn stage(ctx: &Ctx<'_>, weights: &Weights, out: &mut Plan) {
    let observed = ctx.observed;
    let Some(tid) = ctx.target_id() else {
        if observed.versions.is_empty() && observed.routing.versions.is_empty() {
            out.settled = out.actions.is_empty();
            out.shifted = out.settled;
        }
        return;
    };
    let target_has_all = weights.get(tid) == 100 && observed.weight(tid) == 100;
    let others_signalled =
        observed.versions.iter().filter(|v| v.id() != tid || ctx.failed(v.id())).all(|v| {
            matches!(
                phase_of(out, v.id()),
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
        && !ctx.failed(tid);
}
