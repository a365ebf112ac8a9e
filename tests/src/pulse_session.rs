//! A live session of the example Pulse app for the end-to-end run: a [`PulseTab`] that clicks the counter
//! on a steady tick and checks every answer (exactly one more), recorded in the same [`SessionRecord`]
//! the demo app's sessions use, so the run's checks are the same for both apps.
//!
//! When the server closes the socket (an instance shutting down closes it with 1001), the tab does what
//! Pulse's client does ([`PulseTab::reconnect`]): Socket.IO reconnects with the same render id; a server
//! without that render answers `reload` and the page reloads (prerender through the page-tier stand-in,
//! then Socket.IO with the new render id); the reload is recorded as a [`Move`].
//! Anything else (a wrong answer, an error) drops the session.
//!
//! Not for the plain demo app: see `crate::session`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::http::HttpClient;
use crate::pulse_tab::{self, Clicked, Cookies, PulseTab};
use crate::session::{Fate, Move, SessionHandle, SessionRecord};

/// Opens a Pulse session through `base` (`http://HOST:PORT`); `affinity` pre-sets the version cookie
/// (a returning user whose cookie names an old version). Clicks every `tick`.
pub async fn open(
    n: usize,
    http: &HttpClient,
    base: &str,
    affinity: Option<&str>,
    tick: Duration,
) -> Result<SessionHandle, String> {
    let mut jar = Cookies::new();
    if let Some(v) = affinity {
        jar.insert(pulse_deploy_core::affinity::VERSION_COOKIE.into(), v.into());
    }
    let tab = pulse_tab::open(http, base, jar).await?;
    let record = Arc::new(Mutex::new(SessionRecord {
        n,
        session: tab.page.render_id.clone(),
        first_version: tab.page.version.clone(),
        version: tab.page.version.clone(),
        instance: tab.page.instance.clone(),
        answers: 0,
        stale_redirects: tab.page.reloads + tab.collision_reloads,
        moves: Vec::new(),
        resumes: Vec::new(),
        fate: Fate::Open,
    }));
    let (close, closed) = watch::channel(false);
    let task = tokio::spawn(run(http.clone(), base.to_owned(), tab, record.clone(), tick, closed));
    Ok(SessionHandle::from_task(record, close, task))
}

async fn run(
    http: HttpClient,
    base: String,
    mut tab: PulseTab,
    record: Arc<Mutex<SessionRecord>>,
    tick: Duration,
    mut closed: watch::Receiver<bool>,
) {
    let fail = |reason: String| record.lock().unwrap().fate = Fate::Dropped(reason);
    let mut interval = tokio::time::interval(tick);
    loop {
        tokio::select! {
            _ = closed.changed() => {
                tab.close().await;
                record.lock().unwrap().fate = Fate::Closed;
                return;
            }
            _ = interval.tick() => {
                match tokio::time::timeout(Duration::from_secs(10), tab.try_increment()).await {
                    Err(_) => return fail("no answer within 10 s".into()),
                    Ok(Err(e)) => return fail(e),
                    Ok(Ok(Clicked::Answered)) => record.lock().unwrap().answers += 1,
                    Ok(Ok(Clicked::Closed(code))) => {
                        let at = Instant::now();
                        if !matches!(code, Some(1001) | None) {
                            return fail(format!("socket closed with {code:?} (only 1001 may end a session)"));
                        }
                        match tab.reconnect(&http, &base).await {
                            Ok((new_tab, reloaded)) => {
                                let mut r = record.lock().unwrap();
                                if reloaded || new_tab.page.version != r.version {
                                    let from = r.version.clone();
                                    r.moves.push(Move { from, to: new_tab.page.version.clone(), at });
                                }
                                r.session = new_tab.page.render_id.clone();
                                r.version = new_tab.page.version.clone();
                                r.instance = new_tab.page.instance.clone();
                                tab = new_tab;
                            }
                            Err(e) => return fail(format!("reconnect after the socket closed: {e}")),
                        }
                    }
                }
            }
        }
    }
}
