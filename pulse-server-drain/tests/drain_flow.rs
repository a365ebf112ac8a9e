//! The drain protocol end to end over real sockets against the demo app: sessions, drain, the
//! stale-affinity answers, reconnects, health after the last session and after the deadline.

mod common;

use std::time::Duration;

use common::*;
use futures::SinkExt;
use http::{Method, StatusCode};
use pulse_deploy_core::drain::{DrainClient, ServingState};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_turns_new_sessions_away_serves_reconnects_and_fails_health_when_empty() {
    let demo = start_demo(Duration::from_millis(300)).await;

    // Two sessions: one from a page load + WebSocket, one from a bare WebSocket.
    let page = get(&demo.url("/")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("x-pulse-version"), Some("v1"));
    assert_eq!(page.header("x-pulse-instance"), Some(demo.instance.as_str()));
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let id = page.header("x-pulse-session").unwrap().to_owned();
    let (mut a, hello) = open_ws(&demo.ws_url(&format!("/ws?session={id}&pulse_version=v1"))).await;
    assert_eq!(hello["session"], id.as_str());
    assert_eq!(hello["resumed"], true);
    assert_eq!(hello["version"], "v1");
    assert_eq!(hello["instance"], demo.instance.as_str());
    assert_eq!(say(&mut a, "increment").await["counter"], 1);
    assert_eq!(say(&mut a, "increment").await["counter"], 2);
    let (mut b, hello_b) = open_ws(&demo.ws_url("/ws")).await;
    assert_eq!(hello_b["resumed"], false);
    let id_b = hello_b["session"].as_str().unwrap().to_owned();
    assert_eq!(demo.state.active_sessions(), 2);

    // Drain through the deployer's own client.
    let status = demo.drain_client().drain(&demo.as_instance(), Duration::from_secs(600)).await.unwrap();
    assert_eq!(status.state, ServingState::Draining);
    assert_eq!(status.instance_id, demo.instance);
    assert_eq!(status.active_sessions, 2);
    assert!(status.draining_since.is_some() && status.deadline.is_some());
    let health = get(&demo.url("/health")).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["state"], "draining");

    // A new page load: 307 to the same URL minus pulse_version, cookies cleared, stale header.
    let turned =
        request(Method::GET, &demo.url("/?x=1&pulse_version=v1"), &[("cookie", "pulse-version=v1")], "")
            .await;
    assert_eq!(turned.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(turned.header("location"), Some("/?x=1"));
    assert_eq!(turned.header("x-pulse-stale-affinity"), Some("v1"));
    let cookies: Vec<&str> =
        turned.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert!(cookies.contains(&"pulse-version=; Max-Age=0; Path=/"), "{cookies:?}");
    assert!(cookies.contains(&"pulse-instance=; Max-Age=0; Path=/"), "{cookies:?}");
    assert_eq!(turned.header("x-pulse-version"), Some("v1"));

    // A WebSocket for an unknown session: 409 with the stale header and a reload body.
    match tokio_tungstenite::connect_async(demo.ws_url("/ws?session=nope")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), StatusCode::CONFLICT);
            assert_eq!(resp.headers()["x-pulse-stale-affinity"], "v1");
            let body: serde_json::Value = serde_json::from_slice(resp.body().as_ref().unwrap()).unwrap();
            assert_eq!(body["error"], "stale_affinity");
            assert_eq!(body["reload"], true);
        }
        other => panic!("expected a 409, got {:?}", other.map(|(_, r)| r.status())),
    }
    assert_eq!(demo.state.active_sessions(), 2, "nothing was created");

    // An existing session reconnects and keeps its state; a page load naming it is served too.
    a.close(None).await.unwrap();
    drop(a);
    let (mut a, hello) = open_ws(&demo.ws_url(&format!("/ws?session={id}"))).await;
    assert_eq!(hello["resumed"], true);
    assert_eq!(hello["counter"], 2);
    assert_eq!(say(&mut a, "increment").await["counter"], 3);
    let again = request(Method::GET, &demo.url("/"), &[("x-pulse-session", &id)], "").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.header("x-pulse-session"), Some(id.as_str()));

    // Sessions end: one explicitly, one by its grace expiring after its socket closed.
    let ended = say(&mut a, "end").await;
    assert_eq!(ended["type"], "ended");
    b.send(Message::Close(None)).await.unwrap();
    drop(b);
    let health = eventually(Duration::from_secs(5), "health 503 after the last session", || async {
        let h = get(&demo.url("/health")).await;
        (h.status == StatusCode::SERVICE_UNAVAILABLE).then_some(h)
    })
    .await;
    assert_eq!(health.json()["state"], "drained");
    assert_eq!(health.json()["active_sessions"], 0);
    assert_eq!(demo.drain_client().status(&demo.as_instance()).await.unwrap().state, ServingState::Drained);
    let _ = id_b;

    // Drained but not shut down: requests are still answered (page loads turned away).
    assert_eq!(get(&demo.url("/")).await.status, StatusCode::TEMPORARY_REDIRECT);

    demo.state.begin_shutdown("test over");
    let report = demo.server.await.unwrap().unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_deadline_health_fails_with_sessions_open() {
    let demo = start_demo(Duration::from_secs(60)).await;
    let (_ws, _) = open_ws(&demo.ws_url("/ws")).await;
    let drain = request(
        Method::POST,
        &demo.url("/_pulse/admin/drain"),
        &[("authorization", &format!("Bearer {SECRET}")), ("content-type", "application/json")],
        r#"{"deadline_secs": 1}"#,
    )
    .await;
    assert_eq!(drain.status, StatusCode::OK);
    assert_eq!(drain.json()["state"], "draining");
    // A later, longer deadline does not move the earlier one.
    let again = request(
        Method::POST,
        &demo.url("/_pulse/admin/drain"),
        &[("authorization", &format!("Bearer {SECRET}"))],
        r#"{"deadline_secs": 900}"#,
    )
    .await;
    assert_eq!(again.json()["deadline"], drain.json()["deadline"]);
    assert_eq!(again.json()["draining_since"], drain.json()["draining_since"]);
    assert_eq!(get(&demo.url("/health")).await.status, StatusCode::OK);
    let health = eventually(Duration::from_secs(4), "health 503 past the deadline", || async {
        let h = get(&demo.url("/health")).await;
        (h.status == StatusCode::SERVICE_UNAVAILABLE).then_some(h)
    })
    .await;
    assert_eq!(health.json()["state"], "drained");
    assert_eq!(health.json()["active_sessions"], 1, "the session is still open");
    demo.state.begin_shutdown("test over");
    demo.server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_websocket_with_1001_and_runs_hooks() {
    let demo = start_demo(Duration::from_secs(60)).await;
    let (hook_tx, hook_rx) = tokio::sync::oneshot::channel();
    demo.state.on_shutdown("test hook", move || async move {
        let _ = hook_tx.send(());
    });
    let mut sockets = Vec::new();
    for _ in 0..5 {
        sockets.push(open_ws(&demo.ws_url("/ws")).await.0);
    }
    demo.state.begin_shutdown("test");
    for mut ws in sockets {
        let frame = common::expect_close(&mut ws).await;
        assert_eq!(frame.0, 1001);
        assert!(frame.1.contains("reconnect"), "{}", frame.1);
    }
    let report = demo.server.await.unwrap().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(report.hooks_completed.contains(&"test hook".to_owned()));
    hook_rx.await.unwrap();
}
