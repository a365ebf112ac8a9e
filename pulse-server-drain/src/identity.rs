//! The instance's identity: `PULSE_INSTANCE_ID`, else the ECS task ARN from the task metadata endpoint
//! (`ECS_CONTAINER_METADATA_URI_V4`), else the host name. The deployer matches drain acknowledgements to
//! instances by this id, so it must equal what the orchestrator calls the instance (the Docker provider sets
//! `PULSE_INSTANCE_ID` to the container name; on ECS it is the task ARN).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use pulse_deploy_core::{Error, Result};

/// How the instance id is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceIdSource {
    /// A fixed id.
    Fixed(String),
    /// `PULSE_INSTANCE_ID`, else the ECS task ARN, else the host name (resolved when the state starts).
    Detect,
}

/// Longest accepted instance id (a host name has at most 253, an ECS task ARN about 100).
pub const MAX_INSTANCE_ID_LEN: usize = 255;

/// An instance id is sent in headers and matched by the deployer: 1 to [`MAX_INSTANCE_ID_LEN`] printable
/// ASCII characters without spaces (`0x21`-`0x7e`). `setting` names where it came from.
pub(crate) fn check_instance_id(setting: &'static str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_INSTANCE_ID_LEN || id.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(Error::invalid(
            setting,
            format!(
                "the instance id `{}` must be 1 to {MAX_INSTANCE_ID_LEN} printable ASCII characters without \
                 spaces (it is sent in headers); set PULSE_INSTANCE_ID to what the orchestrator calls the instance",
                id.escape_debug()
            ),
        ));
    }
    Ok(())
}

impl InstanceIdSource {
    /// Resolves the id and checks it ([`MAX_INSTANCE_ID_LEN`] printable ASCII characters without spaces),
    /// with an error naming where it came from.
    pub async fn resolve(&self) -> Result<String> {
        let (setting, id) = match self {
            InstanceIdSource::Fixed(id) => ("PULSE_INSTANCE_ID", id.clone()),
            InstanceIdSource::Detect => detect().await?,
        };
        check_instance_id(setting, &id)?;
        Ok(id)
    }
}

/// The id and the setting it came from.
async fn detect() -> Result<(&'static str, String)> {
    if let Some(id) = std::env::var("PULSE_INSTANCE_ID").ok().filter(|s| !s.trim().is_empty()) {
        return Ok(("PULSE_INSTANCE_ID", id.trim().to_owned()));
    }
    if let Some(uri) = std::env::var("ECS_CONTAINER_METADATA_URI_V4").ok().filter(|s| !s.trim().is_empty()) {
        match ecs_task_arn(uri.trim()).await {
            Ok(arn) => return Ok(("ECS_CONTAINER_METADATA_URI_V4 (TaskARN)", arn)),
            Err(e) => {
                tracing::warn!(error = %e, "ECS task metadata unavailable; using the host name as instance id")
            }
        }
    }
    hostname().map(|h| ("HOSTNAME (the host name)", h)).ok_or_else(|| {
        Error::invalid(
            "PULSE_INSTANCE_ID",
            "no instance id: set PULSE_INSTANCE_ID (no ECS task metadata and no host name were found)",
        )
    })
}

/// `GET ${uri}/task` and its `TaskARN`.
pub(crate) async fn ecs_task_arn(uri: &str) -> Result<String> {
    let url = format!("{}/task", uri.trim_end_matches('/'));
    let what = format!("ECS task metadata ({url})");
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri =
        url.parse().map_err(|e| Error::invalid("ECS_CONTAINER_METADATA_URI_V4", format!("{e}")))?;
    let fetch = async {
        let response = client
            .get(uri)
            .await
            .map_err(|e| Error::Unavailable { what: what.clone(), message: e.to_string() })?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::Unavailable { what: what.clone(), message: e.to_string() })?
            .to_bytes();
        if !status.is_success() {
            return Err(Error::Unavailable { what: what.clone(), message: format!("answered {status}") });
        }
        let json: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| Error::provider_source("ecs-metadata", format!("{what}: not JSON"), false, e))?;
        json.get("TaskARN").and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_owned).ok_or_else(
            || Error::provider("ecs-metadata", format!("{what}: no TaskARN in the answer"), false),
        )
    };
    let after = Duration::from_secs(2);
    tokio::time::timeout(after, fetch).await.map_err(|_| Error::Timeout { what: what.clone(), after })?
}

/// The host name: `HOSTNAME`, else the kernel's (works in a `FROM scratch` container), else `/etc/hostname`.
pub(crate) fn hostname() -> Option<String> {
    let from_env = std::env::var("HOSTNAME").ok();
    let from_kernel = || std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    let from_etc = || std::fs::read_to_string("/etc/hostname").ok();
    from_env
        .filter(|s| !s.trim().is_empty())
        .or_else(from_kernel)
        .or_else(from_etc)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
