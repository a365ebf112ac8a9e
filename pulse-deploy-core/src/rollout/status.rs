//! [`AppStatus`]: the public, serializable view of an app — per live version its phase, weight,
//! healthy/total instances, sessions, age and drain deadline — built from one snapshot and its plan.
//! What `pulse-deploy status` prints and what a [`super::Controller`] publishes after every pass.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::observed::Observed;
use super::plan::Plan;
use crate::drain::wire::rfc3339_opt;
use crate::{AppName, VersionId, VersionPhase};

/// One version of an app, as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionStatus {
    /// The version.
    pub version: VersionId,
    /// The image its instances run.
    pub image: String,
    /// Its phase, as the planner sees it.
    pub phase: VersionPhase,
    /// Its share of new sessions, in percent.
    pub weight: u32,
    /// Live instances the router reports healthy.
    pub healthy: usize,
    /// Live (starting or running) instances.
    pub instances: usize,
    /// Instances the release asks for.
    pub replicas: u32,
    /// Sessions reported by the instances that answered.
    pub sessions: u64,
    /// Instances whose drain status could not be read this pass.
    pub unreachable: usize,
    /// When the version was first created.
    #[serde(with = "rfc3339")]
    pub created_at: SystemTime,
    /// How old the version was at the snapshot, in whole seconds.
    pub age_secs: u64,
    /// The latest drain deadline its instances report, when draining.
    #[serde(default, with = "rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub drain_deadline: Option<SystemTime>,
}

impl VersionStatus {
    /// How old the version was at the snapshot.
    pub fn age(&self) -> Duration {
        Duration::from_secs(self.age_secs)
    }
}

/// An app's status at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStatus {
    /// The app.
    pub app: AppName,
    /// When the snapshot was taken.
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
    /// The version that receives (or will receive) every new session.
    pub target: Option<VersionId>,
    /// Every version the orchestrator runs, oldest first.
    pub versions: Vec<VersionStatus>,
    /// What the rollout waits for, one line per reason (empty when nothing is pending).
    pub waiting: Vec<String>,
    /// The target has every new session and every other version was told to drain.
    pub shifted: bool,
    /// Only the target is left and there is nothing to do.
    pub settled: bool,
}

impl AppStatus {
    /// Builds the status from one snapshot and the plan made from it.
    pub fn from_snapshot(observed: &Observed, plan: &Plan) -> AppStatus {
        let versions = observed
            .versions
            .iter()
            .map(|v| {
                let id = v.id().clone();
                let drain_deadline =
                    v.live().filter_map(|i| v.status(&i.id)).filter_map(|s| s.deadline).max();
                let instances = v.live().count();
                let answered = v.live().filter(|i| v.status(&i.id).is_some()).count();
                VersionStatus {
                    image: v.state.release.image.clone(),
                    phase: plan.phases.get(&id).copied().unwrap_or(VersionPhase::Starting),
                    weight: observed.weight(&id),
                    healthy: observed.healthy_instances(v),
                    instances,
                    replicas: v.state.release.replicas,
                    sessions: v.known_sessions(),
                    unreachable: instances - answered,
                    created_at: v.state.created_at,
                    age_secs: observed.at.duration_since(v.state.created_at).unwrap_or_default().as_secs(),
                    drain_deadline,
                    version: id,
                }
            })
            .collect();
        AppStatus {
            app: observed.app.clone(),
            at: observed.at,
            target: plan.target.clone(),
            versions,
            waiting: plan.waiting.clone(),
            shifted: plan.shifted,
            settled: plan.settled,
        }
    }

    /// The status of one version.
    pub fn version(&self, id: &VersionId) -> Option<&VersionStatus> {
        self.versions.iter().find(|v| &v.version == id)
    }
}

/// RFC 3339 timestamps (UTC, milliseconds) as `SystemTime`s.
mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_millis(*t).to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&s).map_err(serde::de::Error::custom)
    }
}
