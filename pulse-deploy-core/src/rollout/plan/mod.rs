//! The planner: a pure function from (desired, observed, memory, policy) to the next [`Action`]s.
//!
//! Level-triggered, like a Kubernetes controller: it looks only at the present snapshot (plus the small
//! [`PlanMemory`] the executor keeps), so a deployer that crashed and restarted plans from what the
//! providers report and converges to the same end state. [`plan`] runs these stages, in this order, each
//! in its own file:
//!
//! 1. **Target** (`target.rs`). The desired release (or, when reconciling, the version with the most
//!    weight) is the target. It is attached to the router first (weight 0), then deployed; crashed
//!    instances are replaced.
//! 2. **Phases and failure** (`phases.rs`). A target that is not healthy `health_timeout` after its
//!    creation has failed: it is treated as an old version from then on (weight 0, drained, reaped) and the
//!    previous version keeps its traffic. The plan is then made as if it were known to have failed.
//! 3. **Targets** (`routing.rs`). Every attached version's routing targets follow its live instances;
//!    crashed instances of an old version that still carries traffic are replaced.
//! 4. **Weights** (`weights.rs`). Weight goes only to versions whose instances are healthy: the target once
//!    all its replicas are healthy (stepping through the shift policy), the rest to the previous primary.
//!    If no healthy version exists, weights are left as they are (the total never drops to 0).
//! 5. **Drain and reap** (`drain.rs`). Every other version with weight 0 gets the drain signal on each live
//!    instance. A draining version is reaped once each live instance has no session left or is past its
//!    drain deadline: detached from the router, then retired. Never earlier.
//! 6. **Cleanup** (`cleanup.rs`). Retiring versions are retired again until gone; routes of vanished
//!    versions detached.
//! 7. **Goals** (`goals.rs`). Whether the target has all new sessions (`shifted`) and whether nothing is
//!    left to do (`settled`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use super::observed::Observed;
use super::{Action, RolloutPolicy};
use crate::drain::InstanceStatus;
use crate::{AppName, InstanceId, Release, VersionId, VersionPhase};

mod cleanup;
mod drain;
mod goals;
mod phases;
mod routing;
mod target;
mod weights;

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
#[must_use = "a plan does nothing until its actions are applied"]
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
    let ctx = Ctx::new(desired, observed, memory, policy);
    let Some((version, failure)) = phases::failed_target(&ctx) else {
        return run_stages(&ctx);
    };
    // Plan the rollback right away, as if the version were already known to have failed.
    let mut memory = memory.clone();
    memory.failed.insert(version);
    let mut rollback = run_stages(&Ctx::new(desired, observed, &memory, policy));
    rollback.failure = Some(failure);
    rollback
}

/// Everything a stage reads: the planner's inputs and the target chosen from them.
struct Ctx<'a> {
    observed: &'a Observed,
    memory: &'a PlanMemory,
    policy: &'a RolloutPolicy,
    /// The desired release, unless it already failed during this run.
    explicit: Option<&'a Release>,
    /// The release that gets new sessions at the end: `explicit`, or inferred when reconciling.
    target: Option<Release>,
}

impl<'a> Ctx<'a> {
    fn new(
        desired: &'a Desired,
        observed: &'a Observed,
        memory: &'a PlanMemory,
        policy: &'a RolloutPolicy,
    ) -> Self {
        let explicit = desired.target.as_ref().filter(|r| !memory.failed.contains(&r.version));
        let target = explicit.cloned().or_else(|| target::infer(observed, memory));
        Ctx { observed, memory, policy, explicit, target }
    }

    fn target_id(&self) -> Option<&VersionId> {
        self.target.as_ref().map(|r| &r.version)
    }

    fn is_target(&self, id: &VersionId) -> bool {
        self.target_id() == Some(id)
    }

    fn failed(&self, id: &VersionId) -> bool {
        self.memory.failed.contains(id)
    }
}

/// The stages, in the order they run (see the module docs).
fn run_stages(ctx: &Ctx<'_>) -> Plan {
    let mut out = Plan { target: ctx.target_id().cloned(), phases: phases::of_all(ctx), ..Plan::default() };
    let Some(target_usable) = target::actions(ctx, &mut out) else {
        return out; // the target's version id runs another release: nothing else is planned
    };
    routing::follow_instances(ctx, &mut out);
    routing::replace_crashed(ctx, &mut out);
    let weights = weights::stage(ctx, target_usable, &mut out);
    drain::drain_and_reap(ctx, &weights, &mut out);
    cleanup::stage(ctx, &weights, &mut out);
    goals::stage(ctx, &weights, &mut out);
    out
}

/// The phase `out` gives a version.
fn phase_of(out: &Plan, id: &VersionId) -> Option<VersionPhase> {
    out.phases.get(id).copied()
}

#[cfg(test)]
mod tests;
