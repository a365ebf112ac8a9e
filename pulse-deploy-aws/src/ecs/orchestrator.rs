//! [`EcsOrchestrator`]: each version of an app is an ECS service `pulse-{app}-{version}` (Fargate,
//! `awsvpc`) running a task definition revision that holds the release.
//!
//! Everything the engine needs after a restart is read back from ECS: the services of the app (by name
//! prefix and the `pulse-deploy:app` tag), the release (from the task definition), the phase (the
//! `pulse-deploy:phase` tag, set to `retiring` before anything is stopped), the creation time (the
//! service's `createdAt`) and the tasks. Every call is idempotent: `CreateService` carries a client
//! token derived from the release, an identical task definition revision is reused, and every step
//! checks the state first.
//!
//! The orchestrator never registers tasks in a target group itself (services have no `loadBalancers`):
//! the router registers the instances the engine gives it, so a replacement task that ECS starts in a
//! draining version never takes a new session.
//!
//! Not for: routing (see [`crate::alb::AlbRouter`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, DesiredStatus, LaunchType, NetworkConfiguration, PropagateTags,
    Service, ServiceField, Tag, TaskDefinitionField,
};
use pulse_deploy_core::{
    AppName, Error, Orchestrator, OrchestratorCapabilities, Release, Result, VersionId, VersionState,
};

use crate::client::AwsConfig;
use crate::ecs::task_definition::{self, family};
use crate::ecs::tasks::{instance, service_group};
use crate::ecs::EcsConfig;
use crate::errors::map_sdk_error;
use crate::limits::{ecs_orchestrator_capabilities, validate_release};
use crate::names::{service_name, NAME_PREFIX};
use crate::tags::{
    release_hash, PHASE_RETIRING, TAG_APP, TAG_CREATED_AT, TAG_PHASE, TAG_RELEASE_HASH, TAG_VERSION,
};

const PROVIDER: &str = "ecs";

/// Runs each version of an app as an ECS service.
#[derive(Debug)]
pub struct EcsOrchestrator {
    client: aws_sdk_ecs::Client,
    config: EcsConfig,
    /// Releases by task definition ARN: revisions are immutable, so this cache is always right and safe
    /// to lose.
    releases: Mutex<HashMap<String, Release>>,
}

/// One service of the app, as read from ECS.
#[derive(Debug, Clone)]
struct VersionService {
    name: String,
    arn: String,
    status: String,
    desired_count: i32,
    task_definition: String,
    created_at: SystemTime,
    tags: HashMap<String, String>,
}

impl VersionService {
    fn from_sdk(s: &Service) -> Option<Self> {
        let tags: HashMap<String, String> = s
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
            .collect();
        let created_at = tags
            .get(TAG_CREATED_AT)
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
            .or_else(|| s.created_at().and_then(|t| SystemTime::try_from(*t).ok()))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Some(VersionService {
            name: s.service_name()?.to_owned(),
            arn: s.service_arn()?.to_owned(),
            status: s.status().unwrap_or("ACTIVE").to_owned(),
            desired_count: s.desired_count(),
            task_definition: s.task_definition()?.to_owned(),
            created_at,
            tags,
        })
    }

    fn retiring(&self) -> bool {
        self.status == "DRAINING" || self.tags.get(TAG_PHASE).map(String::as_str) == Some(PHASE_RETIRING)
    }
}

impl EcsOrchestrator {
    /// An orchestrator using `aws` with `config`.
    pub fn new(aws: &AwsConfig, config: EcsConfig) -> Self {
        EcsOrchestrator { client: aws.ecs(), config, releases: Mutex::new(HashMap::new()) }
    }

    /// An orchestrator from the standard AWS chain and `PULSE_AWS_*` variables (see
    /// [`EcsConfig::from_env`]).
    pub async fn from_env() -> Result<Self> {
        let config = EcsConfig::from_env()?;
        Ok(Self::new(&AwsConfig::from_env().await, config))
    }

    /// The configuration.
    pub fn config(&self) -> &EcsConfig {
        &self.config
    }

    /// The service of one version, if ECS knows it (INACTIVE services count as gone).
    async fn service(&self, app: &AppName, version: &VersionId) -> Result<Option<VersionService>> {
        let name = service_name(app, version)?;
        let out = self
            .config
            .retry
            .run("DescribeServices", || async {
                self.client
                    .describe_services()
                    .cluster(&self.config.cluster)
                    .services(&name)
                    .include(ServiceField::Tags)
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(PROVIDER, "describing a service", e))
            })
            .await?;
        Ok(out.services().iter().filter_map(VersionService::from_sdk).find(|s| {
            s.status != "INACTIVE" && s.tags.get(TAG_APP).map(String::as_str) == Some(app.as_str())
        }))
    }

    /// Every service of `app` (by name prefix, then by tag: `pulse-a-` also prefixes app `a-b`'s names).
    async fn services(&self, app: &AppName) -> Result<Vec<VersionService>> {
        let prefix = format!("{NAME_PREFIX}{app}-");
        let mut arns = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .config
                .retry
                .run("ListServices", || async {
                    self.client
                        .list_services()
                        .cluster(&self.config.cluster)
                        .set_next_token(next.clone())
                        .max_results(100)
                        .send()
                        .await
                        .map_err(|e| map_sdk_error(PROVIDER, "listing services", e))
                })
                .await?;
            arns.extend(
                page.service_arns()
                    .iter()
                    .filter(|arn| arn.rsplit('/').next().is_some_and(|n| n.starts_with(&prefix)))
                    .cloned(),
            );
            next = page.next_token().map(str::to_owned);
            if next.is_none() {
                break;
            }
        }
        let mut out = Vec::new();
        for chunk in arns.chunks(10) {
            let described = self
                .config
                .retry
                .run("DescribeServices", || async {
                    self.client
                        .describe_services()
                        .cluster(&self.config.cluster)
                        .set_services(Some(chunk.to_vec()))
                        .include(ServiceField::Tags)
                        .send()
                        .await
                        .map_err(|e| map_sdk_error(PROVIDER, "describing services", e))
                })
                .await?;
            out.extend(
                described
                    .services()
                    .iter()
                    .filter_map(VersionService::from_sdk)
                    .filter(|s| s.status != "INACTIVE")
                    .filter(|s| s.tags.get(TAG_APP).map(String::as_str) == Some(app.as_str())),
            );
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    /// The release stored in a task definition revision.
    async fn release_of(&self, task_definition_arn: &str) -> Result<Release> {
        if let Some(r) = self.releases.lock().expect("release cache").get(task_definition_arn) {
            return Ok(r.clone());
        }
        let out = self
            .config
            .retry
            .run("DescribeTaskDefinition", || async {
                self.client
                    .describe_task_definition()
                    .task_definition(task_definition_arn)
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(PROVIDER, "reading a task definition", e))
            })
            .await?;
        let td =
            out.task_definition().ok_or_else(|| Error::NotFound { what: task_definition_arn.to_owned() })?;
        let release = task_definition::release_of(td)?;
        self.releases.lock().expect("release cache").insert(task_definition_arn.to_owned(), release.clone());
        Ok(release)
    }

    /// The active revision of the release's family whose release hash is this release's, if any.
    async fn identical_revision(&self, release: &Release) -> Result<Option<String>> {
        let family = family(release)?;
        let out = self
            .config
            .retry
            .run("DescribeTaskDefinition", || async {
                match self
                    .client
                    .describe_task_definition()
                    .task_definition(&family)
                    .include(TaskDefinitionField::Tags)
                    .send()
                    .await
                {
                    Ok(out) => Ok(Some(out)),
                    // A family without an active revision: ECS answers ClientException.
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_client_exception()) => Ok(None),
                    Err(e) => Err(map_sdk_error(PROVIDER, "looking for an identical task definition", e)),
                }
            })
            .await?;
        let Some(out) = out else { return Ok(None) };
        let hash = release_hash(release);
        let same = out.tags().iter().any(|t| t.key() == Some(TAG_RELEASE_HASH) && t.value() == Some(&hash));
        Ok(if same {
            out.task_definition().and_then(|td| td.task_definition_arn()).map(str::to_owned)
        } else {
            None
        })
    }

    /// Registers the release's task definition, or reuses an identical revision.
    async fn task_definition_for(&self, release: &Release) -> Result<String> {
        if let Some(arn) = self.identical_revision(release).await? {
            return Ok(arn);
        }
        let spec = task_definition::spec(release, &self.config)?;
        let out = self
            .config
            .retry
            .run("RegisterTaskDefinition", || async {
                task_definition::register_request(&self.client, &spec, &self.config)
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(PROVIDER, "registering the task definition", e))
            })
            .await?;
        out.task_definition()
            .and_then(|td| td.task_definition_arn())
            .map(str::to_owned)
            .ok_or_else(|| Error::provider(PROVIDER, "RegisterTaskDefinition returned no ARN", true))
    }

    async fn create_service(&self, release: &Release, task_definition: &str) -> Result<()> {
        let name = service_name(&release.app, &release.version)?;
        let mut tags = crate::tags::version_tags(
            &release.app,
            &release.version,
            crate::tags::PHASE_LIVE,
            Some(release),
        )?;
        let now_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis();
        tags.insert(TAG_CREATED_AT.to_owned(), now_ms.to_string());
        crate::limits::validate_tags(&tags)?;
        let tags: Vec<Tag> = tags.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        let network = NetworkConfiguration::builder()
            .awsvpc_configuration(
                AwsVpcConfiguration::builder()
                    .set_subnets(Some(self.config.subnets.clone()))
                    .set_security_groups(Some(self.config.security_groups.clone()))
                    .assign_public_ip(if self.config.assign_public_ip {
                        AssignPublicIp::Enabled
                    } else {
                        AssignPublicIp::Disabled
                    })
                    .build()
                    .map_err(|e| {
                        Error::provider_source(PROVIDER, "building the network configuration", false, e)
                    })?,
            )
            .build();
        // The same token for the same release: a retried or resumed create returns the same service.
        let token: String = release_hash(release).chars().take(32).collect();
        self.config
            .retry
            .run("CreateService", || async {
                self.client
                    .create_service()
                    .cluster(&self.config.cluster)
                    .service_name(&name)
                    .task_definition(task_definition)
                    .desired_count(release.replicas as i32)
                    .launch_type(LaunchType::Fargate)
                    .network_configuration(network.clone())
                    .propagate_tags(PropagateTags::Service)
                    .enable_ecs_managed_tags(true)
                    .client_token(&token)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(PROVIDER, "creating the service", e))
            })
            .await?;
        tracing::info!(app = %release.app, version = %release.version, service = %name, "created ECS service");
        Ok(())
    }

    /// Task ARNs of a service with the given desired status.
    async fn task_arns(&self, service: &str, desired: DesiredStatus) -> Result<Vec<String>> {
        let mut arns = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .config
                .retry
                .run("ListTasks", || async {
                    self.client
                        .list_tasks()
                        .cluster(&self.config.cluster)
                        .service_name(service)
                        .desired_status(desired.clone())
                        .set_next_token(next.clone())
                        .send()
                        .await
                        .map_err(|e| map_sdk_error(PROVIDER, "listing tasks", e))
                })
                .await?;
            arns.extend(page.task_arns().iter().cloned());
            next = page.next_token().map(str::to_owned);
            if next.is_none() {
                return Ok(arns);
            }
        }
    }

    /// The tasks of a service (running, stopping, and recently stopped ones) as instances.
    async fn instances(
        &self,
        service: &VersionService,
        release: &Release,
    ) -> Result<Vec<pulse_deploy_core::Instance>> {
        let mut by_service = self.instances_of(&[(service, release)]).await?;
        Ok(by_service.remove(&service.name).unwrap_or_default())
    }

    /// The tasks of several services as instances, by service name: `ListTasks` per service (running
    /// and stopped), then one `DescribeTasks` per 100 tasks of all of them together.
    async fn instances_of(
        &self,
        services: &[(&VersionService, &Release)],
    ) -> Result<HashMap<String, Vec<pulse_deploy_core::Instance>>> {
        let mut arns = Vec::new();
        for (service, _) in services {
            arns.extend(self.task_arns(&service.name, DesiredStatus::Running).await?);
            arns.extend(self.task_arns(&service.name, DesiredStatus::Stopped).await?);
        }
        arns.sort();
        arns.dedup();
        let by_group: HashMap<String, (&str, &Release)> =
            services.iter().map(|(s, r)| (service_group(&s.name), (s.name.as_str(), *r))).collect();
        let mut out: HashMap<String, Vec<pulse_deploy_core::Instance>> =
            services.iter().map(|(s, _)| (s.name.clone(), Vec::new())).collect();
        for chunk in arns.chunks(100) {
            let described = self
                .config
                .retry
                .run("DescribeTasks", || async {
                    self.client
                        .describe_tasks()
                        .cluster(&self.config.cluster)
                        .set_tasks(Some(chunk.to_vec()))
                        .send()
                        .await
                        .map_err(|e| map_sdk_error(PROVIDER, "describing tasks", e))
                })
                .await?;
            for task in described.tasks() {
                let Some((name, release)) = task.group().and_then(|g| by_group.get(g)) else { continue };
                if let Some(i) = instance(task, &release.version, release.port) {
                    out.entry((*name).to_owned()).or_default().push(i);
                }
            }
        }
        for instances in out.values_mut() {
            instances.sort_by(|a, b| a.id.cmp(&b.id));
        }
        Ok(out)
    }

    async fn tag_retiring(&self, service: &VersionService) -> Result<()> {
        self.config
            .retry
            .run("TagResource", || async {
                self.client
                    .tag_resource()
                    .resource_arn(&service.arn)
                    .tags(Tag::builder().key(TAG_PHASE).value(PHASE_RETIRING).build())
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(PROVIDER, "marking the service retiring", e))
            })
            .await?;
        Ok(())
    }

    async fn scale_to_zero(&self, service: &VersionService) -> Result<()> {
        self.config
            .retry
            .run("UpdateService", || async {
                self.client
                    .update_service()
                    .cluster(&self.config.cluster)
                    .service(&service.name)
                    .desired_count(0)
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(PROVIDER, "scaling the service to 0", e))
            })
            .await?;
        Ok(())
    }

    async fn delete_service(&self, service: &VersionService) -> Result<()> {
        self.config
            .retry
            .run("DeleteService", || async {
                match self
                    .client
                    .delete_service()
                    .cluster(&self.config.cluster)
                    .service(&service.name)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_service_not_found_exception()) => {
                        Ok(())
                    }
                    Err(e) => Err(map_sdk_error(PROVIDER, "deleting the service", e)),
                }
            })
            .await
    }

    /// Deregisters every active revision of the version's family (normally one).
    async fn deregister_task_definitions(&self, app: &AppName, version: &VersionId) -> Result<()> {
        let family = service_name(app, version)?;
        let out = self
            .config
            .retry
            .run("ListTaskDefinitions", || async {
                self.client
                    .list_task_definitions()
                    .family_prefix(&family)
                    .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(PROVIDER, "listing task definitions", e))
            })
            .await?;
        // family_prefix is a prefix: `pulse-a-v1` also prefixes `pulse-a-v10`.
        let mine: Vec<String> = out
            .task_definition_arns()
            .iter()
            .filter(|arn| {
                arn.rsplit('/').next().and_then(|fr| fr.rsplit_once(':')).is_some_and(|(f, _)| f == family)
            })
            .cloned()
            .collect();
        for arn in mine {
            self.config
                .retry
                .run("DeregisterTaskDefinition", || async {
                    self.client
                        .deregister_task_definition()
                        .task_definition(&arn)
                        .send()
                        .await
                        .map_err(|e| map_sdk_error(PROVIDER, "deregistering the task definition", e))
                })
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Orchestrator for EcsOrchestrator {
    fn capabilities(&self) -> OrchestratorCapabilities {
        ecs_orchestrator_capabilities()
    }

    #[tracing::instrument(skip_all, fields(app = %release.app, version = %release.version))]
    async fn deploy(&self, release: &Release) -> Result<()> {
        validate_release(release)?;
        if let Some(existing) = self.service(&release.app, &release.version).await? {
            let hash = release_hash(release);
            if existing.tags.get(TAG_RELEASE_HASH) != Some(&hash) {
                return Err(Error::Conflict {
                    message: format!(
                        "version {} of {} already runs another release; a version id names one immutable \
                         release: deploy under a new version id",
                        release.version, release.app
                    ),
                });
            }
            // A live service: ECS keeps its desired count and replaces crashed tasks itself. A retiring
            // one is left alone.
            return Ok(());
        }
        let task_definition = self.task_definition_for(release).await?;
        self.create_service(release, &task_definition).await
    }

    async fn versions(&self, app: &AppName) -> Result<Vec<VersionState>> {
        let mut mine = Vec::new();
        for service in self.services(app).await? {
            let release = self.release_of(&service.task_definition).await?;
            if release.app != *app
                || service.tags.get(TAG_VERSION).map(String::as_str) != Some(release.version.as_str())
            {
                continue;
            }
            mine.push((service, release));
        }
        let pairs: Vec<(&VersionService, &Release)> = mine.iter().map(|(s, r)| (s, r)).collect();
        let mut instances = self.instances_of(&pairs).await?;
        Ok(mine
            .into_iter()
            .map(|(service, release)| VersionState {
                retiring: service.retiring(),
                created_at: service.created_at,
                instances: instances.remove(&service.name).unwrap_or_default(),
                release,
            })
            .collect())
    }

    #[tracing::instrument(skip(self))]
    async fn retire(&self, app: &AppName, version: &VersionId) -> Result<()> {
        let Some(service) = self.service(app, version).await? else {
            // Gone already (or never there): make sure no revision is left behind.
            return self.deregister_task_definitions(app, version).await;
        };
        if service.status == "DRAINING" {
            return Ok(());
        }
        if !service.retiring() {
            self.tag_retiring(&service).await?;
        }
        if service.desired_count != 0 {
            // SIGTERM to every task; ECS sends SIGKILL after the task definition's stopTimeout.
            self.scale_to_zero(&service).await?;
            return Ok(());
        }
        let release = self.release_of(&service.task_definition).await?;
        let instances = self.instances(&service, &release).await?;
        if instances.iter().any(|i| i.state != pulse_deploy_core::InstanceState::Exited) {
            return Ok(());
        }
        self.delete_service(&service).await?;
        self.deregister_task_definitions(app, version).await?;
        tracing::info!(service = %service.name, "retired ECS service");
        Ok(())
    }
}
