//! Shared helpers of the fault tests (`tests/tests/faults_*.rs`): a [`Rig`] holding one uniquely named app
//! on real Docker behind a real Envoy (removed even when a test fails), the [`deployer`] process driven
//! from a test, and the checks the tests share (polling against deadlines, counting Envoy processes).
//!
//! Not for the end-to-end run (that is [`crate::e2e`]); these helpers exist to break things on purpose —
//! kill the deployer, Envoy or an instance — and to prove the rollout and its sessions survive.

pub mod deployer;
mod rig;

pub use rig::{poll, Rig, STEP_TIMEOUT};
