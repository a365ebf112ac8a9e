//! A minimal Socket.IO client (protocol 5 over engine.io 4, WebSocket transport only), as Pulse's browser
//! client speaks it: `GET /socket.io/?EIO=4&transport=websocket` upgraded to a WebSocket, the server's
//! engine.io OPEN (`0{...}`), our CONNECT with an auth object (`40{...}`), answered by CONNECT (`40{sid}`)
//! or CONNECT_ERROR (`44{data}`); then EVENTs (`42[name, data]`) both ways, and the server's PING (`2`)
//! answered with PONG (`3`). Enough for the e2e's sessions and the benchmark; every frame is checked.
//!
//! Not for: polling transport, binary attachments, namespaces other than `/`, acknowledgements.

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connect did not give a connected socket.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectFailure {
    /// The server answered CONNECT with CONNECT_ERROR and this data (e.g. `{"code":"render_id_collision"}`).
    Refused(Value),
    /// Anything else: the upgrade failed, a frame was not what the protocol says, the socket closed.
    Broken(String),
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectFailure::Refused(data) => write!(f, "CONNECT_ERROR {data}"),
            ConnectFailure::Broken(e) => write!(f, "{e}"),
        }
    }
}

/// What [`SocketIo::next_event`] returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// An EVENT: its name and its first argument (`Null` if none).
    Event(String, Value),
    /// The server disconnected the namespace (`41`) or engine.io (`1`) (no code), or closed the WebSocket
    /// with a close frame (its code).
    Closed(Option<u16>),
}

/// A connected Socket.IO client on the default namespace.
pub struct SocketIo {
    ws: Ws,
    /// The Socket.IO session id the server gave at CONNECT.
    pub sid: String,
}

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo").field("sid", &self.sid).finish_non_exhaustive()
    }
}

impl SocketIo {
    /// Connects to `base` (`http://host:port`) with the `cookie` header and the CONNECT `auth` object.
    pub async fn connect(base: &str, cookie: &str, auth: &Value) -> Result<SocketIo, ConnectFailure> {
        let broken = ConnectFailure::Broken;
        let url = format!("{}/socket.io/?EIO=4&transport=websocket", base.replacen("http", "ws", 1));
        let mut req = url.as_str().into_client_request().map_err(|e| broken(format!("{url}: {e}")))?;
        if !cookie.is_empty() {
            req.headers_mut()
                .insert("cookie", cookie.parse().map_err(|e| broken(format!("cookie header: {e}")))?);
        }
        let (mut ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| broken(format!("upgrade of {url}: {e}")))?;
        let open = next_text(&mut ws).await.map_err(broken)?;
        if !open.starts_with('0') {
            return Err(broken(format!("expected engine.io OPEN, got {open:?}")));
        }
        ws.send(Message::text(format!("40{auth}")))
            .await
            .map_err(|e| broken(format!("sending CONNECT: {e}")))?;
        loop {
            let frame = next_text(&mut ws).await.map_err(broken)?;
            if frame == "2" {
                ws.send(Message::text("3")).await.map_err(|e| broken(format!("sending PONG: {e}")))?;
                continue;
            }
            if let Some(body) = frame.strip_prefix("40") {
                let v: Value =
                    serde_json::from_str(body).map_err(|e| broken(format!("CONNECT {body}: {e}")))?;
                let sid = v
                    .get("sid")
                    .and_then(Value::as_str)
                    .ok_or(broken(format!("CONNECT without sid: {v}")))?;
                return Ok(SocketIo { ws, sid: sid.to_owned() });
            }
            if let Some(body) = frame.strip_prefix("44") {
                let v = serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()));
                let _ = ws.close(None).await;
                return Err(ConnectFailure::Refused(v));
            }
            return Err(broken(format!("expected CONNECT or CONNECT_ERROR, got {frame:?}")));
        }
    }

    /// Sends the EVENT `name` with one argument.
    pub async fn emit(&mut self, name: &str, data: &Value) -> Result<(), String> {
        let frame = format!("42{}", Value::Array(vec![Value::String(name.into()), data.clone()]));
        self.ws.send(Message::text(frame)).await.map_err(|e| format!("sending {name}: {e}"))
    }

    /// The next EVENT or the end of the socket, answering PINGs on the way.
    pub async fn next_event(&mut self) -> Result<Incoming, String> {
        loop {
            let msg = match self.ws.next().await {
                None => return Err("connection ended without a close frame".into()),
                Some(Err(e)) => return Err(format!("socket error: {e}")),
                Some(Ok(m)) => m,
            };
            let text = match msg {
                Message::Text(t) => t.to_string(),
                Message::Close(frame) => {
                    return Ok(Incoming::Closed(frame.map(|f: CloseFrame| f.code.into())))
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                Message::Binary(_) => return Err("unexpected binary frame".into()),
            };
            match text.as_bytes().first() {
                Some(b'2') => {
                    self.ws.send(Message::text("3")).await.map_err(|e| format!("sending PONG: {e}"))?;
                }
                Some(b'1') => return Ok(Incoming::Closed(None)),
                Some(b'4') if text.starts_with("41") => return Ok(Incoming::Closed(None)),
                Some(b'4') if text.starts_with("42") => {
                    let v: Value =
                        serde_json::from_str(&text[2..]).map_err(|e| format!("EVENT {text}: {e}"))?;
                    let mut items = v.as_array().cloned().ok_or(format!("EVENT is not an array: {text}"))?;
                    if items.is_empty() {
                        return Err(format!("EVENT without a name: {text}"));
                    }
                    let name =
                        items.remove(0).as_str().map(str::to_owned).ok_or(format!("EVENT name: {text}"))?;
                    return Ok(Incoming::Event(name, items.into_iter().next().unwrap_or(Value::Null)));
                }
                _ => return Err(format!("unexpected frame {text:?}")),
            }
        }
    }

    /// Disconnects the namespace and closes the WebSocket.
    pub async fn close(mut self) {
        let _ = self.ws.send(Message::text("41")).await;
        let _ = self.ws.close(None).await;
    }
}

async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.next().await {
            None => return Err("socket closed".into()),
            Some(Err(e)) => return Err(format!("socket error: {e}")),
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(Message::Close(f))) => return Err(format!("socket closed: {f:?}")),
            Some(Ok(_)) => continue,
        }
    }
}
