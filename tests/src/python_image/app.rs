//! The example Pulse app's image (`examples/pulse-app/`): the venv image plus the app's files, served by
//! uvicorn headless (`PULSE_ENV=prod`, no codegen; the React page tier is not in the image, see
//! `crate::pulse_tab` for the stand-in the tests use). Named `pulse-deploy-example-app:<hash>` over the
//! venv image's reference, the Dockerfile and every file of the app folder; nothing is done when it exists.

use std::path::Path;

use bollard::Docker;

use super::tag::content_tag;
use super::venv::{build, tar_context};

/// The example app's image repository name.
pub const APP_REPO: &str = "pulse-deploy-example-app";
/// The example app's folder, relative to the workspace.
pub const APP_DIR: &str = "examples/pulse-app";
/// The port the app listens on in its container.
pub const APP_PORT: u16 = 8000;

fn dockerfile(venv: &str, files: &[String]) -> String {
    let mut f = format!("FROM {venv}\nWORKDIR /app\n");
    for name in files {
        f.push_str(&format!("COPY {name} /app/{name}\n"));
    }
    f.push_str(&format!(
        "ENV PULSE_ENV=prod PULSE_DISABLE_CODEGEN=1 PULSE_REACT_SERVER_ADDRESS=http://127.0.0.1:3000\n\
         EXPOSE {APP_PORT}\n\
         LABEL dev.pulse-deploy.built-by=pulse-deploy-tests\n\
         ENTRYPOINT [\"uvicorn\", \"app:app.asgi_factory\", \"--factory\", \"--host\", \"0.0.0.0\", \"--port\", \"{APP_PORT}\"]\n"
    ));
    f
}

/// Makes sure the example app's image over `venv` exists and returns its reference.
pub async fn ensure_app_image(docker: &Docker, workspace: &Path, venv: &str) -> Result<String, String> {
    let dir = workspace.join(APP_DIR);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))? {
        let path = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_file() && (name.ends_with(".py") || name.ends_with(".txt")) {
            files.push((name, std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?));
        }
    }
    files.sort();
    let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let file = dockerfile(venv, &names);
    let mut parts: Vec<&[u8]> = vec![file.as_bytes()];
    for (n, b) in &files {
        parts.push(n.as_bytes());
        parts.push(b);
    }
    let reference = format!("{APP_REPO}:{}", content_tag(parts));
    if super::image_exists(docker, &reference).await? {
        return Ok(reference);
    }
    let mut context: Vec<(&str, &[u8])> = vec![("Dockerfile", file.as_bytes())];
    context.extend(files.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    let started = std::time::Instant::now();
    build(docker, &reference, tar_context(&context)?, Default::default()).await?;
    eprintln!("python-image: built {reference} ({:.1} s)", started.elapsed().as_secs_f64());
    Ok(reference)
}
