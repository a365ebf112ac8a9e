//! [`Action`]: one step the executor performs on a provider. Every action is idempotent.

use std::fmt;

use crate::{Release, VersionId, VersionRoute, Weights};

/// One idempotent provider call decided by the planner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an action does nothing until the executor applies it"]
pub enum Action {
    /// Attach (or update the targets of) a version in the router. A new version gets weight 0.
    Attach(VersionRoute),
    /// Ensure the release runs with its replicas (creates the version, replaces crashed instances).
    Deploy(Release),
    /// Set the weights of all versions in one step.
    SetWeights(Weights),
    /// Send the drain signal to the live instances of a version that have not acknowledged it.
    Drain {
        /// The version.
        version: VersionId,
        /// Its drain deadline, sent to every instance.
        deadline: std::time::Duration,
    },
    /// Take a version out of the router (its weight is already 0).
    Detach(VersionId),
    /// Retire a version: SIGTERM, grace, removal.
    Retire(VersionId),
}

impl Action {
    /// A short name for logs and events: `attach`, `deploy`, `set_weights`, `drain`, `detach`, `retire`.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Attach(_) => "attach",
            Action::Deploy(_) => "deploy",
            Action::SetWeights(_) => "set_weights",
            Action::Drain { .. } => "drain",
            Action::Detach(_) => "detach",
            Action::Retire(_) => "retire",
        }
    }

    /// The version the action is about (none for `SetWeights`).
    pub fn version(&self) -> Option<&VersionId> {
        match self {
            Action::Attach(route) => Some(&route.version),
            Action::Deploy(release) => Some(&release.version),
            Action::SetWeights(_) => None,
            Action::Drain { version, .. } | Action::Detach(version) | Action::Retire(version) => {
                Some(version)
            }
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Attach(route) => write!(f, "attach {} ({} targets)", route.version, route.targets.len()),
            Action::Deploy(release) => {
                write!(f, "deploy {} ({} replicas of {})", release.version, release.replicas, release.image)
            }
            Action::SetWeights(w) => write!(f, "set weights {w}"),
            Action::Drain { version, deadline } => {
                write!(f, "drain {version} (deadline {})", humantime::format_duration(*deadline))
            }
            Action::Detach(v) => write!(f, "detach {v}"),
            Action::Retire(v) => write!(f, "retire {v}"),
        }
    }
}
