//! Removing every container of an app at once, forcibly: for a test that is over, or a user who wants an
//! app gone now. Not a rollout — sessions are cut, nothing drains; [`crate::DockerOrchestrator::retire`]
//! is the graceful way. Containers are found by the app label, so this also removes containers a crashed
//! deployer left half-made.

use std::collections::HashMap;

use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use bollard::Docker;
use pulse_deploy_core::AppName;

use super::labels;

/// Force-removes every container (running or not, with its anonymous volumes) labelled with `app`.
/// Returns what could not be removed, one line each (empty when everything went).
pub async fn remove_app_containers(docker: &Docker, app: &AppName) -> Vec<String> {
    let filters = HashMap::from([("label", vec![format!("{}={app}", labels::APP)])]);
    let list = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let containers = match docker.list_containers(Some(list)).await {
        Ok(c) => c,
        Err(e) => return vec![format!("listing the containers of {app}: {e}")],
    };
    let mut left = Vec::new();
    for id in containers.into_iter().filter_map(|c| c.id) {
        let opts = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        match docker.remove_container(&id, Some(opts)).await {
            Ok(()) => {}
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => left.push(format!("container {id}: {e}")),
        }
    }
    left
}
