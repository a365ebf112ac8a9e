//! The demo's RenderSessions: a counter per session, at most one attached WebSocket, and a reconnect grace
//! period after which a detached session ends. Each live session holds a [`SessionGuard`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::{DrainState, SessionGuard};

/// The session registry. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Sessions {
    map: Arc<Mutex<HashMap<String, Entry>>>,
    grace: Duration,
    state: DrainState,
    next_conn: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Entry {
    counter: u64,
    attached: Option<(u64, CancellationToken)>,
    epoch: u64,
    _guard: SessionGuard,
}

/// A WebSocket attached to a session.
#[derive(Debug)]
pub(crate) struct Attached {
    pub(crate) conn: u64,
    pub(crate) counter: u64,
    /// Cancelled when a newer connection takes the session over.
    pub(crate) replaced: CancellationToken,
}

impl Sessions {
    pub(crate) fn new(state: DrainState, grace: Duration) -> Self {
        Sessions { map: Arc::default(), grace, state, next_conn: Arc::new(AtomicU64::new(1)) }
    }

    /// Creates a session (not yet attached: it ends unless a WebSocket attaches within the grace).
    pub(crate) fn create(&self) -> String {
        let id = format!("{:032x}", rand::random::<u128>());
        let entry = Entry { counter: 0, attached: None, epoch: 0, _guard: self.state.session() };
        self.map.lock().expect("sessions lock").insert(id.clone(), entry);
        self.expire_later(id.clone(), 0);
        id
    }

    pub(crate) fn is_live(&self, id: &str) -> bool {
        self.map.lock().expect("sessions lock").contains_key(id)
    }

    /// Attaches a connection, replacing (and cancelling) a previous one.
    pub(crate) fn attach(&self, id: &str) -> Option<Attached> {
        let mut map = self.map.lock().expect("sessions lock");
        let entry = map.get_mut(id)?;
        if let Some((_, old)) = entry.attached.take() {
            old.cancel();
        }
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let replaced = CancellationToken::new();
        entry.attached = Some((conn, replaced.clone()));
        entry.epoch += 1;
        Some(Attached { conn, counter: entry.counter, replaced })
    }

    /// Detaches `conn` (if still the attached one) and starts the reconnect grace.
    pub(crate) fn detach(&self, id: &str, conn: u64) {
        let mut map = self.map.lock().expect("sessions lock");
        if let Some(entry) = map.get_mut(id) {
            if entry.attached.as_ref().is_some_and(|(c, _)| *c == conn) {
                entry.attached = None;
                entry.epoch += 1;
                let epoch = entry.epoch;
                drop(map);
                self.expire_later(id.to_owned(), epoch);
            }
        }
    }

    pub(crate) fn increment(&self, id: &str) -> Option<u64> {
        let mut map = self.map.lock().expect("sessions lock");
        let entry = map.get_mut(id)?;
        entry.counter += 1;
        Some(entry.counter)
    }

    pub(crate) fn counter(&self, id: &str) -> Option<u64> {
        self.map.lock().expect("sessions lock").get(id).map(|e| e.counter)
    }

    /// Ends a session at once.
    pub(crate) fn end(&self, id: &str) {
        self.map.lock().expect("sessions lock").remove(id);
    }

    /// Ends every session (shutdown).
    pub(crate) fn end_all(&self) -> usize {
        let mut map = self.map.lock().expect("sessions lock");
        let n = map.len();
        map.clear();
        n
    }

    /// Ends the session after the grace if it is still detached in the same epoch.
    fn expire_later(&self, id: String, epoch: u64) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(this.grace).await;
            let mut map = this.map.lock().expect("sessions lock");
            if map.get(&id).is_some_and(|e| e.attached.is_none() && e.epoch == epoch) {
                map.remove(&id);
                tracing::debug!(session = %id, "session ended: reconnect grace expired");
            }
        });
    }
}
