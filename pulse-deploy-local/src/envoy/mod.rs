//! The Envoy traffic router: [`EnvoyRouter`] implements [`pulse_deploy_core::TrafficRouter`] with one real
//! Envoy process configured through filesystem xDS.
//!
//! - [`config`]: pure generation of the bootstrap, clusters (CDS) and routes (RDS) from the routing state;
//! - [`xds`]: atomic writes of the xDS files Envoy watches;
//! - [`state`]: the persisted routing state (`state.json`) a restarted deployer reads back;
//! - [`process`]: finding, starting (detached) and stopping Envoy;
//! - [`admin`]: reading readiness, applied versions and host health from Envoy's loopback admin API;
//! - [`router`]: [`EnvoyRouter`] itself, a file per job: its builder, supervising the Envoy process,
//!   applying a routing state in the safe order, the state directory's lock, offline validation, and the
//!   `TrafficRouter` implementation.
//!
//! Imports go one way: `xds` (files) <- `state` (the persisted intent) <- `config` (generation) <- `router`.
//!
//! Not for: running the instances (that is the orchestrator's job) or talking to them (the deployer
//! reaches instances directly; `/_pulse/admin/*` is never routable through Envoy). See
//! `docs/envoy-router.md` for the design and its measured behaviour.

pub mod admin;
pub mod config;
pub mod process;
pub mod router;
pub mod state;
pub mod xds;

pub use process::{locate_envoy, ENVOY_BIN_ENV};
pub use router::{EnvoyRouter, EnvoyRouterBuilder};
