//! Running a command to completion in a throwaway container of a Python image, with a workspace folder
//! copied in (through the Engine API's archive upload, so it works with a remote `DOCKER_HOST` too),
//! its output streamed to this process's stdout/stderr, and its exit code returned. The container is
//! removed afterwards, also when the command fails.
//!
//! Not for long-running servers: those are deployed by the Docker orchestrator.

use std::path::Path;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;

/// Runs `cmd` (exec form) in a new container `name` of `image`, with `folder` copied to `dest`
/// (its parent must exist in the image) and `cmd` started in `dest`. Returns the exit code.
pub async fn run_with_folder(
    docker: &Docker,
    image: &str,
    name: &str,
    folder: &Path,
    dest: &str,
    cmd: &[&str],
) -> Result<i64, String> {
    let context = folder_tar(folder, dest.trim_start_matches('/'))?;
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(cmd.iter().map(|c| (*c).to_owned()).collect()),
        working_dir: Some(dest.to_owned()),
        labels: Some([("dev.pulse-deploy.purpose".to_owned(), "python-run".to_owned())].into()),
        host_config: Some(HostConfig { init: Some(true), ..Default::default() }),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::new().name(name).build();
    docker.create_container(Some(opts), body).await.map_err(|e| format!("creating container {name}: {e}"))?;
    let result = async {
        let upload = UploadToContainerOptionsBuilder::new().path("/").build();
        docker
            .upload_to_container(name, Some(upload), bollard::body_full(context.into()))
            .await
            .map_err(|e| format!("copying {} into {name}: {e}", folder.display()))?;
        docker
            .start_container(name, None::<StartContainerOptions>)
            .await
            .map_err(|e| format!("starting container {name}: {e}"))?;
        let logs = LogsOptionsBuilder::new().follow(true).stdout(true).stderr(true).build();
        let mut stream = docker.logs(name, Some(logs));
        while let Some(item) = stream.next().await {
            match item {
                Ok(bollard::container::LogOutput::StdErr { message }) => {
                    eprint!("{}", String::from_utf8_lossy(&message))
                }
                Ok(out) => print!("{}", String::from_utf8_lossy(&out.into_bytes())),
                Err(e) => return Err(format!("reading the output of {name}: {e}")),
            }
        }
        let info =
            docker.inspect_container(name, None).await.map_err(|e| format!("inspecting {name}: {e}"))?;
        info.state.and_then(|s| s.exit_code).ok_or_else(|| format!("container {name} reported no exit code"))
    }
    .await;
    let remove = RemoveContainerOptionsBuilder::new().force(true).build();
    let removed = docker.remove_container(name, Some(remove)).await;
    let code = result?;
    removed.map_err(|e| format!("removing container {name}: {e}"))?;
    Ok(code)
}

/// A tar of `folder` placed under `prefix`, leaving out caches and virtualenvs.
fn folder_tar(folder: &Path, prefix: &str) -> Result<Vec<u8>, String> {
    const SKIP: &[&str] = &["__pycache__", ".pytest_cache", ".venv", "build", "dist", ".git"];
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    let mut stack = vec![folder.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rel = dir.strip_prefix(folder).map_err(|e| e.to_string())?;
        tar.append_dir(Path::new(prefix).join(rel), &dir)
            .map_err(|e| format!("archiving {}: {e}", dir.display()))?;
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
            let name = entry.file_name();
            let path = entry.path();
            if SKIP.iter().any(|s| name == *s) || name.to_string_lossy().ends_with(".egg-info") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(folder).map_err(|e| e.to_string())?;
                tar.append_path_with_name(&path, Path::new(prefix).join(rel))
                    .map_err(|e| format!("archiving {}: {e}", path.display()))?;
            }
        }
    }
    tar.into_inner().map_err(|e| format!("archiving {}: {e}", folder.display()))
}
