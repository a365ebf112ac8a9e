//! The state of the in-memory world and the rules that advance it in time.
//!
//! Everything here runs under the cluster's lock. Time-driven changes (an instance finishing its startup,
//! an instance stopping after SIGTERM, a retired version disappearing) are not scheduled: they are computed
//! lazily by [`World::advance`] from the clock's current time, at the start of every operation. The world is
//! therefore the same whether it is observed often or rarely, which keeps simulations deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::router::WeightChange;
use super::sessions::{EndedSession, SessionId};
use crate::drain::wire::deadline;
use crate::drain::{InstanceStatus, ServingState};
use crate::{
    AppName, Endpoint, Health, Instance, InstanceId, InstanceState, Release, Target, VersionId, VersionRoute,
    VersionState, Weights,
};

/// Settings of the world, shared by every provider of one cluster.
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub startup_time: Duration,
    pub shutdown_time: Duration,
    pub max_weighted_versions: usize,
    pub max_attached_versions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            startup_time: Duration::ZERO,
            shutdown_time: Duration::ZERO,
            max_weighted_versions: 5,
            max_attached_versions: 50,
        }
    }
}

/// The drain mark an instance carries once it received the drain signal.
#[derive(Debug, Clone, Copy)]
pub(super) struct DrainMark {
    pub since: SystemTime,
    pub deadline: SystemTime,
}

/// One instance (a process) of a version.
#[derive(Debug, Clone)]
pub(super) struct InstanceRecord {
    pub id: InstanceId,
    pub endpoint: Endpoint,
    pub created_at: SystemTime,
    pub drain: Option<DrainMark>,
    /// When SIGTERM was sent (the version is being retired).
    pub sigterm_at: Option<SystemTime>,
    /// When the process exits after SIGTERM.
    pub stop_at: Option<SystemTime>,
    pub exited: bool,
}

/// One version of an app, as the orchestrator stores it.
#[derive(Debug, Clone)]
pub(super) struct VersionRecord {
    pub release: Release,
    pub created_at: SystemTime,
    pub retiring: bool,
    pub instances: Vec<InstanceRecord>,
}

/// The router's configuration for one app.
#[derive(Debug, Clone, Default)]
pub(super) struct AppRouting {
    pub weights: Weights,
    pub attached: BTreeMap<VersionId, VersionRoute>,
}

/// Everything the cluster knows about one app.
#[derive(Debug, Clone, Default)]
pub(super) struct AppWorld {
    /// Versions in creation order.
    pub versions: Vec<VersionRecord>,
    pub routing: AppRouting,
}

/// An open session: a user connected through the router to one instance.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub app: AppName,
    pub version: VersionId,
    pub instance: InstanceId,
    pub opened_at: SystemTime,
}

/// How a session ended, for the cluster's accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EndKind {
    /// Closed by its client.
    Closed,
    /// Closed with 1001 by an instance stopped after its drain deadline: the client reconnects.
    Moved,
    /// Closed by an instance stopped before its drain deadline: the engine dropped it.
    Dropped,
    /// Lost because its instance crashed.
    LostByCrash,
}

/// The whole in-memory world.
#[derive(Debug)]
pub(super) struct World {
    pub config: Config,
    pub rng: StdRng,
    pub next_id: u64,
    pub apps: BTreeMap<AppName, AppWorld>,
    /// Versions whose instances never pass their health check.
    pub broken: BTreeSet<(AppName, VersionId)>,
    /// Instances made to fail their health check.
    pub failing_health: BTreeSet<InstanceId>,
    pub sessions: BTreeMap<SessionId, Session>,
    /// Open sessions per instance (kept in step with `sessions` by `add_session` and `end_session`).
    pub sessions_per_instance: BTreeMap<InstanceId, usize>,
    pub sessions_opened: u64,
    pub sessions_closed: u64,
    pub moved: Vec<EndedSession>,
    pub dropped: Vec<EndedSession>,
    pub lost_by_crash: Vec<EndedSession>,
    pub weight_history: Vec<WeightChange>,
}

impl World {
    pub(super) fn new() -> Self {
        World {
            config: Config::default(),
            rng: StdRng::seed_from_u64(0),
            next_id: 0,
            apps: BTreeMap::new(),
            broken: BTreeSet::new(),
            failing_health: BTreeSet::new(),
            sessions: BTreeMap::new(),
            sessions_per_instance: BTreeMap::new(),
            sessions_opened: 0,
            sessions_closed: 0,
            moved: Vec::new(),
            dropped: Vec::new(),
            lost_by_crash: Vec::new(),
            weight_history: Vec::new(),
        }
    }

    /// A fresh number for ids and endpoints.
    pub(super) fn next_number(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Applies every time-driven change up to `now`: instances whose shutdown finished exit (their
    /// remaining sessions are closed and classified), and retiring versions with no live instance left
    /// disappear.
    pub(super) fn advance(&mut self, now: SystemTime) {
        let mut stopped: Vec<(InstanceId, SystemTime, EndKind)> = Vec::new();
        for app in self.apps.values_mut() {
            for version in &mut app.versions {
                for instance in &mut version.instances {
                    if instance.exited {
                        continue;
                    }
                    if let Some(stop_at) = instance.stop_at.filter(|t| *t <= now) {
                        instance.exited = true;
                        let sigterm = instance.sigterm_at.unwrap_or(stop_at);
                        let past_deadline = instance.drain.is_some_and(|d| sigterm >= d.deadline);
                        let kind = if past_deadline { EndKind::Moved } else { EndKind::Dropped };
                        stopped.push((instance.id.clone(), stop_at, kind));
                    }
                }
            }
        }
        for (instance, at, kind) in stopped {
            self.end_sessions_on(&instance, at, kind);
        }
        self.remove_retired_versions();
    }

    /// Removes retiring versions whose instances have all exited: they are gone.
    pub(super) fn remove_retired_versions(&mut self) {
        for app in self.apps.values_mut() {
            app.versions.retain(|v| !(v.retiring && v.instances.iter().all(|i| i.exited)));
        }
    }

    /// Ends every session held by `instance`, recording how.
    pub(super) fn end_sessions_on(&mut self, instance: &InstanceId, at: SystemTime, kind: EndKind) {
        if !self.sessions_per_instance.contains_key(instance) {
            return;
        }
        let ids: Vec<SessionId> =
            self.sessions.iter().filter(|(_, s)| &s.instance == instance).map(|(id, _)| *id).collect();
        for id in ids {
            self.end_session(id, at, kind);
        }
    }

    /// Records a new open session.
    pub(super) fn add_session(&mut self, id: SessionId, session: Session) {
        *self.sessions_per_instance.entry(session.instance.clone()).or_default() += 1;
        self.sessions_opened += 1;
        self.sessions.insert(id, session);
    }

    /// Ends one session, recording how. Returns false if it was not open.
    pub(super) fn end_session(&mut self, id: SessionId, at: SystemTime, kind: EndKind) -> bool {
        let Some(session) = self.sessions.remove(&id) else {
            return false;
        };
        if let Some(n) = self.sessions_per_instance.get_mut(&session.instance) {
            *n -= 1;
            if *n == 0 {
                self.sessions_per_instance.remove(&session.instance);
            }
        }
        let drain_deadline =
            self.instance(&session.instance).and_then(|(_, _, i)| i.drain.map(|d| d.deadline));
        let ended = EndedSession {
            session: id,
            app: session.app,
            version: session.version,
            instance: session.instance,
            opened_at: session.opened_at,
            ended_at: at,
            drain_deadline,
        };
        match kind {
            EndKind::Closed => self.sessions_closed += 1,
            EndKind::Moved => self.moved.push(ended),
            EndKind::Dropped => {
                tracing::warn!(session = %ended.session, app = %ended.app, version = %ended.version,
                    instance = %ended.instance, "in-memory cluster: a session was dropped");
                self.dropped.push(ended)
            }
            EndKind::LostByCrash => self.lost_by_crash.push(ended),
        }
        true
    }

    /// The version record of `app`/`version`.
    pub(super) fn version(&self, app: &AppName, version: &VersionId) -> Option<&VersionRecord> {
        self.apps.get(app)?.versions.iter().find(|v| &v.release.version == version)
    }

    /// Finds an instance anywhere in the world: its app, version record and record.
    pub(super) fn instance(&self, id: &InstanceId) -> Option<(&AppName, &VersionRecord, &InstanceRecord)> {
        self.apps.iter().find_map(|(app, world)| {
            world.versions.iter().find_map(|v| v.instances.iter().find(|i| &i.id == id).map(|i| (app, v, i)))
        })
    }

    /// Finds a live (not exited) instance by its endpoint.
    pub(super) fn instance_at(
        &self,
        endpoint: &Endpoint,
    ) -> Option<(&AppName, &VersionRecord, &InstanceRecord)> {
        self.apps.iter().find_map(|(app, world)| {
            world.versions.iter().find_map(|v| {
                v.instances.iter().find(|i| !i.exited && &i.endpoint == endpoint).map(|i| (app, v, i))
            })
        })
    }

    /// Open sessions held by an instance.
    pub(super) fn sessions_on_instance(&self, id: &InstanceId) -> usize {
        self.sessions_per_instance.get(id).copied().unwrap_or(0)
    }

    /// The instance's lifecycle state at `now`.
    pub(super) fn instance_state(&self, instance: &InstanceRecord, now: SystemTime) -> InstanceState {
        if instance.exited {
            InstanceState::Exited
        } else if instance.sigterm_at.is_some() {
            InstanceState::Stopping
        } else if now < instance.created_at + self.config.startup_time {
            InstanceState::Starting
        } else {
            InstanceState::Running
        }
    }

    /// The instance's serving state (drain protocol) at `now`.
    pub(super) fn serving_state(&self, instance: &InstanceRecord, now: SystemTime) -> ServingState {
        if instance.sigterm_at.is_some() || instance.exited {
            return ServingState::ShuttingDown;
        }
        match instance.drain {
            None => ServingState::Serving,
            Some(d)
                if deadline::is_drained(
                    self.sessions_on_instance(&instance.id) as u64,
                    now,
                    Some(d.deadline),
                ) =>
            {
                ServingState::Drained
            }
            Some(_) => ServingState::Draining,
        }
    }

    /// Whether the instance passes its health check at `now`: live, started, not broken, not made to fail,
    /// not drained and not shutting down.
    pub(super) fn is_healthy(
        &self,
        app: &AppName,
        version: &VersionRecord,
        instance: &InstanceRecord,
        now: SystemTime,
    ) -> bool {
        self.instance_state(instance, now) == InstanceState::Running
            && !self.broken.contains(&(app.clone(), version.release.version.clone()))
            && !self.failing_health.contains(&instance.id)
            && matches!(self.serving_state(instance, now), ServingState::Serving | ServingState::Draining)
    }

    /// The health the router reports for a target: Unknown if it names no known instance (or an instance of
    /// another app or version).
    pub(super) fn target_health(
        &self,
        app: &AppName,
        version: &VersionId,
        target: &Target,
        now: SystemTime,
    ) -> Health {
        match self.instance(&target.instance) {
            Some((a, v, i)) if a == app && &v.release.version == version && i.endpoint == target.endpoint => {
                if self.is_healthy(a, v, i, now) {
                    Health::Healthy
                } else {
                    Health::Unhealthy
                }
            }
            _ => Health::Unknown,
        }
    }

    /// Whether an instance takes new sessions: healthy and not draining.
    pub(super) fn accepts_sessions(
        &self,
        app: &AppName,
        target: &Target,
        version: &VersionId,
        now: SystemTime,
    ) -> bool {
        match self.instance(&target.instance) {
            Some((a, v, i)) if a == app && &v.release.version == version && i.endpoint == target.endpoint => {
                self.is_healthy(a, v, i, now) && i.drain.is_none()
            }
            _ => false,
        }
    }

    /// The instance as its orchestrator reports it.
    pub(super) fn instance_view(
        &self,
        version: &VersionRecord,
        instance: &InstanceRecord,
        now: SystemTime,
    ) -> Instance {
        Instance {
            id: instance.id.clone(),
            version: version.release.version.clone(),
            state: self.instance_state(instance, now),
            endpoint: Some(instance.endpoint.clone()),
        }
    }

    /// The version as its orchestrator reports it.
    pub(super) fn version_view(&self, version: &VersionRecord, now: SystemTime) -> VersionState {
        VersionState {
            release: version.release.clone(),
            created_at: version.created_at,
            retiring: version.retiring,
            instances: version.instances.iter().map(|i| self.instance_view(version, i, now)).collect(),
        }
    }

    /// The drain-protocol status of an instance.
    pub(super) fn instance_status(
        &self,
        version: &VersionRecord,
        instance: &InstanceRecord,
        now: SystemTime,
    ) -> InstanceStatus {
        InstanceStatus {
            version: version.release.version.to_string(),
            instance_id: instance.id.to_string(),
            state: self.serving_state(instance, now),
            active_sessions: self.sessions_on_instance(&instance.id) as u64,
            draining_since: instance.drain.map(|d| d.since),
            deadline: instance.drain.map(|d| d.deadline),
        }
    }
}
