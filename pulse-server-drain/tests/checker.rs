//! The conformance checker run over real TCP and WebSocket connections: it passes against the demo app and
//! catches a server that drains without credentials.

mod common;

use std::time::Duration;

use axum::routing::post;
use common::*;
use pulse_server_drain::checker::{check, CheckOptions, CheckStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_app_passes_every_check() {
    let demo = start_demo(Duration::from_secs(60)).await;
    let options = CheckOptions {
        drain_deadline: Duration::from_secs(1),
        expect_version: Some("v1".into()),
        expect_instance_id: Some(demo.instance.clone()),
        ..CheckOptions::default()
    };
    let report = check(&format!("http://{}", demo.addr), &secret(), &options).await.unwrap();
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert!(
        report.checks.iter().all(|c| c.status == CheckStatus::Passed),
        "nothing skipped against the demo: {report}"
    );
    assert!(report.checks.len() >= 17);
    assert!(!report.to_string().contains(SECRET), "the report never shows the secret");
    demo.state.begin_shutdown("test over");
    demo.server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_draining_without_credentials_fails() {
    let app = axum::Router::new().route(
        "/_pulse/admin/drain",
        post(|| async { axum::Json(serde_json::json!({"status": "draining"})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let options = CheckOptions {
        drain_deadline: Duration::from_secs(1),
        page_path: None,
        websocket_path: None,
        check_throttling: false,
        ..CheckOptions::default()
    };
    let report = check(&format!("http://{addr}"), &secret(), &options).await.unwrap();
    println!("{report}");
    assert!(!report.passed());
    let missing = report.check("drain refuses missing credentials (401, WWW-Authenticate: Bearer)").unwrap();
    assert!(matches!(missing.status, CheckStatus::Failed(_)), "{missing:?}");
    assert!(missing.seen().starts_with("200"), "{}", missing.seen());
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_never_prints_the_secret_even_if_the_server_echoes_requests() {
    // Answers every request with its own headers and body, in headers and in the body.
    async fn echo(req: axum::extract::Request) -> axum::response::Response {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 1 << 16).await.unwrap_or_default();
        let headers: Vec<String> =
            parts.headers.iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or(""))).collect();
        let mut resp = axum::response::IntoResponse::into_response(axum::Json(serde_json::json!({
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        })));
        for (k, v) in &parts.headers {
            resp.headers_mut().append(k.clone(), v.clone());
            if let Ok(name) = http::HeaderName::from_bytes(format!("x-echo-{k}").as_bytes()) {
                resp.headers_mut().append(name, v.clone());
            }
        }
        resp.headers_mut().insert("www-authenticate", http::HeaderValue::from_static("Bearer realm=\"x\""));
        resp
    }
    let app = axum::Router::new().fallback(echo);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let options = CheckOptions { drain_deadline: Duration::from_secs(1), ..CheckOptions::default() };
    let report = check(&format!("http://{addr}"), &secret(), &options).await.unwrap();
    let printed = format!("{report}\n{report:?}");
    assert!(!report.passed());
    assert!(!printed.contains(SECRET), "the report printed the secret:\n{printed}");
    assert!(printed.contains("<redacted>"), "the echoed credential was seen and redacted:\n{printed}");
    server.abort();
}
