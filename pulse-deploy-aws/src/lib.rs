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
//! - [`provider`]: [`AwsProvider`], the three providers of one app from the `PULSE_AWS_*` environment (the
//!   one constructor the CLI and the controller use).
//! - [`limits`]: every value AWS would reject, checked before any call; [`names`], [`tags`].
//! - `terraform/`: the infrastructure all versions share and the controller's one-task service, checked
//!   offline by `cargo xtask terraform-validate` and applied to moto by `tests/terraform_moto.rs`.
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
//! health-checks nothing; the engine's rollouts run there with `pulse-demo-app` processes as the tasks.
//! The fixture's stand-ins, all outside this crate's code (`docs/aws.md` has the full table):
//! - ECS's service scheduler: a test loop starts a service's tasks with `RunTask` (group
//!   `service:NAME`) up to `desiredCount`, stops extra ones (SIGTERM first), and replaces stopped ones;
//! - task lifecycle: moto's automatic task state changes are off; tasks are RUNNING from `RunTask` and
//!   STOPPED from `StopTask`;
//! - task addresses and target health: moto runs through a launcher that gives a task's ENI the next
//!   free address of its subnet (the fixture's subnets are in `127.0.0.0/8`) and makes
//!   `DescribeTargetHealth` run a real HTTP health check of each `ip` target;
//! - the container: a demo-app process bound to the task's address, with the container definition's
//!   environment, its secrets from Secrets Manager and a task metadata endpoint (the task ARN); a
//!   process that exits stops its task;
//! - a deleted service's tasks: moto marks a service INACTIVE at once and leaves its tasks running
//!   (ECS keeps it DRAINING until they stopped); after `terraform destroy` the test stops them;
//! - router upstreams of the conformance suite: in-process HTTP responders on loopback addresses; no
//!   request goes through moto's load balancers, so the router checks that send requests are skipped;
//! - the ALB's data plane, in the e2e (`tests/tests/e2e_aws.rs` of the `tests` crate, which runs the
//!   `pulse-deploy` binary as the controller's task and the CI job): a proxy that reads the listener from moto
//!   and routes each request by its rules, weighted forward action and target-group stickiness;
//! - the shared infrastructure (VPC, subnets, security group, drain secret, cluster, a load balancer per
//!   app with its listener and admin-blocking rule) is created by the fixture, as the Terraform module
//!   does on AWS.
//!
//! Not yet: the controller inside the VPC, a listener shared by several apps.

pub mod alb;
pub mod client;
pub mod ecs;
pub mod errors;
pub mod limits;
pub mod names;
pub mod provider;
pub mod retry;
pub mod tags;

pub use alb::{AlbConfig, AlbRouter};
pub use client::{AwsConfig, AwsConfigBuilder};
pub use ecs::{EcsConfig, EcsOrchestrator};
pub use provider::AwsProvider;
