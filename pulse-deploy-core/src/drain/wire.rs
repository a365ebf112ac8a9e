//! Wire types of the drain protocol (JSON bodies), shared by the deployer and by servers.
//!
//! Kept free of any web framework so servers and deployers in any stack can use them. The normative
//! description, with status codes and headers, is `docs/drain-protocol.md`.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub mod deadline;

/// Path of the drain endpoint (`POST`).
pub const DRAIN_PATH: &str = "/_pulse/admin/drain";
/// Path of the undrain endpoint (`POST`): `draining` back to `serving`.
pub const UNDRAIN_PATH: &str = "/_pulse/admin/undrain";
/// Path of the authenticated status endpoint (`GET`).
pub const STATUS_PATH: &str = "/_pulse/admin/status";
/// Default health path.
pub const DEFAULT_HEALTH_PATH: &str = "/health";

/// WebSocket close code sent to every client when an instance shuts down (1001, "going away").
pub const SHUTDOWN_CLOSE_CODE: u16 = 1001;
/// WebSocket close reason sent with [`SHUTDOWN_CLOSE_CODE`]: the client should reconnect (it lands on the
/// newest version).
pub const SHUTDOWN_CLOSE_REASON: &str = "server shutting down; reconnect";
/// The `error` code of the body of a stale-affinity answer (a new session turned away while draining).
pub const STALE_AFFINITY_ERROR: &str = "stale_affinity";

/// The serving state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServingState {
    /// Accepting new sessions. Health 200.
    Serving,
    /// Drain signal received: existing sessions are served, new ones are turned away. Health 200.
    Draining,
    /// Draining with no session left, or past the drain deadline. Health 503; safe to stop.
    Drained,
    /// SIGTERM received: closing sessions (code 1001) and exiting. Health 503.
    ShuttingDown,
}

impl ServingState {
    /// Whether the drain signal has been received (draining, drained or shutting down).
    pub fn is_draining(self) -> bool {
        !matches!(self, ServingState::Serving)
    }
}

/// Body of `POST /_pulse/admin/drain` (optional: an empty body uses the server's configured deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DrainRequest {
    /// Seconds from now until the drain deadline; past it, health fails whatever the session count.
    /// If the server is already draining, the earlier deadline is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_secs: Option<u64>,
}

impl DrainRequest {
    /// A request with the given deadline.
    pub fn with_deadline(deadline: Duration) -> Self {
        DrainRequest { deadline_secs: Some(deadline::wire_secs(deadline)) }
    }
}

/// Body of the drain answer (`200`) and of `GET /_pulse/admin/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// The app version the instance runs.
    pub version: String,
    /// The instance's id (see `docs/drain-protocol.md`, "Instance identity").
    pub instance_id: String,
    /// Its serving state.
    pub state: ServingState,
    /// Live sessions (RenderSessions) held by the instance, connected or within their reconnect grace.
    pub active_sessions: u64,
    /// When draining started (RFC 3339, UTC), if it did.
    #[serde(default, with = "rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub draining_since: Option<SystemTime>,
    /// The drain deadline (RFC 3339, UTC), if draining.
    #[serde(default, with = "rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub deadline: Option<SystemTime>,
}

/// Body of the health endpoint (200 or 503). Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthBody {
    /// The serving state.
    pub state: ServingState,
    /// Live sessions.
    pub active_sessions: u64,
}

/// Body of every error answer of the admin endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable code: `unauthorized`, `method_not_allowed`, `too_many_requests`, `bad_request`,
    /// `conflict` (undrain of a drained or shutting-down instance).
    pub error: String,
    /// A human-readable explanation (never echoes the credential).
    pub message: String,
}

/// Body of a stale-affinity answer (`409`): a request that would create a new session reached a draining
/// instance. The client drops its version affinity and reloads; it lands on the newest version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleAffinityBody {
    /// Always [`STALE_AFFINITY_ERROR`].
    pub error: String,
    /// A human-readable explanation.
    pub message: String,
    /// Always true: the client should reload without its version affinity.
    pub reload: bool,
    /// The (draining) version that turned the request away.
    pub version: String,
}

/// RFC 3339 timestamps (UTC, milliseconds) as optional `SystemTime`s.
pub mod rfc3339_opt {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as an RFC 3339 string.
    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&humantime::format_rfc3339_millis(*t).to_string()),
            None => s.serialize_none(),
        }
    }

    /// Parses an RFC 3339 string (or null).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| humantime::parse_rfc3339_weak(&s).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_json_shape() {
        let t = humantime::parse_rfc3339("2026-11-28T20:00:00Z").unwrap();
        let s = InstanceStatus {
            version: "v1".into(),
            instance_id: "abc".into(),
            state: ServingState::Draining,
            active_sessions: 3,
            draining_since: Some(t),
            deadline: Some(t + Duration::from_secs(60)),
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["state"], "draining");
        assert_eq!(json["draining_since"], "2026-11-28T20:00:00.000Z");
        assert_eq!(json["deadline"], "2026-11-28T20:01:00.000Z");
        let back: InstanceStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
        let serving: InstanceStatus = serde_json::from_str(
            r#"{"version":"v1","instance_id":"i","state":"serving","active_sessions":0}"#,
        )
        .unwrap();
        assert_eq!(serving.deadline, None);
        assert_eq!(serde_json::to_string(&DrainRequest::default()).unwrap(), "{}");
    }
}
