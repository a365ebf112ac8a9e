//! The checker's minimal Socket.IO client, for the Pulse mode: Engine.IO v4 over the WebSocket transport
//! (`/socket.io/?EIO=4&transport=websocket`), one CONNECT to the default namespace carrying Pulse's
//! `auth.render_id`, and the answer (CONNECT accepted, or CONNECT_ERROR with its data). While a connection is
//! held it answers the server's pings, so the render stays connected.
//!
//! Not for: events, acknowledgements, binary attachments or the polling transport (Pulse's client connects
//! with the websocket transport only).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::client::{websocket, Socket};

/// One Engine.IO v4 packet (the first character of a text frame is its type).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EnginePacket {
    /// `0{json}`: the handshake (sid, pingInterval, pingTimeout, maxPayload).
    Open(Value),
    /// `1`.
    Close,
    /// `2` (server ping; the client answers `3`).
    Ping,
    /// `3`.
    Pong,
    /// `4...`: a Socket.IO packet.
    Message(String),
    /// `5` / `6`: transport upgrade packets (not used over a direct WebSocket).
    Upgrade,
}

/// Parses one Engine.IO v4 text frame.
pub(crate) fn parse_engine(frame: &str) -> Result<EnginePacket, String> {
    let mut chars = frame.chars();
    let kind = chars.next().ok_or("empty Engine.IO frame")?;
    let rest = chars.as_str();
    match kind {
        '0' => serde_json::from_str(rest)
            .map(EnginePacket::Open)
            .map_err(|e| format!("Engine.IO OPEN is not JSON ({e}): {frame}")),
        '1' => Ok(EnginePacket::Close),
        '2' => Ok(EnginePacket::Ping),
        '3' => Ok(EnginePacket::Pong),
        '4' => Ok(EnginePacket::Message(rest.to_owned())),
        '5' | '6' => Ok(EnginePacket::Upgrade),
        _ => Err(format!("not an Engine.IO v4 packet: {frame}")),
    }
}

/// One Socket.IO v5 packet (those the checker needs; events are kept unparsed).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SocketPacket {
    /// `0[/nsp,]{json}`: CONNECT accepted (the server's data holds the socket's sid).
    Connect { namespace: String, data: Option<Value> },
    /// `1[/nsp,]`.
    Disconnect { namespace: String },
    /// `4[/nsp,]{json}`: CONNECT_ERROR, e.g. `{"message":"stale_affinity","data":{...}}`.
    ConnectError { namespace: String, data: Value },
    /// Any other packet type (events, acks), by its type digit.
    Other { kind: char, namespace: String },
}

/// Parses the Socket.IO packet inside an Engine.IO message (`type [attachments-] [/nsp,] [ack id] [json]`).
pub(crate) fn parse_socket(packet: &str) -> Result<SocketPacket, String> {
    let mut chars = packet.chars();
    let kind = chars.next().ok_or("empty Socket.IO packet")?;
    if !('0'..='6').contains(&kind) {
        return Err(format!("not a Socket.IO v5 packet: {packet}"));
    }
    let mut rest = chars.as_str();
    if matches!(kind, '5' | '6') {
        let dash =
            rest.find('-').ok_or_else(|| format!("binary packet without attachment count: {packet}"))?;
        rest = &rest[dash + 1..];
    }
    let namespace = if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        let ns = rest[..end].to_owned();
        rest = rest.get(end + 1..).unwrap_or("");
        ns
    } else {
        "/".to_owned()
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let data = if rest.is_empty() {
        None
    } else {
        Some(
            serde_json::from_str::<Value>(rest)
                .map_err(|e| format!("Socket.IO payload is not JSON ({e}): {packet}"))?,
        )
    };
    Ok(match kind {
        '0' => SocketPacket::Connect { namespace, data },
        '1' => SocketPacket::Disconnect { namespace },
        '4' => SocketPacket::ConnectError {
            namespace,
            data: data.ok_or_else(|| format!("CONNECT_ERROR without data: {packet}"))?,
        },
        other => SocketPacket::Other { kind: other, namespace },
    })
}

/// The text frame of a CONNECT to the default namespace with `auth` as its payload (`40{...}`).
pub(crate) fn connect_frame(auth: &Value) -> String {
    format!("40{auth}")
}

/// The CONNECT_ERROR fields a Pulse client acts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConnectError {
    /// `message` (the plugin sends `stale_affinity`).
    pub(crate) message: Option<String>,
    /// `data.code` (Pulse's client reloads on `render_id_collision`).
    pub(crate) code: Option<String>,
    /// `data.reason`.
    pub(crate) reason: Option<String>,
    /// `data.version`: the version that turned the session away.
    pub(crate) version: Option<String>,
}

impl ConnectError {
    /// Reads the fields of a CONNECT_ERROR payload (Socket.IO v5: `{"message", "data"}`).
    pub(crate) fn from_payload(payload: &Value) -> ConnectError {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let data = payload.get("data");
        ConnectError {
            message: text(payload.get("message")),
            code: text(data.and_then(|d| d.get("code"))),
            reason: text(data.and_then(|d| d.get("reason"))),
            version: text(data.and_then(|d| d.get("version"))),
        }
    }
}

/// A Socket.IO connection whose CONNECT was accepted, kept alive (pings answered) until [`Connection::close`].
#[derive(Debug)]
pub(crate) struct Connection {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Connection {
    fn hold(mut socket: Socket) -> Connection {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    frame = socket.next() => match frame {
                        Some(Ok(Message::Text(t))) if parse_engine(t.as_str()) == Ok(EnginePacket::Ping) => {
                            if socket.send(Message::text("3")).await.is_err() {
                                return;
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => return,
                    },
                }
            }
            let _ = socket.send(Message::text("1")).await;
            let _ = socket.close(None).await;
        });
        Connection { stop, task }
    }

    /// Sends Engine.IO CLOSE and closes the WebSocket.
    pub(crate) async fn close(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// What the server answered to the CONNECT.
#[derive(Debug)]
pub(crate) enum Connected {
    /// `40...`: accepted; the connection is held.
    Accepted(Connection, String),
    /// `44...`: refused, with what it said.
    Refused(ConnectError, String),
}

/// Opens `ws_url` (`ws://host:port/socket.io/?EIO=4&transport=websocket`) with `cookie`, waits for the
/// Engine.IO OPEN, sends a CONNECT with `auth` and returns the answer. `Err` says what went wrong (an HTTP
/// answer instead of `101`, a timeout, a frame that is not Engine.IO/Socket.IO).
pub(crate) async fn connect(
    ws_url: &str,
    cookie: Option<&str>,
    auth: &Value,
    timeout: Duration,
) -> Result<Connected, String> {
    let headers: Vec<(&str, String)> = cookie.map(|c| vec![("cookie", c.to_owned())]).unwrap_or_default();
    let mut socket = match websocket(ws_url, &headers, timeout).await {
        Ok(s) => s,
        Err(Ok(answer)) => return Err(format!("no 101 on the upgrade: {}", answer.saw(&[]))),
        Err(Err(e)) => return Err(e),
    };
    let exchange = async {
        let mut opened = false;
        while let Some(frame) = socket.next().await {
            let text = match frame.map_err(|e| format!("WebSocket error: {e}"))? {
                Message::Text(t) => t.as_str().to_owned(),
                Message::Close(c) => return Err(format!("closed before the CONNECT was answered: {c:?}")),
                _ => continue,
            };
            match parse_engine(&text)? {
                EnginePacket::Open(_) if !opened => {
                    opened = true;
                    socket.send(Message::text(connect_frame(auth))).await.map_err(|e| e.to_string())?;
                }
                EnginePacket::Ping => socket.send(Message::text("3")).await.map_err(|e| e.to_string())?,
                EnginePacket::Close => {
                    return Err(format!("Engine.IO CLOSE before the CONNECT was answered: {text}"))
                }
                EnginePacket::Message(m) if opened => match parse_socket(&m)? {
                    SocketPacket::Connect { namespace, .. } if namespace == "/" => {
                        return Ok(Ok(text));
                    }
                    SocketPacket::ConnectError { namespace, data } if namespace == "/" => {
                        return Ok(Err((ConnectError::from_payload(&data), text)));
                    }
                    _ => {}
                },
                _ if !opened => return Err(format!("expected the Engine.IO OPEN first, got: {text}")),
                _ => {}
            }
        }
        Err("the connection ended before the CONNECT was answered".to_owned())
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(format!("{ws_url}: no CONNECT answer within {timeout:?}")),
        Ok(Err(e)) => Err(e),
        Ok(Ok(Ok(saw))) => Ok(Connected::Accepted(Connection::hold(socket), saw)),
        Ok(Ok(Err((error, saw)))) => {
            let _ = socket.close(None).await;
            Ok(Connected::Refused(error, saw))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn engine_packets() {
        assert_eq!(
            parse_engine(r#"0{"sid":"a","pingInterval":25000}"#),
            Ok(EnginePacket::Open(json!({"sid":"a","pingInterval":25000})))
        );
        assert_eq!(parse_engine("2"), Ok(EnginePacket::Ping));
        assert_eq!(parse_engine("3probe"), Ok(EnginePacket::Pong));
        assert_eq!(parse_engine("1"), Ok(EnginePacket::Close));
        assert_eq!(parse_engine(r#"40{"sid":"x"}"#), Ok(EnginePacket::Message(r#"0{"sid":"x"}"#.into())));
        assert!(parse_engine("").is_err());
        assert!(parse_engine("9").is_err());
        assert!(parse_engine("0not json").is_err());
    }

    #[test]
    fn socket_packets() {
        assert_eq!(
            parse_socket(r#"0{"sid":"x"}"#),
            Ok(SocketPacket::Connect { namespace: "/".into(), data: Some(json!({"sid":"x"})) })
        );
        assert_eq!(
            parse_socket(r#"0/admin,{"sid":"y"}"#),
            Ok(SocketPacket::Connect { namespace: "/admin".into(), data: Some(json!({"sid":"y"})) })
        );
        assert_eq!(parse_socket("1"), Ok(SocketPacket::Disconnect { namespace: "/".into() }));
        assert_eq!(parse_socket("1/chat,"), Ok(SocketPacket::Disconnect { namespace: "/chat".into() }));
        assert_eq!(
            parse_socket(r#"212["ack",1]"#),
            Ok(SocketPacket::Other { kind: '2', namespace: "/".into() })
        );
        assert_eq!(
            parse_socket(r#"51-["file",{"_placeholder":true,"num":0}]"#),
            Ok(SocketPacket::Other { kind: '5', namespace: "/".into() })
        );
        assert!(parse_socket("4").is_err(), "a CONNECT_ERROR carries data");
        assert!(parse_socket("7").is_err());
        assert!(parse_socket("0{broken").is_err());
    }

    #[test]
    fn the_plugins_connect_error_is_read_as_pulse_reads_it() {
        // Exactly what python/pulse-deploy-plugin sends (python-socketio's ConnectionRefusedError).
        let frame = r#"44{"message":"stale_affinity","data":{"code":"render_id_collision","reason":"stale_affinity","version":"v2"}}"#;
        let EnginePacket::Message(m) = parse_engine(frame).unwrap() else { panic!("not a message") };
        let SocketPacket::ConnectError { namespace, data } = parse_socket(&m).unwrap() else {
            panic!("not a CONNECT_ERROR")
        };
        assert_eq!(namespace, "/");
        let e = ConnectError::from_payload(&data);
        assert_eq!(e.message.as_deref(), Some("stale_affinity"));
        assert_eq!(e.code.as_deref(), Some("render_id_collision"));
        assert_eq!(e.reason.as_deref(), Some("stale_affinity"));
        assert_eq!(e.version.as_deref(), Some("v2"));
        let bare = ConnectError::from_payload(&json!({"message": "not authorized"}));
        assert_eq!((bare.message.as_deref(), bare.code), (Some("not authorized"), None));
    }

    #[test]
    fn connect_frame_carries_the_render_id() {
        let frame = connect_frame(&json!({"render_id": "r1"}));
        assert_eq!(frame, r#"40{"render_id":"r1"}"#);
        let EnginePacket::Message(m) = parse_engine(&frame).unwrap() else { panic!() };
        assert_eq!(
            parse_socket(&m),
            Ok(SocketPacket::Connect { namespace: "/".into(), data: Some(json!({"render_id": "r1"})) })
        );
    }
}
