//! The Docker provider: [`DockerOrchestrator`] runs each instance of a version as one container through
//! the Docker Engine API (bollard, `DOCKER_HOST` honoured, API version negotiated so Docker 20.10 / API
//! 1.41 works), and `image` builds `FROM scratch` images from static binaries without a registry.
//!
//! - [`labels`] (public: the label schema, for `docker ps --filter label=...`): what a container
//!   records (app, version, instance, the whole release, the retiring mark);
//! - `observe`: reading containers back into the core's `VersionState`s;
//! - `static_build`: statically linked binaries of this workspace for those images, built in one cargo
//!   invocation;
//! - `secret`: how the drain secret reaches a container (a read-only bind-mounted file);
//! - `connect`: reaching the daemon, and errors that say what to check.
//!
//! Not for traffic: routing is the router's job (`EnvoyRouter`). See `docs/docker-orchestrator.md`.

mod connect;
mod image;
pub mod labels;
mod observe;
mod orchestrator;
mod remove;
mod secret;
mod static_build;

pub use connect::connect_docker;
pub use image::{
    build_demo_image, build_scratch_image, build_scratch_image_with_files, ImageFile, DEMO_IMAGE,
};
pub use orchestrator::{default_state_dir, DockerOrchestrator, DockerOrchestratorBuilder};
pub use remove::remove_app_containers;
pub use secret::{CONTAINER_PATH as SECRET_CONTAINER_PATH, FILE_ENV as SECRET_FILE_ENV};
pub use static_build::{
    build_static_binaries, build_static_binary, build_static_binary_with, build_workspace_binaries, Artifact,
    StaticArtifact, WorkspaceBinaries,
};
