//! The stand-in for ECS's service scheduler, which moto does not have: moto stores services but never
//! starts their tasks. Every 50 ms this loop does what ECS does for each service of the cluster: it
//! starts tasks (`RunTask` with the service's task definition, network configuration and
//! `group = service:NAME`) until the service has `desiredCount`, and stops the newest extra tasks when
//! it has more (after the data plane has stopped their processes gracefully). A task stopped from
//! outside (a crash) is replaced on the next round, as ECS does.
//!
//! What runs "inside" a task is the [`DataPlane`]'s business (nothing, or a demo-app process).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecs::types::{DesiredStatus, LaunchType, Service, ServiceField, Task};
use futures::future::join_all;
use pulse_deploy_aws::AwsConfig;
use tokio::task::JoinHandle;

/// What runs inside the emulator's tasks.
#[async_trait]
pub(crate) trait DataPlane: Send + Sync + 'static {
    /// The emulator is up: the AWS clients the data plane may call.
    fn connect(&self, _aws: &AwsConfig) {}
    /// A task was started: start what it runs.
    async fn started(&self, task: &Task);
    /// A task is being stopped (SIGTERM): return once what it runs has exited.
    async fn stopping(&self, task: &Task);
}

/// Tasks run nothing (enough for the orchestrator's own checks, which need no process).
#[derive(Debug)]
pub(crate) struct NoProcesses;

#[async_trait]
impl DataPlane for NoProcesses {
    async fn started(&self, _task: &Task) {}
    async fn stopping(&self, _task: &Task) {}
}

/// The running stand-in; stopped on drop.
#[derive(Debug)]
pub(crate) struct SchedulerStandIn {
    handle: JoinHandle<()>,
}

impl SchedulerStandIn {
    /// Starts reconciling the services of `cluster`.
    pub(crate) fn start(ecs: aws_sdk_ecs::Client, cluster: String, plane: Arc<dyn DataPlane>) -> Self {
        let handle = tokio::spawn(async move {
            loop {
                if let Err(e) = reconcile(&ecs, &cluster, plane.as_ref()).await {
                    eprintln!("ECS stand-in scheduler: {e:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        SchedulerStandIn { handle }
    }
}

impl Drop for SchedulerStandIn {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn services(ecs: &aws_sdk_ecs::Client, cluster: &str) -> Result<Vec<Service>, BoxError> {
    let arns: Vec<String> =
        ecs.list_services().cluster(cluster).max_results(100).send().await?.service_arns().to_vec();
    let mut out = Vec::new();
    for chunk in arns.chunks(10) {
        let d = ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .include(ServiceField::Tags)
            .send()
            .await?;
        out.extend(d.services().iter().filter(|s| s.status() != Some("INACTIVE")).cloned());
    }
    Ok(out)
}

async fn running_tasks(ecs: &aws_sdk_ecs::Client, cluster: &str) -> Result<Vec<Task>, BoxError> {
    let arns = ecs
        .list_tasks()
        .cluster(cluster)
        .desired_status(DesiredStatus::Running)
        .send()
        .await?
        .task_arns()
        .to_vec();
    let mut out = Vec::new();
    for chunk in arns.chunks(100) {
        let d = ecs.describe_tasks().cluster(cluster).set_tasks(Some(chunk.to_vec())).send().await?;
        out.extend(d.tasks().iter().filter(|t| t.last_status() != Some("STOPPED")).cloned());
    }
    Ok(out)
}

async fn reconcile(ecs: &aws_sdk_ecs::Client, cluster: &str, plane: &dyn DataPlane) -> Result<(), BoxError> {
    let tasks = running_tasks(ecs, cluster).await?;
    for service in services(ecs, cluster).await? {
        let Some(name) = service.service_name() else { continue };
        let group = format!("service:{name}");
        let mut mine: Vec<&Task> = tasks.iter().filter(|t| t.group() == Some(group.as_str())).collect();
        let desired = service.desired_count().max(0) as usize;
        if mine.len() < desired {
            let out = ecs
                .run_task()
                .cluster(cluster)
                .task_definition(service.task_definition().unwrap_or_default())
                .count((desired - mine.len()) as i32)
                .group(&group)
                .started_by("ecs-svc/stand-in")
                .launch_type(LaunchType::Fargate)
                .set_network_configuration(service.network_configuration().cloned())
                .set_tags(Some(service.tags().to_vec()))
                .send()
                .await?;
            for task in out.tasks() {
                plane.started(task).await;
            }
        } else if mine.len() > desired {
            mine.sort_by_key(|t| std::cmp::Reverse(t.created_at().map(|c| c.as_nanos())));
            let extra = mine.len() - desired;
            // ECS stops the extra tasks together: SIGTERM to each, STOPPED once its process has exited.
            let stops = mine.into_iter().take(extra).map(|task| async move {
                plane.stopping(task).await;
                ecs.stop_task()
                    .cluster(cluster)
                    .task(task.task_arn().unwrap_or_default())
                    .reason("Scaling activity initiated by (deployment ecs-svc/stand-in)")
                    .send()
                    .await
            });
            for stopped in join_all(stops).await {
                stopped?;
            }
        }
    }
    Ok(())
}
