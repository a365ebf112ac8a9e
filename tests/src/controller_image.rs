//! The controller's image (`pulse-deploy-aws/terraform`'s `controller` service runs it): the `pulse-deploy`
//! binary linked statically, `FROM scratch`, entrypoint `/app` (ECS gives the command, `watch`), with the
//! build machine's CA bundle at `/etc/ssl/certs/ca-certificates.crt`: the AWS SDK's TLS (rustls) trusts the
//! system's root certificates, and a scratch image has none. Built through the Docker Engine API, no
//! registry; `cargo xtask controller-image` builds it (binary `pulse-controller-image`).

use std::path::{Path, PathBuf};

use bollard::Docker;
use pulse_deploy_local::docker::{build_scratch_image_with_files, build_workspace_binaries, ImageFile};

/// The local tag of the controller's image (push it to the app's repository as `:controller`).
pub const CONTROLLER_IMAGE: &str = "pulse-deploy-controller:local";

/// Where the CA bundle is in the image (where rustls-native-certs looks first on Linux).
pub const IMAGE_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The build machine's CA bundle: `$SSL_CERT_FILE`, else `/etc/ssl/certs/ca-certificates.crt`.
fn host_ca_bundle() -> Result<ImageFile, String> {
    let path = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from).unwrap_or_else(|| IMAGE_CA_BUNDLE.into());
    let contents = std::fs::read(&path).map_err(|e| {
        format!(
            "the controller's image needs a CA bundle for its TLS calls to AWS: cannot read {} ({e}); \
             install the ca-certificates package or set SSL_CERT_FILE to a PEM bundle",
            path.display()
        )
    })?;
    if !String::from_utf8_lossy(&contents).contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "{} holds no PEM certificate; set SSL_CERT_FILE to a PEM bundle",
            path.display()
        ));
    }
    Ok(ImageFile { path: IMAGE_CA_BUNDLE.into(), contents })
}

/// Builds `pulse-deploy` statically (with the workspace's other static binaries) from the workspace at `workspace` and the image `tag`. Returns the
/// binary's path.
pub async fn build_controller_image(docker: &Docker, workspace: &Path, tag: &str) -> Result<PathBuf, String> {
    let ca = host_ca_bundle()?;
    let binary = build_workspace_binaries(workspace).await.map_err(|e| e.to_string())?.controller;
    build_scratch_image_with_files(docker, &binary, tag, &[], &[ca]).await.map_err(|e| e.to_string())?;
    Ok(binary)
}
