//! Stage 6, cleanup: versions already retiring are detached and retired again until they are gone, and
//! routes whose version vanished are detached.

use super::{Ctx, Plan};
use crate::rollout::Action;
use crate::Weights;

/// Plans the cleanup (`weights` are the weights after this plan: a route with weight is never detached).
pub(super) fn stage(ctx: &Ctx<'_>, weights: &Weights, out: &mut Plan) {
    let observed = ctx.observed;
    for v in observed.versions.iter().filter(|v| v.state.retiring) {
        if observed.attached(v.id()) && weights.get(v.id()) == 0 {
            out.actions.push(Action::Detach(v.id().clone()));
        }
        out.actions.push(Action::Retire(v.id().clone()));
        out.waiting.push(format!("{}: retiring", v.id()));
    }
    for id in observed.routing.versions.keys() {
        let known = observed.version(id).is_some() || ctx.is_target(id);
        if !known && weights.get(id) == 0 {
            out.actions.push(Action::Detach(id.clone()));
        }
    }
}
