//! The controller as the Terraform module runs it (`terraform/controller.tf`), created on the emulator by
//! the fixture: the task definition `pulse-{app}-controller` (image `pulse-deploy-controller:*`, command
//! `watch`, the module's `environment` output plus `AWS_REGION` as its environment, `stopTimeout` 30 s)
//! and the one-task ECS service `controller` in the task subnets. The scheduler stand-in starts its task;
//! the data plane ([`super::demo_tasks`], with a controller binary) runs `pulse-deploy watch` in it.
//! Applying the module itself takes minutes on moto (`tests/terraform_moto.rs` does); this builds the same
//! ECS resources in milliseconds.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, KeyValuePair, LaunchType,
    NetworkConfiguration, NetworkMode,
};
use pulse_deploy_core::AppName;

use super::{Emulator, CLUSTER};

/// The controller's image (any tag of [`super::demo_tasks::CONTROLLER_IMAGE_PREFIX`]).
pub(crate) const IMAGE: &str = "pulse-deploy-controller:test";

/// The controller's ECS service name (the module's and [`pulse_deploy_aws::provider::CONTROLLER_SERVICE`]).
pub(crate) const SERVICE: &str = pulse_deploy_aws::provider::CONTROLLER_SERVICE;

/// The provider's configuration as the module's `environment` output gives it for `app`.
pub(crate) fn environment(
    emulator: &Emulator,
    app: &AppName,
    listener_arn: &str,
) -> BTreeMap<String, String> {
    [
        ("PULSE_AWS_APP", app.to_string()),
        ("PULSE_AWS_CLUSTER", CLUSTER.to_owned()),
        ("PULSE_AWS_LISTENER_ARN", listener_arn.to_owned()),
        ("PULSE_AWS_VPC_ID", emulator.network.vpc_id.clone()),
        ("PULSE_AWS_TASK_SUBNETS", emulator.network.subnets.join(",")),
        ("PULSE_AWS_TASK_SECURITY_GROUP", emulator.network.security_group.clone()),
        ("PULSE_AWS_ASSIGN_PUBLIC_IP", "false".to_owned()),
        ("PULSE_AWS_EXECUTION_ROLE_ARN", "arn:aws:iam::123456789012:role/pulse-tests-execution".to_owned()),
        ("PULSE_AWS_DRAIN_SECRET_ARN", emulator.drain_secret_arn.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn family(app: &AppName) -> String {
    format!("pulse-{app}-controller")
}

/// Registers the controller's task definition and creates its service (desired count 1).
pub(crate) async fn create(emulator: &Emulator, app: &AppName, env: &BTreeMap<String, String>) {
    let ecs = emulator.aws.ecs();
    let mut environment: Vec<KeyValuePair> =
        env.iter().map(|(k, v)| KeyValuePair::builder().name(k).value(v).build()).collect();
    environment.push(KeyValuePair::builder().name("AWS_REGION").value("us-east-1").build());
    let container = ContainerDefinition::builder()
        .name("controller")
        .image(IMAGE)
        .essential(true)
        .memory(512)
        .command("watch")
        .stop_timeout(30)
        .set_environment(Some(environment))
        .build();
    let td = ecs
        .register_task_definition()
        .family(family(app))
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .cpu("256")
        .memory("512")
        .execution_role_arn("arn:aws:iam::123456789012:role/pulse-tests-execution")
        .container_definitions(container)
        .send()
        .await
        .expect("RegisterTaskDefinition (controller)");
    let arn = td.task_definition().and_then(|t| t.task_definition_arn()).expect("arn").to_owned();
    let network = AwsVpcConfiguration::builder()
        .set_subnets(Some(emulator.network.subnets.clone()))
        .security_groups(&emulator.network.security_group)
        .assign_public_ip(AssignPublicIp::Disabled)
        .build()
        .expect("network");
    ecs.create_service()
        .cluster(CLUSTER)
        .service_name(SERVICE)
        .task_definition(arn)
        .desired_count(1)
        .launch_type(LaunchType::Fargate)
        .network_configuration(NetworkConfiguration::builder().awsvpc_configuration(network).build())
        .send()
        .await
        .expect("CreateService (controller)");
}

/// Scales the controller to 0 (ECS then stops its task: SIGTERM, SIGKILL after 30 s).
pub(crate) async fn scale_to_zero(emulator: &Emulator) {
    emulator
        .aws
        .ecs()
        .update_service()
        .cluster(CLUSTER)
        .service(SERVICE)
        .desired_count(0)
        .send()
        .await
        .expect("UpdateService (controller to 0)");
}

/// Deletes the controller's service and deregisters its task definition (what `terraform destroy` does
/// once it has stopped).
pub(crate) async fn delete(emulator: &Emulator, app: &AppName) {
    let ecs = emulator.aws.ecs();
    ecs.delete_service().cluster(CLUSTER).service(SERVICE).force(true).send().await.expect("DeleteService");
    let tds =
        ecs.list_task_definitions().family_prefix(family(app)).send().await.expect("ListTaskDefinitions");
    for arn in tds.task_definition_arns() {
        ecs.deregister_task_definition().task_definition(arn).send().await.expect("DeregisterTaskDefinition");
    }
}
