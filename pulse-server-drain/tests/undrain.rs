//! `POST /_pulse/admin/undrain` over real sockets: `draining` back to `serving`, `serving` unchanged,
//! `drained` and `shutting_down` refused (409) and no state change, and the usual method/throttle/
//! credential/body checks before any action.

mod common;

use std::time::Duration;

use common::*;
use http::{Method, StatusCode};
use pulse_deploy_core::drain::wire::UNDRAIN_PATH;
use pulse_deploy_core::drain::{DrainClient, ServingState};

fn bearer() -> String {
    format!("Bearer {SECRET}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_goes_back_to_serving_and_new_sessions_are_accepted_again() {
    let demo = start_demo(Duration::from_secs(30)).await;
    let (_ws, _) = open_ws(&demo.ws_url("/ws")).await;
    let client = demo.drain_client();

    // Serving: 200, unchanged.
    let s = client.undrain(&demo.as_instance()).await.unwrap();
    assert_eq!(s.state, ServingState::Serving);
    assert!(s.draining_since.is_none() && s.deadline.is_none());

    // Draining (one live session) -> serving; draining_since and deadline are cleared.
    let s = client.drain(&demo.as_instance(), Duration::from_secs(600)).await.unwrap();
    assert_eq!(s.state, ServingState::Draining);
    assert!(!demo.state.accepts_new_sessions());
    let s = client.undrain(&demo.as_instance()).await.unwrap();
    assert_eq!(s.state, ServingState::Serving);
    assert_eq!(s.instance_id, demo.instance);
    assert_eq!(s.active_sessions, 1);
    assert!(s.draining_since.is_none() && s.deadline.is_none(), "{s:?}");
    assert!(demo.state.accepts_new_sessions());
    let page = get(&demo.url("/")).await;
    assert_eq!(page.status, StatusCode::OK, "a new session is created again");
    assert_eq!(get(&demo.url("/health")).await.json()["state"], "serving");

    // An empty body and `{}` are both accepted; the drain can start again afterwards.
    client.drain(&demo.as_instance(), Duration::from_secs(600)).await.unwrap();
    let a = request(Method::POST, &demo.url(UNDRAIN_PATH), &[("authorization", &bearer())], "").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["state"], "serving");
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let s = client.drain(&demo.as_instance(), Duration::from_secs(600)).await.unwrap();
    assert_eq!(s.state, ServingState::Draining, "a fresh drain after undrain is draining, not drained");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drained_is_refused_with_409_and_stays_drained() {
    let demo = start_demo(Duration::from_secs(30)).await;
    let client = demo.drain_client();
    // No sessions: drained at once.
    let s = client.drain(&demo.as_instance(), Duration::from_secs(600)).await.unwrap();
    assert_eq!(s.state, ServingState::Drained);
    let a = request(Method::POST, &demo.url(UNDRAIN_PATH), &[("authorization", &bearer())], "{}").await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.json()["error"], "conflict");
    assert!(a.json()["message"].as_str().unwrap().contains("drained"));
    let e = client.undrain(&demo.as_instance()).await.unwrap_err();
    assert!(matches!(e, pulse_deploy_core::Error::Conflict { .. }), "{e:?}");
    let s = client.status(&demo.as_instance()).await.unwrap();
    assert_eq!(s.state, ServingState::Drained);
    assert!(s.draining_since.is_some(), "no state change");
    assert_eq!(get(&demo.url("/health")).await.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_deadline_is_drained_and_refused() {
    let demo = start_demo(Duration::from_secs(30)).await;
    let (_ws, _) = open_ws(&demo.ws_url("/ws")).await;
    let client = demo.drain_client();
    client.drain(&demo.as_instance(), Duration::from_secs(1)).await.unwrap();
    eventually(Duration::from_secs(10), "drained by the deadline", || async {
        (client.status(&demo.as_instance()).await.unwrap().state == ServingState::Drained).then_some(())
    })
    .await;
    let a = request(Method::POST, &demo.url(UNDRAIN_PATH), &[("authorization", &bearer())], "").await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(client.status(&demo.as_instance()).await.unwrap().state, ServingState::Drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_is_refused_with_409() {
    let demo = start_demo(Duration::from_secs(30)).await;
    let (_ws, _) = open_ws(&demo.ws_url("/ws")).await;
    demo.drain_client().drain(&demo.as_instance(), Duration::from_secs(600)).await.unwrap();
    // Once shutdown begins the listener stops accepting, so this case is checked on the state the endpoint
    // calls (the 409 mapping is the same `Err` as for drained, checked over the socket above).
    demo.state.begin_shutdown("test");
    let refused = demo.state.undrain().unwrap_err();
    assert_eq!(refused.state, ServingState::ShuttingDown);
    assert!(refused.draining_since.is_some(), "no state change");
    assert!(!demo.state.accepts_new_sessions());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_requests_change_nothing() {
    let demo = start_demo_with(Duration::from_secs(30), |b| b.throttle(3, Duration::from_secs(60))).await;
    let (_ws, _) = open_ws(&demo.ws_url("/ws")).await;
    demo.drain_client().drain(&demo.as_instance(), Duration::from_secs(600)).await.unwrap();
    let url = demo.url(UNDRAIN_PATH);

    let a = request(Method::GET, &url, &[("authorization", &bearer())], "").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.header("allow"), Some("POST"));
    let a = request(Method::POST, &url, &[("authorization", &bearer())], "[]").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = request(Method::POST, &url, &[("authorization", &bearer())], r#"{"x":1}"#).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = request(Method::POST, &url, &[], "").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    for _ in 0..2 {
        let a = request(Method::POST, &url, &[("authorization", "Bearer wrong-secret-0123456789")], "").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let a = request(Method::POST, &url, &[("authorization", "Bearer wrong-secret-0123456789")], "").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "failures are throttled");
    assert!(a.header("retry-after").is_some());
    let a = request(Method::POST, &url, &[("authorization", &bearer())], "[]").await;
    assert_eq!(
        a.status,
        StatusCode::BAD_REQUEST,
        "the right secret is never throttled; its bad body is a 400"
    );
    assert_eq!(demo.state.state(), ServingState::Draining, "no rejected request changed the state");
}
