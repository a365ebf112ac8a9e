//! In-memory providers: test doubles for the rollout engine, and the REFERENCE implementation of the
//! provider contracts.
//!
//! **Provider authors: read this module first.** [`InMemoryOrchestrator`], [`InMemoryRouter`] and
//! [`InMemoryDrainClient`] implement [`crate::Orchestrator`], [`crate::TrafficRouter`] and
//! [`crate::drain::DrainClient`] with nothing but a map behind them, so every rule of the contracts is
//! visible: idempotent calls, validation before any change, a conflicting release refused, durable
//! `created_at` and `retiring`, weights validated and swapped atomically, affinity honoured at weight 0 and
//! falling through to the split when its version is gone, health reported at weight 0. A new provider passes
//! the same [`crate::conformance`] suite as these.
//!
//! What this module is for:
//! - [`InMemoryCluster`] — one simulated platform (shared, cheaply cloned state; time from a
//!   [`crate::clock::Clock`]; seeded randomness) handing out the three providers;
//! - users: [`InMemoryCluster::open_session`] routes a new session like a real router in front of
//!   drain-protocol servers would, and the cluster accounts for how every session ends, so tests assert that
//!   none was dropped ([`InMemoryCluster::dropped_sessions`]);
//! - test controls outside the traits: [`InMemoryCluster::crash_instance`], [`InMemoryCluster::set_broken`],
//!   [`InMemoryCluster::set_instance_healthy`], and the [`InMemoryCluster::weight_history`] of every
//!   `set_weights`;
//! - [`Faulty`] — failures and latency injected around any provider, never by editing the fake; it counts
//!   calls by method and the peak of calls in flight (the engine benchmark reads both);
//! - [`InMemoryHarness`] — what the conformance suite needs beyond the traits, for these providers.
//!
//! What it is not: a model of any platform's timing or limits beyond the few knobs offered
//! (`startup_time`, `shutdown_time`, `max_weighted_versions`, `max_attached_versions`).
//!
//! ## Model
//!
//! - An instance is `Starting` for `startup_time` after creation, then `Running`; it passes its health
//!   check while running, unless its version is broken, it was made to fail, it is drained (draining with no
//!   session left, or past its drain deadline) or it is shutting down.
//! - `retire` sends SIGTERM: each instance exits `shutdown_time` later (at most its release's
//!   `stop_grace`). Sessions still open when it exits are closed: if SIGTERM came at or after the instance's
//!   drain deadline they are *moved* (closed with 1001, the client reconnects); otherwise they are DROPPED —
//!   a bug of whoever retired the version.
//! - Changes driven by time are computed from the clock at every call, never by background tasks.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use pulse_deploy_core::memory::InMemoryCluster;
//! use pulse_deploy_core::{Orchestrator, Release, TrafficRouter, VersionRoute, Weights};
//!
//! let cluster = InMemoryCluster::new();
//! let (orchestrator, router) = (cluster.orchestrator(), cluster.router());
//! let v1 = Release::builder("shop", "v1", "shop:v1").build()?;
//! orchestrator.deploy(&v1).await?;
//! let targets = cluster.targets(&v1.app, &v1.version);
//! router.attach(&VersionRoute::for_release(&v1, targets)).await?;
//! router.set_weights(&v1.app, &Weights::all_to(v1.version.clone())).await?;
//!
//! let session = cluster.open_session(&v1.app, None)?;
//! assert_eq!(cluster.session_version(session), Some(v1.version.clone()));
//! assert!(cluster.dropped_sessions().is_empty());
//! # Ok::<(), pulse_deploy_core::Error>(())
//! # }).unwrap();
//! ```

mod cluster;
mod drain;
mod faulty;
mod harness;
mod orchestrator;
mod router;
mod sessions;
#[cfg(test)]
mod tests;
mod world;

pub use cluster::InMemoryCluster;
pub use drain::InMemoryDrainClient;
pub use faulty::{Faulty, FaultyBuilder, FAULTY_METHODS};
pub use harness::InMemoryHarness;
pub use orchestrator::InMemoryOrchestrator;
pub use router::{InMemoryRouter, WeightChange};
pub use sessions::{DroppedSession, EndedSession, SessionId, SessionStats};
