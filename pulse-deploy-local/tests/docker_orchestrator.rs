//! DockerOrchestrator against the real Docker Engine: idempotent deploy, state recovered from labels by a
//! fresh orchestrator, crashed instances replaced, graceful and durable retire, unmanaged containers left
//! alone, the drain secret kept out of `docker inspect`, ports on 127.0.0.1 only.
//!
//! Each test uses a uniquely named app and removes its containers when it ends, even on failure. Without
//! Docker the tests print why they skip; with `CI=true` they fail.

mod docker_support;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, KillContainerOptionsBuilder,
    StartContainerOptions,
};
use bollard::Docker;
use docker_support::*;
use pulse_deploy_core::{
    AppName, Error, Instance, InstanceState, Orchestrator, Release, VersionId, VersionState,
};
use pulse_deploy_local::docker::{labels, DockerOrchestrator};

async fn orchestrator(guard: &AppGuard, secret: &pulse_deploy_core::Secret) -> DockerOrchestrator {
    DockerOrchestrator::builder()
        .drain_secret(secret.clone())
        .state_dir(&guard.state_dir)
        .retire_wait(Duration::from_secs(2))
        .build()
        .await
        .expect("orchestrator")
}

async fn version(o: &DockerOrchestrator, app: &AppName, v: &str) -> Option<VersionState> {
    o.versions(app).await.unwrap().into_iter().find(|s| s.version().as_str() == v)
}

/// Polls until the version has `n` running instances that answer `/health`; returns them.
async fn wait_serving(o: &DockerOrchestrator, app: &AppName, v: &str, n: usize) -> Vec<Instance> {
    poll(&format!("{n} serving instances of {v}"), Duration::from_secs(30), || async {
        let state = version(o, app, v).await?;
        let running: Vec<Instance> =
            state.instances.iter().filter(|i| i.state == InstanceState::Running).cloned().collect();
        if running.len() != n {
            return None;
        }
        for i in &running {
            let (status, _) = http_get(i.endpoint.as_ref()?, "/health", &[]).await?;
            if status != 200 {
                return None;
            }
        }
        Some(running)
    })
    .await
}

fn ids(instances: &[Instance]) -> Vec<String> {
    let mut v: Vec<String> = instances.iter().map(|i| i.id.0.clone()).collect();
    v.sort();
    v
}

async fn kill(docker: &Docker, container: &str, signal: &str) {
    let opts = KillContainerOptionsBuilder::new().signal(signal).build();
    docker.kill_container(container, Some(opts)).await.unwrap();
}

/// Finds the Docker container currently holding `instance` (its name changes when retiring).
async fn container_of(docker: &Docker, app: &AppName, instance: &str) -> String {
    let filters = HashMap::from([(
        "label",
        vec![format!("{}={app}", labels::APP), format!("{}={instance}", labels::INSTANCE)],
    )]);
    let opts =
        bollard::query_parameters::ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    docker.list_containers(Some(opts)).await.unwrap().remove(0).id.unwrap()
}

#[tokio::test]
async fn deploy_is_idempotent_and_state_round_trips() {
    let Some(docker) = docker_or_skip().await else { return };
    let image = test_image(&docker).await;
    let app = unique_app("idem");
    let guard = AppGuard::new(&docker, &app);
    let secret = test_secret();
    let o = orchestrator(&guard, &secret).await;

    let release = Release::builder(app.as_str(), "v1", image)
        .replicas(2)
        .port(8080)
        .env("GREETING", "hello world")
        .stop_grace(Duration::from_secs(5))
        .build()
        .unwrap();
    let before = SystemTime::now() - Duration::from_secs(1);
    let started = Instant::now();
    o.deploy(&release).await.unwrap();
    let first = wait_serving(&o, &app, "v1", 2).await;
    eprintln!("deploy to serving, 2 instances: {:?}", started.elapsed());

    o.deploy(&release).await.unwrap();
    let again = version(&o, &app, "v1").await.unwrap();
    assert_eq!(ids(&again.instances), ids(&first), "a second deploy creates nothing");

    let state = o.versions(&app).await.unwrap();
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].release, release, "the release round-trips through the labels");
    assert!(!state[0].retiring);
    assert!(state[0].created_at >= before && state[0].created_at <= SystemTime::now());

    for i in &first {
        assert!(i.id.0.starts_with(&format!("pulse-{app}-v1-")), "{}", i.id);
        let ep = i.endpoint.as_ref().unwrap();
        assert_eq!(ep.host, "127.0.0.1");
        let (_, who) = http_get(ep, "/whoami", &[]).await.unwrap();
        assert_eq!(who, format!("{app} v1 {}", i.id), "PULSE_APP, PULSE_VERSION, PULSE_INSTANCE_ID");
    }

    // Same version id, another release: refused, nothing created.
    let other = Release::builder(app.as_str(), "v1", image).replicas(3).port(8080).build().unwrap();
    let e = o.deploy(&other).await.unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e}");
    assert!(e.to_string().contains("v1"), "{e}");
    assert_eq!(version(&o, &app, "v1").await.unwrap().instances.len(), 2);

    // A missing image is refused before anything is created, naming the field and how to build it.
    let missing = Release::builder(app.as_str(), "v2", "pulse-no-such-image:nope").build().unwrap();
    let e = o.deploy(&missing).await.unwrap_err().to_string();
    assert!(
        e.contains("release.image") && e.contains("pulse-no-such-image:nope") && e.contains("docker build"),
        "{e}"
    );
    assert!(version(&o, &app, "v2").await.is_none());

    // Reserved variables are refused.
    let reserved = Release::builder(app.as_str(), "v3", image).env("PORT", "1").build().unwrap();
    let e = o.deploy(&reserved).await.unwrap_err();
    assert!(matches!(e, Error::InvalidInput { field: "release.env", .. }), "{e}");
}

#[tokio::test]
async fn secret_stays_out_of_inspect_and_ports_stay_on_loopback() {
    let Some(docker) = docker_or_skip().await else { return };
    let image = test_image(&docker).await;
    let app = unique_app("secret");
    let guard = AppGuard::new(&docker, &app);
    let secret = test_secret();
    let o = orchestrator(&guard, &secret).await;
    let release = Release::builder(app.as_str(), "v1", image).replicas(1).port(8000).build().unwrap();
    o.deploy(&release).await.unwrap();
    let instance = wait_serving(&o, &app, "v1", 1).await.remove(0);
    let ep = instance.endpoint.clone().unwrap();

    let inspect = docker.inspect_container(&instance.id.0, None::<InspectContainerOptions>).await.unwrap();
    let whole = serde_json::to_string(&inspect).unwrap();
    assert!(!whole.contains(secret.expose()), "the secret value appears in docker inspect");
    let env = inspect.config.as_ref().unwrap().env.clone().unwrap();
    assert!(env.contains(&"PULSE_DRAIN_SECRET_FILE=/run/secrets/pulse-drain-secret".to_owned()), "{env:?}");
    assert!(env.contains(&"PORT=8000".to_owned()), "{env:?}");
    assert!(!env.iter().any(|e| e.starts_with("PULSE_DRAIN_SECRET=")), "{env:?}");

    // The app reads the secret from the mounted file.
    let (status, body) = http_get(&ep, "/secret-check", &[("x-candidate", secret.expose())]).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "match"));
    let (status, _) =
        http_get(&ep, "/secret-check", &[("x-candidate", "wrong-secret-value-123")]).await.unwrap();
    assert_eq!(status, 403);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(o.secret_file(&app)).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o444);

    // Published on 127.0.0.1 only.
    let bindings = inspect.host_config.unwrap().port_bindings.unwrap();
    let b = bindings["8000/tcp"].as_ref().unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].host_ip.as_deref(), Some("127.0.0.1"));
    let published = inspect.network_settings.unwrap().ports.unwrap();
    for binding in published.values().flatten().flatten() {
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"), "{published:?}");
    }
}

#[tokio::test]
async fn crashed_instance_is_replaced() {
    let Some(docker) = docker_or_skip().await else { return };
    let image = test_image(&docker).await;
    let app = unique_app("crash");
    let guard = AppGuard::new(&docker, &app);
    let o = orchestrator(&guard, &test_secret()).await;
    let release = Release::builder(app.as_str(), "v1", image).replicas(2).build().unwrap();
    o.deploy(&release).await.unwrap();
    let first = wait_serving(&o, &app, "v1", 2).await;
    let created_at = version(&o, &app, "v1").await.unwrap().created_at;

    let victim = first[0].id.clone();
    kill(&docker, &victim.0, "SIGKILL").await;
    poll("the killed instance reported exited", Duration::from_secs(15), || async {
        let s = version(&o, &app, "v1").await?;
        s.instances.iter().any(|i| i.id == victim && i.state == InstanceState::Exited).then_some(())
    })
    .await;

    o.deploy(&release).await.unwrap();
    let now = wait_serving(&o, &app, "v1", 2).await;
    assert!(!ids(&now).contains(&victim.0), "the crashed instance was replaced");
    assert!(ids(&now).contains(&first[1].id.0), "the healthy instance was kept");
    let state = version(&o, &app, "v1").await.unwrap();
    assert_eq!(state.instances.len(), 2, "the dead container was removed: {:?}", state.instances);
    assert_eq!(state.created_at, created_at, "the version keeps its creation time");
}

/// Retires until `versions()` no longer lists the version; returns how many calls it took.
async fn retire_until_gone(o: &DockerOrchestrator, app: &AppName, v: &str, timeout: Duration) -> usize {
    let version = VersionId::new(v).unwrap();
    let mut calls = 0;
    poll(&format!("{v} retired"), timeout, || {
        calls += 1;
        let version = version.clone();
        async move {
            o.retire(app, &version).await.unwrap();
            self::version(o, app, version.as_str()).await.is_none().then_some(())
        }
    })
    .await;
    calls
}

#[tokio::test]
async fn retire_is_graceful_durable_and_repeatable() {
    let Some(docker) = docker_or_skip().await else { return };
    let image = test_image(&docker).await;
    let app = unique_app("retire");
    let guard = AppGuard::new(&docker, &app);
    let o = orchestrator(&guard, &test_secret()).await;
    let grace = Duration::from_secs(20);
    let release = Release::builder(app.as_str(), "v1", image).replicas(2).stop_grace(grace).build().unwrap();
    o.deploy(&release).await.unwrap();
    let instances = wait_serving(&o, &app, "v1", 2).await;
    let mut events = watch_events(&docker, &app);

    let started = Instant::now();
    let calls = retire_until_gone(&o, &app, "v1", grace).await;
    let took = started.elapsed();
    eprintln!("retire of 2 graceful instances: {took:?} in {calls} call(s)");
    assert!(took < grace, "graceful exits do not wait for the grace period");
    o.retire(&app, &VersionId::new("v1").unwrap()).await.expect("retiring a gone version succeeds");

    // Through the Engine's events: each instance got SIGTERM (15), exited 0, and was removed.
    let ids: Vec<String> = instances.iter().map(|i| i.id.0.clone()).collect();
    let seen = events_until_destroyed(&mut events, &ids, Duration::from_secs(10)).await;
    for i in &instances {
        let ev = &seen[&i.id.0];
        let kills: Vec<_> = ev.iter().filter(|(a, _, _)| a == "kill").map(|(_, s, _)| s.clone()).collect();
        assert_eq!(kills, vec![Some("15".to_owned())], "exactly one SIGTERM, no SIGKILL: {ev:?}");
        let die = ev.iter().find(|(a, _, _)| a == "die").expect("die event");
        assert_eq!(die.2.as_deref(), Some("0"), "the process exited gracefully: {ev:?}");
    }
}

#[tokio::test]
async fn retiring_version_is_never_replaced_and_sigkill_follows_the_grace() {
    let Some(docker) = docker_or_skip().await else { return };
    let image = test_image(&docker).await;
    let app = unique_app("stubborn");
    let guard = AppGuard::new(&docker, &app);
    let o = orchestrator(&guard, &test_secret()).await;
    let grace = Duration::from_secs(3);
    let release = Release::builder(app.as_str(), "v1", image)
        .replicas(2)
        .stop_grace(grace)
        .env("TEST_IGNORE_SIGTERM", "1")
        .build()
        .unwrap();
    o.deploy(&release).await.unwrap();
    let instances = wait_serving(&o, &app, "v1", 2).await;
    let mut events = watch_events(&docker, &app);

    let v1 = VersionId::new("v1").unwrap();
    let started = Instant::now();
    o.retire(&app, &v1).await.unwrap();
    let state = version(&o, &app, "v1").await.expect("still listed: SIGTERM is ignored");
    assert!(state.retiring, "durably marked retiring");

    // A new orchestrator (a restarted deployer) sees the version retiring.
    let fresh = orchestrator(&guard, &test_secret()).await;
    assert!(version(&fresh, &app, "v1").await.unwrap().retiring);

    // Crash one instance of the retiring version: deploy must not replace it.
    let victim = container_of(&docker, &app, &instances[0].id.0).await;
    kill(&docker, &victim, "SIGKILL").await;
    poll("the victim exited", Duration::from_secs(10), || async {
        let s = version(&o, &app, "v1").await?;
        s.instances.iter().any(|i| i.id == instances[0].id && i.state == InstanceState::Exited).then_some(())
    })
    .await;
    fresh.deploy(&release).await.unwrap();
    let s = version(&o, &app, "v1").await.unwrap();
    assert!(
        s.instances.iter().all(|i| i.state != InstanceState::Running),
        "nothing new runs: {:?}",
        s.instances
    );
    assert!(s.instances.iter().all(|i| instances.iter().any(|j| j.id == i.id)), "no new instance");

    // The other instance ignores SIGTERM: it is killed once the grace period is over, not before.
    retire_until_gone(&fresh, &app, "v1", grace + Duration::from_secs(20)).await;
    assert!(started.elapsed() >= grace, "SIGKILL not before the grace period");
    let seen =
        events_until_destroyed(&mut events, &[instances[1].id.0.clone()], Duration::from_secs(10)).await;
    let signals = &seen[&instances[1].id.0];
    let kills: Vec<_> =
        signals.iter().filter(|(a, _, _)| a == "kill").map(|(_, s, _)| s.clone().unwrap()).collect();
    assert_eq!(kills, vec!["15".to_owned(), "9".to_owned()], "{signals:?}");
}

#[tokio::test]
async fn a_new_orchestrator_sees_everything_and_unmanaged_containers_are_untouched() {
    let Some(docker) = docker_or_skip().await else { return };
    let image = test_image(&docker).await;
    let app = unique_app("restart");
    let mut guard = AppGuard::new(&docker, &app);
    let secret = test_secret();
    let o = orchestrator(&guard, &secret).await;

    // A container carrying the app's labels but not the managed label: never listed nor touched.
    let stranger = format!("{app}-not-ours");
    guard.extra_containers.push(stranger.clone());
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        labels: Some(HashMap::from([
            (labels::APP.to_owned(), app.to_string()),
            (labels::VERSION.to_owned(), "v1".to_owned()),
        ])),
        ..Default::default()
    };
    docker
        .create_container(Some(CreateContainerOptionsBuilder::new().name(&stranger).build()), body)
        .await
        .unwrap();
    docker.start_container(&stranger, None::<StartContainerOptions>).await.unwrap();

    let v1 = Release::builder(app.as_str(), "v1", image).replicas(1).build().unwrap();
    let v2 = Release::builder(app.as_str(), "v2", image).replicas(2).port(9000).build().unwrap();
    o.deploy(&v1).await.unwrap();
    o.deploy(&v2).await.unwrap();
    wait_serving(&o, &app, "v1", 1).await;
    wait_serving(&o, &app, "v2", 2).await;
    let seen_by_first = o.versions(&app).await.unwrap();
    drop(o);

    let fresh = orchestrator(&guard, &secret).await;
    let seen_by_fresh = fresh.versions(&app).await.unwrap();
    assert_eq!(seen_by_fresh, seen_by_first);
    assert_eq!(seen_by_fresh.iter().map(|v| v.version().as_str()).collect::<Vec<_>>(), ["v1", "v2"]);
    assert_eq!(seen_by_fresh[1].release, v2);
    fresh.deploy(&v2).await.unwrap();
    assert_eq!(ids(&version(&fresh, &app, "v2").await.unwrap().instances), ids(&seen_by_first[1].instances));

    retire_until_gone(&fresh, &app, "v1", Duration::from_secs(30)).await;
    let stranger_state = docker.inspect_container(&stranger, None::<InspectContainerOptions>).await.unwrap();
    assert_eq!(stranger_state.state.unwrap().running, Some(true), "the unmanaged container still runs");
    assert_eq!(stranger_state.name.as_deref(), Some(format!("/{stranger}").as_str()), "and keeps its name");
    let listed: usize = fresh.versions(&app).await.unwrap().iter().map(|v| v.instances.len()).sum();
    assert_eq!(listed, 2, "only v2's two managed instances are listed");
}
