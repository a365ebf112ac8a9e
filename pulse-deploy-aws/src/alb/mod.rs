//! The Application Load Balancer: the [`AlbRouter`] and what it is built from (configuration, target
//! groups, affinity rules).

mod config;
mod router;
pub mod rules;
pub mod target_group;

pub use config::{AlbConfig, AlbConfigBuilder};
pub use router::AlbRouter;
