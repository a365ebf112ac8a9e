//! Building images locally, through the Docker Engine API (no registry is reachable, nothing is pulled):
//! a statically linked binary in a `FROM scratch` image.
//!
//! - the static binaries themselves come from `static_build` (cargo with `-C target-feature=+crt-static`);
//! - [`build_scratch_image`] sends a tar build context (a Dockerfile `FROM scratch` + the binary) to the
//!   Engine's `/build` endpoint; [`build_scratch_image_with_files`] adds files (e.g. a CA bundle);
//! - [`build_demo_image`] does both for the demo app `pulse-demo-app` of the `pulse-server-drain` crate.
//!
//! Not for users' own apps: any image present in the local image store can be deployed as is.

use std::path::{Path, PathBuf};

use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;
use pulse_deploy_core::{Error, Result};

use super::connect::api_error;
use super::static_build::{build_workspace_binaries, static_target};

/// The image tag the e2e and the benchmarks use for the demo app.
pub const DEMO_IMAGE: &str = "pulse-demo-app:local";
/// Where the binary is placed inside the image.
const IMAGE_BINARY: &str = "/app";

/// A file placed in a scratch image next to the binary, e.g. a CA bundle at
/// `/etc/ssl/certs/ca-certificates.crt` for a binary that makes TLS calls with the system's roots.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Its absolute path in the image.
    pub path: String,
    /// Its contents.
    pub contents: Vec<u8>,
}

impl std::fmt::Debug for ImageFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFile").field("path", &self.path).field("bytes", &self.contents.len()).finish()
    }
}

/// Builds the image `tag` holding `binary` as `/app`, `FROM scratch`, with `ENTRYPOINT ["/app", args...]`,
/// through the Engine API. The binary must be statically linked (a `FROM scratch` image has no dynamic
/// loader): a dynamically linked one is refused with the command that builds a static one.
pub async fn build_scratch_image(docker: &Docker, binary: &Path, tag: &str, args: &[&str]) -> Result<()> {
    build_scratch_image_with_files(docker, binary, tag, args, &[]).await
}

/// [`build_scratch_image`] with extra `files` in the image.
pub async fn build_scratch_image_with_files(
    docker: &Docker,
    binary: &Path,
    tag: &str,
    args: &[&str],
    files: &[ImageFile],
) -> Result<()> {
    if tag.trim().is_empty() || tag.chars().any(char::is_whitespace) {
        return Err(Error::invalid("tag", format!("`{tag}` is not an image tag; use e.g. `shop:v1`")));
    }
    if let Some(f) =
        files.iter().find(|f| !f.path.starts_with('/') || f.path.contains("..") || f.path.ends_with('/'))
    {
        return Err(Error::invalid(
            "files",
            format!("`{}` is not an absolute file path in the image; use e.g. `/etc/ssl/certs/ca-certificates.crt`", f.path),
        ));
    }
    let bytes = std::fs::read(binary)
        .map_err(|e| Error::invalid("binary", format!("cannot read {}: {e}", binary.display())))?;
    check_static_elf(&bytes, binary)?;
    let context = build_context(&bytes, args, files)?;
    let opts = BuildImageOptionsBuilder::new().dockerfile("Dockerfile").t(tag).rm(true).forcerm(true).build();
    let started = std::time::Instant::now();
    let mut stream = docker.build_image(opts, None, Some(bollard::body_full(context.into())));
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(detail) = info.error_detail {
                    failure = Some(detail.message.unwrap_or_else(|| "unknown build error".into()));
                }
                if let Some(line) = info.stream.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
                    tracing::debug!(tag, "{line}");
                }
            }
            Err(e) => return Err(api_error(format!("building image {tag}"), e)),
        }
    }
    if let Some(message) = failure {
        return Err(Error::provider("docker", format!("building image {tag} failed: {message}"), false));
    }
    tracing::info!(tag, elapsed = ?started.elapsed(), "image built");
    Ok(())
}

/// Builds the demo app statically from the workspace at `workspace` (with the workspace's other static
/// binaries, [`build_workspace_binaries`]) and its image `tag` (e.g. [`DEMO_IMAGE`]). Returns the
/// binary's path.
pub async fn build_demo_image(docker: &Docker, workspace: &Path, tag: &str) -> Result<PathBuf> {
    let binary = build_workspace_binaries(workspace).await?.demo_app;
    build_scratch_image(docker, &binary, tag, &[]).await?;
    Ok(binary)
}

/// The tar build context: `Dockerfile`, `app`, and each extra file as `files/N`.
fn build_context(binary: &[u8], args: &[&str], files: &[ImageFile]) -> Result<Vec<u8>> {
    let mut entrypoint = vec![IMAGE_BINARY];
    entrypoint.extend_from_slice(args);
    let entrypoint = serde_json::to_string(&entrypoint)
        .map_err(|e| Error::provider_source("docker", "encoding the entrypoint", false, e))?;
    let copies: String =
        files.iter().enumerate().map(|(n, f)| format!("COPY files/{n} {}\n", f.path)).collect();
    let dockerfile = format!(
        "FROM scratch\nCOPY app {IMAGE_BINARY}\n{copies}LABEL dev.pulse-deploy.built-by=pulse-deploy-local\nENTRYPOINT {entrypoint}\n"
    );
    let mut tar = tar::Builder::new(Vec::new());
    let mut append = |name: &str, data: &[u8], mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, name, data)
    };
    append("Dockerfile", dockerfile.as_bytes(), 0o644)
        .and_then(|()| append("app", binary, 0o755))
        .and_then(|()| {
            files.iter().enumerate().try_for_each(|(n, f)| append(&format!("files/{n}"), &f.contents, 0o644))
        })
        .map_err(|e| Error::provider_source("docker", "writing the build context", false, e))?;
    tar.into_inner().map_err(|e| Error::provider_source("docker", "writing the build context", false, e))
}

/// Refuses files that are not ELF executables, and dynamically linked ones (they have a `PT_INTERP`
/// program header naming a loader that a scratch image lacks).
fn check_static_elf(bytes: &[u8], path: &Path) -> Result<()> {
    let fix = format!(
        "build it statically: CARGO_TARGET_{}_RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release --target {} -p <package> --bin <bin>",
        static_target().to_uppercase().replace('-', "_"),
        static_target()
    );
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return Err(Error::invalid(
            "binary",
            format!("{} is not a 64-bit little-endian ELF executable; {fix}", path.display()),
        ));
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let Some(p_type) = bytes.get(at..at + 4) else { break };
        const PT_INTERP: u32 = 3;
        if u32::from_le_bytes([p_type[0], p_type[1], p_type[2], p_type[3]]) == PT_INTERP {
            return Err(Error::invalid(
                "binary",
                format!(
                    "{} is dynamically linked and cannot run in a FROM scratch image; {fix}",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_holds_dockerfile_and_executable() {
        let ca = ImageFile { path: "/etc/ssl/certs/ca-certificates.crt".into(), contents: b"PEM".to_vec() };
        let ctx = build_context(b"\x7fELF...", &["--flag", "x\"y"], &[ca]).unwrap();
        let mut archive = tar::Archive::new(ctx.as_slice());
        let mut seen = vec![];
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            let mode = entry.header().mode().unwrap();
            let mut body = String::new();
            std::io::Read::read_to_string(&mut entry, &mut body).unwrap();
            seen.push((name, mode, body));
        }
        assert_eq!(seen[0].0, "Dockerfile");
        assert!(seen[0].2.starts_with("FROM scratch\nCOPY app /app\n"), "{}", seen[0].2);
        assert!(seen[0].2.contains(r#"ENTRYPOINT ["/app","--flag","x\"y"]"#), "{}", seen[0].2);
        assert_eq!((seen[1].0.as_str(), seen[1].1), ("app", 0o755));
        assert!(seen[0].2.contains("COPY files/0 /etc/ssl/certs/ca-certificates.crt\n"), "{}", seen[0].2);
        assert_eq!((seen[2].0.as_str(), seen[2].1, seen[2].2.as_str()), ("files/0", 0o644, "PEM"));
    }

    #[test]
    fn dynamic_binaries_and_non_elf_files_are_refused() {
        // The test binary itself is dynamically linked (host target, no crt-static).
        let me = std::env::current_exe().unwrap();
        let e = check_static_elf(&std::fs::read(&me).unwrap(), &me).unwrap_err().to_string();
        assert!(e.contains("dynamically linked") && e.contains("crt-static"), "{e}");
        let e = check_static_elf(b"#!/bin/sh\necho hi\n", Path::new("run.sh")).unwrap_err().to_string();
        assert!(e.contains("not a 64-bit little-endian ELF"), "{e}");
    }
}
