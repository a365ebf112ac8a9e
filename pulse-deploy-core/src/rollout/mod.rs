//! The rollout engine: deploy, shift, drain and reap, for any pair of providers.
//!
//! - [`plan()`] is a pure function from ([`Desired`], [`Observed`], [`PlanMemory`], [`RolloutPolicy`]) to a
//!   [`Plan`] of [`Action`]s. All decisions live there, tested without I/O.
//! - [`Executor`] observes the providers, plans, applies the actions (retrying retryable errors), and
//!   observes again until a [`Goal`] holds — level-triggered, so a crashed run started again resumes.
//! - [`Controller`] runs the executor's passes in a loop for one app (deploy = change the desired
//!   release; reaping happens as sessions end), stopped at a safe point by a [`Stopper`].
//! - [`AppStatus`] is the public per-version view (phase, weight, instances, sessions, age, deadline).
//! - [`RolloutEvent`]s report progress to CLIs and reports; `tracing` spans cover each rollout and step.
//!
//! Not for: talking to any platform (that is the providers'), or storing state (the providers are the
//! source of truth).

mod action;
mod controller;
mod events;
mod executor;
mod observed;
mod plan;
mod policy;
mod status;

pub use action::Action;
pub use controller::{Controller, StopSignal, Stopper};
pub use events::{discard, EventSink, RolloutEvent, VersionSummary};
pub use executor::{Executor, ExecutorBuilder, Goal, Outcome, Pass};
pub use observed::{InstanceReport, Observed, ObservedVersion};
pub use plan::{plan, Desired, Plan, PlanFailure, PlanMemory};
pub use policy::{RetryPolicy, RolloutPolicy, ShiftPolicy};
pub use status::{AppStatus, VersionStatus};
