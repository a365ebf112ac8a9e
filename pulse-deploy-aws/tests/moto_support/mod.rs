//! The emulator fixture of this crate's tests: moto on a random loopback port, the shared
//! infrastructure created on it, and honest stand-ins for what moto does not do (listed in the crate
//! docs and `docs/aws.md`):
//! - ECS's service scheduler ([`scheduler`]): moto never starts a service's tasks;
//! - what runs inside a task ([`demo_tasks`]): `pulse-demo-app` processes on the tasks' addresses;
//! - two behaviours of AWS that moto lacks are added by the launcher `moto_like_aws.py` (see
//!   [`server`]): a task's address comes from its subnet (in `127.0.0.0/8` here, see [`infra`]), and
//!   target health comes from a real HTTP health check of the target;
//! - task lifecycle: moto's automatic task state changes are switched off, tasks change state only
//!   when the stand-in starts or stops them;
//! - the load balancer's data plane: moto routes no traffic, so router checks that send requests are
//!   skipped here, and tests reach tasks at their own addresses, except the e2e, whose clients go
//!   through [`alb_evaluator`], a proxy that routes each request by the listener's rules and weighted
//!   forward action as read from the emulator.
//!
//! The providers are the product's own, configured only with an endpoint override and static dummy
//! credentials; nothing in them knows it talks to an emulator.

#![allow(dead_code)]

pub(crate) mod alb_evaluator;
pub(crate) mod controller;
pub(crate) mod counting;
pub(crate) mod demo_tasks;
pub(crate) mod harness;
pub(crate) mod infra;
pub(crate) mod leftovers;
pub(crate) mod rollouts;
pub(crate) mod scheduler;
pub(crate) mod server;
pub(crate) mod terraform;

use std::sync::Arc;
use std::time::Duration;

use pulse_deploy_aws::retry::RetryPolicy;
use pulse_deploy_aws::{AlbConfig, AlbRouter, AwsConfig, EcsConfig, EcsOrchestrator};
use pulse_deploy_core::Secret;

use infra::Network;
use scheduler::{DataPlane, SchedulerStandIn};
use server::MotoServer;

/// The routers' assumed propagation of a listener change: longer than the ALB evaluator's listener
/// cache ([`alb_evaluator::CACHE_FOR`]), its stand-in for the seconds AWS takes.
pub(crate) const WEIGHT_PROPAGATION: Duration = Duration::from_millis(500);

/// The ECS cluster of the tests.
pub(crate) const CLUSTER: &str = "pulse-tests";

/// Everything a test needs: the emulator, its infrastructure, the providers under test, the stand-ins.
pub(crate) struct Emulator {
    /// The AWS configuration every client uses.
    pub aws: AwsConfig,
    /// The shared network.
    pub network: Network,
    /// The stand-in for ECS's scheduler.
    pub scheduler: SchedulerStandIn,
    /// The drain secret (also in the emulator's Secrets Manager, which the tasks read it from).
    pub drain_secret: Secret,
    /// Its ARN.
    pub drain_secret_arn: String,
    /// moto itself.
    pub moto: MotoServer,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").field("aws", &self.aws).field("network", &self.network).finish()
    }
}

/// Retries tuned for an emulator: errors surface fast.
pub(crate) fn test_retry() -> RetryPolicy {
    RetryPolicy {
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(500),
        deadline: Duration::from_secs(10),
    }
}

/// The second octet of an emulator's VPC `127.N.0.0/16`: different for every emulator of this process
/// and, very likely, of concurrent test processes (never 0: the router harness's upstreams use
/// `127.0.x.y`).
fn vpc_octet() -> u8 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut seed = [0u8; 1];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed).expect("random");
    (10 + (u32::from(seed[0]) + n * 37) % 240) as u8
}

/// `bytes` random bytes as lowercase hex.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf).expect("random");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl Emulator {
    /// Starts moto and creates the shared infrastructure.
    /// `None` when moto is not installed outside CI (the test then skips, saying why).
    pub(crate) async fn start(plane: Arc<dyn DataPlane>) -> Option<Emulator> {
        let moto = tokio::task::spawn_blocking(MotoServer::start).await.expect("moto start")?;
        let aws = AwsConfig::builder()
            .endpoint_url(moto.url())
            .region("us-east-1")
            .static_credentials("testing", "testing")
            .build()
            .expect("emulator config");
        let network = infra::network(&moto, vpc_octet());
        let drain_secret = Secret::new("drain secret", random_hex(16)).expect("a valid secret");
        let drain_secret_arn = infra::drain_secret(&aws.secrets_manager(), drain_secret.expose()).await;
        aws.ecs().create_cluster().cluster_name(CLUSTER).send().await.expect("CreateCluster");
        plane.connect(&aws);
        let scheduler = SchedulerStandIn::start(aws.ecs(), CLUSTER.into(), plane);
        Some(Emulator { aws, network, scheduler, drain_secret, drain_secret_arn, moto })
    }

    /// The ECS configuration of the tests' versions.
    pub(crate) fn ecs_config(&self) -> EcsConfig {
        EcsConfig::builder(CLUSTER)
            .subnets(self.network.subnets.clone())
            .security_groups(vec![self.network.security_group.clone()])
            .execution_role_arn("arn:aws:iam::123456789012:role/pulse-tests-execution")
            .drain_secret_arn(&self.drain_secret_arn)
            .retry(test_retry())
            .build()
            .expect("ecs config")
    }

    /// The orchestrator under test.
    pub(crate) fn orchestrator(&self) -> EcsOrchestrator {
        EcsOrchestrator::new(&self.aws, self.ecs_config())
    }

    /// The same emulator reached through another HTTP client (e.g. a fault-injection layer); the
    /// stand-ins keep the plain one.
    pub(crate) fn aws_through(
        &self,
        http: aws_smithy_runtime_api::client::http::SharedHttpClient,
    ) -> AwsConfig {
        AwsConfig::builder()
            .endpoint_url(self.moto.url())
            .region("us-east-1")
            .static_credentials("testing", "testing")
            .http_client(http)
            .build()
            .expect("emulator config")
    }

    /// The router under test.
    pub(crate) fn router(&self) -> AlbRouter {
        self.router_on(&self.aws)
    }

    /// The router under test on another AWS configuration.
    pub(crate) fn router_on(&self, aws: &AwsConfig) -> AlbRouter {
        AlbRouter::new(aws, self.alb_config())
    }

    /// The ALB configuration of the tests' routers.
    pub(crate) fn alb_config(&self) -> AlbConfig {
        AlbConfig::builder(&self.network.vpc_id)
            .listener_port(infra::LISTENER_PORT)
            .weight_propagation(WEIGHT_PROPAGATION)
            .retry(test_retry())
            .build()
            .expect("alb config")
    }
}
