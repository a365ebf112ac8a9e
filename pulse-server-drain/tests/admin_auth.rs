//! Authentication of the admin endpoints over real sockets: 401 with `WWW-Authenticate: Bearer`, the
//! scheme case-insensitive, 405 with `Allow`, 429 after repeated failures, a rotated secret file picked up
//! without restart, and no state change on any rejected request.

mod common;

use std::time::Duration;

use common::*;
use http::{Method, StatusCode};
use pulse_deploy_core::drain::ServingState;
use pulse_server_drain::{DrainConfig, DrainState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_methods_and_throttling() {
    let demo = start_demo(Duration::from_secs(60)).await;
    let drain = demo.url("/_pulse/admin/drain");
    let status = demo.url("/_pulse/admin/status");
    let good = format!("Bearer {SECRET}");

    let a = request(Method::POST, &drain, &[], "").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.header("www-authenticate").unwrap().starts_with("Bearer"));
    assert_eq!(a.json()["error"], "unauthorized");
    let a = request(Method::GET, &status, &[("authorization", "Bearer wrong-wrong-wrong-wrong")], "").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.header("www-authenticate").unwrap().contains("invalid_token"));
    assert!(!String::from_utf8_lossy(&a.body).contains("wrong-wrong"), "the credential is never echoed");

    // Wrong methods: 405 with Allow, even with the right secret; nothing changes.
    let a = request(Method::GET, &drain, &[("authorization", &good)], "").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.header("allow"), Some("POST"));
    let a = request(Method::DELETE, &status, &[("authorization", &good)], "").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.header("allow"), Some("GET, HEAD"));
    let a = request(Method::POST, &demo.url("/health"), &[], "").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);

    // A malformed body with the right secret: 400, no state change.
    let a = request(Method::POST, &drain, &[("authorization", &good)], "{not json").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(demo.state.state(), ServingState::Serving);

    // Status with a lowercase scheme.
    let a = request(Method::GET, &status, &[("authorization", &format!("bEARer {SECRET}"))], "").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["state"], "serving");
    assert_eq!(a.json()["instance_id"], demo.instance.as_str());
    assert_eq!(a.header("cache-control"), Some("no-store"));

    // Throttling: after 5 failures, 429 with Retry-After for failures, no state change; the right secret
    // still passes (a valid token is never throttled: the deployer is never locked out).
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            request(Method::POST, &drain, &[("authorization", "Bearer nope-nope-nope-nope")], "")
                .await
                .status,
        );
    }
    // The 2 failures at the top count too (the successes since reset nothing): failures 3 to 5 are 401,
    // the 6th on 429.
    assert_eq!(&statuses[..3], &[StatusCode::UNAUTHORIZED; 3]);
    assert_eq!(&statuses[3..], &[StatusCode::TOO_MANY_REQUESTS; 4]);
    for auth in [&[("authorization", "Bearer nope-nope-nope-nope")][..], &[], &[("authorization", "Basic x")]]
    {
        let a = request(Method::POST, &drain, auth, "").await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{auth:?}");
        assert!(a.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    }
    assert_eq!(demo.state.state(), ServingState::Serving);
    let a = request(Method::GET, &status, &[("authorization", &good)], "").await;
    assert_eq!(a.status, StatusCode::OK, "the right secret passes while its address is throttled");
    let a = request(Method::POST, &drain, &[("authorization", "Bearer nope-nope-nope-nope")], "").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "a success does not reset the failures");
    let a = request(Method::POST, &drain, &[("authorization", &good)], "").await;
    assert_eq!(a.status, StatusCode::OK, "the deployer's drain goes through");
    assert!(demo.state.state().is_draining());
    demo.state.begin_shutdown("test over");
    demo.server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_file_rotation_without_restart() {
    let dir = std::env::temp_dir().join(unique("pulse-drain-secret"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    std::fs::write(&file, "first-secret-0123456789\n").unwrap();
    let demo = start_demo_with(Duration::from_secs(60), |b| {
        b.secret_file(&file).throttle(10_000, Duration::from_secs(10))
    })
    .await;
    let status = demo.url("/_pulse/admin/status");
    let a = request(Method::GET, &status, &[("authorization", "Bearer first-secret-0123456789")], "").await;
    assert_eq!(a.status, StatusCode::OK);
    std::fs::write(&file, "second-secret-0123456789").unwrap();
    // A mismatch re-reads the source (at most once a second), so the new secret works within about 1 s.
    eventually(Duration::from_secs(3), "the rotated secret accepted", || async {
        let a =
            request(Method::GET, &status, &[("authorization", "Bearer second-secret-0123456789")], "").await;
        (a.status == StatusCode::OK).then_some(())
    })
    .await;
    eventually(Duration::from_secs(3), "the old secret refused after rotation", || async {
        let a =
            request(Method::GET, &status, &[("authorization", "Bearer first-secret-0123456789")], "").await;
        (a.status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    demo.state.begin_shutdown("test over");
    demo.server.await.unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn empty_or_short_secrets_are_refused_at_startup() {
    let e = DrainConfig::builder("v1").instance_id("i").build().unwrap_err().to_string();
    assert!(e.contains("PULSE_DRAIN_SECRET"), "{e}");
    let config = DrainConfig::builder("v1")
        .instance_id("i")
        .handle_signals(false)
        .secret_factory(|| async { Ok("short".to_owned()) })
        .build()
        .unwrap();
    let e = DrainState::start(config).await.unwrap_err().to_string();
    assert!(e.contains("at least 16"), "{e}");
    assert!(!e.contains("short"), "the secret is not echoed: {e}");
    let config = DrainConfig::builder("v1")
        .instance_id("i")
        .handle_signals(false)
        .secret_factory(|| async { Ok("from-a-factory-0123456789".to_owned()) })
        .build()
        .unwrap();
    let state = DrainState::start(config).await.unwrap();
    assert!(!format!("{state:?}").contains("from-a-factory"));
}
