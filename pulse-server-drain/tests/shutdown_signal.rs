//! The real `pulse-demo-app` binary as a child process: SIGTERM with open WebSockets closes every one with
//! 1001 and exits 0 within the shutdown deadline; the instance id comes from `PULSE_INSTANCE_ID`, else the
//! ECS task metadata endpoint, else the host name.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use http::{Method, StatusCode};
use rustix::process::{kill_process, Pid, Signal};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Spawns the demo binary on a free loopback port and returns it with its address.
async fn spawn_demo(envs: &[(&str, &str)]) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pulse-demo-app"));
    for var in
        ["PULSE_INSTANCE_ID", "ECS_CONTAINER_METADATA_URI_V4", "PULSE_DRAIN_SECRET_FILE", "PULSE_HEALTH_PATH"]
    {
        cmd.env_remove(var);
    }
    cmd.env("PORT", "0")
        .env("PULSE_VERSION", "v7")
        .env("PULSE_DRAIN_SECRET", SECRET)
        .env("PULSE_SHUTDOWN_TIMEOUT_SECS", "5")
        .env("PULSE_LOG", "warn")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn pulse-demo-app");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("the demo prints its address within 10 s")
        .unwrap()
        .expect("a line");
    let addr = line.rsplit(' ').next().unwrap().replace("0.0.0.0", "127.0.0.1");
    (child, addr)
}

fn term(child: &Child) {
    let pid = Pid::from_raw(child.id().unwrap() as i32).unwrap();
    kill_process(pid, Signal::TERM).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_every_websocket_with_1001_and_exits_0() {
    let instance = unique("sigterm");
    let (mut child, addr) = spawn_demo(&[("PULSE_INSTANCE_ID", &instance)]).await;
    let mut sockets = Vec::new();
    for _ in 0..20 {
        let (ws, hello) = open_ws(&format!("ws://{addr}/ws")).await;
        assert_eq!(hello["instance"], instance.as_str());
        assert_eq!(hello["version"], "v7");
        sockets.push(ws);
    }
    let health = get(&format!("http://{addr}/health")).await;
    assert_eq!(health.json()["active_sessions"], 20);

    let sent = Instant::now();
    term(&child);
    let closes = futures::future::join_all(sockets.iter_mut().map(expect_close)).await;
    for (code, reason) in &closes {
        assert_eq!(*code, 1001, "every client gets 1001");
        assert_eq!(reason, "server shutting down; reconnect");
    }
    let status = tokio::time::timeout(Duration::from_secs(6), child.wait())
        .await
        .expect("exits within its 5 s shutdown deadline")
        .unwrap();
    assert_eq!(status.code(), Some(0), "exit 0 after a graceful shutdown");
    eprintln!("20 sockets closed with 1001 and process exited 0 in {:?}", sent.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_id_from_ecs_task_metadata_then_host_name() {
    // A stand-in for the ECS task metadata endpoint on loopback.
    let arn = format!("arn:aws:ecs:us-east-1:123456789012:task/pulse/{}", unique("task"));
    let body = serde_json::json!({ "TaskARN": arn, "Family": "pulse" }).to_string();
    let app = axum::Router::new().route("/v4/abc/task", axum::routing::get(move || async move { body }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let meta = format!("http://{}/v4/abc", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let auth = format!("Bearer {SECRET}");
    let (child, addr) = spawn_demo(&[("ECS_CONTAINER_METADATA_URI_V4", &meta)]).await;
    let status =
        request(Method::GET, &format!("http://{addr}/_pulse/admin/status"), &[("authorization", &auth)], "")
            .await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.json()["instance_id"], arn.as_str());
    term(&child);
    server.abort();

    let (child, addr) = spawn_demo(&[("HOSTNAME", "host-for-test")]).await;
    let status =
        request(Method::GET, &format!("http://{addr}/_pulse/admin/status"), &[("authorization", &auth)], "")
            .await;
    assert_eq!(status.json()["instance_id"], "host-for-test");
    term(&child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_exits_2_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_pulse-demo-app"))
        .env_remove("PULSE_DRAIN_SECRET_FILE")
        .env("PULSE_VERSION", "v1")
        .env("PULSE_DRAIN_SECRET", "short")
        .env("PORT", "0")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PULSE_DRAIN_SECRET") && err.contains("at least 16"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_timeouts_exit_2_naming_the_variable() {
    for var in ["PULSE_DRAIN_DEADLINE_SECS", "PULSE_SHUTDOWN_TIMEOUT_SECS", "PULSE_SESSION_GRACE_SECS"] {
        for value in ["18446744073709551615", "18446744073709551000", "2592001000"] {
            let out = Command::new(env!("CARGO_BIN_EXE_pulse-demo-app"))
                .env_remove("PULSE_DRAIN_SECRET_FILE")
                .env("PULSE_VERSION", "v1")
                .env("PULSE_DRAIN_SECRET", "test-secret-0123456789abcdef")
                .env("PORT", "0")
                .env(var, value)
                .output()
                .await
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{var}={value}: {err}");
            assert!(err.contains(var) && err.contains("must be between"), "{var}={value}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

/// Opens a connection holding an unfinished request, and returns once the server's handler is waiting for
/// its body (it answered `100 Continue`), so the server has a request in flight at shutdown.
async fn hold_a_request_open(addr: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncReadExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /_pulse/admin/drain HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {SECRET}\r\n\
         Expect: 100-continue\r\nContent-Length: 100\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("100 Continue") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed before 100 Continue: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    stream
}

/// Waits until the server no longer accepts connections (the first signal was handled).
async fn until_listener_closed(addr: &str) {
    eventually(Duration::from_secs(5), "the listener closed after the first signal", || async {
        tokio::net::TcpStream::connect(addr).await.is_err().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_forces_exit_130() {
    let (mut child, addr) = spawn_demo(&[("PULSE_INSTANCE_ID", &unique("force"))]).await;
    let _held = hold_a_request_open(&addr).await;
    term(&child);
    until_listener_closed(&addr).await;
    let sent = Instant::now();
    term(&child);
    let status = tokio::time::timeout(Duration::from_secs(3), child.wait())
        .await
        .expect("the second signal exits at once, long before the 5 s deadline")
        .unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(sent.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_still_open_at_the_deadline_is_cut_and_reported() {
    let (mut child, addr) =
        spawn_demo(&[("PULSE_INSTANCE_ID", &unique("cut")), ("PULSE_SHUTDOWN_TIMEOUT_SECS", "1")]).await;
    let _held = hold_a_request_open(&addr).await;
    let sent = Instant::now();
    term(&child);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await.expect("exits").unwrap();
    assert_eq!(status.code(), Some(1), "exit 1: the deadline cut an in-flight request");
    assert!(
        sent.elapsed() >= Duration::from_millis(450),
        "it waited half its shutdown timeout for the request"
    );
}

/// Sends half a request line and returns the connection.
async fn half_sent_request(addr: &str) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /hea").await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_half_sent_request_exits_0_at_once() {
    // Before the fix, shutdown waited half its timeout (here 5 s) for the half-sent request and exited 1.
    let (mut child, addr) =
        spawn_demo(&[("PULSE_INSTANCE_ID", &unique("half")), ("PULSE_SHUTDOWN_TIMEOUT_SECS", "10")]).await;
    let _half = half_sent_request(&addr).await;
    // The server has accepted it: a full request on another connection is answered.
    assert_eq!(get(&format!("http://{addr}/health")).await.status, StatusCode::OK);
    let sent = Instant::now();
    term(&child);
    let status = tokio::time::timeout(Duration::from_secs(4), child.wait())
        .await
        .expect("a half-sent request does not hold the shutdown (well under half its 10 s timeout)")
        .unwrap();
    assert_eq!(status.code(), Some(0), "a connection holding no request is not an unclean shutdown");
    assert!(sent.elapsed() < Duration::from_secs(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_closed_after_the_header_read_timeout() {
    use tokio::io::AsyncReadExt;
    let instance = unique("slow");
    let config = pulse_server_drain::DrainConfig::builder("v1")
        .instance_id(&instance)
        .secret(secret())
        .handle_signals(false)
        .build()
        .unwrap();
    let state = pulse_server_drain::DrainState::start(config).await.unwrap();
    let app = state.routes();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(pulse_server_drain::serve_with(
        listener,
        app,
        state.clone(),
        Duration::from_millis(500),
    ));
    let mut half = half_sent_request(&addr).await;
    let opened = Instant::now();
    let mut buf = [0u8; 512];
    // The server closes the connection (possibly after a 408 answer) within the timeout, not never.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match half.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the half-sent request's connection was still open after 5 s");
    assert!(opened.elapsed() >= Duration::from_millis(400), "closed by the timeout, not at once");
    // A normal client is still served.
    assert_eq!(get(&format!("http://{addr}/health")).await.status, StatusCode::OK);
    state.begin_shutdown("test");
    let report = server.await.unwrap().unwrap();
    assert!(report.is_clean(), "{report:?}");
}
