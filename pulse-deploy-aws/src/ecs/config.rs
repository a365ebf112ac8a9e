//! [`EcsConfig`]: where and how the versions' ECS services run (cluster, task subnets and security group,
//! roles, log group, drain secret, task size), built by [`EcsConfigBuilder`] or read from the
//! environment with the names of the Terraform module's outputs.
//!
//! Not for: how AWS is reached (see [`crate::client::AwsConfig`]).

use pulse_deploy_core::{Error, Result};

use crate::retry::RetryPolicy;

/// The environment variable prefix of [`EcsConfig::from_env`]: `PULSE_AWS_CLUSTER` and so on, one per
/// output of `pulse-deploy-aws/terraform` (`cluster`, `task_subnets`, ...).
pub const ENV_PREFIX: &str = "PULSE_AWS_";

/// Where the versions' services run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsConfig {
    /// The ECS cluster (name or ARN).
    pub cluster: String,
    /// Subnets of the tasks' network interfaces.
    pub subnets: Vec<String>,
    /// Security groups of the tasks.
    pub security_groups: Vec<String>,
    /// Gives tasks a public IP (only for subnets without a NAT gateway).
    pub assign_public_ip: bool,
    /// The task execution role (pulls the image, reads the drain secret, writes logs).
    pub execution_role_arn: Option<String>,
    /// The role the app's code runs with.
    pub task_role_arn: Option<String>,
    /// The CloudWatch log group of the tasks (`awslogs`), if any.
    pub log_group: Option<String>,
    /// The Secrets Manager secret given to every task as `PULSE_DRAIN_SECRET`, if any.
    pub drain_secret_arn: Option<String>,
    /// Fargate task CPU units (`256` = 0.25 vCPU).
    pub cpu: String,
    /// Fargate task memory in MiB.
    pub memory: String,
    /// Retries of throttled or failed calls.
    pub retry: RetryPolicy,
}

impl EcsConfig {
    /// Starts a configuration for `cluster`.
    pub fn builder(cluster: impl Into<String>) -> EcsConfigBuilder {
        EcsConfigBuilder(EcsConfig {
            cluster: cluster.into(),
            subnets: Vec::new(),
            security_groups: Vec::new(),
            assign_public_ip: false,
            execution_role_arn: None,
            task_role_arn: None,
            log_group: None,
            drain_secret_arn: None,
            cpu: "256".into(),
            memory: "512".into(),
            retry: RetryPolicy::default(),
        })
    }

    /// Reads `PULSE_AWS_CLUSTER`, `PULSE_AWS_TASK_SUBNETS` (comma separated), `PULSE_AWS_TASK_SECURITY_GROUP`,
    /// and the optional `PULSE_AWS_ASSIGN_PUBLIC_IP` (`true`/`false`), `PULSE_AWS_EXECUTION_ROLE_ARN`,
    /// `PULSE_AWS_TASK_ROLE_ARN`, `PULSE_AWS_LOG_GROUP`, `PULSE_AWS_DRAIN_SECRET_ARN` (the Terraform module's
    /// `environment` output holds all of them).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`EcsConfig::from_env`] with the variables looked up by `lookup` (full names, `PULSE_AWS_CLUSTER`),
    /// e.g. in the Terraform module's `environment` output.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| lookup(&format!("{ENV_PREFIX}{name}")).filter(|v| !v.is_empty());
        let cluster = var("CLUSTER").ok_or_else(|| {
            Error::invalid(
                "PULSE_AWS_CLUSTER",
                "is not set; use the `cluster` output of the Terraform module",
            )
        })?;
        let list = |v: Option<String>| -> Vec<String> {
            v.map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default()
        };
        let assign_public_ip = match var("ASSIGN_PUBLIC_IP").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(Error::invalid(
                    "PULSE_AWS_ASSIGN_PUBLIC_IP",
                    format!("`{other}` is neither `true` nor `false`; use the `assign_public_ip` output of the Terraform module"),
                ))
            }
        };
        let mut b = EcsConfig::builder(cluster)
            .subnets(list(var("TASK_SUBNETS")))
            .security_groups(list(var("TASK_SECURITY_GROUP")))
            .assign_public_ip(assign_public_ip);
        b.0.execution_role_arn = var("EXECUTION_ROLE_ARN");
        b.0.task_role_arn = var("TASK_ROLE_ARN");
        b.0.log_group = var("LOG_GROUP");
        b.0.drain_secret_arn = var("DRAIN_SECRET_ARN");
        b.build()
    }

    /// The task memory in MiB as a number.
    pub fn memory_mib(&self) -> Result<i32> {
        self.memory.parse().map_err(|_| {
            Error::invalid("ecs.memory", format!("`{}` is not a number of MiB, e.g. `512`", self.memory))
        })
    }

    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        EcsConfig::builder("pulse-test")
            .subnets(vec!["subnet-1".into()])
            .security_groups(vec!["sg-1".into()])
            .drain_secret_arn("arn:aws:secretsmanager:us-east-1:1:secret:pulse-test/drain-secret")
            .build()
            .unwrap()
    }
}

/// Builds an [`EcsConfig`]; `build` checks it.
#[derive(Debug, Clone)]
pub struct EcsConfigBuilder(EcsConfig);

impl EcsConfigBuilder {
    /// Subnets of the tasks (at least one).
    pub fn subnets(mut self, subnets: Vec<String>) -> Self {
        self.0.subnets = subnets;
        self
    }
    /// Security groups of the tasks (at least one).
    pub fn security_groups(mut self, groups: Vec<String>) -> Self {
        self.0.security_groups = groups;
        self
    }
    /// Gives tasks a public IP.
    pub fn assign_public_ip(mut self, yes: bool) -> Self {
        self.0.assign_public_ip = yes;
        self
    }
    /// The task execution role.
    pub fn execution_role_arn(mut self, arn: impl Into<String>) -> Self {
        self.0.execution_role_arn = Some(arn.into());
        self
    }
    /// The task role.
    pub fn task_role_arn(mut self, arn: impl Into<String>) -> Self {
        self.0.task_role_arn = Some(arn.into());
        self
    }
    /// The log group.
    pub fn log_group(mut self, group: impl Into<String>) -> Self {
        self.0.log_group = Some(group.into());
        self
    }
    /// The drain secret's ARN.
    pub fn drain_secret_arn(mut self, arn: impl Into<String>) -> Self {
        self.0.drain_secret_arn = Some(arn.into());
        self
    }
    /// Task CPU units and memory (MiB), e.g. `("256", "512")`.
    pub fn size(mut self, cpu: impl Into<String>, memory: impl Into<String>) -> Self {
        self.0.cpu = cpu.into();
        self.0.memory = memory.into();
        self
    }
    /// Retries of throttled or failed calls.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.0.retry = policy;
        self
    }

    /// The configuration, or an error naming the missing field.
    pub fn build(self) -> Result<EcsConfig> {
        let c = self.0;
        if c.cluster.trim().is_empty() {
            return Err(Error::invalid(
                "ecs.cluster",
                "is empty; use the `cluster` output of the Terraform module",
            ));
        }
        if c.subnets.is_empty() || c.subnets.len() > 16 {
            return Err(Error::invalid(
                "ecs.subnets",
                "give 1 to 16 task subnets (the `task_subnets` output of the Terraform module)",
            ));
        }
        if c.security_groups.is_empty() || c.security_groups.len() > 5 {
            return Err(Error::invalid(
                "ecs.security_groups",
                "give 1 to 5 security groups (the `task_security_group` output of the Terraform module)",
            ));
        }
        c.memory_mib()?;
        if c.cpu.parse::<u32>().is_err() {
            return Err(Error::invalid(
                "ecs.cpu",
                format!("`{}` is not a number of CPU units, e.g. `256`", c.cpu),
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::EcsConfig;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: BTreeMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| vars.get(name).cloned()
    }

    const BASE: [(&str, &str); 3] = [
        ("PULSE_AWS_CLUSTER", "pulse-shop"),
        ("PULSE_AWS_TASK_SUBNETS", "subnet-a, subnet-b"),
        ("PULSE_AWS_TASK_SECURITY_GROUP", "sg-1"),
    ];

    #[test]
    fn reads_the_terraform_modules_environment() {
        let mut vars = BASE.to_vec();
        vars.push(("PULSE_AWS_ASSIGN_PUBLIC_IP", "true"));
        vars.push(("PULSE_AWS_LOG_GROUP", "/pulse-deploy/shop"));
        let c = EcsConfig::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(c.cluster, "pulse-shop");
        assert_eq!(c.subnets, ["subnet-a", "subnet-b"]);
        assert!(c.assign_public_ip);
        assert_eq!(c.log_group.as_deref(), Some("/pulse-deploy/shop"));
        assert!(!EcsConfig::from_lookup(lookup(&BASE)).unwrap().assign_public_ip);
    }

    #[test]
    fn a_bad_public_ip_flag_names_the_variable() {
        let mut vars = BASE.to_vec();
        vars.push(("PULSE_AWS_ASSIGN_PUBLIC_IP", "yes"));
        let e = EcsConfig::from_lookup(lookup(&vars)).unwrap_err().to_string();
        assert!(e.contains("PULSE_AWS_ASSIGN_PUBLIC_IP") && e.contains("`yes`"), "{e}");
        let e = EcsConfig::from_lookup(lookup(&[])).unwrap_err().to_string();
        assert!(e.contains("PULSE_AWS_CLUSTER"), "{e}");
    }
}
