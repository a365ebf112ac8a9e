//! [`DockerOrchestrator`]: the [`Orchestrator`] that runs each instance of a version as one Docker
//! container, through the Docker Engine API.
//!
//! All state lives in Docker: labels say what a container runs ([`super::labels`]), the container name
//! carries the durable retiring mark, and nothing is kept in the deployer's memory, so a restarted
//! deployer sees everything it started. Containers without the managed label are never touched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, HostConfig, Mount, MountType, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder,
    StartContainerOptions, WaitContainerOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;
use pulse_deploy_core::{
    AppName, Error, InstanceId, Orchestrator, OrchestratorCapabilities, Release, Result, Secret, VersionId,
    VersionState,
};
use tracing::{debug, info, warn};

use super::connect::{api_error, connect_docker, is_not_found, status_of};
use super::labels::{self, RetireMark};
use super::observe::{self, ManagedContainer, PUBLISH_HOST};
use super::secret::{SecretFiles, CONTAINER_PATH, FILE_ENV};

/// Variables the orchestrator sets in every instance besides the core's reserved ones; a release may not
/// set them.
const DOCKER_RESERVED_ENV: &[&str] = &["PORT", FILE_ENV];

/// Runs versions as Docker containers: one container per instance, app port published on 127.0.0.1.
///
/// Build it with [`DockerOrchestrator::builder`]. Every method is idempotent and safe to repeat after the
/// deployer was killed at any point.
#[derive(Debug, Clone)]
pub struct DockerOrchestrator {
    docker: Docker,
    secret: Secret,
    state_dir: PathBuf,
    secrets: SecretFiles,
    retire_wait: Duration,
}

/// Builds a [`DockerOrchestrator`].
#[derive(Debug, Default)]
pub struct DockerOrchestratorBuilder {
    docker: Option<Docker>,
    secret: Option<Secret>,
    state_dir: Option<PathBuf>,
    retire_wait: Option<Duration>,
}

impl DockerOrchestratorBuilder {
    /// The drain secret every instance receives (as a read-only file, see [`super::secret`]). Required.
    pub fn drain_secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Where host-side files live (the drain secret files). Default: [`default_state_dir`].
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// A Docker client to use instead of connecting with [`connect_docker`] (`DOCKER_HOST`). Its API
    /// version must already fit the daemon (see `bollard::Docker::negotiate_version`).
    pub fn docker(mut self, docker: Docker) -> Self {
        self.docker = Some(docker);
        self
    }

    /// How long one `retire` call waits for signalled instances to exit before returning (it is called
    /// again until the version is gone). Default 5 s; the grace period itself is `release.stop_grace`.
    pub fn retire_wait(mut self, wait: Duration) -> Self {
        self.retire_wait = Some(wait);
        self
    }

    /// Connects (unless a client was given) and returns the orchestrator. Fails with
    /// [`Error::InvalidInput`] when the secret is missing or the state dir unusable, and
    /// [`Error::Unavailable`] when the Docker Engine cannot be reached.
    pub async fn build(self) -> Result<DockerOrchestrator> {
        let secret = self.secret.ok_or_else(|| {
            Error::invalid("docker.drain_secret", "is required: pass the drain secret with DockerOrchestratorBuilder::drain_secret (the same one the deployer's drain client uses)")
        })?;
        let state_dir = match self.state_dir {
            Some(d) => d,
            None => default_state_dir()?,
        };
        let secrets = SecretFiles::new(&state_dir)?;
        let docker = match self.docker {
            Some(d) => d,
            None => connect_docker().await?,
        };
        Ok(DockerOrchestrator {
            docker,
            secret,
            state_dir,
            secrets,
            retire_wait: self.retire_wait.unwrap_or(Duration::from_secs(5)),
        })
    }
}

/// The default state directory: `$PULSE_STATE_DIR`, else `$XDG_STATE_HOME/pulse-deploy`, else
/// `$HOME/.local/state/pulse-deploy`.
pub fn default_state_dir() -> Result<PathBuf> {
    let from = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = from("PULSE_STATE_DIR") {
        return Ok(d);
    }
    if let Some(d) = from("XDG_STATE_HOME") {
        return Ok(d.join("pulse-deploy"));
    }
    if let Some(home) = from("HOME") {
        return Ok(home.join(".local/state/pulse-deploy"));
    }
    Err(Error::invalid(
        "docker.state_dir",
        "cannot be derived: none of PULSE_STATE_DIR, XDG_STATE_HOME or HOME is set; set one, or call DockerOrchestratorBuilder::state_dir",
    ))
}

impl DockerOrchestrator {
    /// Starts building an orchestrator.
    pub fn builder() -> DockerOrchestratorBuilder {
        DockerOrchestratorBuilder::default()
    }

    /// The Docker client in use.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The state directory (host-side secret files live under it).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The host file holding `app`'s drain secret (bind-mounted into its instances).
    pub fn secret_file(&self, app: &AppName) -> PathBuf {
        self.secrets.path(app)
    }

    /// The managed containers of `app` (of one version when given), in any state.
    async fn list(&self, app: &AppName, version: Option<&VersionId>) -> Result<Vec<ManagedContainer>> {
        let opts =
            ListContainersOptionsBuilder::new().all(true).filters(&labels::filters(app, version)).build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| api_error(format!("listing the containers of app {app}"), e))?;
        Ok(observe::read_all(&list))
    }

    /// Refuses a release the Docker provider cannot run, before anything is created.
    fn check_release(release: &Release) -> Result<()> {
        release.validate()?;
        if let Some(key) = release.env.keys().find(|k| DOCKER_RESERVED_ENV.contains(&k.as_str())) {
            return Err(Error::invalid(
                "release.env",
                format!("`{key}` is set by the Docker orchestrator itself (PORT from release.port, {FILE_ENV} for the drain secret); remove it from the release"),
            ));
        }
        Ok(())
    }

    /// Fails with a clear error when `image` is not in the local image store (nothing is pulled).
    async fn check_image(&self, release: &Release) -> Result<()> {
        match self.docker.inspect_image(&release.image).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Err(Error::invalid(
                "release.image",
                format!(
                    "image `{}` is not in the local Docker image store and nothing is pulled from a registry; build or load it first (`docker build -t {} .`, `docker load`, or pulse_deploy_local::docker::build_scratch_image for a static binary)",
                    release.image, release.image
                ),
            )),
            Err(e) => Err(api_error(format!("inspecting image {}", release.image), e)),
        }
    }

    /// Creates and starts one instance of `release`.
    async fn create_instance(
        &self,
        release: &Release,
        secret_file: &Path,
        created_at: SystemTime,
    ) -> Result<()> {
        let id = labels::new_instance_id(&release.app, &release.version);
        let port_key = format!("{}/tcp", release.port);
        let mut env: Vec<String> = release.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.extend([
            format!("PULSE_APP={}", release.app),
            format!("PULSE_VERSION={}", release.version),
            format!("PULSE_INSTANCE_ID={id}"),
            format!("PORT={}", release.port),
            format!("{FILE_ENV}={CONTAINER_PATH}"),
        ]);
        let body = ContainerCreateBody {
            image: Some(release.image.clone()),
            env: Some(env),
            labels: Some(labels::instance_labels(release, &id, created_at)?),
            exposed_ports: Some(vec![port_key.clone()]),
            stop_signal: Some("SIGTERM".into()),
            stop_timeout: Some(release.stop_grace.as_secs() as i64),
            host_config: Some(HostConfig {
                port_bindings: Some(
                    [(
                        port_key,
                        Some(vec![PortBinding {
                            host_ip: Some(PUBLISH_HOST.to_string()),
                            host_port: Some(String::new()),
                        }]),
                    )]
                    .into(),
                ),
                mounts: Some(vec![Mount {
                    target: Some(CONTAINER_PATH.into()),
                    source: Some(secret_file.display().to_string()),
                    typ: Some(MountType::BIND),
                    read_only: Some(true),
                    ..Default::default()
                }]),
                // docker-init as PID 1: forwards SIGTERM to the app (a PID 1 without a handler installed
                // yet would ignore it) and reaps zombies.
                init: Some(true),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::new().name(&id.0).build();
        self.docker.create_container(Some(opts), body).await.map_err(|e| {
            api_error(
                format!("creating container {id} for version {} of app {}", release.version, release.app),
                e,
            )
        })?;
        debug!(app = %release.app, version = %release.version, instance = %id, "container created");
        self.start(&id.0, &id).await
    }

    async fn start(&self, container: &str, id: &InstanceId) -> Result<()> {
        match self.docker.start_container(container, None::<StartContainerOptions>).await {
            Ok(()) => {
                info!(instance = %id, "instance started");
                Ok(())
            }
            // 304: already started.
            Err(e) if status_of(&e) == Some(304) => Ok(()),
            Err(e) => Err(api_error(format!("starting container {id}"), e)),
        }
    }

    /// Removes a container that has no process any more. A running container is refused by the daemon
    /// (no force): nothing is ever killed by removal.
    async fn remove(&self, c: &ManagedContainer) -> Result<()> {
        let opts = RemoveContainerOptionsBuilder::new().v(true).force(false).build();
        match self.docker.remove_container(&c.docker_id, Some(opts)).await {
            Ok(()) => {
                debug!(instance = %c.instance, "container removed");
                Ok(())
            }
            Err(e) if is_not_found(&e) => Ok(()),
            // 409: removal already in progress, or the process still runs; the next call retries.
            Err(e) if status_of(&e) == Some(409) => {
                debug!(instance = %c.instance, error = %e, "container not removable yet");
                Ok(())
            }
            Err(e) => Err(api_error(format!("removing container {}", c.instance), e)),
        }
    }

    async fn signal(&self, c: &ManagedContainer, signal: &str) -> Result<()> {
        let opts = KillContainerOptionsBuilder::new().signal(signal).build();
        match self.docker.kill_container(&c.docker_id, Some(opts)).await {
            Ok(()) => {
                info!(instance = %c.instance, signal, "signal sent");
                Ok(())
            }
            // 404: gone; 409: not running any more.
            Err(e) if matches!(status_of(&e), Some(404 | 409)) => Ok(()),
            Err(e) => Err(api_error(format!("sending {signal} to container {}", c.instance), e)),
        }
    }

    /// Waits up to `limit` for the container to have no process. True when it has none (or is gone).
    async fn wait_exit(&self, c: &ManagedContainer, limit: Duration) -> bool {
        let opts = WaitContainerOptionsBuilder::new().condition("not-running").build();
        let mut waiting = self.docker.wait_container(&c.docker_id, Some(opts));
        match tokio::time::timeout(limit, waiting.next()).await {
            Err(_) => false,
            Ok(None) | Ok(Some(Ok(_))) => true,
            // A non-zero exit code comes back as this error: the container exited.
            Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { .. }))) => true,
            Ok(Some(Err(e))) if is_not_found(&e) => true,
            Ok(Some(Err(e))) => {
                warn!(instance = %c.instance, error = %e, "waiting for the container to exit failed");
                false
            }
        }
    }

    /// Renames a container to carry `mark`. False when the container is gone.
    async fn rename(&self, c: &mut ManagedContainer, mark: RetireMark) -> Result<bool> {
        let name = labels::marked_name(&c.instance, mark);
        let opts = RenameContainerOptionsBuilder::new().name(&name).build();
        match self.docker.rename_container(&c.docker_id, opts).await {
            Ok(()) => {
                c.retire_mark = Some(mark);
                Ok(true)
            }
            Err(e) if is_not_found(&e) => {
                c.state = ContainerSummaryStateEnum::REMOVING;
                Ok(false)
            }
            // An interrupted call's rename to the same mark landed after this call listed the container.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 400, message })
                if message.contains("same name") =>
            {
                c.retire_mark = Some(mark);
                Ok(true)
            }
            Err(e) => Err(api_error(format!("marking container {} as retiring", c.instance), e)),
        }
    }

    /// Whether the daemon's event log shows a SIGTERM sent to the container since `since` — used only
    /// when an earlier `retire` was interrupted between marking a container and recording its SIGTERM.
    /// The daemon keeps a bounded number of recent events; if the kill is no longer there this says no,
    /// and the caller sends SIGTERM again (a second SIGTERM, never a missing one).
    async fn sigterm_logged_since(&self, c: &ManagedContainer, since: SystemTime) -> bool {
        let ts = |t: SystemTime| {
            let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
        };
        let filters = HashMap::from([
            ("type", vec!["container".to_owned()]),
            ("container", vec![c.docker_id.clone()]),
            ("event", vec!["kill".to_owned()]),
        ]);
        let opts = EventsOptionsBuilder::new()
            .since(&ts(since - Duration::from_secs(1)))
            .until(&ts(SystemTime::now()))
            .filters(&filters)
            .build();
        let mut events = self.docker.events(Some(opts));
        loop {
            match tokio::time::timeout(self.retire_wait, events.next()).await {
                Ok(Some(Ok(e))) => {
                    let signal = e.actor.and_then(|a| a.attributes).and_then(|mut a| a.remove("signal"));
                    if matches!(signal.as_deref(), Some("15" | "SIGTERM" | "TERM")) {
                        return true;
                    }
                }
                Ok(Some(Err(e))) => {
                    warn!(instance = %c.instance, error = %e, "reading the daemon's event log failed");
                    return false;
                }
                Ok(None) | Err(_) => return false,
            }
        }
    }

    /// Sends SIGTERM to a marked container exactly once and records it in the name (second step of the
    /// mark). A container found marked by an interrupted earlier call is signalled only if the daemon's
    /// event log does not show that SIGTERM.
    async fn signal_once(&self, c: &mut ManagedContainer, just_marked: bool) -> Result<()> {
        let Some(RetireMark::Marked(marked_at)) = c.retire_mark else { return Ok(()) };
        let mut sent_at = SystemTime::now();
        if c.has_process() {
            if !just_marked && self.sigterm_logged_since(c, marked_at).await {
                debug!(instance = %c.instance, "SIGTERM already sent by an interrupted call");
                sent_at = marked_at;
            } else {
                self.signal(c, "SIGTERM").await?;
            }
        }
        self.rename(c, RetireMark::Signalled(sent_at)).await.map(|_| ())
    }

    /// Moves one signalled container towards removal: waits a bounded time for its exit, sends SIGKILL
    /// once its grace period is over, removes it once it has no process.
    async fn finish_retiring(&self, c: &ManagedContainer) -> Result<()> {
        if c.state == ContainerSummaryStateEnum::REMOVING {
            return Ok(());
        }
        if c.has_process() {
            let term_sent = match c.retire_mark {
                Some(RetireMark::Signalled(at)) => at,
                _ => return Ok(()),
            };
            let deadline = term_sent + c.release.stop_grace;
            let remaining = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
            let mut exited = !remaining.is_zero() && self.wait_exit(c, remaining.min(self.retire_wait)).await;
            if !exited && SystemTime::now() >= deadline {
                warn!(instance = %c.instance, grace = ?c.release.stop_grace, "grace period over: sending SIGKILL");
                self.signal(c, "SIGKILL").await?;
                exited = self.wait_exit(c, self.retire_wait).await;
            }
            if !exited {
                return Ok(());
            }
        }
        self.remove(c).await
    }
}

/// Runs `fut` for each item concurrently; returns the first error after all have finished.
async fn all<T, F, Fut>(items: impl IntoIterator<Item = T>, f: F) -> Result<()>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let results = futures::future::join_all(items.into_iter().map(f)).await;
    results.into_iter().collect::<Result<Vec<()>>>().map(|_| ())
}

#[async_trait]
impl Orchestrator for DockerOrchestrator {
    fn capabilities(&self) -> OrchestratorCapabilities {
        OrchestratorCapabilities::new("docker")
    }

    async fn deploy(&self, release: &Release) -> Result<()> {
        Self::check_release(release)?;
        let (app, version) = (&release.app, &release.version);
        let existing = self.list(app, Some(version)).await?;
        if let Some(other) = existing.iter().find(|c| !labels::same_release(&c.release, release)) {
            return Err(Error::Conflict {
                message: format!(
                    "version {version} of app {app} already runs another release (image `{}`, {} replicas, port {}); a version id names one immutable release: deploy under a new version id, or retire {version} first",
                    other.release.image, other.release.replicas, other.release.port
                ),
            });
        }
        if existing.iter().any(|c| c.retire_mark.is_some()) {
            debug!(%app, %version, "version is retiring: nothing is created or replaced");
            return Ok(());
        }
        let mut live: Vec<&ManagedContainer> = existing.iter().filter(|c| c.is_live()).collect();
        let dead: Vec<&ManagedContainer> = existing
            .iter()
            .filter(|c| !c.is_live() && c.state != ContainerSummaryStateEnum::REMOVING)
            .collect();
        // More live instances than replicas happens only when an interrupted call's create landed after
        // a later call had listed the containers. Keep the running, oldest ones; stop the rest.
        live.sort_by_key(|c| (c.state == ContainerSummaryStateEnum::CREATED, c.created, c.docker_id.clone()));
        let surplus = live.split_off(live.len().min(release.replicas as usize));
        let missing = (release.replicas as usize).saturating_sub(live.len());
        if missing > 0 || live.iter().any(|c| c.state == ContainerSummaryStateEnum::CREATED) {
            self.check_image(release).await?;
            let secret_file = self.secrets.ensure(app, &self.secret)?;
            let created_at =
                existing.iter().map(|c| c.version_created_at).min().unwrap_or_else(SystemTime::now);
            if missing > 0 {
                info!(%app, %version, missing, replacing = dead.len(), "creating instances");
            }
            // Containers created by an interrupted earlier call: start them.
            let not_started = live.iter().filter(|c| c.state == ContainerSummaryStateEnum::CREATED);
            all(not_started, |c| self.start(&c.docker_id, &c.instance)).await?;
            all(0..missing, |_| self.create_instance(release, &secret_file, created_at)).await?;
        }
        all(surplus, |c| async move {
            info!(instance = %c.instance, "stopping a surplus instance");
            if c.has_process() {
                // It exits on SIGTERM; a later deploy removes it as an exited container.
                self.signal(c, "SIGTERM").await
            } else {
                self.remove(c).await
            }
        })
        .await?;
        // Crashed instances are removed only once their replacements exist, so the version never has
        // zero containers (its creation time and release stay recorded).
        all(dead, |c| async move {
            info!(instance = %c.instance, "removing crashed instance");
            self.remove(c).await
        })
        .await
    }

    async fn versions(&self, app: &AppName) -> Result<Vec<VersionState>> {
        Ok(observe::group_versions(&self.list(app, None).await?))
    }

    async fn retire(&self, app: &AppName, version: &VersionId) -> Result<()> {
        let mut containers = self.list(app, Some(version)).await?;
        if containers.is_empty() {
            return Ok(());
        }
        info!(%app, %version, instances = containers.len(), "retiring version");
        // Step 1: every container is marked before anything else happens, so that after a crash at any
        // point whatever remains still says the version is retiring.
        let mut just_marked = vec![false; containers.len()];
        let now = SystemTime::now();
        for (c, just) in containers.iter_mut().zip(just_marked.iter_mut()) {
            if c.retire_mark.is_none() {
                *just = self.rename(c, RetireMark::Marked(now)).await?;
            }
        }
        // Step 2: SIGTERM once each, then wait, SIGKILL after the grace period, remove.
        all(containers.iter_mut().zip(just_marked), |(c, just)| async move {
            self.signal_once(c, just).await?;
            self.finish_retiring(c).await
        })
        .await?;
        Ok(())
    }
}
