//! Python images for the Pulse end-to-end run and the Python tests, built without any registry and cached
//! by content: nothing is rebuilt while its recipe is unchanged.
//!
//! - [`base`]: a Debian trixie root filesystem (`debootstrap --variant=minbase`, Python 3.13) imported as
//!   `pulse-deploy-python-base:<hash of the recipe>` through the Engine API (`/images/create?fromSrc=-`);
//! - [`venv`]: on top of it, a virtualenv at `/opt/venv` holding the pinned requirements
//!   (`python/requirements/image.txt`), `pulse-deploy-python-venv:<hash>`, built by the classic builder;
//! - [`app`]: the example Pulse app (`examples/pulse-app/`) with the drain plugin on the venv image, and
//!   the same app without the plugin (the benchmark's baseline);
//! - [`tag`]: the content hash that names both;
//! - [`run`]: a command run to completion in a container of one, with a folder copied in.
//!
//! Not for production images: users build their app images however they like; this exists because no
//! image can be pulled on this machine (see `docs/python-images.md`).

pub mod app;
pub mod base;
pub mod run;
pub mod tag;
pub mod venv;

use std::path::PathBuf;

pub use base::{ensure_base_image, BASE_REPO};
pub use venv::{ensure_venv_image, VENV_REPO};

/// The folder (inside the workspace's `target/`) where the root filesystem is unpacked.
pub fn rootfs_dir(workspace: &std::path::Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { workspace.join(d) })
        .unwrap_or_else(|| workspace.join("target"));
    target.join("python-rootfs")
}

/// Whether an image with this exact reference is in the local store.
pub async fn image_exists(docker: &bollard::Docker, reference: &str) -> Result<bool, String> {
    match docker.inspect_image(reference).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
        Err(e) => Err(format!("inspecting image {reference}: {e}")),
    }
}

/// Ensures the base, venv and example app images exist and returns the app image's reference.
pub async fn ensure_app_image(
    docker: &bollard::Docker,
    workspace: &std::path::Path,
) -> Result<String, String> {
    ensure_example_image(docker, workspace, app::AppImage::WithPlugin).await
}

/// Ensures the base, venv and the given example image exist and returns the latter's reference.
pub async fn ensure_example_image(
    docker: &bollard::Docker,
    workspace: &std::path::Path,
    image: app::AppImage,
) -> Result<String, String> {
    let venv = ensure_images(docker, workspace).await?;
    app::ensure(docker, workspace, &venv, image).await
}

/// Ensures both images exist and returns the venv image's reference (the one to run).
pub async fn ensure_images(docker: &bollard::Docker, workspace: &std::path::Path) -> Result<String, String> {
    let base = ensure_base_image(docker, workspace).await?;
    ensure_venv_image(docker, workspace, &base).await
}
