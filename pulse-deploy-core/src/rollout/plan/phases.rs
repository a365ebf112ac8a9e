//! Stage 2, phases: the phase of every observed version, and whether the target has failed (not healthy
//! `health_timeout` after its creation). How far a version is in draining is judged here too.

use std::collections::BTreeMap;

use super::{Ctx, PlanFailure, PlanMemory};
use crate::drain::wire::deadline;
use crate::drain::ServingState;
use crate::rollout::observed::{InstanceReport, Observed, ObservedVersion};
use crate::{Health, VersionId, VersionPhase};

/// The explicit target, when it has just failed: it exists, is not ready, and its health timeout passed.
pub(super) fn failed_target(ctx: &Ctx<'_>) -> Option<(VersionId, PlanFailure)> {
    let target = ctx.explicit?;
    let v = ctx.observed.version(&target.version).filter(|v| !v.state.retiring)?;
    let timed_out = ctx.observed.at >= v.state.created_at + ctx.policy.health_timeout;
    if super::target::ready(ctx.observed, v) || !timed_out {
        return None;
    }
    let healthy = ctx.observed.healthy_instances(v);
    let reason = format!(
        "{healthy} of {} instances healthy {} after it was created; rolling back",
        v.state.release.replicas,
        humantime::format_duration(ctx.policy.health_timeout)
    );
    Some((v.id().clone(), PlanFailure::Unhealthy { version: v.id().clone(), reason }))
}

/// The phase of every observed version. Called once [`failed_target`] found no failure (or with the
/// failed version in memory), so the target is Ready or Starting.
pub(super) fn of_all(ctx: &Ctx<'_>) -> BTreeMap<VersionId, VersionPhase> {
    let observed = ctx.observed;
    let phase = |v: &ObservedVersion| {
        if v.state.retiring {
            VersionPhase::Retiring
        } else if ctx.failed(v.id()) {
            drain_phase(observed, ctx.memory, v).unwrap_or(VersionPhase::Failed)
        } else if ctx.is_target(v.id()) {
            if super::target::ready(observed, v) {
                VersionPhase::Ready
            } else {
                VersionPhase::Starting
            }
        } else {
            drain_phase(observed, ctx.memory, v).unwrap_or_else(|| {
                if observed.healthy_instances(v) > 0 {
                    VersionPhase::Ready
                } else {
                    VersionPhase::Starting
                }
            })
        }
    };
    observed.versions.iter().map(|v| (v.id().clone(), phase(v))).collect()
}

/// How far a version is in draining, per live instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DrainProgress {
    /// Live instances that acknowledged the drain signal (or are dead).
    pub(super) signalled: usize,
    /// Live instances that did not (yet).
    pub(super) unsignalled: usize,
    /// Signalled instances that still hold sessions before their deadline.
    pub(super) holding: usize,
}

/// Counts, per live instance, whether it is signalled and whether it still holds sessions.
///
/// An instance counts as signalled when it reports a draining state, or when it cannot be asked and the
/// router reports it unhealthy (a process that answers neither holds no session — unless the last status
/// it gave during this run said it held sessions before its deadline). A signalled instance holds
/// sessions until it reports none, reports `drained`, or is past its drain deadline.
pub(super) fn drain_progress(observed: &Observed, memory: &PlanMemory, v: &ObservedVersion) -> DrainProgress {
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
    if p.unsignalled == 0 && p.holding == 0 {
        Some(VersionPhase::Drained)
    } else if v.live().any(acknowledged) {
        Some(VersionPhase::Draining)
    } else {
        None
    }
}
