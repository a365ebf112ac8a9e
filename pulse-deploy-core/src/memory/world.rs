//! The state of the in-memory world and the rules that advance it in time.
//!
//! Everything here runs under the cluster's lock. Time-driven changes (an instance finishing its startup,
//! an instance stopping after SIGTERM, a retired version disappearing) are not scheduled: they are computed
//! lazily by [`World::advance`] from the clock's current time, at the start of every operation. The world is
//! therefore the same whether it is observed often or rarely, which keeps simulations deterministic.
//!
//! Lookups by instance id or endpoint go through two indexes kept when instances are created, and
//! [`World::advance`] scans instances only once a stop is due, so that one drain-protocol call costs about
//! the same with 3,000 instances as with 3 (the engine benchmark measures the engine, not this fake).

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// Where every instance ever created lives (entries of removed instances are stale: lookups check).
    pub located: HashMap<InstanceId, (AppName, VersionId)>,
    /// The instance created with each endpoint (endpoints are never reused).
    pub at_endpoint: HashMap<Endpoint, InstanceId>,
    /// The earliest `stop_at` of an instance that has not exited yet, if any.
    pub next_stop: Option<SystemTime>,
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
            located: HashMap::new(),
            at_endpoint: HashMap::new(),
            next_stop: None,
        }
    }

    /// Indexes a new instance of `app`/`version` (call before adding its record).
    pub(super) fn register(&mut self, app: &AppName, version: &VersionId, instance: &InstanceRecord) {
        self.located.insert(instance.id.clone(), (app.clone(), version.clone()));
        self.at_endpoint.insert(instance.endpoint.clone(), instance.id.clone());
    }

    /// Notes that an instance will exit at `at` (SIGTERM was sent), so that [`World::advance`] looks then.
    pub(super) fn stop_due(&mut self, at: SystemTime) {
        self.next_stop = Some(self.next_stop.map_or(at, |t| t.min(at)));
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
        if self.next_stop.is_some_and(|t| t <= now) {
            self.stop_instances(now);
        }
        self.remove_retired_versions();
    }

    /// Exits every instance whose stop time has come, and finds the next stop time.
    fn stop_instances(&mut self, now: SystemTime) {
        let mut stopped: Vec<(InstanceId, SystemTime, EndKind)> = Vec::new();
        let mut next: Option<SystemTime> = None;
        for app in self.apps.values_mut() {
            for version in &mut app.versions {
                for instance in &mut version.instances {
                    if instance.exited {
                        continue;
                    }
                    match instance.stop_at {
                        Some(stop_at) if stop_at <= now => {
                            instance.exited = true;
                            let sigterm = instance.sigterm_at.unwrap_or(stop_at);
                            let past_deadline = instance.drain.is_some_and(|d| sigterm >= d.deadline);
                            let kind = if past_deadline { EndKind::Moved } else { EndKind::Dropped };
                            stopped.push((instance.id.clone(), stop_at, kind));
                        }
                        Some(later) => next = Some(next.map_or(later, |t| t.min(later))),
                        None => {}
                    }
                }
            }
        }
        self.next_stop = next;
        for (instance, at, kind) in stopped {
            self.end_sessions_on(&instance, at, kind);
        }
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
        let (app, version) = self.located.get(id)?;
        let (app, world) = self.apps.get_key_value(app)?;
        let v = world.versions.iter().find(|v| &v.release.version == version)?;
        v.instances.iter().find(|i| &i.id == id).map(|i| (app, v, i))
    }

    /// The record of an instance, to change it.
    pub(super) fn instance_mut(&mut self, id: &InstanceId) -> Option<&mut InstanceRecord> {
        let (app, version) = self.located.get(id)?;
        let v = self.apps.get_mut(app)?.versions.iter_mut().find(|v| &v.release.version == version)?;
        v.instances.iter_mut().find(|i| &i.id == id)
    }

    /// Finds a live (not exited) instance by its endpoint.
    pub(super) fn instance_at(
        &self,
        endpoint: &Endpoint,
    ) -> Option<(&AppName, &VersionRecord, &InstanceRecord)> {
        let id = self.at_endpoint.get(endpoint)?;
        self.instance(id).filter(|(_, _, i)| !i.exited && &i.endpoint == endpoint)
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
