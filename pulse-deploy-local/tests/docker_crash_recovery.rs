//! The deployer killed at any point: DockerOrchestrator calls interrupted mid-way (their futures dropped
//! after a random delay, while requests may still complete on the daemon — as when the deployer process is
//! SIGKILLed) converge when repeated, create nothing twice and send SIGTERM at most once per instance.
//! Also the two states only an interrupted call leaves behind: a container created but never started,
//! and a version whose containers are only partly marked retiring.
//! Needs Docker; with `CI=true` an unreachable Docker fails, otherwise it skips.

mod docker_support;

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RenameContainerOptionsBuilder};
use docker_support::*;
use pulse_deploy_core::{AppName, InstanceState, Orchestrator, Release, VersionId};
use pulse_deploy_local::docker::labels::{self, RetireMark};
use pulse_deploy_local::docker::DockerOrchestrator;

async fn orchestrator(guard: &AppGuard) -> DockerOrchestrator {
    DockerOrchestrator::builder()
        .drain_secret(test_secret())
        .state_dir(&guard.state_dir)
        .retire_wait(Duration::from_secs(2))
        .build()
        .await
        .expect("orchestrator")
}

async fn live_count(o: &DockerOrchestrator, app: &AppName) -> usize {
    o.versions(app).await.unwrap().iter().map(|v| v.live_instances().count()).sum()
}

/// Random delays in milliseconds, covering "before the first request" to "after the last".
fn delays(n: usize, max_ms: u64) -> Vec<Duration> {
    (0..n).map(|_| Duration::from_millis(rand::random::<u64>() % max_ms)).collect()
}

#[tokio::test]
async fn interrupted_deploys_and_retires_converge() {
    let Some(docker) = docker_or_skip().await else { return };
    let image = test_image(&docker).await;
    let app = unique_app("interrupt");
    let guard = AppGuard::new(&docker, &app);
    let o = orchestrator(&guard).await;
    let release = Release::builder(app.as_str(), "v1", image).replicas(3).build().unwrap();

    // Deploys cut short at random points, each by a "new deployer" (a fresh orchestrator).
    for d in delays(8, 120) {
        let fresh = orchestrator(&guard).await;
        let _ = tokio::time::timeout(d, fresh.deploy(&release)).await;
    }
    o.deploy(&release).await.unwrap();
    // Requests of the interrupted calls may still land on the daemon (a late create makes a surplus
    // instance, which deploy stops): wait until the same 3 serving instances are seen 5 times in a row.
    let stable = std::cell::RefCell::new((Vec::<String>::new(), 0));
    let serving = poll("the same 3 serving instances, 5 times in a row", Duration::from_secs(30), || async {
        o.deploy(&release).await.unwrap();
        let v = o.versions(&app).await.unwrap().pop()?;
        let running = v.instances.iter().filter(|i| i.state == InstanceState::Running).count();
        let mut healthy = 0;
        for i in &v.instances {
            if http_get(i.endpoint.as_ref()?, "/health", &[]).await.is_some_and(|(s, _)| s == 200) {
                healthy += 1;
            }
        }
        let ids: Vec<String> = v.instances.iter().map(|i| i.id.0.clone()).collect();
        let mut stable = stable.borrow_mut();
        if running == 3 && healthy == 3 && v.instances.len() == 3 && ids == stable.0 {
            stable.1 += 1;
        } else {
            *stable = (ids, 0);
        }
        (stable.1 >= 5).then_some(v)
    })
    .await;
    assert_eq!(live_count(&o, &app).await, 3, "never more than the replicas: {:?}", serving.instances);

    // Retires cut short at random points: every instance still gets SIGTERM (never SIGKILL) and exits 0.
    let mut events = watch_events(&docker, &app);
    let v1 = VersionId::new("v1").unwrap();
    for d in delays(6, 60) {
        let fresh = orchestrator(&guard).await;
        let _ = tokio::time::timeout(d, fresh.retire(&app, &v1)).await;
        if let Some(v) = o.versions(&app).await.unwrap().pop() {
            // Once anything is marked, the version is retiring, and deploy revives nothing.
            if v.retiring {
                o.deploy(&release).await.unwrap();
                let now = o.versions(&app).await.unwrap().pop().map(|v| v.instances.len()).unwrap_or(0);
                assert!(now <= 3, "deploy gave a retiring version new instances: {now}");
            }
        }
    }
    poll("v1 retired", Duration::from_secs(30), || async {
        o.retire(&app, &v1).await.unwrap();
        o.versions(&app).await.unwrap().is_empty().then_some(())
    })
    .await;
    let ids: Vec<String> = serving.instances.iter().map(|i| i.id.0.clone()).collect();
    let seen = events_until_destroyed(&mut events, &ids, Duration::from_secs(10)).await;
    // Calls here overlap (a dropped call's requests still reach the daemon while the next call runs), so
    // a SIGTERM may be repeated when the next call cannot see the previous one's yet; never a SIGKILL.
    for id in &ids {
        let ev = &seen[id];
        let kills: Vec<_> = ev.iter().filter(|(a, _, _)| a == "kill").map(|(_, s, _)| s.clone()).collect();
        assert!(!kills.is_empty(), "{id} got SIGTERM: {ev:?}");
        assert!(kills.iter().all(|s| s.as_deref() == Some("15")), "{id}: SIGTERM only, no SIGKILL: {ev:?}");
        if kills.len() > 1 {
            eprintln!("{id}: {} SIGTERMs (overlapping calls)", kills.len());
        }
        let die = ev.iter().find(|(a, _, _)| a == "die").expect("die event");
        assert_eq!(die.2.as_deref(), Some("0"), "{id} exited gracefully: {ev:?}");
    }
}

#[tokio::test]
async fn a_container_created_but_never_started_is_started_not_duplicated() {
    let Some(docker) = docker_or_skip().await else { return };
    let image = test_image(&docker).await;
    let app = unique_app("created");
    let guard = AppGuard::new(&docker, &app);
    let o = orchestrator(&guard).await;
    let release = Release::builder(app.as_str(), "v1", image).replicas(1).port(8000).build().unwrap();

    // What an interrupted deploy leaves: a managed container, created, not started.
    let id = labels::new_instance_id(&release.app, &release.version);
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        env: Some(vec!["PORT=8000".into(), format!("PULSE_INSTANCE_ID={id}")]),
        labels: Some(labels::instance_labels(&release, &id, std::time::SystemTime::now()).unwrap()),
        exposed_ports: Some(vec!["8000/tcp".into()]),
        host_config: Some(HostConfig {
            port_bindings: Some(HashMap::from([(
                "8000/tcp".to_owned(),
                Some(vec![PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(String::new()) }]),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(Some(CreateContainerOptionsBuilder::new().name(&id.0).build()), body)
        .await
        .unwrap();
    // It reads as a missing replica (nothing else would ever start it), so the planner asks for a deploy.
    let listed = o.versions(&app).await.unwrap();
    assert_eq!(listed[0].instances[0].state, InstanceState::Exited);
    assert_eq!(listed[0].live_instances().count(), 0, "a never-started container is not a live replica");

    o.deploy(&release).await.unwrap();
    let v = poll("the created container running", Duration::from_secs(20), || async {
        let v = o.versions(&app).await.unwrap().pop()?;
        (v.instances.len() == 1 && v.instances[0].state == InstanceState::Running).then_some(v)
    })
    .await;
    assert_eq!(v.instances[0].id, id, "the existing container was started, no second one created");
}

#[tokio::test]
async fn a_partly_marked_version_is_retiring_and_retire_finishes_it() {
    let Some(docker) = docker_or_skip().await else { return };
    let image = test_image(&docker).await;
    let app = unique_app("partial");
    let guard = AppGuard::new(&docker, &app);
    let o = orchestrator(&guard).await;
    // Instances that ignore SIGTERM, so every signal they get shows in the events.
    let release = Release::builder(app.as_str(), "v1", image)
        .replicas(3)
        .stop_grace(Duration::from_secs(3))
        .env("TEST_IGNORE_SIGTERM", "1")
        .build()
        .unwrap();
    o.deploy(&release).await.unwrap();
    let instances = poll("3 serving", Duration::from_secs(30), || async {
        let v = o.versions(&app).await.unwrap().pop()?;
        for i in &v.instances {
            (http_get(i.endpoint.as_ref()?, "/health", &[]).await?.0 == 200).then_some(())?;
        }
        (v.instances.iter().filter(|i| i.state == InstanceState::Running).count() == 3).then_some(v.instances)
    })
    .await;
    let mut events = watch_events(&docker, &app);

    // A retire killed after marking two containers, one before and one after its SIGTERM was sent,
    // before it reached the third.
    let now = std::time::SystemTime::now();
    for i in &instances[..2] {
        let marked = labels::marked_name(&i.id, RetireMark::Marked(now));
        docker
            .rename_container(&i.id.0, RenameContainerOptionsBuilder::new().name(&marked).build())
            .await
            .unwrap();
    }
    let term = bollard::query_parameters::KillContainerOptionsBuilder::new().signal("SIGTERM").build();
    let signalled = labels::marked_name(&instances[1].id, RetireMark::Marked(now));
    docker.kill_container(&signalled, Some(term)).await.unwrap();
    let v = o.versions(&app).await.unwrap().pop().unwrap();
    assert!(v.retiring, "marked containers make the version retiring");
    o.deploy(&release).await.unwrap();
    assert_eq!(o.versions(&app).await.unwrap().pop().unwrap().instances.len(), 3, "deploy adds nothing");

    let v1 = VersionId::new("v1").unwrap();
    poll("v1 retired", Duration::from_secs(30) + release.stop_grace, || async {
        o.retire(&app, &v1).await.unwrap();
        o.versions(&app).await.unwrap().is_empty().then_some(())
    })
    .await;
    let ids: Vec<String> = instances.iter().map(|i| i.id.0.clone()).collect();
    let seen = events_until_destroyed(&mut events, &ids, Duration::from_secs(10)).await;
    let kills = |i: usize| -> Vec<String> {
        seen[&ids[i]].iter().filter(|(a, _, _)| a == "kill").filter_map(|(_, s, _)| s.clone()).collect()
    };
    let once_then_kill = vec!["15".to_owned(), "9".to_owned()];
    assert_eq!(
        kills(0),
        once_then_kill,
        "marked before its SIGTERM: the next retire sends it: {:?}",
        seen[&ids[0]]
    );
    assert_eq!(kills(1), once_then_kill, "marked and signalled: no second SIGTERM: {:?}", seen[&ids[1]]);
    assert_eq!(kills(2), once_then_kill, "not marked yet: one SIGTERM: {:?}", seen[&ids[2]]);
}
