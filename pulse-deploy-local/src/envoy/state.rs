//! The router's persisted routing state (`state.json` in the state directory): its ports, its default
//! app, and per app the attached versions and the weights. It is the intent the xDS files are generated from, written
//! before them, so a deployer killed between two writes is converged by the next router on the same
//! directory. Health is never stored: it is read from Envoy.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use pulse_deploy_core::{AppName, Error, Result, VersionId, VersionRoute, Weights};
use serde::{Deserialize, Serialize};

use super::xds::{io_error, write_atomic, Durability};

/// Format version of `state.json`.
pub(super) const STATE_FORMAT: u32 = 1;

/// The routing of one app.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(super) struct AppRouting {
    /// Attached versions.
    pub versions: BTreeMap<VersionId, VersionRoute>,
    /// The split of new sessions.
    pub weights: Weights,
}

impl AppRouting {
    /// True when nothing is attached and nothing weighted.
    pub(super) fn is_empty(&self) -> bool {
        self.versions.is_empty() && self.weights.is_empty()
    }
}

/// What `state.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PersistedState {
    /// Format version ([`STATE_FORMAT`]).
    pub format: u32,
    /// The app served to requests whose `Host` names no app: set by the builder (explicit), or else by the
    /// first attach (implicit: it stays the default while it has anything attached, so attaching a second
    /// app never takes the default host away from the first).
    pub default_app: Option<AppName>,
    /// Whether `default_app` was set by the builder.
    #[serde(default)]
    pub default_app_explicit: bool,
    /// The public listener, fixed for the life of the state directory.
    pub listener: SocketAddr,
    /// Envoy's admin address (loopback), fixed for the life of the state directory.
    pub admin: SocketAddr,
    /// Incremented on every change; used as the xDS `version_info`.
    pub generation: u64,
    /// Routing per app (apps with nothing attached and nothing weighted are dropped).
    pub apps: BTreeMap<AppName, AppRouting>,
}

impl PersistedState {
    /// A fresh state for the given addresses.
    pub(super) fn new(default_app: Option<AppName>, listener: SocketAddr, admin: SocketAddr) -> Self {
        PersistedState {
            format: STATE_FORMAT,
            default_app_explicit: default_app.is_some(),
            default_app,
            listener,
            admin,
            generation: 0,
            apps: BTreeMap::new(),
        }
    }

    /// The app served on the default virtual host: the default app, else the only app.
    pub(super) fn effective_default_app(&self) -> Option<&AppName> {
        self.default_app.as_ref().or_else(|| match self.apps.len() {
            1 => self.apps.keys().next(),
            _ => None,
        })
    }

    /// Path of `state.json` in `state_dir`.
    pub(super) fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("state.json")
    }

    /// Loads the state, or `None` if the directory holds none yet.
    pub(super) fn load(state_dir: &Path) -> Result<Option<Self>> {
        let path = Self::path(state_dir);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, "read", e)),
        };
        let state: PersistedState = serde_json::from_str(&text).map_err(|e| {
            Error::provider_source(
                "envoy",
                format!(
                    "{} is not a valid router state; remove the state directory after stopping its Envoy",
                    path.display()
                ),
                false,
                e,
            )
        })?;
        if state.format != STATE_FORMAT {
            return Err(Error::provider(
                "envoy",
                format!("{} has format {}, this build reads {STATE_FORMAT}", path.display(), state.format),
                false,
            ));
        }
        Ok(Some(state))
    }

    /// Saves the state atomically.
    pub(super) fn save(&self, state_dir: &Path) -> Result<()> {
        let value = serde_json::to_value(self)
            .map_err(|e| Error::provider_source("envoy", "serialising router state", false, e))?;
        write_atomic(&Self::path(state_dir), &value, Durability::Durable)
    }
}
