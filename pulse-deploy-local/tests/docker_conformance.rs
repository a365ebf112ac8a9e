//! The core orchestrator conformance suite against DockerOrchestrator on the real Docker Engine, with the
//! static test server image. Needs Docker; with `CI=true` an unreachable Docker fails, otherwise it skips.

mod docker_support;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bollard::query_parameters::{KillContainerOptionsBuilder, ListContainersOptionsBuilder};
use bollard::Docker;
use docker_support::*;
use pulse_deploy_core::conformance::{run_orchestrator_suite, OrchestratorHarness};
use pulse_deploy_core::{AppName, Error, Instance, Release, Result, VersionId};
use pulse_deploy_local::docker::{labels, DockerOrchestrator};

struct DockerHarness {
    docker: Docker,
    image: &'static str,
    /// One cleanup guard per app the suite asked for: whatever a failing check leaves is removed.
    guards: Mutex<Vec<AppGuard>>,
}

#[async_trait]
impl OrchestratorHarness for DockerHarness {
    fn unique_app(&self) -> AppName {
        let app = unique_app("conf");
        self.guards.lock().unwrap().push(AppGuard::new(&self.docker, &app));
        app
    }

    fn release(&self, app: &AppName, version: &VersionId, replicas: u32) -> Release {
        Release::builder(app.as_str(), version.as_str(), self.image)
            .replicas(replicas)
            .stop_grace(Duration::from_secs(5))
            .build()
            .expect("a valid release")
    }

    async fn crash(&self, instance: &Instance) -> Result<()> {
        // Find the container by its instance label (the name changes once retiring).
        let filters = HashMap::from([(
            "label",
            vec![format!("{}=true", labels::MANAGED), format!("{}={}", labels::INSTANCE, instance.id)],
        )]);
        let opts = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| Error::provider_source("docker", "list", false, e))?;
        let id = list
            .first()
            .and_then(|c| c.id.clone())
            .ok_or_else(|| Error::NotFound { what: format!("container of instance {}", instance.id) })?;
        let opts = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
        self.docker
            .kill_container(&id, Some(opts))
            .await
            .map_err(|e| Error::provider_source("docker", "kill", false, e))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
}

#[tokio::test]
async fn docker_orchestrator_passes_the_conformance_suite() {
    let Some(docker) = docker_or_skip().await else { return };
    let image = test_image(&docker).await;
    let state_app = unique_app("confstate");
    let state_guard = AppGuard::new(&docker, &state_app);
    let orchestrator = DockerOrchestrator::builder()
        .drain_secret(test_secret())
        .state_dir(&state_guard.state_dir)
        .retire_wait(Duration::from_secs(2))
        .build()
        .await
        .expect("orchestrator");
    let harness = DockerHarness { docker: docker.clone(), image, guards: Mutex::new(vec![]) };
    let report = run_orchestrator_suite(&orchestrator, &harness).await;
    eprintln!("{report}");
    report.assert_passed();
}
