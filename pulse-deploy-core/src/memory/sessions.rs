//! Users of the in-memory cluster: sessions opened through the router, kept on their instance, and ended by
//! their client, by a crash, or by an instance stopping — the last being either a harmless reconnect (the
//! instance was past its drain deadline) or a DROPPED session, which is always a bug of the engine.
//!
//! How a new session is routed (the model of a real router in front of drain-protocol servers):
//! 1. with an affinity naming an attached version that has a healthy instance accepting new sessions, it
//!    goes to that version, whatever its weight;
//! 2. otherwise (no affinity, a version that is not attached, or whose instances are draining and answer
//!    with the stale-affinity header so the client reloads without it) the weighted split picks a version;
//! 3. inside the version, the session goes to the healthy, non-draining instance holding the fewest
//!    sessions (ties: the smallest id); a pinned instance is honoured while it accepts sessions.
//!
//! A split that lands on a version with no instance accepting sessions fails with
//! [`crate::Error::Unavailable`], as a real router answers 503: giving weight to such a version is a bug.

use std::fmt;
use std::time::SystemTime;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::cluster::InMemoryCluster;
use super::world::{EndKind, Session, World};
use crate::conformance::Landing;
use crate::{AppName, Error, InstanceId, Result, VersionId};

/// The id of a session opened with [`InMemoryCluster::open_session`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// A session that ended other than by its client closing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndedSession {
    /// The session.
    pub session: SessionId,
    /// Its app.
    pub app: AppName,
    /// The version that held it.
    pub version: VersionId,
    /// The instance that held it.
    pub instance: InstanceId,
    /// When it was opened.
    pub opened_at: SystemTime,
    /// When it ended.
    pub ended_at: SystemTime,
    /// The drain deadline of its instance, if the instance was draining.
    pub drain_deadline: Option<SystemTime>,
}

/// A session closed by an instance stopped before its drain deadline: the engine retired a version that
/// still held it. The rollout engine must never produce one.
pub type DroppedSession = EndedSession;

/// Counts of sessions by how they ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionStats {
    /// Sessions ever opened.
    pub opened: u64,
    /// Sessions open now.
    pub open: usize,
    /// Sessions closed by their client.
    pub closed: u64,
    /// Sessions closed with 1001 by an instance stopped past its drain deadline (the client reconnects).
    pub moved: usize,
    /// Sessions dropped by the engine (an instance stopped before its drain deadline while holding them).
    pub dropped: usize,
    /// Sessions lost because their instance crashed.
    pub lost_by_crash: usize,
}

impl InMemoryCluster {
    /// Routes a request that would start a session, without opening one: where a client carrying
    /// `affinity` (and pinned to `pinned_instance`, if any) would land. The rules are those of
    /// [`InMemoryCluster::open_session`]; a pinned instance is honoured while it accepts new sessions.
    pub fn route(
        &self,
        app: &AppName,
        affinity: Option<&VersionId>,
        pinned_instance: Option<&InstanceId>,
    ) -> Result<Landing> {
        let now = self.now();
        let mut world = self.locked_at(now);
        route(&mut world, app, affinity, pinned_instance, now)
    }

    /// A user opens a page of `app`, carrying the affinity of its tab (if any). Returns the new session,
    /// held by the instance the router chose:
    /// 1. with an affinity naming an attached version that has a healthy instance accepting new sessions,
    ///    that version, whatever its weight;
    /// 2. otherwise (no affinity, a version that is not attached, or whose instances are draining and turn
    ///    the request away with the stale-affinity answer, so the client reloads without it) the version
    ///    the weighted split picks (seeded generator);
    /// 3. inside the version, the healthy, non-draining instance holding the fewest sessions (ties: the
    ///    smallest id).
    ///
    /// Fails with [`Error::Unavailable`] (a real router's 503) when no version has weight, or when the
    /// split picks a version none of whose instances accepts sessions: giving it weight was a bug.
    pub fn open_session(&self, app: &AppName, affinity: Option<&VersionId>) -> Result<SessionId> {
        let now = self.now();
        let mut world = self.locked_at(now);
        let landing = route(&mut world, app, affinity, None, now)?;
        let id = SessionId(world.next_number());
        world.add_session(
            id,
            Session {
                app: app.clone(),
                version: landing.version,
                instance: landing.instance,
                opened_at: now,
            },
        );
        Ok(id)
    }

    /// The user closes the session. Returns false if it was not open (never opened, or already ended).
    pub fn close_session(&self, session: SessionId) -> bool {
        let now = self.now();
        self.locked_at(now).end_session(session, now, EndKind::Closed)
    }

    /// The version holding an open session (None once it ended).
    pub fn session_version(&self, session: SessionId) -> Option<VersionId> {
        self.locked_at(self.now()).sessions.get(&session).map(|s| s.version.clone())
    }

    /// The instance holding an open session (None once it ended).
    pub fn session_instance(&self, session: SessionId) -> Option<InstanceId> {
        self.locked_at(self.now()).sessions.get(&session).map(|s| s.instance.clone())
    }

    /// The open sessions of `app`.
    pub fn open_sessions(&self, app: &AppName) -> Vec<SessionId> {
        let world = self.locked_at(self.now());
        world.sessions.iter().filter(|(_, s)| &s.app == app).map(|(id, _)| *id).collect()
    }

    /// How many open sessions `version` of `app` holds.
    pub fn sessions_on(&self, app: &AppName, version: &VersionId) -> usize {
        let world = self.locked_at(self.now());
        world.sessions.values().filter(|s| &s.app == app && &s.version == version).count()
    }

    /// Sessions the engine dropped: closed by an instance stopped before its drain deadline. Must stay
    /// empty.
    pub fn dropped_sessions(&self) -> Vec<DroppedSession> {
        self.locked_at(self.now()).dropped.clone()
    }

    /// Sessions closed with 1001 by an instance stopped past its drain deadline: their clients reconnect
    /// to the newest version. Not a drop.
    pub fn moved_sessions(&self) -> Vec<EndedSession> {
        self.locked_at(self.now()).moved.clone()
    }

    /// Sessions lost because their instance crashed ([`InMemoryCluster::crash_instance`]).
    pub fn lost_by_crash(&self) -> Vec<EndedSession> {
        self.locked_at(self.now()).lost_by_crash.clone()
    }

    /// Counts of sessions by how they ended.
    pub fn session_stats(&self) -> SessionStats {
        let world = self.locked_at(self.now());
        SessionStats {
            opened: world.sessions_opened,
            open: world.sessions.len(),
            closed: world.sessions_closed,
            moved: world.moved.len(),
            dropped: world.dropped.len(),
            lost_by_crash: world.lost_by_crash.len(),
        }
    }
}

/// The routing decision (see the module docs).
fn route(
    world: &mut World,
    app: &AppName,
    affinity: Option<&VersionId>,
    pinned: Option<&InstanceId>,
    now: SystemTime,
) -> Result<Landing> {
    let Some(app_world) = world.apps.get(app) else {
        return Err(unavailable(app, "nothing is routed for this app"));
    };
    if let Some(version) = affinity {
        if let Some(instance) = pick_instance(world, app, version, pinned, now) {
            return Ok(Landing { version: version.clone(), instance });
        }
    }
    let weights = app_world.routing.weights.clone();
    let total: u32 = weights.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return Err(unavailable(app, "no version has a weight above 0"));
    }
    let mut ticket = world.rng.gen_range(0..total);
    let mut chosen = None;
    for (version, weight) in weights.iter() {
        if ticket < weight {
            chosen = Some(version.clone());
            break;
        }
        ticket -= weight;
    }
    let version = chosen.expect("the ticket falls inside the total weight");
    match pick_instance(world, app, &version, pinned, now) {
        Some(instance) => Ok(Landing { version, instance }),
        None => Err(unavailable(
            app,
            &format!(
                "the split chose {version} (weight {}%) but none of its instances accepts new sessions; \
                 a version must be healthy before it gets weight",
                weights.get(&version)
            ),
        )),
    }
}

/// The instance of an attached version that takes a new session, if any.
fn pick_instance(
    world: &World,
    app: &AppName,
    version: &VersionId,
    pinned: Option<&InstanceId>,
    now: SystemTime,
) -> Option<InstanceId> {
    let route = world.apps.get(app)?.routing.attached.get(version)?;
    let accepting: Vec<&InstanceId> = route
        .targets
        .iter()
        .filter(|t| world.accepts_sessions(app, t, version, now))
        .map(|t| &t.instance)
        .collect();
    if let Some(pinned) = pinned.filter(|p| accepting.contains(p)) {
        return Some(pinned.clone());
    }
    accepting.into_iter().min_by_key(|id| (world.sessions_on_instance(id), (*id).clone())).cloned()
}

fn unavailable(app: &AppName, message: &str) -> Error {
    Error::Unavailable { what: format!("the in-memory router for app {app}"), message: message.to_owned() }
}
