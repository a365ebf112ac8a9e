//! Reaching the Docker Engine: connection (honouring `DOCKER_HOST`), API version negotiation, and the
//! translation of Engine API errors into [`pulse_deploy_core::Error`] with a message saying what to check.
//!
//! Not for running containers; see [`super::DockerOrchestrator`].

use bollard::errors::Error as BollardError;
use bollard::Docker;
use pulse_deploy_core::{Error, Result};

/// What the user should check when the Docker Engine cannot be reached.
const UNREACHABLE_HELP: &str = "is the Docker Engine running (`docker version` shows a Server section)? \
    Is DOCKER_HOST right (unset means unix:///var/run/docker.sock)? \
    Can this user open the socket (member of the `docker` group, or root)?";

/// Connects to the Docker Engine named by `DOCKER_HOST` (default `unix:///var/run/docker.sock`),
/// negotiates the API version with the daemon (so a daemon as old as API 1.41, Docker 20.10, works) and
/// checks it answers. Errors are [`Error::Unavailable`] saying what to check.
pub async fn connect_docker() -> Result<Docker> {
    let host = std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
    connect_docker_at(&host).await
}

/// Like [`connect_docker`], for the daemon at `host` (`unix:///path`, `tcp://host:port`, `http://...`).
pub(super) async fn connect_docker_at(host: &str) -> Result<Docker> {
    let docker = Docker::connect_with_host(host).map_err(|e| unreachable(host, e))?;
    negotiate(docker, host).await
}

/// Negotiates the API version of an existing client and checks the daemon answers.
pub(super) async fn negotiate(docker: Docker, host: &str) -> Result<Docker> {
    let docker = docker.negotiate_version().await.map_err(|e| unreachable(host, e))?;
    docker.ping().await.map_err(|e| unreachable(host, e))?;
    tracing::debug!(host, api_version = %docker.client_version(), "connected to the Docker Engine");
    Ok(docker)
}

fn unreachable(host: &str, e: BollardError) -> Error {
    Error::Unavailable {
        what: format!("the Docker Engine at {host}"),
        message: format!("{e}; {UNREACHABLE_HELP}"),
    }
}

/// The HTTP status of an Engine API error response, if the daemon answered with one.
pub(crate) fn status_of(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// True for "no such container/image" answers.
pub(crate) fn is_not_found(e: &BollardError) -> bool {
    status_of(e) == Some(404)
}

/// Translates an Engine API error raised while `doing` something into a core error. Transport errors and
/// daemon-side 5xx are retryable; 4xx answers are not.
pub(crate) fn api_error(doing: impl Into<String>, e: BollardError) -> Error {
    let doing = doing.into();
    match &e {
        BollardError::DockerResponseServerError { status_code, message } => {
            let retryable = *status_code >= 500;
            Error::Provider {
                provider: "docker",
                message: format!("{doing}: the Docker Engine answered {status_code}: {message}"),
                retryable,
                source: Some(Box::new(e)),
            }
        }
        BollardError::RequestTimeoutError => {
            Error::Timeout { what: format!("docker: {doing}"), after: std::time::Duration::from_secs(120) }
        }
        BollardError::JsonDataError { .. } | BollardError::JsonSerdeError { .. } => Error::Provider {
            provider: "docker",
            message: format!("{doing}: unexpected answer from the Docker Engine"),
            retryable: false,
            source: Some(Box::new(e)),
        },
        _ => Error::Unavailable {
            what: "the Docker Engine".into(),
            message: format!("{doing}: {e}; {UNREACHABLE_HELP}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let e = api_error(
            "creating container x",
            BollardError::DockerResponseServerError { status_code: 500, message: "boom".into() },
        );
        assert!(e.is_retryable());
        assert!(e.to_string().contains("creating container x"), "{e}");
        let e = api_error(
            "creating container x",
            BollardError::DockerResponseServerError { status_code: 409, message: "name in use".into() },
        );
        assert!(!e.is_retryable());
        let e = api_error("listing containers", BollardError::SocketNotFoundError("/nope.sock".into()));
        assert!(e.is_retryable());
        assert!(e.to_string().contains("DOCKER_HOST"), "{e}");
    }

    #[tokio::test]
    async fn unreachable_daemon_says_what_to_check() {
        let dir = std::env::temp_dir().join(format!("pulse-no-docker-{}", std::process::id()));
        let host = format!("unix://{}/docker.sock", dir.display());
        let e = connect_docker_at(&host).await.unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::Unavailable { .. }), "{msg}");
        assert!(
            msg.contains(&host) && msg.contains("DOCKER_HOST") && msg.contains("docker version"),
            "{msg}"
        );
    }
}
