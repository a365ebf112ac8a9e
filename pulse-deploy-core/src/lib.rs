//! # pulse-deploy-core
//!
//! Deploy new versions of stateful WebSocket apps with zero dropped sessions. This crate holds what every
//! provider shares:
//!
//! - validated domain types ([`Release`], [`AppName`], [`VersionId`], [`Weights`], [`VersionPhase`], ...);
//! - the provider traits: [`Orchestrator`] (runs versions) and [`TrafficRouter`] (splits and pins traffic),
//!   each reporting its [`OrchestratorCapabilities`] / [`RouterCapabilities`];
//! - the drain protocol's deployer side ([`drain`]) and its wire types, shared with servers;
//! - the rollout engine ([`rollout`]): a pure planner from (desired, observed) to actions, and an executor;
//! - in-memory providers ([`memory`]) — test doubles and the reference for provider authors — and a
//!   conformance suite ([`conformance`]) every provider runs.
//!
//! It knows nothing of AWS, Docker, Envoy or any web framework: providers depend on it, never the reverse.
//!
//! ## Example
//!
//! Deploy `v1`, then `v2`, on the in-memory providers, and let the engine drain and reap `v1`:
//!
//! ```
//! # tokio_test_block_on(async {
//! use pulse_deploy_core::{memory::InMemoryCluster, rollout::{Executor, Goal, RolloutPolicy}, Release};
//!
//! let cluster = InMemoryCluster::new();
//! let executor = Executor::builder(cluster.orchestrator(), cluster.router(), cluster.drain_client())
//!     .policy(RolloutPolicy::default())
//!     .build();
//!
//! let v1 = Release::builder("shop", "v1", "shop:v1").build()?;
//! executor.deploy(&v1, Goal::Settled).await?;
//!
//! let session = cluster.open_session(&v1.app, None)?; // a user opens a page on v1
//! let v2 = Release::builder("shop", "v2", "shop:v2").build()?;
//! executor.deploy(&v2, Goal::Shifted).await?; // v2 takes all new sessions, v1 drains
//! assert_eq!(cluster.session_version(session).unwrap().as_str(), "v1"); // the user stays on v1
//!
//! cluster.close_session(session);
//! executor.deploy(&v2, Goal::Settled).await?; // v1 has no session left: it is reaped
//! assert_eq!(cluster.versions_running(&v1.app).len(), 1);
//! # Ok::<(), pulse_deploy_core::Error>(())
//! # }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(f)
//! # }
//! ```

pub mod affinity;
mod capabilities;
pub mod clock;
pub mod conformance;
pub mod domain;
pub mod drain;
mod endpoint;
mod error;
pub mod memory;
mod orchestrator;
mod providers;
pub mod rollout;
mod router;
mod secret;
pub mod teardown;

pub use capabilities::{OrchestratorCapabilities, RouterCapabilities};
pub use domain::{
    AffinityMode, AppName, Health, Instance, InstanceId, InstanceState, Release, ReleaseBuilder, VersionId,
    VersionPhase, Weights,
};
pub use endpoint::Endpoint;
pub use error::{BoxError, Error, Result};
pub use orchestrator::{Orchestrator, VersionState};
pub use providers::Providers;
pub use router::{RoutedVersion, RoutingState, Target, TargetHealth, TrafficRouter, VersionRoute};
pub use secret::{Secret, MIN_SECRET_LEN};
