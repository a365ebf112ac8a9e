//! The drain calls as the engine makes them: every answer must name the instance it was sent to.
//!
//! An endpoint is an address, and addresses are reused: a task that stopped gives its private IP to the
//! next one, a relay may reach the wrong task. An answer whose `instance_id` is not the instance's own is
//! refused here, once, for every [`DrainClient`] implementation, so the engine never records a drain
//! acknowledgement or a session count for the wrong instance.
//!
//! Not for: implementing a client (implement [`DrainClient`]; these functions call it).

use std::time::Duration;

use super::{DrainClient, InstanceStatus};
use crate::{Error, Instance, Result};

/// Accepts `status` only if it names `instance`.
pub fn check_identity(instance: &Instance, status: InstanceStatus) -> Result<InstanceStatus> {
    if status.instance_id == instance.id.0 {
        return Ok(status);
    }
    let at = instance.endpoint.as_ref().map(|e| format!(" at {e}")).unwrap_or_default();
    Err(Error::Conflict {
        message: format!(
            "the drain-protocol answer for instance {}{at} names instance {:?}: the address now belongs to \
             another instance (reused IP) or the app reports a wrong id (PULSE_INSTANCE_ID must equal the \
             orchestrator's instance id, see docs/drain-protocol.md \"Instance identity\"); the answer is ignored",
            instance.id, status.instance_id
        ),
    })
}

/// [`DrainClient::drain`], with the answer's identity checked.
pub async fn drain(
    client: &dyn DrainClient,
    instance: &Instance,
    deadline: Duration,
) -> Result<InstanceStatus> {
    check_identity(instance, client.drain(instance, deadline).await?)
}

/// [`DrainClient::status`], with the answer's identity checked.
pub async fn status(client: &dyn DrainClient, instance: &Instance) -> Result<InstanceStatus> {
    check_identity(instance, client.status(instance).await?)
}

/// [`DrainClient::undrain`], with the answer's identity checked.
pub async fn undrain(client: &dyn DrainClient, instance: &Instance) -> Result<InstanceStatus> {
    check_identity(instance, client.undrain(instance).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drain::ServingState;
    use crate::{Endpoint, InstanceState};

    fn instance(id: &str) -> Instance {
        Instance {
            id: id.into(),
            version: crate::VersionId::new("v1").unwrap(),
            state: InstanceState::Running,
            endpoint: Some(Endpoint::new("127.0.0.1", 9)),
        }
    }

    fn status(id: &str) -> InstanceStatus {
        InstanceStatus {
            version: "v1".into(),
            instance_id: id.into(),
            state: ServingState::Serving,
            active_sessions: 0,
            draining_since: None,
            deadline: None,
        }
    }

    #[test]
    fn an_answer_naming_another_instance_is_refused() {
        assert!(check_identity(&instance("a"), status("a")).is_ok());
        let err = check_identity(&instance("a"), status("b")).unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err}");
        assert!(err.to_string().contains("\"b\""), "{err}");
        assert!(!err.is_retryable());
    }
}
