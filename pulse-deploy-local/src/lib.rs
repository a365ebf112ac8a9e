//! # pulse-deploy-local
//!
//! The pulse-deploy provider traits on a laptop: `DockerOrchestrator` runs each version's instances as
//! Docker containers (through the Engine API), and `EnvoyRouter` splits and pins traffic with a real Envoy
//! configured through xDS. Together they run the whole multi-version flow on one machine;
//! [`LocalProvider::connect`] builds both and the drain client from one [`LocalConfig`].

pub mod docker;
pub mod envoy;
pub mod preflight;
pub mod provider;

pub use docker::{DockerOrchestrator, DockerOrchestratorBuilder};
pub use envoy::{EnvoyRouter, EnvoyRouterBuilder};
pub use provider::{LocalConfig, LocalProvider};
