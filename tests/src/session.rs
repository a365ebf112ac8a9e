//! A simulated user of the demo app: a page load that creates a RenderSession, then a WebSocket that
//! increments the session's counter on a steady tick and checks every answer — same session, same version,
//! same instance, counter exactly one more. The client behaves as the demo page's script does: it carries
//! the cookies the router set, follows a stale-affinity redirect, and on close code 1001 reconnects
//! (landing on the newest version when its own was reaped). Everything it sees is recorded, so the end-to-end
//! runner can tell a session that was kept from one that was moved (1001 past its version's drain deadline)
//! or dropped (anything else).
//!
//! [`open_with`] with [`OnError::Resume`] makes a client that also survives its connection being cut
//! (the router restarting): it reconnects with the same cookies and session id, and the session must resume
//! on the same version and instance with its counter intact; each such reconnect is recorded as a
//! [`Resume`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::http::HttpClient;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a session ended (or that it is still open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Still open and answering.
    Open,
    /// Closed by its user.
    Closed,
    /// Lost: an error, a close other than 1001, or an answer from the wrong session, version or instance.
    Dropped(String),
}

/// A move: the server closed the socket with 1001 and the client reconnected onto another version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// Version before.
    pub from: String,
    /// Version after.
    pub to: String,
    /// When the 1001 arrived.
    pub at: Instant,
}

/// A reconnect after the connection was cut (not a 1001): the same session resumed where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// Why the connection was lost.
    pub error: String,
    /// From the failure to the resumed session's hello.
    pub outage: Duration,
    /// Connection attempts it took.
    pub attempts: u32,
    /// When the session resumed.
    pub at: Instant,
}

/// What a client does when its WebSocket fails with anything but a 1001 close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// The session is dropped (the end-to-end rule: only a 1001 may end a socket).
    #[default]
    Drop,
    /// Reconnect with the same cookies and session id, trying for up to `within`; the session must resume
    /// on the same version and instance with its counter intact, else it is dropped.
    Resume {
        /// How long the client keeps trying.
        within: Duration,
    },
}

/// What one session saw.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// The session's number in the run.
    pub n: usize,
    /// The server's session id.
    pub session: String,
    /// The version that first held it.
    pub first_version: String,
    /// The version that holds it now.
    pub version: String,
    /// The instance that holds it now.
    pub instance: String,
    /// Answers checked.
    pub answers: u64,
    /// Stale-affinity redirects followed on page load.
    pub stale_redirects: u32,
    /// Moves to another version.
    pub moves: Vec<Move>,
    /// Reconnects that resumed the same session after a cut connection ([`OnError::Resume`] only).
    pub resumes: Vec<Resume>,
    /// How it ended.
    pub fate: Fate,
}

/// The demo server's WebSocket message.
#[derive(Debug, Deserialize)]
struct ServerMessage {
    #[serde(rename = "type")]
    kind: String,
    session: String,
    version: String,
    instance: String,
    counter: u64,
    /// On hello: whether an existing session was resumed.
    #[serde(default)]
    resumed: Option<bool>,
}

/// A running session: its record, and a way to close it.
pub struct SessionHandle {
    record: Arc<Mutex<SessionRecord>>,
    close: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl SessionHandle {
    /// A handle over a session client task of another kind (e.g. `crate::pulse_session`) that records
    /// into `record` and ends when `close` is set.
    pub(crate) fn from_task(
        record: Arc<Mutex<SessionRecord>>,
        close: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    ) -> Self {
        SessionHandle { record, close, task: Some(task) }
    }

    /// A copy of what the session saw so far.
    pub fn record(&self) -> SessionRecord {
        self.record.lock().unwrap().clone()
    }

    /// Ends the session (the user closes the tab: `{"type":"end"}`, then a normal close) and waits for it.
    pub async fn close(mut self) -> SessionRecord {
        let _ = self.close.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.record.lock().unwrap().clone()
    }
}

/// Cookies the client carries (name → value), like a browser tab.
#[derive(Debug, Clone, Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn absorb(&mut self, set: Vec<(String, String)>) {
        for (k, v) in set {
            if v.is_empty() {
                self.0.remove(&k);
            } else {
                self.0.insert(k, v);
            }
        }
    }

    fn header(&self) -> Option<String> {
        (!self.0.is_empty())
            .then(|| self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
    }
}

/// Opens a session through the router at `base` (`127.0.0.1:PORT`): page load, then WebSocket.
/// `affinity` pre-sets the version cookie (a returning user whose cookie names an old version).
pub async fn open(
    n: usize,
    http: &HttpClient,
    base: &str,
    affinity: Option<&str>,
    tick: Duration,
) -> Result<SessionHandle, String> {
    open_with(n, http, base, affinity, tick, OnError::Drop).await
}

/// [`open`], choosing what the client does when its connection fails ([`OnError`]).
pub async fn open_with(
    n: usize,
    http: &HttpClient,
    base: &str,
    affinity: Option<&str>,
    tick: Duration,
    on_error: OnError,
) -> Result<SessionHandle, String> {
    let mut jar = Jar::default();
    if let Some(v) = affinity {
        jar.0.insert(pulse_deploy_core::affinity::VERSION_COOKIE.into(), v.into());
    }
    let mut stale_redirects = 0;
    let page = loop {
        let headers: Vec<(&str, String)> = jar.header().map(|c| vec![("cookie", c)]).unwrap_or_default();
        let answer = http.get(&format!("http://{base}/"), &headers).await?;
        jar.absorb(answer.set_cookies());
        if answer.status.is_redirection()
            && !answer.header(pulse_deploy_core::affinity::STALE_AFFINITY_HEADER).is_empty()
        {
            stale_redirects += 1;
            if stale_redirects > 3 {
                return Err("page load: more than 3 stale-affinity redirects".into());
            }
            jar.0.remove(pulse_deploy_core::affinity::VERSION_COOKIE);
            continue;
        }
        if answer.status != http::StatusCode::OK {
            return Err(format!("page load: {} {}", answer.status, String::from_utf8_lossy(&answer.body)));
        }
        break answer;
    };
    let session = page.header("x-pulse-session");
    let version = page.header("x-pulse-version");
    let instance = page.header("x-pulse-instance");
    if session.is_empty() || version.is_empty() || instance.is_empty() {
        return Err("page load: missing x-pulse-session/-version/-instance".into());
    }
    let (ws, hello) = connect(base, &session, &jar).await?;
    if hello.version != version || hello.instance != instance || hello.session != session {
        return Err(format!(
            "WebSocket landed on {}/{} session {}, page was {version}/{instance} session {session}",
            hello.version, hello.instance, hello.session
        ));
    }
    let record = Arc::new(Mutex::new(SessionRecord {
        n,
        session,
        first_version: version.clone(),
        version,
        instance,
        answers: 0,
        stale_redirects,
        moves: Vec::new(),
        resumes: Vec::new(),
        fate: Fate::Open,
    }));
    let (close, closed) = watch::channel(false);
    let client = Client { base: base.to_owned(), jar, record: record.clone(), tick, on_error };
    let task = tokio::spawn(run(client, ws, hello.counter, closed));
    Ok(SessionHandle { record, close, task: Some(task) })
}

async fn connect(base: &str, session: &str, jar: &Jar) -> Result<(Ws, ServerMessage), String> {
    let mut request = format!("ws://{base}/ws?session={session}")
        .into_client_request()
        .map_err(|e| format!("WebSocket request: {e}"))?;
    if let Some(c) = jar.header() {
        request.headers_mut().insert("cookie", c.parse().map_err(|e| format!("cookie: {e}"))?);
    }
    let (mut ws, _) =
        tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| "WebSocket connect timed out".to_string())?
            .map_err(|e| format!("WebSocket connect: {e}"))?;
    let hello = next_message(&mut ws).await?.ok_or("WebSocket closed before hello")?;
    if hello.kind != "hello" {
        return Err(format!("expected hello, got {}", hello.kind));
    }
    Ok((ws, hello))
}

/// The next JSON message; `Ok(None)` on a 1001 close; `Err` on any other close or error.
async fn next_message(ws: &mut Ws) -> Result<Option<ServerMessage>, String> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .map_err(|_| "no answer within 10 s".to_string())?;
        match msg {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str())
                    .map(Some)
                    .map_err(|e| format!("bad message {t}: {e}"))
            }
            Some(Ok(Message::Close(Some(f)))) if f.code == CloseCode::Away => return Ok(None),
            Some(Ok(Message::Close(f))) => return Err(format!("closed by the server: {f:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("WebSocket error: {e}")),
            None => return Err("connection ended without a close frame".into()),
        }
    }
}

/// What a running session client needs besides its socket.
struct Client {
    base: String,
    jar: Jar,
    record: Arc<Mutex<SessionRecord>>,
    tick: Duration,
    on_error: OnError,
}

impl Client {
    /// After a cut connection: reconnects with the same cookies and session id until `within` passes,
    /// and checks that the same session resumed on the same version and instance. `counter` is the last
    /// counter seen; the resumed one may be one more (an increment whose answer was lost with the socket).
    async fn resume(&self, error: String, counter: u64, within: Duration) -> Result<(Ws, u64), String> {
        let lost = Instant::now();
        let (session, version, instance) = {
            let r = self.record.lock().unwrap();
            (r.session.clone(), r.version.clone(), r.instance.clone())
        };
        let mut attempts = 0;
        let mut pause = Duration::from_millis(20);
        let (ws, hello) = loop {
            attempts += 1;
            match connect(&self.base, &session, &self.jar).await {
                Ok(ok) => break ok,
                Err(e) if lost.elapsed() >= within => {
                    return Err(format!(
                        "lost ({error}); no reconnect within {within:?} ({attempts} attempts, last: {e})"
                    ))
                }
                // Retry pacing while the router is away, not synchronisation.
                Err(_) => tokio::time::sleep(pause).await,
            }
            pause = (pause * 2).min(Duration::from_millis(250));
        };
        if hello.session != session
            || hello.version != version
            || hello.instance != instance
            || hello.resumed != Some(true)
            || !(counter..=counter + 1).contains(&hello.counter)
        {
            return Err(format!(
                "lost ({error}); reconnected to {}/{} session {} counter {} (resumed: {:?}), expected {version}/{instance} session {session} counter {counter}",
                hello.version, hello.instance, hello.session, hello.counter, hello.resumed
            ));
        }
        self.record.lock().unwrap().resumes.push(Resume {
            error,
            outage: lost.elapsed(),
            attempts,
            at: Instant::now(),
        });
        Ok((ws, hello.counter))
    }
}

async fn run(client: Client, mut ws: Ws, mut counter: u64, mut closed: watch::Receiver<bool>) {
    let Client { base, jar, record, tick, on_error } = &client;
    let (base, jar, record, tick, on_error) = (base.as_str(), jar, record.clone(), *tick, *on_error);
    let fail = |reason: String| {
        record.lock().unwrap().fate = Fate::Dropped(reason);
    };
    let mut interval = tokio::time::interval(tick);
    loop {
        tokio::select! {
            _ = closed.changed() => {
                let end = serde_json::json!({"type": "end"}).to_string();
                let ended = async {
                    ws.send(Message::Text(end.into())).await.map_err(|e| e.to_string())?;
                    // Wait for "ended" (or the 1000 close that follows it).
                    loop {
                        match ws.next().await {
                            Some(Ok(Message::Text(t))) if t.as_str().contains("\"ended\"") => return Ok(()),
                            Some(Ok(Message::Close(_))) | None => return Ok(()),
                            Some(Ok(_)) => continue,
                            Some(Err(e)) => return Err(e.to_string()),
                        }
                    }
                };
                match tokio::time::timeout(Duration::from_secs(10), ended).await {
                    Ok(Ok(())) => record.lock().unwrap().fate = Fate::Closed,
                    Ok(Err(e)) => fail(format!("closing: {e}")),
                    Err(_) => fail("closing: no answer within 10 s".into()),
                }
                let _ = ws.close(None).await;
                return;
            }
            _ = interval.tick() => {
                let inc = serde_json::json!({"type": "increment"}).to_string();
                let answer = match ws.send(Message::Text(inc.into())).await {
                    Ok(()) => next_message(&mut ws).await,
                    Err(e) => Err(format!("send: {e}")),
                };
                let answer = match (answer, on_error) {
                    (Err(e), OnError::Resume { within }) => match client.resume(e, counter, within).await {
                        Ok((new_ws, resumed_at)) => {
                            ws = new_ws;
                            counter = resumed_at;
                            continue;
                        }
                        Err(e) => Err(e),
                    },
                    (answer, _) => answer,
                };
                match answer {
                    Ok(Some(m)) => {
                        let r = record.lock().unwrap().clone();
                        if m.session != r.session || m.version != r.version || m.instance != r.instance || m.counter != counter + 1 {
                            return fail(format!(
                                "answer from {}/{} session {} counter {}, expected {}/{} session {} counter {}",
                                m.version, m.instance, m.session, m.counter, r.version, r.instance, r.session, counter + 1
                            ));
                        }
                        counter = m.counter;
                        record.lock().unwrap().answers += 1;
                    }
                    Ok(None) => {
                        // 1001: the instance shuts down. Reconnect as the page does; the session id is kept
                        // so that a version still serving it would resume it.
                        let at = Instant::now();
                        let session = record.lock().unwrap().session.clone();
                        match connect(base, &session, jar).await {
                            Ok((new_ws, hello)) => {
                                let mut r = record.lock().unwrap();
                                let from = r.version.clone();
                                r.moves.push(Move { from, to: hello.version.clone(), at });
                                r.session = hello.session.clone();
                                r.version = hello.version.clone();
                                r.instance = hello.instance.clone();
                                counter = hello.counter;
                                ws = new_ws;
                            }
                            Err(e) => return fail(format!("reconnect after 1001: {e}")),
                        }
                    }
                    Err(e) => return fail(e),
                }
            }
        }
    }
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle").finish_non_exhaustive()
    }
}
