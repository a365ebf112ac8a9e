//! Statically linked binaries of this workspace, for `FROM scratch` images (`image`) and for the
//! processes the AWS tests run as ECS tasks: cargo with `-C target-feature=+crt-static` and an explicit
//! `--target`, so that the host's own build (the tests, `cargo run`) is untouched.
//!
//! - [`build_workspace_binaries`] builds every static binary the workspace's images use — the demo app,
//!   the Docker tests' server, the `pulse-deploy` controller — in **one** cargo invocation. Built one by
//!   one, each `cargo build -p X` resolves the features of the shared dependencies (tokio, hyper, serde,
//!   ...) differently and compiles its own release copy of them: measured on a 2-core machine, three
//!   release dependency trees (~90 s, ~80 s and ~350 s) where one (the controller's, a superset) does;
//! - [`build_static_binaries`] is the general form (any artifacts of any packages, one invocation);
//!   [`build_static_binary`] / [`build_static_binary_with`] build one.
//!
//! Idempotent: cargo rebuilds only what changed, so every caller may ask for the whole set.

use std::path::{Path, PathBuf};

use pulse_deploy_core::{Error, Result};

/// A cargo build artifact: a `[[bin]]` or an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Artifact {
    /// A binary target (`--bin NAME`).
    Bin(String),
    /// An example (`--example NAME`).
    Example(String),
}

/// One artifact of a static build: which package, which target, with which of the package's features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticArtifact {
    /// The cargo package.
    pub package: String,
    /// The binary or example.
    pub artifact: Artifact,
    /// Features of `package` to turn on.
    pub features: Vec<String>,
}

impl StaticArtifact {
    /// A `[[bin]]` of `package` with `features`.
    pub fn bin(package: &str, name: &str, features: &[&str]) -> Self {
        StaticArtifact {
            package: package.to_owned(),
            artifact: Artifact::Bin(name.to_owned()),
            features: features.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    /// An example of `package`.
    pub fn example(package: &str, name: &str) -> Self {
        StaticArtifact {
            package: package.to_owned(),
            artifact: Artifact::Example(name.to_owned()),
            features: vec![],
        }
    }
}

/// The static binaries of this workspace that go into images, from [`build_workspace_binaries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceBinaries {
    /// `pulse-demo-app` (package `pulse-server-drain`, feature `demo`): the demo app's image.
    pub demo_app: PathBuf,
    /// The example `docker_test_server` of `pulse-deploy-local`: the Docker orchestrator tests' image.
    pub docker_test_server: PathBuf,
    /// `pulse-deploy` (package `pulse-deploy`): the controller's image (`watch` as an ECS service).
    pub controller: PathBuf,
}

/// The artifacts of [`WorkspaceBinaries`], in its field order.
fn workspace_artifacts() -> [StaticArtifact; 3] {
    [
        StaticArtifact::bin("pulse-server-drain", "pulse-demo-app", &["demo"]),
        StaticArtifact::example("pulse-deploy-local", "docker_test_server"),
        StaticArtifact::bin("pulse-deploy", "pulse-deploy", &[]),
    ]
}

/// Builds every static binary of [`WorkspaceBinaries`] from the workspace at `workspace`, in one cargo
/// invocation (cold: one release build of the controller's dependency tree, minutes; then seconds).
pub async fn build_workspace_binaries(workspace: &Path) -> Result<WorkspaceBinaries> {
    let paths = build_static_binaries(workspace, &workspace_artifacts()).await?;
    match <[PathBuf; 3]>::try_from(paths) {
        Ok([demo_app, docker_test_server, controller]) => {
            Ok(WorkspaceBinaries { demo_app, docker_test_server, controller })
        }
        Err(paths) => {
            Err(Error::provider("docker", format!("cargo built {} binaries, not 3", paths.len()), false))
        }
    }
}

/// The target triple static binaries are built for: this machine's architecture, Linux GNU.
pub(super) fn static_target() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// Builds `artifact` of `package` in the cargo workspace at `workspace` as a statically linked release
/// binary and returns its path.
pub async fn build_static_binary(workspace: &Path, package: &str, artifact: &Artifact) -> Result<PathBuf> {
    build_static_binary_with(workspace, package, artifact, &[]).await
}

/// [`build_static_binary`] with cargo features of `package` turned on (`--features a,b`).
pub async fn build_static_binary_with(
    workspace: &Path,
    package: &str,
    artifact: &Artifact,
    features: &[&str],
) -> Result<PathBuf> {
    let one = StaticArtifact {
        package: package.to_owned(),
        artifact: artifact.clone(),
        features: features.iter().map(|f| (*f).to_owned()).collect(),
    };
    let mut paths = build_static_binaries(workspace, std::slice::from_ref(&one)).await?;
    paths.pop().ok_or_else(|| Error::provider("docker", "cargo built nothing", false))
}

/// Builds every artifact of `artifacts` in the cargo workspace at `workspace` as statically linked
/// release binaries, in one cargo invocation (one feature resolution, one build of the shared
/// dependencies), and returns their paths in order. Uses `$CARGO_TARGET_DIR` (else
/// `<workspace>/target`) and `$CARGO` (else `cargo`).
pub async fn build_static_binaries(workspace: &Path, artifacts: &[StaticArtifact]) -> Result<Vec<PathBuf>> {
    if artifacts.is_empty() {
        return Ok(vec![]);
    }
    let target = static_target();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { workspace.join(d) })
        .unwrap_or_else(|| workspace.join("target"));
    let mut args: Vec<String> = vec!["build".into(), "--release".into(), "--target".into(), target.clone()];
    let mut features = Vec::new();
    for a in artifacts {
        let (flag, name) = match &a.artifact {
            Artifact::Bin(n) => ("--bin", n),
            Artifact::Example(n) => ("--example", n),
        };
        args.extend(["-p".into(), a.package.clone(), flag.into(), name.clone()]);
        features.extend(a.features.iter().map(|f| format!("{}/{f}", a.package)));
    }
    if !features.is_empty() {
        args.extend(["--features".into(), features.join(",")]);
    }
    let command = format!("cargo {}", args.join(" "));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let rustflags_var = format!("CARGO_TARGET_{}_RUSTFLAGS", target.to_uppercase().replace('-', "_"));
    tracing::info!(%command, "building static binaries with cargo");
    let mut cmd = tokio::process::Command::new(&cargo);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_set_by_cargo_for_a_run) {
            cmd.env_remove(&name);
        }
    }
    let out = cmd
        .current_dir(workspace)
        .args(&args)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env(&rustflags_var, "-C target-feature=+crt-static")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| {
            Error::provider_source(
                "docker",
                format!(
                    "could not run cargo ({}) for `{command}`; is cargo on PATH?",
                    cargo.to_string_lossy()
                ),
                false,
                e,
            )
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(Error::provider(
            "docker",
            format!("`{command}` failed ({}):\n{}", out.status, tail.join("\n")),
            false,
        ));
    }
    let dir = target_dir.join(&target).join("release");
    artifacts
        .iter()
        .map(|a| {
            let path = match &a.artifact {
                Artifact::Bin(name) => dir.join(name),
                Artifact::Example(name) => dir.join("examples").join(name),
            };
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::provider(
                    "docker",
                    format!("cargo succeeded but {} does not exist", path.display()),
                    false,
                ))
            }
        })
        .collect()
}

/// Whether `name` is one of the variables cargo sets for a program it runs (a test, `cargo run`, a build
/// script): they must not reach the nested cargo. Build scripts such as ring's declare
/// `rerun-if-env-changed=CARGO_MANIFEST_DIR` (and `CARGO_PKG_NAME`, ...), and cargo compares those with
/// its OWN environment: called from two test binaries of two packages, each call would see another
/// value, rebuild ring and everything above it (rustls, the AWS SDK's client, `pulse-deploy`).
fn is_set_by_cargo_for_a_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_EXE_")
        || name.starts_with("CARGO_CFG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "OUT_DIR"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_cargo_sets_for_a_test_are_not_passed_on() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_BIN_EXE_app",
            "OUT_DIR",
        ] {
            assert!(is_set_by_cargo_for_a_run(name), "{name}");
        }
        for name in
            ["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO", "CARGO_NET_OFFLINE", "CARGO_REGISTRIES_X_INDEX"]
        {
            assert!(!is_set_by_cargo_for_a_run(name), "{name}");
        }
    }

    #[test]
    fn the_workspace_set_names_packages_and_targets_that_exist() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root");
        for a in workspace_artifacts() {
            let manifest = std::fs::read_to_string(root.join(&a.package).join("Cargo.toml"))
                .unwrap_or_else(|e| panic!("package {}: {e}", a.package));
            assert!(manifest.contains(&format!("name = \"{}\"", a.package)), "{}", a.package);
            match &a.artifact {
                Artifact::Bin(name) => assert!(manifest.contains(&format!("name = \"{name}\"")), "{name}"),
                Artifact::Example(name) => {
                    assert!(
                        root.join(&a.package).join("examples").join(format!("{name}.rs")).is_file(),
                        "{name}"
                    )
                }
            }
            for f in &a.features {
                assert!(manifest.contains(&format!("\n{f} = ")), "feature {f} of {}", a.package);
            }
        }
    }
}
