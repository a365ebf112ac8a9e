//! Validated domain types: what a release is, how versions are named, weights, phases and instances.
//!
//! Every constructor validates its input and returns [`crate::Error::InvalidInput`] naming the field, so
//! that bad input is refused before any provider call.

mod instance;
mod names;
mod phase;
mod release;
mod weights;

pub use instance::{Health, Instance, InstanceId, InstanceState};
pub use names::{AppName, VersionId};
pub use phase::VersionPhase;
pub use release::{AffinityMode, Release, ReleaseBuilder};
pub use weights::Weights;
