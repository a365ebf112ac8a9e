//! [`AlbConfig`]: which listener serves each app, the VPC of the target groups, and the target-group
//! settings the releases do not carry (deregistration delay, instance-pinning lifetime).
//!
//! Each app has its own load balancer and HTTPS listener (the Terraform module creates both). The router
//! finds an app's listener from AWS alone: the load balancer named `pulse-{app}` and its listener on
//! [`AlbConfig::listener_port`] (443); a listener can also be named explicitly per app.
//!
//! Not for: how AWS is reached (see [`crate::client::AwsConfig`]).

use std::collections::BTreeMap;
use std::time::Duration;

use pulse_deploy_core::{AppName, Error, Result};

use crate::limits::TargetGroupSettings;
use crate::retry::RetryPolicy;

/// How the router reaches AWS and what it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlbConfig {
    /// The VPC of the target groups (the tasks' VPC).
    pub vpc_id: String,
    /// Listeners named explicitly, by app.
    pub listeners: BTreeMap<AppName, String>,
    /// The port of the listener found on the load balancer `pulse-{app}` for apps not named above.
    pub listener_port: i32,
    /// How long a deregistered target keeps its open connections. A version leaves its target group only
    /// once drained, so this only lets in-flight requests finish.
    pub deregistration_delay: Duration,
    /// Lifetime of the instance-pinning cookie inside a version (target-group stickiness): as long as a
    /// drain may last.
    pub instance_stickiness: Duration,
    /// How long a listener change takes to reach every node of the load balancer, as the engine assumes
    /// (the router's `weight_propagation` capability; default [`crate::limits::WEIGHT_PROPAGATION`]).
    pub weight_propagation: Duration,
    /// Retries of throttled or failed calls.
    pub retry: RetryPolicy,
}

impl AlbConfig {
    /// A configuration for target groups in `vpc_id`: listener on 443, deregistration delay 30 s,
    /// instance pinning 6 h.
    pub fn builder(vpc_id: impl Into<String>) -> AlbConfigBuilder {
        AlbConfigBuilder(AlbConfig {
            vpc_id: vpc_id.into(),
            listeners: BTreeMap::new(),
            listener_port: 443,
            deregistration_delay: Duration::from_secs(30),
            instance_stickiness: Duration::from_secs(6 * 3600),
            weight_propagation: crate::limits::WEIGHT_PROPAGATION,
            retry: RetryPolicy::default(),
        })
    }

    /// Reads `PULSE_AWS_VPC_ID`, and `PULSE_AWS_APP` with `PULSE_AWS_LISTENER_ARN` (the Terraform module's
    /// `app`, `vpc_id` and `listener_arn` outputs).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`AlbConfig::from_env`] with the variables looked up by `lookup` (full names, `PULSE_AWS_VPC_ID`),
    /// e.g. in the Terraform module's `environment` output.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| lookup(&format!("PULSE_AWS_{name}")).filter(|v| !v.is_empty());
        let vpc = var("VPC_ID").ok_or_else(|| {
            Error::invalid("PULSE_AWS_VPC_ID", "is not set; use the `vpc_id` output of the Terraform module")
        })?;
        let mut b = AlbConfig::builder(vpc);
        if let (Some(app), Some(arn)) = (var("APP"), var("LISTENER_ARN")) {
            b = b.listener(AppName::new(app)?, arn);
        }
        b.build()
    }

    /// The target-group settings (health check, deregistration delay, stickiness), as checked by
    /// [`TargetGroupSettings::validate`].
    pub fn target_group_settings(&self) -> TargetGroupSettings {
        TargetGroupSettings {
            health_check_interval: Duration::from_secs(5),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            deregistration_delay: self.deregistration_delay,
            stickiness: self.instance_stickiness,
        }
    }
}

/// Builds an [`AlbConfig`]; `build` checks it.
#[derive(Debug, Clone)]
pub struct AlbConfigBuilder(AlbConfig);

impl AlbConfigBuilder {
    /// The listener of `app` (instead of finding it on the load balancer `pulse-{app}`).
    pub fn listener(mut self, app: AppName, listener_arn: impl Into<String>) -> Self {
        self.0.listeners.insert(app, listener_arn.into());
        self
    }
    /// The port of the listener found on `pulse-{app}` (443 by default).
    pub fn listener_port(mut self, port: u16) -> Self {
        self.0.listener_port = i32::from(port);
        self
    }
    /// The deregistration delay (0-3600 s).
    pub fn deregistration_delay(mut self, d: Duration) -> Self {
        self.0.deregistration_delay = d;
        self
    }
    /// The instance-pinning cookie's lifetime (1 s to 7 days).
    pub fn instance_stickiness(mut self, d: Duration) -> Self {
        self.0.instance_stickiness = d;
        self
    }
    /// How long a listener change takes to reach every load balancer node (see
    /// [`AlbConfig::weight_propagation`]).
    pub fn weight_propagation(mut self, d: Duration) -> Self {
        self.0.weight_propagation = d;
        self
    }
    /// Retries of throttled or failed calls.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.0.retry = policy;
        self
    }
    /// The configuration, or an error naming the bad field.
    pub fn build(self) -> Result<AlbConfig> {
        if !self.0.vpc_id.starts_with("vpc-") {
            return Err(Error::invalid(
                "alb.vpc_id",
                format!(
                    "`{}` is not a VPC id (vpc-...); use the `vpc_id` output of the Terraform module",
                    self.0.vpc_id
                ),
            ));
        }
        self.0.target_group_settings().validate()?;
        Ok(self.0)
    }
}
