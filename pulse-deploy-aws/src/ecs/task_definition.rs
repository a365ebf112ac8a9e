//! A release as an ECS task definition, and back: the release is too large and too sensitive for tags,
//! so it is stored where ECS keeps it anyway. The container's environment holds `release.env` (plus the
//! variables the deployer sets), and a Docker label holds the rest of the release as JSON. A hash of the
//! whole release is a tag of the revision, so an identical revision is reused instead of registering a
//! new one on every run.
//!
//! Not for: the calls that register or find revisions (see [`crate::ecs::EcsOrchestrator`]).

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, KeyValuePair, LogConfiguration, LogDriver, NetworkMode, PortMapping,
    Secret as EcsSecret, Tag, TaskDefinition, TransportProtocol,
};
use pulse_deploy_core::{Error, Release, Result};

use crate::ecs::EcsConfig;
use crate::tags::{version_tags, PHASE_LIVE};

/// The name of the app's container in every task definition.
pub const CONTAINER_NAME: &str = "app";

/// The Docker label holding the release (without its environment) as JSON.
pub const RELEASE_LABEL: &str = "pulse-deploy.release";

/// Environment variables the deployer sets in the container (a release may not set them itself).
pub const DEPLOYER_ENV: &[&str] = &["PULSE_APP", "PULSE_VERSION", "PULSE_DRAIN_SECRET", "PULSE_INSTANCE_ID"];

/// The task definition family of a version: the same name as its service.
pub fn family(release: &Release) -> Result<String> {
    crate::names::service_name(&release.app, &release.version)
}

/// Everything `RegisterTaskDefinition` takes for a release.
#[derive(Debug, Clone)]
pub struct TaskDefinitionSpec {
    /// The family (`pulse-{app}-{version}`).
    pub family: String,
    /// The app's container.
    pub container: ContainerDefinition,
    /// Tags of the revision (app, version, phase, release hash).
    pub tags: Vec<Tag>,
}

/// The task definition of a release under `config` (roles, log group, drain secret, size).
pub fn spec(release: &Release, config: &EcsConfig) -> Result<TaskDefinitionSpec> {
    let mut without_env = release.clone();
    without_env.env.clear();
    let label = serde_json::to_string(&without_env)
        .map_err(|e| Error::provider_source("ecs", "encoding the release", false, e))?;
    let mut env: BTreeMap<String, String> = release.env.clone();
    env.insert("PULSE_APP".into(), release.app.to_string());
    env.insert("PULSE_VERSION".into(), release.version.to_string());
    let mut container = ContainerDefinition::builder()
        .name(CONTAINER_NAME)
        .image(&release.image)
        .essential(true)
        // The container may use all of the task's memory (a hard limit equal to the task size).
        .memory(config.memory_mib()?)
        .stop_timeout(release.stop_grace.as_secs() as i32)
        .port_mappings(
            PortMapping::builder()
                .container_port(i32::from(release.port))
                .protocol(TransportProtocol::Tcp)
                .build(),
        )
        .docker_labels(RELEASE_LABEL, label)
        .set_environment(Some(
            env.into_iter().map(|(k, v)| KeyValuePair::builder().name(k).value(v).build()).collect(),
        ));
    if let Some(arn) = &config.drain_secret_arn {
        container = container.secrets(
            EcsSecret::builder().name("PULSE_DRAIN_SECRET").value_from(arn).build().map_err(|e| {
                Error::provider_source("ecs", "building the drain secret reference", false, e)
            })?,
        );
    }
    if let Some(group) = &config.log_group {
        container = container.log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", group)
                .options("awslogs-stream-prefix", release.version.to_string())
                .build()
                .map_err(|e| Error::provider_source("ecs", "building the log configuration", false, e))?,
        );
    }
    let tags = version_tags(&release.app, &release.version, PHASE_LIVE, Some(release))?
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    Ok(TaskDefinitionSpec { family: family(release)?, container: container.build(), tags })
}

/// The register call for a spec (Fargate, `awsvpc`, the configured size and roles).
pub fn register_request(
    client: &aws_sdk_ecs::Client,
    spec: &TaskDefinitionSpec,
    config: &EcsConfig,
) -> aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder {
    client
        .register_task_definition()
        .family(&spec.family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu(&config.cpu)
        .memory(&config.memory)
        .set_execution_role_arn(config.execution_role_arn.clone())
        .set_task_role_arn(config.task_role_arn.clone())
        .container_definitions(spec.container.clone())
        .set_tags(Some(spec.tags.clone()))
}

/// Reads the release back from a task definition registered by [`spec`], and checks it again.
pub fn release_of(task_definition: &TaskDefinition) -> Result<Release> {
    let arn = task_definition.task_definition_arn().unwrap_or("a task definition");
    let bad = |why: &str| Error::Conflict {
        message: format!(
            "{arn} was not registered by pulse-deploy ({why}); retire the version or remove the resource"
        ),
    };
    let container = task_definition
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some(CONTAINER_NAME))
        .ok_or_else(|| bad("no `app` container"))?;
    let label = container
        .docker_labels()
        .and_then(|l| l.get(RELEASE_LABEL))
        .ok_or_else(|| bad("no release label"))?;
    let mut release: Release = serde_json::from_str(label).map_err(|_| bad("an unreadable release label"))?;
    release.env = container
        .environment()
        .iter()
        .filter_map(|kv| Some((kv.name()?.to_owned(), kv.value().unwrap_or_default().to_owned())))
        .filter(|(k, _)| !DEPLOYER_ENV.contains(&k.as_str()))
        .collect();
    release.validate()?;
    Ok(release)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_release_reads_back_from_its_task_definition() {
        let release = Release::builder("shop", "v3", "shop:3")
            .env("PLAIN", "value")
            .env("TRICKY", "a b=c;d,\"e\" ü")
            .stop_grace(Duration::from_secs(7))
            .build()
            .unwrap();
        let config = EcsConfig::for_tests();
        let spec = spec(&release, &config).unwrap();
        assert_eq!(spec.family, "pulse-shop-v3");
        assert_eq!(spec.container.stop_timeout(), Some(7));
        let td = TaskDefinition::builder()
            .task_definition_arn("arn:aws:ecs:us-east-1:1:task-definition/pulse-shop-v3:1")
            .container_definitions(spec.container)
            .build();
        assert_eq!(release_of(&td).unwrap(), release);
    }

    #[test]
    fn a_foreign_task_definition_is_refused() {
        let td = TaskDefinition::builder()
            .container_definitions(ContainerDefinition::builder().name("app").build())
            .build();
        assert!(matches!(release_of(&td), Err(Error::Conflict { .. })));
    }
}
