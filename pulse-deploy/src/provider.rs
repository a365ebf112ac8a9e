//! The provider the configuration names (`provider = "local"` or `"aws"`), connected: its [`Providers`]
//! (what every command runs the engine over) and the two things only the concrete provider knows: whether
//! the app's controller runs (so that `deploy` hands over to it), and what `down` stops besides the app.
//!
//! - local: Docker + Envoy on this machine; the controller is `pulse-deploy watch` holding the lease file
//!   ([`crate::lease`]).
//! - aws: ECS + the ALB, configured from the `PULSE_AWS_*` environment (the Terraform module's
//!   `environment` output, `docs/aws.md`); the controller is the module's `controller` ECS service. From
//!   outside the VPC the tasks cannot be reached, so a deploy there needs the controller running.

use pulse_deploy_aws::AwsProvider;
use pulse_deploy_core::Providers;
use pulse_deploy_local::LocalProvider;

use crate::config::{Config, ProviderKind};
use crate::lease::ControllerLease;

/// The concrete provider behind [`Connected::providers`].
#[derive(Debug)]
pub enum Backend {
    /// Docker + Envoy.
    Local(LocalProvider),
    /// ECS + the ALB.
    Aws(Box<AwsProvider>),
}

/// A connected provider.
#[derive(Debug)]
pub struct Connected {
    /// Its three traits, as the engine uses them.
    pub providers: Providers,
    /// The provider itself.
    pub backend: Backend,
}

impl Connected {
    /// The local provider, connected.
    pub fn local(provider: LocalProvider) -> Connected {
        Connected { providers: provider.providers(), backend: Backend::Local(provider) }
    }

    /// The AWS provider, connected.
    pub fn aws(provider: AwsProvider) -> Connected {
        Connected { providers: provider.providers(), backend: Backend::Aws(Box::new(provider)) }
    }

    /// Who runs the app's controller, when one runs (then `deploy` hands over to it).
    pub async fn controller(&self, config: &Config) -> Result<Option<String>, String> {
        match &self.backend {
            Backend::Local(_) => ControllerLease::held_by_other(&config.local.state_dir)
                .map(|h| h.map(|h| h.to_string()))
                .map_err(|e| format!("reading the controller lease: {e}")),
            Backend::Aws(aws) => match aws.controller_running(&config.app).await {
                Ok(true) => Ok(Some(format!(
                    "the controller (ECS service `{}`)",
                    pulse_deploy_aws::provider::CONTROLLER_SERVICE
                ))),
                Ok(false) => Ok(None),
                Err(e) => Err(format!("looking for the controller: {e}")),
            },
        }
    }

    /// Stops what the provider runs for the app besides its versions (the local Envoy); nothing on AWS,
    /// whose load balancer belongs to the Terraform module.
    pub async fn shutdown(&self) -> pulse_deploy_core::Result<()> {
        match &self.backend {
            Backend::Local(p) => p.router.shutdown().await,
            Backend::Aws(_) => Ok(()),
        }
    }

    /// Which provider this is.
    pub fn kind(&self) -> ProviderKind {
        match self.backend {
            Backend::Local(_) => ProviderKind::Local,
            Backend::Aws(_) => ProviderKind::Aws,
        }
    }
}
