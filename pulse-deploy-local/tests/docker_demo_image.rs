//! The demo app image built locally (`build_demo_image`: static cargo build + `FROM scratch` image through
//! the Engine API), deployed by DockerOrchestrator: it serves `/health`, authenticates the drain protocol
//! with the secret it read from the mounted file, and exits gracefully when retired.
//! Needs Docker; with `CI=true` an unreachable Docker fails, otherwise it skips.

mod docker_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use docker_support::*;
use pulse_deploy_core::{InstanceState, Orchestrator, Release, VersionId};
use pulse_deploy_local::docker::{build_demo_image, DockerOrchestrator, DEMO_IMAGE};

#[tokio::test]
async fn demo_image_builds_and_runs_under_the_orchestrator() {
    let Some(docker) = docker_or_skip().await else { return };
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let started = Instant::now();
    build_demo_image(&docker, &workspace, DEMO_IMAGE).await.expect("building the demo image");
    eprintln!("demo image built in {:?}", started.elapsed());
    let inspect = docker.inspect_image(DEMO_IMAGE).await.unwrap();
    eprintln!("demo image size: {} bytes", inspect.size.unwrap_or_default());

    let app = unique_app("demo");
    let guard = AppGuard::new(&docker, &app);
    let secret = test_secret();
    let o = DockerOrchestrator::builder()
        .drain_secret(secret.clone())
        .state_dir(&guard.state_dir)
        .retire_wait(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    let release = Release::builder(app.as_str(), "v1", DEMO_IMAGE)
        .replicas(2)
        .port(8000)
        .stop_grace(Duration::from_secs(10))
        .build()
        .unwrap();

    let started = Instant::now();
    o.deploy(&release).await.unwrap();
    let instances = poll("2 demo instances serving /health", Duration::from_secs(30), || async {
        let v = o.versions(&app).await.ok()?.pop()?;
        let running: Vec<_> = v.instances.into_iter().filter(|i| i.state == InstanceState::Running).collect();
        if running.len() != 2 {
            return None;
        }
        for i in &running {
            if http_get(i.endpoint.as_ref()?, "/health", &[]).await?.0 != 200 {
                return None;
            }
        }
        Some(running)
    })
    .await;
    eprintln!("demo app: deploy to serving, 2 instances: {:?}", started.elapsed());

    for i in &instances {
        let ep = i.endpoint.as_ref().unwrap();
        let bearer = format!("Bearer {}", secret.expose());
        let (status, body) =
            http_get(ep, "/_pulse/admin/status", &[("authorization", bearer.as_str())]).await.unwrap();
        assert_eq!(status, 200, "the demo app accepts the secret it read from the mounted file: {body}");
        assert!(body.contains(&i.id.0), "the status names PULSE_INSTANCE_ID {}: {body}", i.id);
        let (status, _) =
            http_get(ep, "/_pulse/admin/status", &[("authorization", "Bearer wrong-secret-value-0000")])
                .await
                .unwrap();
        assert_eq!(status, 401);
    }

    // Retire: SIGTERM, graceful exit (code 0) well within the grace period, containers removed.
    let mut events = watch_events(&docker, &app);
    let v1 = VersionId::new("v1").unwrap();
    let started = Instant::now();
    poll("v1 retired", Duration::from_secs(20), || async {
        o.retire(&app, &v1).await.unwrap();
        o.versions(&app).await.unwrap().is_empty().then_some(())
    })
    .await;
    let ids: Vec<String> = instances.iter().map(|i| i.id.0.clone()).collect();
    let seen = events_until_destroyed(&mut events, &ids, Duration::from_secs(10)).await;
    for (instance, ev) in &seen {
        let kills: Vec<_> = ev.iter().filter(|(a, _, _)| a == "kill").map(|(_, s, _)| s.clone()).collect();
        assert_eq!(kills, vec![Some("15".to_owned())], "{instance}: one SIGTERM, no SIGKILL: {ev:?}");
        let die = ev.iter().find(|(a, _, _)| a == "die").expect("die event");
        assert_eq!(die.2.as_deref(), Some("0"), "{instance} exited gracefully: {ev:?}");
    }
    eprintln!("demo app: retire of 2 instances: {:?}", started.elapsed());
}
