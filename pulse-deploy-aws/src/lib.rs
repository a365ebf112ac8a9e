//! # pulse-deploy-aws
//!
//! The pulse-deploy provider traits on AWS: `EcsOrchestrator` runs each version as an ECS service, and
//! `AlbRouter` splits and pins traffic with an Application Load Balancer listener (one target group per
//! version, weighted forward actions, per-version rules for affinity).
//!
//! Built so far (see `docs/aws.md`):
//! - [`limits`]: every value AWS would reject (ALB weights, target groups per forward action, stickiness,
//!   health checks, deregistration delay, Fargate `stopTimeout`, tags, rule conditions, rules per load
//!   balancer), checked before any AWS call with an error naming the field and the fix; and the
//!   capability values the providers will report.
//! - [`names`]: the AWS resource names derived from an app and a version.
//! - `terraform/`: the module for the infrastructure all versions share (load balancer, listeners, security
//!   groups, cluster, log group, ECR repository, drain secret, roles, the deployer's policy), checked
//!   offline by `cargo xtask terraform-validate`.
//!
//! Not yet: the SDK-backed `EcsOrchestrator` and `AlbRouter`, the tests against the moto emulator, and the
//! controller's ECS service in the Terraform module.

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
