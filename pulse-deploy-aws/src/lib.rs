//! # pulse-deploy-aws
//!
//! The pulse-deploy provider traits on AWS: [`EcsOrchestrator`] runs each version as an ECS service, and
//! [`AlbRouter`] splits and pins traffic with an Application Load Balancer listener (one target group per
//! version, a weighted forward action, per-version rules for affinity). Both read their whole state back
//! from AWS (tags, the task definition, the listener), so a deployer started on an empty machine resumes.
//!
//! - [`client`]: the SDK configuration ([`AwsConfig::from_env`], or an explicit endpoint and static
//!   credentials for emulators); [`errors`] and [`retry`]: SDK errors as the core's kinds, retried with
//!   backoff under a deadline.
//! - [`ecs`]: the orchestrator, the release as a task definition, tasks as instances.
//! - [`alb`]: the router, target groups, affinity rules.
//! - [`limits`]: every value AWS would reject, checked before any call; [`names`], [`tags`].
//! - `terraform/`: the infrastructure all versions share, checked offline by `cargo xtask
//!   terraform-validate`.
//!
//! ```no_run
//! # async fn run() -> pulse_deploy_core::Result<()> {
//! use pulse_deploy_aws::{AlbRouter, EcsOrchestrator};
//! // PULSE_AWS_CLUSTER, PULSE_AWS_TASK_SUBNETS, ... from `terraform output` (see docs/aws.md).
//! let orchestrator = EcsOrchestrator::from_env().await?;
//! let router = AlbRouter::from_env().await?;
//! # let _ = (orchestrator, router);
//! # Ok(()) }
//! ```
//!
//! Tested against the moto emulator (`tests/`), which runs no containers, routes no traffic and
//! health-checks nothing. The fixture's stand-ins, all outside this crate's code:
//! - ECS's service scheduler: a test loop starts a service's tasks with `RunTask` (group
//!   `service:NAME`) up to `desiredCount`, stops extra ones, and replaces a task stopped from outside;
//! - task lifecycle: moto's automatic task state changes are off; tasks are RUNNING from `RunTask` and
//!   STOPPED from `StopTask`;
//! - router upstreams: in-process HTTP responders on distinct loopback addresses; no request goes
//!   through moto's load balancers and every target reads healthy, so the router checks that send
//!   requests or fail a health check are skipped there;
//! - the shared infrastructure (VPC, subnets, security group, cluster, a load balancer per app with its
//!   listener and admin-blocking rule) is created by the fixture, as the Terraform module does on AWS.
//!
//! Not yet: rollouts with the engine against the emulator, the controller inside the VPC, a listener
//! shared by several apps.

pub mod alb;
pub mod client;
pub mod ecs;
pub mod errors;
pub mod limits;
pub mod names;
pub mod retry;
pub mod tags;

pub use alb::{AlbConfig, AlbRouter};
pub use client::{AwsConfig, AwsConfigBuilder};
pub use ecs::{EcsConfig, EcsOrchestrator};
