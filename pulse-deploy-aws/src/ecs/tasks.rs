//! ECS tasks as the core's [`Instance`]s: the task ARN is the instance id, the ENI's private IP and the
//! container port are its endpoint, and ECS's task lifecycle maps onto [`InstanceState`].
//!
//! Not for: listing tasks (see [`crate::ecs::EcsOrchestrator`]).

use aws_sdk_ecs::types::Task;
use pulse_deploy_core::{Endpoint, Instance, InstanceId, InstanceState, VersionId};

/// The `group` ECS gives the tasks of a service. `ListTasks` is filtered by it again, since the filter by
/// service name is not honoured everywhere (moto ignores it).
pub fn service_group(service: &str) -> String {
    format!("service:{service}")
}

/// The state of a task from its last and desired status.
pub fn instance_state(last_status: Option<&str>, desired_status: Option<&str>) -> InstanceState {
    let stopping = desired_status == Some("STOPPED");
    match last_status.unwrap_or("PROVISIONING") {
        "STOPPED" | "DELETED" => InstanceState::Exited,
        "DEACTIVATING" | "STOPPING" | "DEPROVISIONING" => InstanceState::Stopping,
        _ if stopping => InstanceState::Stopping,
        "RUNNING" => InstanceState::Running,
        _ => InstanceState::Starting,
    }
}

/// The private IPv4 address of a task's network interface (`awsvpc`), once attached.
pub fn private_ip(task: &Task) -> Option<&str> {
    task.attachments()
        .iter()
        .filter(|a| a.r#type() == Some("ElasticNetworkInterface"))
        .flat_map(|a| a.details())
        .find(|d| d.name() == Some("privateIPv4Address"))
        .and_then(|d| d.value())
}

/// The task as an instance of `version` whose app listens on `port`.
pub fn instance(task: &Task, version: &VersionId, port: u16) -> Option<Instance> {
    let id = task.task_arn()?;
    let state = instance_state(task.last_status(), task.desired_status());
    let endpoint = match state {
        InstanceState::Exited => None,
        _ => private_ip(task).map(|ip| Endpoint::new(ip, port)),
    };
    Some(Instance { id: InstanceId(id.to_owned()), version: version.clone(), state, endpoint })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{Attachment, KeyValuePair};

    #[test]
    fn lifecycle_maps_to_instance_states() {
        assert_eq!(instance_state(Some("PENDING"), Some("RUNNING")), InstanceState::Starting);
        assert_eq!(instance_state(Some("RUNNING"), Some("RUNNING")), InstanceState::Running);
        assert_eq!(instance_state(Some("RUNNING"), Some("STOPPED")), InstanceState::Stopping);
        assert_eq!(instance_state(Some("DEPROVISIONING"), Some("STOPPED")), InstanceState::Stopping);
        assert_eq!(instance_state(Some("STOPPED"), Some("STOPPED")), InstanceState::Exited);
    }

    #[test]
    fn the_endpoint_is_the_eni_address_and_the_container_port() {
        let task = Task::builder()
            .task_arn("arn:aws:ecs:us-east-1:1:task/c/abc")
            .last_status("RUNNING")
            .desired_status("RUNNING")
            .attachments(
                Attachment::builder()
                    .r#type("ElasticNetworkInterface")
                    .details(KeyValuePair::builder().name("privateIPv4Address").value("10.0.1.7").build())
                    .build(),
            )
            .build();
        let i = instance(&task, &VersionId::new("v1").unwrap(), 8000).unwrap();
        assert_eq!(i.endpoint, Some(Endpoint::new("10.0.1.7", 8000)));
        assert_eq!(i.id.0, "arn:aws:ecs:us-east-1:1:task/c/abc");
    }
}
