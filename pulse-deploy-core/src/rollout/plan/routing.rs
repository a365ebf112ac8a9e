//! Stage 3, routing targets: every attached version's targets follow its live instances, and an old
//! version that still carries traffic gets its crashed instances replaced (the target's are replaced by
//! stage 1).

use std::collections::BTreeSet;

use super::target::targets_of;
use super::{phase_of, Ctx, Plan};
use crate::rollout::Action;
use crate::{Target, VersionPhase, VersionRoute};

/// Re-attaches every attached, non-retiring version whose targets differ from its live instances.
/// Targets are compared by endpoint (a router may not know instance ids).
pub(super) fn follow_instances(ctx: &Ctx<'_>, out: &mut Plan) {
    let endpoints = |t: &[Target]| t.iter().map(|t| t.endpoint.clone()).collect::<BTreeSet<_>>();
    for v in ctx.observed.versions.iter().filter(|v| !v.state.retiring) {
        if let Some(rv) = ctx.observed.routing.versions.get(v.id()) {
            let live = targets_of(v);
            if endpoints(&rv.route.targets) != endpoints(&live) {
                out.actions.push(Action::Attach(VersionRoute::for_release(&v.state.release, live)));
            }
        }
    }
}

/// Deploys the missing replicas of every old version that still carries traffic.
pub(super) fn replace_crashed(ctx: &Ctx<'_>, out: &mut Plan) {
    for v in &ctx.observed.versions {
        let id = v.id();
        let serving = matches!(phase_of(out, id), Some(VersionPhase::Ready | VersionPhase::Starting));
        let old_and_serving = !ctx.is_target(id) && serving && ctx.observed.weight(id) > 0;
        if old_and_serving && !ctx.failed(id) && (v.live().count() as u32) < v.state.release.replicas {
            out.actions.push(Action::Deploy(v.state.release.clone()));
        }
    }
}
