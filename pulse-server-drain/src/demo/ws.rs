//! The demo's WebSocket endpoint: attach to (or create) a session, answer its JSON messages, close with
//! 1001 on shutdown, and start the reconnect grace when the socket goes away.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::DemoApp;
use crate::shutdown::going_away;

/// Read buffer of a demo socket: its messages are tiny, and tungstenite's default (128 KiB per socket)
/// would dominate the memory per session.
const READ_BUFFER: usize = 4096;
/// Largest message accepted from a client.
const MAX_MESSAGE: usize = 64 * 1024;

/// Sizes the socket's buffers for small messages.
fn sized(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
}

/// Close code when a newer connection took the session over.
pub(crate) const CLOSE_REPLACED: u16 = 4001;
/// Close code when the session ended before the socket could attach.
pub(crate) const CLOSE_SESSION_GONE: u16 = 4404;

#[derive(Debug, Deserialize)]
pub(crate) struct WsQuery {
    session: Option<String>,
}

/// A message from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Increment,
    Ping,
    End,
}

/// A message to the client.
#[derive(Debug, Serialize)]
struct ServerMessage<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    app: &'a str,
    session: &'a str,
    version: &'a str,
    instance: &'a str,
    counter: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    resumed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

pub(crate) async fn upgrade(
    State(app): State<DemoApp>,
    Query(query): Query<WsQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    req: Request,
) -> Response {
    let known = query.session.filter(|id| app.sessions.is_live(id));
    let (session, resumed) = match known {
        Some(id) => (id, true),
        None => {
            if app.config.drain_layer {
                if let Err(answer) = app.state.admit_new_session(req.method(), req.uri(), req.headers()) {
                    return answer;
                }
            }
            let upgrade = match upgrade {
                Ok(u) => u,
                Err(rejection) => return rejection.into_response(),
            };
            let id = app.sessions.create();
            return sized(upgrade).on_upgrade(move |socket| run(app, socket, id, false));
        }
    };
    match upgrade {
        Ok(u) => sized(u).on_upgrade(move |socket| run(app, socket, session, resumed)),
        Err(rejection) => rejection.into_response(),
    }
}

async fn send(
    socket: &mut WebSocket,
    app: &DemoApp,
    session: &str,
    kind: &str,
    counter: u64,
    resumed: Option<bool>,
    message: Option<String>,
) -> bool {
    let m = ServerMessage {
        kind,
        app: &app.config.app,
        session,
        version: app.state.version(),
        instance: app.state.instance_id(),
        counter,
        resumed,
        message,
    };
    let text = serde_json::to_string(&m).expect("serializable");
    socket.send(Message::Text(text.into())).await.is_ok()
}

async fn run(app: DemoApp, mut socket: WebSocket, session: String, resumed: bool) {
    let _tracked = app.state.tracker().token();
    let shutdown = app.state.shutdown_token();
    if shutdown.is_cancelled() {
        let _ = socket.send(Message::Close(Some(going_away()))).await;
        return;
    }
    let Some(attached) = app.sessions.attach(&session) else {
        let frame = CloseFrame { code: CLOSE_SESSION_GONE, reason: "session ended; reload".into() };
        let _ = socket.send(Message::Close(Some(frame))).await;
        return;
    };
    if !send(&mut socket, &app, &session, "hello", attached.counter, Some(resumed), None).await {
        app.sessions.detach(&session, attached.conn);
        return;
    }
    let mut ended = false;
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                let _ = socket.send(Message::Close(Some(going_away()))).await;
                break;
            }
            () = attached.replaced.cancelled() => {
                let frame = CloseFrame { code: CLOSE_REPLACED, reason: "replaced by a newer connection".into() };
                let _ = socket.send(Message::Close(Some(frame))).await;
                break;
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let ok = match serde_json::from_str::<ClientMessage>(text.as_str()) {
                        Ok(ClientMessage::Increment) => {
                            let n = app.sessions.increment(&session).unwrap_or(0);
                            send(&mut socket, &app, &session, "counter", n, None, None).await
                        }
                        Ok(ClientMessage::Ping) => {
                            let n = app.sessions.counter(&session).unwrap_or(0);
                            send(&mut socket, &app, &session, "pong", n, None, None).await
                        }
                        Ok(ClientMessage::End) => {
                            let n = app.sessions.counter(&session).unwrap_or(0);
                            app.sessions.end(&session);
                            ended = true;
                            let _ = send(&mut socket, &app, &session, "ended", n, None, None).await;
                            let frame = CloseFrame { code: 1000, reason: "session ended".into() };
                            let _ = socket.send(Message::Close(Some(frame))).await;
                            false
                        }
                        Err(e) => {
                            let n = app.sessions.counter(&session).unwrap_or(0);
                            let message = format!("expected {{\"type\": \"increment\" | \"ping\" | \"end\"}}: {e}");
                            send(&mut socket, &app, &session, "error", n, None, Some(message)).await
                        }
                    };
                    if !ok {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    }
    if !ended {
        app.sessions.detach(&session, attached.conn);
    }
}
