//! Graceful shutdown: SIGTERM/SIGINT (or [`DrainState::begin_shutdown`]) puts the instance in
//! `shutting_down` (health 503) and cancels [`DrainState::shutdown_token`], on which WebSocket tasks close
//! with code 1001; the server stops accepting; then tracked tasks are awaited and the shutdown hooks run,
//! all within the configured shutdown timeout: in-flight requests and tracked tasks get its first half, the
//! hooks the rest (so a hanging request cannot starve the hooks). A second signal exits the process at
//! once (code 130).
//!
//! [`serve`] does all of it (a hyper server with a header read timeout); [`DrainState::shutdown_signal`] and
//! [`DrainState::finish`] are the pieces, for servers that call `axum::serve` themselves.

use std::time::Duration;

use axum::extract::ws::CloseFrame;
use axum::extract::ConnectInfo;
use axum::Router;
use futures::future::BoxFuture;
use pulse_deploy_core::drain::wire::{SHUTDOWN_CLOSE_CODE, SHUTDOWN_CLOSE_REASON};
use pulse_deploy_core::{Error, Result};
use tokio::net::TcpListener;

use crate::state::DrainState;

/// A shutdown hook: called once, its future is awaited with the remaining shutdown deadline.
pub(crate) type Hook = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// What happened during shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Whether every in-flight HTTP request finished before the deadline (always true when the server was
    /// not run by [`serve`]).
    pub requests_finished: bool,
    /// Whether every tracked task (e.g. WebSocket) finished before the deadline.
    pub tasks_finished: bool,
    /// Hooks that completed, in order.
    pub hooks_completed: Vec<String>,
    /// Hooks cut by the deadline (or not started because it had passed).
    pub hooks_timed_out: Vec<String>,
    /// Time from the start of shutdown to the end of the last hook.
    pub took: Duration,
}

impl ShutdownReport {
    /// Whether everything finished within the deadline.
    pub fn is_clean(&self) -> bool {
        self.requests_finished && self.tasks_finished && self.hooks_timed_out.is_empty()
    }
}

/// The close frame WebSocket tasks send when the instance shuts down: code 1001 (going away) and a reason
/// telling the client to reconnect (it will land on the newest version).
pub fn going_away() -> CloseFrame {
    CloseFrame { code: SHUTDOWN_CLOSE_CODE, reason: SHUTDOWN_CLOSE_REASON.into() }
}

/// Runs `hooks` in order, each bounded by what is left until `deadline`; the names of those completed and
/// of those cut (or not started because the deadline had passed).
pub(crate) async fn run_hooks(
    hooks: Vec<(String, Hook)>,
    deadline: tokio::time::Instant,
) -> (Vec<String>, Vec<String>) {
    let (mut completed, mut timed_out) = (vec![], vec![]);
    for (name, hook) in hooks {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(hook = %name, "shutdown deadline passed; hook not run");
            timed_out.push(name);
            continue;
        }
        match tokio::time::timeout_at(deadline, hook()).await {
            Ok(()) => completed.push(name),
            Err(_) => {
                tracing::warn!(hook = %name, "shutdown hook cut by the deadline");
                timed_out.push(name);
            }
        }
    }
    (completed, timed_out)
}

/// How long a client may take to send a request's line and headers before its connection is closed
/// (hyper's header read timeout): slow or half-sent requests cannot hold connections forever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until shutdown (SIGTERM/SIGINT or [`DrainState::begin_shutdown`]), then
/// stops accepting, lets in-flight requests finish, waits for tracked tasks and runs the hooks — all within
/// the shutdown timeout. Peer addresses are recorded (per-peer throttling of failed admin logins).
///
/// A client has [`HEADER_READ_TIMEOUT`] to send a request's head. At shutdown, a connection that holds no
/// request (idle keep-alive, or a request head not complete yet) is closed rather than waited for: only
/// requests whose handler runs or whose answer is being written count as in flight, so a half-sent request
/// neither delays the shutdown nor makes it unclean.
pub async fn serve(listener: TcpListener, app: Router, state: DrainState) -> Result<ShutdownReport> {
    serve_with(listener, app, state, HEADER_READ_TIMEOUT).await
}

/// [`serve`] with another header read timeout.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    state: DrainState,
    header_read_timeout: Duration,
) -> Result<ShutdownReport> {
    let token = state.shutdown_token();
    let timeout = state.config().shutdown_timeout();
    let (in_flight, mut idle) = tokio::sync::watch::channel(0usize);
    let in_flight = std::sync::Arc::new(in_flight);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_read_timeout);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = token.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let in_flight = in_flight.clone();
        let service = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let guard = InFlight::new(in_flight.clone());
            let app = app.clone();
            async move {
                let response = tower::ServiceExt::oneshot(app, req.map(axum::body::Body::new)).await?;
                Ok::<_, std::convert::Infallible>(
                    response.map(|body| axum::body::Body::new(CountedBody { body, _guard: guard })),
                )
            }
        });
        let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service).with_upgrades();
        let token = token.clone();
        conns.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                () = token.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let started = tokio::time::Instant::now();
    let requests_finished = tokio::time::timeout_at(started + timeout / 2, async {
        tokio::select! {
            () = async { while conns.join_next().await.is_some() {} } => {}
            _ = idle.wait_for(|n| *n == 0) => {}
        }
    })
    .await
    .is_ok();
    if !requests_finished {
        tracing::warn!(
            requests = *idle.borrow(),
            "in-flight requests still open at half the shutdown timeout; closing them"
        );
    }
    // Whatever is left holds no request (or was cut above): close it.
    conns.abort_all();
    let mut report = state.finish().await;
    report.requests_finished = requests_finished;
    Ok(report)
}

/// Counts one request in flight, from its arrival until its answer's body is written (dropped).
struct InFlight(std::sync::Arc<tokio::sync::watch::Sender<usize>>);

impl InFlight {
    fn new(counter: std::sync::Arc<tokio::sync::watch::Sender<usize>>) -> Self {
        counter.send_modify(|n| *n += 1);
        InFlight(counter)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// An answer body that keeps its request counted in flight until it is written.
struct CountedBody {
    body: axum::body::Body,
    _guard: InFlight,
}

impl hyper::body::Body for CountedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// First SIGTERM/SIGINT: begin shutdown. Second: exit at once with code 130.
#[cfg(unix)]
pub(crate) fn install_signal_handlers(state: &DrainState) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let io = |e: std::io::Error| Error::Unavailable {
        what: "signal handling".into(),
        message: format!("cannot install the SIGTERM/SIGINT handler: {e}"),
    };
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    let state = state.clone();
    tokio::spawn(async move {
        let first = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        state.begin_shutdown(first);
        let second = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::error!(signal = second, "second signal during shutdown: exiting now");
        std::process::exit(130);
    });
    Ok(())
}

/// Ctrl-C only on non-unix platforms.
#[cfg(not(unix))]
pub(crate) fn install_signal_handlers(state: &DrainState) -> Result<()> {
    let state = state.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            state.begin_shutdown("ctrl-c");
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    Ok(())
}
