//! The bound on drain-protocol calls in flight ([`ExecutorBuilder::drain_concurrency`]): observations and
//! drain steps never have more calls in flight than the limit, and do use it. Counted by a [`Faulty`]
//! drain client with latency (virtual time), which records the peak number of calls in flight.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::drain::{drain_all, DEFAULT_DRAIN_CONCURRENCY};
use crate::memory::{Faulty, InMemoryCluster, InMemoryDrainClient};
use crate::rollout::Controller;

const REPLICAS: u32 = 40;

fn release(version: &str) -> Release {
    Release::builder("shop", version, format!("shop:{version}")).replicas(REPLICAS).build().unwrap()
}

fn counted(cluster: &InMemoryCluster) -> Faulty<InMemoryDrainClient> {
    Faulty::builder(cluster.drain_client()).latency(Duration::from_millis(1)).build().unwrap()
}

fn executor(
    cluster: &InMemoryCluster,
    drain: &Faulty<InMemoryDrainClient>,
    limit: Option<usize>,
) -> Executor {
    let builder = Executor::builder(cluster.orchestrator(), cluster.router(), Arc::new(drain.clone()));
    match limit {
        Some(n) => builder.drain_concurrency(NonZeroUsize::new(n).unwrap()).build(),
        None => builder.build(),
    }
}

#[tokio::test(start_paused = true)]
async fn status_reads_and_drain_signals_stay_within_the_limit() {
    let cluster = InMemoryCluster::new();
    let drain = counted(&cluster);
    let executor = executor(&cluster, &drain, Some(8));
    executor.deploy(&release("v1"), Goal::Settled).await.unwrap();
    let session = cluster.open_session(&release("v1").app, None).unwrap();
    assert_eq!(drain.peak_in_flight(), 8, "status reads of 40 instances use the whole bound, no more");

    drain.reset_peak_in_flight();
    let drains_before = drain.calls_to("drain");
    executor.deploy(&release("v2"), Goal::Shifted).await.unwrap();
    assert_eq!(
        drain.calls_to("drain") - drains_before,
        REPLICAS as usize,
        "every v1 instance got the signal"
    );
    assert_eq!(
        drain.peak_in_flight(),
        8,
        "drain signals and status reads of 80 instances: at most 8 at once"
    );
    assert_eq!(cluster.session_version(session).unwrap().as_str(), "v1");
}

#[tokio::test(start_paused = true)]
async fn the_default_limit_holds_for_observations_and_drain_all() {
    let cluster = InMemoryCluster::new();
    let drain = counted(&cluster);
    let executor = executor(&cluster, &drain, None);
    assert_eq!(executor.drain_concurrency(), DEFAULT_DRAIN_CONCURRENCY);
    executor.deploy(&release("v1"), Goal::Settled).await.unwrap();
    cluster.open_session(&release("v1").app, None).unwrap(); // v1 stays draining
    executor.deploy(&release("v2"), Goal::Shifted).await.unwrap();
    drain.reset_peak_in_flight();
    let observed = executor.observe(&release("v1").app).await.unwrap();
    assert_eq!(observed.versions.iter().map(|v| v.reports.len()).sum::<usize>(), 2 * REPLICAS as usize);
    assert_eq!(drain.peak_in_flight(), DEFAULT_DRAIN_CONCURRENCY.get());

    drain.reset_peak_in_flight();
    let instances: Vec<_> = observed.versions[0].live().cloned().collect();
    let report = drain_all(&drain, &instances, Duration::from_secs(60)).await;
    assert!(report.all_acknowledged(), "{:?}", report.first_error());
    let order: Vec<_> = report.acks.iter().map(|a| a.instance.clone()).collect();
    assert_eq!(
        order,
        instances.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        "acks follow the instances"
    );
    assert_eq!(drain.peak_in_flight(), DEFAULT_DRAIN_CONCURRENCY.get());
}

#[tokio::test(start_paused = true)]
async fn a_controller_keeps_its_executors_limit() {
    let cluster = InMemoryCluster::new();
    let drain = counted(&cluster);
    let controller =
        Controller::start(executor(&cluster, &drain, Some(5)), release("v1").app, Duration::from_millis(100));
    controller.deploy(release("v1"));
    controller.wait_for("v1 settled", Duration::from_secs(600), |p| p.settled).await.unwrap();
    controller.stop().await;
    assert_eq!(drain.peak_in_flight(), 5);
}
