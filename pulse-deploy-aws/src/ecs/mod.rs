//! ECS: the [`EcsOrchestrator`] and what it is built from (configuration, the release as a task
//! definition, tasks as instances).

mod config;
mod orchestrator;
pub mod task_definition;
pub mod tasks;

pub use config::{EcsConfig, EcsConfigBuilder, ENV_PREFIX};
pub use orchestrator::EcsOrchestrator;
