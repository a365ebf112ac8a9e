//! The Python base image: Debian trixie's own packages (Python 3.13), unpacked by `debootstrap` into
//! `target/python-rootfs` and imported into the local image store through the Engine API
//! (`POST /images/create?fromSrc=-` with the root filesystem as a tar stream; the API form of
//! `docker import`). Named `pulse-deploy-python-base:<hash of the recipe>`; nothing is done when that
//! image exists, and the unpacked root filesystem is reused when only the import is missing.
//!
//! Needs root (debootstrap makes device nodes and chroots) and Debian's mirror; installs `debootstrap`
//! with apt-get when it is missing. A failed run leaves at most `python-rootfs.partial`, which the next
//! run removes and redoes. Not for choosing packages at run time: the recipe is a constant, so its hash is.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::tag::content_tag;

/// The base image's repository name; its tag is [`base_tag`].
pub const BASE_REPO: &str = "pulse-deploy-python-base";

/// The Debian release (trixie has Python 3.13; bookworm's 3.11 cannot run current pulse-framework).
const SUITE: &str = "trixie";
/// The packages beside `minbase`.
const INCLUDE: &str = "python3,python3-venv,ca-certificates";
/// What is removed from the root filesystem before the import (documentation, caches, apt lists).
const TRIM: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/log",
];
/// Image configuration applied at import (Dockerfile instructions, as `docker import --change`).
const CHANGES: &[&str] = &["ENV LANG=C.UTF-8", "ENV PYTHONDONTWRITEBYTECODE=1", "CMD [\"python3\"]"];
/// Bumped by hand when the steps below change in a way the constants do not show.
const RECIPE_REVISION: &str = "1";
/// The file in the root filesystem that records which recipe made it (left out of the image).
const MARKER: &str = ".pulse-deploy-recipe";

/// The tag of the base image: a hash of the whole recipe.
pub fn base_tag() -> String {
    let trim = TRIM.join(",");
    let changes = CHANGES.join("\n");
    content_tag([
        RECIPE_REVISION.as_bytes(),
        b"debootstrap --variant=minbase",
        SUITE.as_bytes(),
        INCLUDE.as_bytes(),
        trim.as_bytes(),
        changes.as_bytes(),
    ])
}

/// Makes sure `pulse-deploy-python-base:<tag>` exists (building it if not) and returns its reference.
pub async fn ensure_base_image(docker: &Docker, workspace: &Path) -> Result<String, String> {
    let tag = base_tag();
    let reference = format!("{BASE_REPO}:{tag}");
    if super::image_exists(docker, &reference).await? {
        eprintln!("python-image: {reference} exists (cached)");
        return Ok(reference);
    }
    let rootfs = super::rootfs_dir(workspace);
    let marker = rootfs.join(MARKER);
    if std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == tag) {
        eprintln!("python-image: reusing the root filesystem in {}", rootfs.display());
    } else {
        make_rootfs(&rootfs, &tag).await?;
    }
    import(docker, &rootfs, &tag).await?;
    Ok(reference)
}

/// Runs debootstrap into `<rootfs>.partial`, trims it, marks it and moves it into place.
async fn make_rootfs(rootfs: &Path, tag: &str) -> Result<(), String> {
    ensure_debootstrap().await?;
    let partial = PathBuf::from(format!("{}.partial", rootfs.display()));
    for stale in [&partial, &rootfs.to_path_buf()] {
        if stale.exists() {
            std::fs::remove_dir_all(stale).map_err(|e| format!("cannot remove {}: {e}", stale.display()))?;
        }
    }
    if let Some(parent) = partial.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let mirror = std::env::var("PULSE_DEBIAN_MIRROR").ok().filter(|m| !m.is_empty());
    let started = Instant::now();
    eprintln!("python-image: debootstrap {SUITE} into {} (about 1-2 minutes) ...", partial.display());
    let mut cmd = Command::new("debootstrap");
    cmd.args(["--variant=minbase", &format!("--include={INCLUDE}"), SUITE]).arg(&partial);
    if let Some(m) = &mirror {
        cmd.arg(m);
    }
    let out = cmd.stdin(Stdio::null()).output().await.map_err(|e| format!("cannot run debootstrap: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "debootstrap {SUITE} failed ({}); is the Debian mirror reachable (set PULSE_DEBIAN_MIRROR to \
             use another)? Last lines:\n{}\n{}",
            out.status,
            tail(&out.stdout, 15),
            tail(&out.stderr, 15)
        ));
    }
    for dir in TRIM {
        let path = partial.join(dir);
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| format!("cannot trim {}: {e}", path.display()))?;
        }
    }
    std::fs::write(partial.join(MARKER), tag).map_err(|e| format!("cannot write the recipe marker: {e}"))?;
    std::fs::rename(&partial, rootfs)
        .map_err(|e| format!("cannot move {} to {}: {e}", partial.display(), rootfs.display()))?;
    eprintln!("python-image: root filesystem ready ({:.0} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// Installs debootstrap with apt-get when it is not on PATH.
async fn ensure_debootstrap() -> Result<(), String> {
    let found = Command::new("debootstrap").arg("--version").output().await.is_ok_and(|o| o.status.success());
    if found {
        return Ok(());
    }
    eprintln!("python-image: debootstrap is missing; installing it with apt-get ...");
    let install = |args: &'static [&'static str]| async move {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run apt-get ({e}); install debootstrap by hand"))
    };
    let mut out = install(&["install", "-y", "-q", "debootstrap"]).await?;
    if !out.status.success() {
        install(&["update", "-q"]).await?;
        out = install(&["install", "-y", "-q", "debootstrap"]).await?;
    }
    if !out.status.success() {
        return Err(format!(
            "`apt-get install debootstrap` failed ({}); run it as root or install debootstrap by hand:\n{}",
            out.status,
            tail(&out.stderr, 10)
        ));
    }
    Ok(())
}

/// Streams `tar -C rootfs -c .` into the Engine's image import.
async fn import(docker: &Docker, rootfs: &Path, tag: &str) -> Result<(), String> {
    let started = Instant::now();
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["--numeric-owner", &format!("--exclude=./{MARKER}"), "-c", "."])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    let stdout = tar.stdout.take().ok_or("tar has no stdout")?;
    let body = futures::stream::unfold(stdout, |mut out| async move {
        let mut buf = vec![0u8; 256 * 1024];
        match out.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), out))
            }
            Err(e) => Some((Err(e), out)),
        }
    });
    let mut opts = CreateImageOptionsBuilder::new().from_src("-").repo(BASE_REPO).tag(tag).build();
    opts.changes = CHANGES.iter().map(|c| (*c).to_owned()).collect();
    let mut stream = docker.create_image(Some(opts), Some(bollard::body_try_stream(body)), None);
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(detail) = info.error_detail {
                    failure = Some(detail.message.unwrap_or_else(|| "unknown import error".into()));
                }
            }
            Err(e) => failure = Some(e.to_string()),
        }
    }
    let tar_out = tar.wait_with_output().await.map_err(|e| format!("waiting for tar: {e}"))?;
    if let Some(message) = failure {
        return Err(format!("importing {BASE_REPO}:{tag} failed: {message}"));
    }
    if !tar_out.status.success() {
        return Err(format!(
            "tar of {} failed ({}): {}",
            rootfs.display(),
            tar_out.status,
            tail(&tar_out.stderr, 10)
        ));
    }
    eprintln!("python-image: imported {BASE_REPO}:{tag} ({:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// The last `n` lines of a command's output.
pub(crate) fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
