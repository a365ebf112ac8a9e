//! # pulse-deploy-aws
//!
//! The pulse-deploy provider traits on AWS: `EcsOrchestrator` runs each version as an ECS service, and
//! `AlbRouter` splits and pins traffic with an Application Load Balancer listener (one target group per
//! version, weighted forward actions, per-version rules for affinity).
//!
//! This crate is not built yet: it is filled by the AWS provider issue. It is a workspace member now so
//! that the core's traits are shaped, from the start, for a provider whose state lives in the cloud
//! (see `docs/architecture.md`, "Fitting ECS and the ALB").
