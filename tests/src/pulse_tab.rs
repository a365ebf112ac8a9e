//! A simulated browser tab of a Pulse app, through a **page-tier stand-in**.
//!
//! In production a Pulse page is served by a React server whose generated loader calls the Python
//! server's `POST /_pulse/prerender`, forwarding the browser's cookies, and reloads the page when the
//! answer is a redirect (3xx); the browser then connects Socket.IO with the render id from the prerender
//! in `auth.render_id`, and Pulse's client reloads on a CONNECT_ERROR whose `data.code` is
//! `render_id_collision`. That React tier cannot be built here (no npm registry), so this module does what
//! it does, no more: the stand-in is [`page_load`]. Nothing in the Python plugin depends on it.
//!
//! A [`PulseTab`] then attaches the route and clicks the example app's counter button (a Pulse callback)
//! on demand, checking that each answer is the counter exactly one higher, from the same render.
//!
//! Not for apps other than `examples/pulse-app/` (the counter's callback key and text are that app's).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::http::HttpClient;
use crate::socketio::{ConnectFailure, Incoming, SocketIo};

/// The example app's counter button callback (element path `2` of the page's root, prop `onClick`).
const INCREMENT_CALLBACK: &str = "2.onClick";
/// The cookies that carry version affinity (set by the router; cleared by a stale-affinity answer).
pub const AFFINITY_COOKIES: &[&str] =
    &[pulse_deploy_core::affinity::VERSION_COOKIE, pulse_deploy_core::affinity::INSTANCE_COOKIE];
/// How long a reconnected tab waits for the server's answer to its re-attach.
const RECONNECT_ANSWER: std::time::Duration = std::time::Duration::from_secs(10);
/// How many reloads one page load may take before it counts as a loop.
const MAX_RELOADS: u32 = 5;

/// The route info of the page `/` (what Pulse's loader sends).
fn route_info() -> Value {
    json!({"pathname": "/", "hash": "", "query": "", "queryParams": {}, "pathParams": {}, "catchall": []})
}

/// The `attach` message of the page `/` (serialized as Pulse's client sends it: `[refs, message]`).
fn attach_message() -> Value {
    json!([[[], [], [], []], {"type": "attach", "path": "/", "routeInfo": route_info()}])
}

/// The counter button's click (a Pulse `callback` message).
fn click_message() -> Value {
    json!([[[], [], [], []], {"type": "callback", "path": "/", "callback": INCREMENT_CALLBACK, "args": []}])
}

/// A cookie jar: name -> value.
pub type Cookies = BTreeMap<String, String>;

/// The `Cookie` header of a jar.
pub fn cookie_header(jar: &Cookies) -> String {
    jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
}

/// What a page load (prerender) gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Prerendered {
    /// The render id, for `auth.render_id`.
    pub render_id: String,
    /// The version and instance named on the page.
    pub version: String,
    /// The instance that rendered it.
    pub instance: String,
    /// The counter on the page.
    pub count: u64,
    /// Reloads it took (stale-affinity redirects followed).
    pub reloads: u32,
}

/// The page-tier stand-in: `POST /_pulse/prerender` for `/` with the jar's cookies, the answer's
/// cookies stored (a cleared one removed), a 3xx answer followed by reloading (as Pulse's loader does).
pub async fn page_load(http: &HttpClient, base: &str, jar: &mut Cookies) -> Result<Prerendered, String> {
    let body = serde_json::to_vec(&json!({"paths": ["/"], "routeInfo": route_info()})).expect("json");
    let mut reloads = 0;
    loop {
        let answer = http
            .post_json(&format!("{base}/_pulse/prerender"), &[("cookie", cookie_header(jar))], body.clone())
            .await?;
        for (name, value) in answer.set_cookies() {
            if value.is_empty() {
                jar.remove(&name);
            } else {
                jar.insert(name, value);
            }
        }
        if answer.status.is_redirection() {
            reloads += 1;
            if reloads > MAX_RELOADS {
                return Err(format!("prerender redirected {reloads} times in a row (a reload loop)"));
            }
            continue;
        }
        if !answer.status.is_success() {
            return Err(format!(
                "prerender answered {} (Pulse's loader throws on this): {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
        let mut p = parse_prerender(&answer.body)?;
        p.reloads = reloads;
        return Ok(p);
    }
}

/// Reads render id, version, instance and counter from a prerender answer (`[refs, payload]`).
fn parse_prerender(body: &[u8]) -> Result<Prerendered, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("prerender answer is not JSON: {e}"))?;
    let payload = v.get(1).ok_or_else(|| format!("prerender answer is not [refs, payload]: {v}"))?;
    let render_id = payload
        .pointer("/directives/socketio/auth/render_id")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("prerender answer without directives.socketio.auth.render_id: {payload}"))?
        .to_owned();
    let text = payload.to_string();
    let served =
        after(&text, "pulse-app ").ok_or_else(|| format!("page does not name its version: {text}"))?;
    let mut words = served.split_whitespace();
    let version = words.next().unwrap_or_default().to_owned();
    let instance = words.next().unwrap_or_default().to_owned();
    let count = count_in(&text).ok_or_else(|| format!("page has no counter: {text}"))?;
    Ok(Prerendered { render_id, version, instance, count, reloads: 0 })
}

/// The text after `marker` up to the next `"`.
fn after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let start = text.find(marker)? + marker.len();
    text[start..].split('"').next()
}

/// The `N` of the first `count: N` in `text`.
fn count_in(text: &str) -> Option<u64> {
    after(text, "count: ")?.trim().parse().ok()
}

/// What a click got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clicked {
    /// The counter answered one higher.
    Answered,
    /// The socket closed first (with this WebSocket close code, if any).
    Closed(Option<u16>),
}

/// An open tab: a prerendered page whose Socket.IO connection is attached.
#[derive(Debug)]
pub struct PulseTab {
    /// Cookies of this tab's browser.
    pub jar: Cookies,
    /// The last page load.
    pub page: Prerendered,
    /// The counter as last confirmed by the server.
    pub count: u64,
    /// Reloads caused by CONNECT_ERROR `render_id_collision`.
    pub collision_reloads: u32,
    sio: SocketIo,
}

/// Opens a tab: page load, Socket.IO connect with the render id, route attached. A CONNECT_ERROR with
/// `render_id_collision` reloads the page without version affinity, as Pulse's client does.
pub async fn open(http: &HttpClient, base: &str, mut jar: Cookies) -> Result<PulseTab, String> {
    let mut collision_reloads = 0;
    loop {
        let page = page_load(http, base, &mut jar).await?;
        let auth = json!({"render_id": page.render_id});
        match SocketIo::connect(base, &cookie_header(&jar), &auth).await {
            Ok(mut sio) => {
                let attach =
                    json!([[[], [], [], []], {"type": "attach", "path": "/", "routeInfo": route_info()}]);
                sio.emit("message", &attach).await?;
                let count = page.count;
                return Ok(PulseTab { jar, page, count, collision_reloads, sio });
            }
            Err(ConnectFailure::Refused(data))
                if data.get("code").and_then(Value::as_str) == Some("render_id_collision") =>
            {
                collision_reloads += 1;
                if collision_reloads > MAX_RELOADS {
                    return Err(format!(
                        "CONNECT_ERROR render_id_collision {collision_reloads} times in a row"
                    ));
                }
                for c in AFFINITY_COOKIES {
                    jar.remove(*c);
                }
            }
            Err(e) => return Err(format!("Socket.IO connect: {e}")),
        }
    }
}

impl PulseTab {
    /// Clicks the counter button and waits for the answer: the counter exactly one higher.
    pub async fn increment(&mut self) -> Result<(), String> {
        match self.try_increment().await? {
            Clicked::Answered => Ok(()),
            Clicked::Closed(code) => {
                Err(format!("socket closed ({code:?}) while waiting for {}", self.count + 1))
            }
        }
    }

    /// [`PulseTab::increment`], telling a closed socket (the server going away) apart from a wrong answer.
    pub async fn try_increment(&mut self) -> Result<Clicked, String> {
        self.sio.emit("message", &click_message()).await?;
        let want = self.count + 1;
        loop {
            match self.sio.next_event().await? {
                Incoming::Event(name, data) if name == "message" => {
                    let text = data.to_string();
                    if !text.contains("vdom_update") {
                        continue;
                    }
                    match count_in(&text) {
                        Some(n) if n == want => {
                            self.count = n;
                            return Ok(Clicked::Answered);
                        }
                        Some(n) => return Err(format!("counter answered {n}, expected {want}")),
                        None => continue,
                    }
                }
                Incoming::Event(_, _) => continue,
                Incoming::Closed(code) => return Ok(Clicked::Closed(code)),
            }
        }
    }

    /// After the server closed the socket: what Pulse's client does. Socket.IO reconnects with the same
    /// render id and cookies, re-attaches and repeats the click; a server that no longer has the render
    /// answers `{"type":"reload"}` (or refuses the CONNECT with `render_id_collision`), and the page
    /// reloads (prerender again, the browser's cookies kept). A server that still has the render answers
    /// the click (the counter one higher) and the tab goes on. Returns the tab and whether it reloaded.
    pub async fn reconnect(self, http: &HttpClient, base: &str) -> Result<(PulseTab, bool), String> {
        let PulseTab { jar, page, collision_reloads, sio, .. } = self;
        drop(sio);
        reconnect(http, base, jar, page, collision_reloads).await
    }

    /// Closes the tab's socket.
    pub async fn close(self) {
        self.sio.close().await;
    }
}

/// [`PulseTab::reconnect`] for a tab known by its cookies and last page (its socket gone): reconnects
/// with `page.render_id`; reloads when the server no longer has that render.
pub async fn reconnect(
    http: &HttpClient,
    base: &str,
    jar: Cookies,
    page: Prerendered,
    collision_reloads: u32,
) -> Result<(PulseTab, bool), String> {
    let auth = json!({"render_id": page.render_id});
    match SocketIo::connect(base, &cookie_header(&jar), &auth).await {
        Ok(mut sio) => {
            sio.emit("message", &attach_message()).await?;
            // A server that still has the render answers the click with the counter one higher; one that
            // created a fresh render for the unknown id answers `reload`.
            sio.emit("message", &click_message()).await?;
            loop {
                let next = tokio::time::timeout(RECONNECT_ANSWER, sio.next_event())
                    .await
                    .map_err(|_| format!("no answer to the re-attach within {RECONNECT_ANSWER:?}"))?;
                match next? {
                    Incoming::Event(name, data) if name == "message" => {
                        let text = data.to_string();
                        if text.contains("\"type\":\"reload\"") {
                            sio.close().await;
                            break;
                        }
                        if text.contains("vdom_update") || text.contains("vdom_init") {
                            if let Some(count) = count_in(&text) {
                                return Ok((PulseTab { jar, page, count, collision_reloads, sio }, false));
                            }
                        }
                    }
                    Incoming::Event(_, _) => continue,
                    Incoming::Closed(code) => {
                        return Err(format!("socket closed ({code:?}) right after reconnecting"))
                    }
                }
            }
        }
        Err(ConnectFailure::Refused(data))
            if data.get("code").and_then(Value::as_str) == Some("render_id_collision") => {}
        Err(e) => return Err(format!("Socket.IO reconnect: {e}")),
    }
    Ok((open(http, base, jar).await?, true))
}
