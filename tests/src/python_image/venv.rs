//! The venv image: the base image plus a virtualenv at `/opt/venv` (first on `PATH`) holding the pinned
//! requirements of `python/requirements/image.txt`, built through the Engine API's classic builder
//! (`/build`, a tar context with a Dockerfile). Named `pulse-deploy-python-venv:<hash>` over the base
//! tag, the Dockerfile and the requirements; nothing is done when that image exists.
//!
//! pip inside the build reaches PyPI the way the host's pip does: the host's CA bundle (registry traffic
//! here may pass a TLS-intercepting proxy) is copied into the context and named by `SSL_CERT_FILE` for
//! the install step only, the host's `PIP_INDEX_URL`/`PIP_EXTRA_INDEX_URL`/`PIP_TRUSTED_HOST`/
//! `PIP_DEFAULT_TIMEOUT` and proxy variables are passed as build arguments, and the build runs on the
//! host's network. Not for the app itself: the example app's image builds on this one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;

use super::tag::content_tag;

/// The venv image's repository name.
pub const VENV_REPO: &str = "pulse-deploy-python-venv";
/// The requirements file, relative to the workspace.
pub const REQUIREMENTS: &str = "python/requirements/image.txt";
/// Where the host's CA bundle is placed in the image (used by the install step only).
const CA_IN_IMAGE: &str = "/etc/pulse-deploy-build/ca.crt";
/// Host pip settings replicated into the build (as build arguments; only those set on the host).
const PIP_SETTINGS: &[&str] =
    &["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT"];
/// Proxy variables: Docker's predefined build arguments (kept out of the image's history).
const PROXY_SETTINGS: &[&str] =
    &["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"];

/// The Dockerfile of the venv image over `base`, declaring the pip settings `args` the host has.
fn dockerfile(base: &str, args: &[&str]) -> String {
    let mut f =
        format!("FROM {base}\nCOPY ca.crt {CA_IN_IMAGE}\nCOPY requirements.txt /opt/requirements.txt\n");
    for a in args {
        f.push_str(&format!("ARG {a}\n"));
    }
    f.push_str(&format!(
        "RUN python3 -m venv /opt/venv \\\n && SSL_CERT_FILE={CA_IN_IMAGE} /opt/venv/bin/pip install \
         --disable-pip-version-check --no-cache-dir --progress-bar off -q -r /opt/requirements.txt\n\
         ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         LABEL dev.pulse-deploy.built-by=pulse-deploy-tests\n"
    ));
    f
}

/// The host's CA bundle: `$SSL_CERT_FILE`, `$PIP_CERT`, `$REQUESTS_CA_BUNDLE`, else Debian's path.
fn host_ca_bundle() -> Result<PathBuf, String> {
    let candidates = ["SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE"]
        .iter()
        .filter_map(|v| std::env::var_os(v).filter(|p| !p.is_empty()).map(PathBuf::from))
        .chain([PathBuf::from("/etc/ssl/certs/ca-certificates.crt")]);
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
    }
    Err("no CA bundle found for pip in the build: set SSL_CERT_FILE to the host's CA bundle".into())
}

/// Makes sure the venv image over `base` exists (building it if not) and returns its reference.
pub async fn ensure_venv_image(docker: &Docker, workspace: &Path, base: &str) -> Result<String, String> {
    let req_path = workspace.join(REQUIREMENTS);
    let requirements =
        std::fs::read(&req_path).map_err(|e| format!("cannot read {}: {e}", req_path.display()))?;
    let args: Vec<&str> =
        PIP_SETTINGS.iter().copied().filter(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty())).collect();
    let file = dockerfile(base, &args);
    let tag = content_tag([file.as_bytes(), requirements.as_slice()]);
    let reference = format!("{VENV_REPO}:{tag}");
    if super::image_exists(docker, &reference).await? {
        eprintln!("python-image: {reference} exists (cached)");
        return Ok(reference);
    }
    let ca = host_ca_bundle()?;
    let ca_bytes = std::fs::read(&ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
    let context = tar_context(&[
        ("Dockerfile", file.as_bytes()),
        ("requirements.txt", &requirements),
        ("ca.crt", &ca_bytes),
    ])?;
    let buildargs: HashMap<String, String> = args
        .iter()
        .chain(PROXY_SETTINGS)
        .filter_map(|v| std::env::var(v).ok().filter(|x| !x.is_empty()).map(|x| ((*v).to_owned(), x)))
        .collect();
    eprintln!("python-image: building {reference} (pip install of {REQUIREMENTS}) ...");
    let started = Instant::now();
    build(docker, &reference, context, buildargs).await?;
    eprintln!("python-image: built {reference} ({:.0} s)", started.elapsed().as_secs_f64());
    Ok(reference)
}

/// A tar build context of `(name, bytes)` files.
pub fn tar_context(files: &[(&str, &[u8])]) -> Result<Vec<u8>, String> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, name, *data).map_err(|e| format!("writing the build context: {e}"))?;
    }
    tar.into_inner().map_err(|e| format!("writing the build context: {e}"))
}

/// Builds `reference` from the tar `context` with the classic builder on the host's network; the
/// build's last output lines are in the error when it fails.
pub async fn build(
    docker: &Docker,
    reference: &str,
    context: Vec<u8>,
    buildargs: HashMap<String, String>,
) -> Result<(), String> {
    let opts = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(reference)
        .rm(true)
        .forcerm(true)
        .networkmode("host")
        .buildargs(&buildargs)
        .build();
    let mut stream = docker.build_image(opts, None, Some(bollard::body_full(context.into())));
    let mut failure = None;
    let mut log: Vec<String> = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(detail) = info.error_detail {
                    failure = Some(detail.message.unwrap_or_else(|| "unknown build error".into()));
                }
                if let Some(line) = info.stream.as_deref().map(str::trim_end).filter(|l| !l.is_empty()) {
                    log.push(line.to_owned());
                }
            }
            Err(e) => failure = Some(e.to_string()),
        }
    }
    match failure {
        None => Ok(()),
        Some(message) => {
            let tail = log[log.len().saturating_sub(20)..].join("\n");
            Err(format!("building {reference} failed: {message}\n{tail}"))
        }
    }
}
