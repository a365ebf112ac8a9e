//! [`Providers`]: the three traits of one place versions run (an orchestrator, a router, a drain client),
//! as one value. Each provider crate has one constructor that builds it from configuration
//! (`pulse_deploy_local::LocalProvider::connect`, `pulse_deploy_aws::AwsProvider::from_env`); the CLI, the
//! e2e and the fault tests all take a `Providers`, so nothing above the provider crates names a concrete
//! provider type.

use std::sync::Arc;

use crate::drain::DrainClient;
use crate::rollout::{Executor, ExecutorBuilder};
use crate::{Orchestrator, TrafficRouter};

/// The orchestrator, router and drain client of one deployment target.
#[derive(Debug, Clone)]
pub struct Providers {
    /// Runs the versions' instances.
    pub orchestrator: Arc<dyn Orchestrator>,
    /// Splits and pins traffic.
    pub router: Arc<dyn TrafficRouter>,
    /// Speaks the drain protocol to the instances.
    pub drain: Arc<dyn DrainClient>,
}

impl Providers {
    /// An executor builder over these providers.
    pub fn executor(&self) -> ExecutorBuilder {
        Executor::builder(self.orchestrator.clone(), self.router.clone(), self.drain.clone())
    }
}
