//! [`LocalProvider`]: the local provider in one constructor — a [`DockerOrchestrator`], an [`EnvoyRouter`]
//! and an [`HttpDrainClient`] built from one [`LocalConfig`], sharing one drain secret and one state
//! directory (`docker/` and `envoy/` under it), so every process built on the same directory (a CLI
//! invocation, a `watch` controller, a test) adopts the same containers and the same Envoy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use pulse_deploy_core::drain::HttpDrainClient;
use pulse_deploy_core::rollout::{Executor, ExecutorBuilder};
use pulse_deploy_core::{AppName, Providers, Result, Secret};

use crate::{DockerOrchestrator, EnvoyRouter};

/// What the local provider is built from. Start with [`LocalConfig::new`].
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The orchestrator's state directory (default `STATE/docker`).
    pub docker_dir: PathBuf,
    /// The router's state directory (default `STATE/envoy`).
    pub envoy_dir: PathBuf,
    /// The drain secret every instance is started with and every drain call carries.
    pub drain_secret: Secret,
    /// The app served to requests whose `Host` names no app.
    pub default_app: Option<AppName>,
    /// Envoy's public listener (default: a free port on 127.0.0.1, fixed for the life of the directory).
    pub listen: Option<SocketAddr>,
    /// Envoy's active health-check interval (default: the router's).
    pub health_check_interval: Option<Duration>,
    /// How long a retire waits for a stopping container (default: the orchestrator's).
    pub retire_wait: Option<Duration>,
    /// The Envoy binary (default: `PULSE_ENVOY_BIN`, then `envoy` on `PATH`).
    pub envoy_binary: Option<PathBuf>,
    /// A Docker client to reuse (default: connect from the environment).
    pub docker: Option<Docker>,
}

impl LocalConfig {
    /// Everything under `state_dir`, with `drain_secret`; the rest default.
    pub fn new(state_dir: impl Into<PathBuf>, drain_secret: Secret) -> LocalConfig {
        let state_dir = state_dir.into();
        LocalConfig {
            docker_dir: state_dir.join("docker"),
            envoy_dir: state_dir.join("envoy"),
            drain_secret,
            default_app: None,
            listen: None,
            health_check_interval: None,
            retire_wait: None,
            envoy_binary: None,
            docker: None,
        }
    }
}

/// The local provider's three parts, built and connected.
#[derive(Debug, Clone)]
pub struct LocalProvider {
    /// Runs each version's instances as containers.
    pub orchestrator: Arc<DockerOrchestrator>,
    /// Splits and pins traffic with Envoy.
    pub router: Arc<EnvoyRouter>,
    /// Speaks the drain protocol to the instances.
    pub drain: Arc<HttpDrainClient>,
}

impl LocalProvider {
    /// Connects to Docker, adopts (or starts) the Envoy of `config.envoy_dir`, and builds the drain client.
    pub async fn connect(config: LocalConfig) -> Result<LocalProvider> {
        let mut orchestrator = DockerOrchestrator::builder()
            .drain_secret(config.drain_secret.clone())
            .state_dir(config.docker_dir);
        if let Some(docker) = config.docker {
            orchestrator = orchestrator.docker(docker);
        }
        if let Some(wait) = config.retire_wait {
            orchestrator = orchestrator.retire_wait(wait);
        }
        let orchestrator = Arc::new(orchestrator.build().await?);
        let mut router = EnvoyRouter::builder(config.envoy_dir);
        if let Some(app) = &config.default_app {
            router = router.default_app(app.as_str());
        }
        if let Some(addr) = config.listen {
            router = router.listen(addr);
        }
        if let Some(d) = config.health_check_interval {
            router = router.health_check_interval(d);
        }
        if let Some(bin) = config.envoy_binary {
            router = router.envoy_binary(bin);
        }
        let router = Arc::new(router.build().await?);
        let drain = Arc::new(HttpDrainClient::new(config.drain_secret));
        Ok(LocalProvider { orchestrator, router, drain })
    }

    /// An executor over the three parts (set its policy, events and stop token on the builder).
    pub fn executor(&self) -> ExecutorBuilder {
        Executor::builder(self.orchestrator.clone(), self.router.clone(), self.drain.clone())
    }

    /// The three parts as the provider-neutral [`Providers`].
    pub fn providers(&self) -> Providers {
        Providers {
            orchestrator: self.orchestrator.clone(),
            router: self.router.clone(),
            drain: self.drain.clone(),
        }
    }
}
