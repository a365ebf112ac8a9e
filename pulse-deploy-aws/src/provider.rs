//! [`AwsProvider`]: the orchestrator, router and drain client of one app on AWS, built from the
//! `PULSE_AWS_*` environment (the Terraform module's `environment` output, see `docs/aws.md`) — the one
//! constructor the CLI and the controller use. The drain secret comes from `PULSE_DRAIN_SECRET` when set
//! (the controller's task gets it from Secrets Manager that way), else it is read once from Secrets
//! Manager (`PULSE_AWS_DRAIN_SECRET_ARN`, `GetSecretValue`). Nothing here prints it.

use std::sync::Arc;

use pulse_deploy_core::drain::HttpDrainClient;
use pulse_deploy_core::{AppName, Error, Providers, Result, Secret};

use crate::errors::map_sdk_error;
use crate::{AlbConfig, AlbRouter, AwsConfig, EcsConfig, EcsOrchestrator};

/// The ECS service the Terraform module runs the controller (`pulse-deploy watch`) as, in the app's
/// cluster.
pub const CONTROLLER_SERVICE: &str = "controller";

/// The three providers of one app on AWS.
#[derive(Debug, Clone)]
pub struct AwsProvider {
    /// The SDK configuration every client shares.
    pub aws: AwsConfig,
    /// Runs each version as an ECS service.
    pub orchestrator: Arc<EcsOrchestrator>,
    /// The ALB listener's weighted forward action and affinity rules.
    pub router: Arc<AlbRouter>,
    /// The drain protocol to each task's private address (reachable from inside the VPC only).
    pub drain: Arc<HttpDrainClient>,
}

impl AwsProvider {
    /// From explicit parts (an emulator's endpoint, static credentials).
    pub fn new(aws: AwsConfig, ecs: EcsConfig, alb: AlbConfig, secret: Secret) -> AwsProvider {
        AwsProvider {
            orchestrator: Arc::new(EcsOrchestrator::new(&aws, ecs)),
            router: Arc::new(AlbRouter::new(&aws, alb)),
            drain: Arc::new(HttpDrainClient::new(secret)),
            aws,
        }
    }

    /// From the standard AWS chain and the `PULSE_AWS_*` variables; every missing or invalid variable is
    /// an [`Error::InvalidInput`] naming it, before any AWS call except the secret's read.
    pub async fn from_env() -> Result<AwsProvider> {
        let (ecs, alb) = (EcsConfig::from_env()?, AlbConfig::from_env()?);
        let aws = AwsConfig::from_env().await;
        let secret = match std::env::var("PULSE_DRAIN_SECRET").ok().filter(|s| !s.trim().is_empty()) {
            Some(value) => Secret::new("PULSE_DRAIN_SECRET", value)?,
            None => {
                let arn = ecs.drain_secret_arn.clone().ok_or_else(|| {
                    Error::invalid(
                        "PULSE_AWS_DRAIN_SECRET_ARN",
                        "is not set (nor PULSE_DRAIN_SECRET); use the `drain_secret_arn` output of the Terraform module",
                    )
                })?;
                read_drain_secret(&aws, &arn).await?
            }
        };
        Ok(AwsProvider::new(aws, ecs, alb, secret))
    }

    /// The three parts as the provider-neutral [`Providers`].
    pub fn providers(&self) -> Providers {
        Providers {
            orchestrator: self.orchestrator.clone(),
            router: self.router.clone(),
            drain: self.drain.clone(),
        }
    }

    /// Whether the app's controller runs: its ECS service [`CONTROLLER_SERVICE`] in the cluster has a
    /// running task. `deploy` from outside the VPC then hands the release over instead of running the
    /// engine (it could not reach the tasks anyway).
    pub async fn controller_running(&self, _app: &AppName) -> Result<bool> {
        let out = self
            .aws
            .ecs()
            .describe_services()
            .cluster(&self.orchestrator.config().cluster)
            .services(CONTROLLER_SERVICE)
            .send()
            .await
            .map_err(|e| map_sdk_error("ecs", "describing the controller service", e))?;
        Ok(out.services().iter().any(|s| s.status() == Some("ACTIVE") && s.running_count() > 0))
    }
}

/// Reads the drain secret's current value from Secrets Manager.
pub async fn read_drain_secret(aws: &AwsConfig, arn: &str) -> Result<Secret> {
    let out = aws
        .secrets_manager()
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| map_sdk_error("secretsmanager", "reading the drain secret", e))?;
    let value = out.secret_string().ok_or_else(|| {
        Error::invalid(
            "PULSE_AWS_DRAIN_SECRET_ARN",
            "the secret has no string value; store the token as text",
        )
    })?;
    Secret::new("PULSE_AWS_DRAIN_SECRET_ARN", value)
}
