//! The rollout engine: deploy, shift, drain and reap, for any pair of providers.
//!
//! - [`plan()`] is a pure function from ([`Desired`], [`Observed`], [`PlanMemory`], [`RolloutPolicy`]) to a
//!   [`Plan`] of [`Action`]s. All decisions live there, tested without I/O.
//! - [`Executor`] observes the providers, plans, applies the actions (retrying retryable errors), and
//!   observes again until a [`Goal`] holds — level-triggered, so a crashed run started again resumes.
//! - [`RolloutEvent`]s report progress to CLIs and reports; `tracing` spans cover each rollout and step.
//!
//! Not for: talking to any platform (that is the providers'), or storing state (the providers are the
//! source of truth).

mod action;
mod events;
mod executor;
mod observed;
mod plan;
mod policy;

pub use action::Action;
pub use events::{discard, EventSink, RolloutEvent, VersionSummary};
pub use executor::{Executor, ExecutorBuilder, Goal, Outcome};
pub use observed::{InstanceReport, Observed, ObservedVersion};
pub use plan::{plan, Desired, Plan, PlanFailure, PlanMemory};
pub use policy::{RetryPolicy, RolloutPolicy, ShiftPolicy};
