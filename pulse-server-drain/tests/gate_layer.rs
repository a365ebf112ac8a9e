//! The tower form of the new-session gate: passes everything while serving; while draining, turns away
//! requests that are not exempt (307 for page loads, 409 for other methods and WebSocket upgrades).

use axum::body::Body;
use axum::routing::{get, post};
use axum::Router;
use http::{Request, StatusCode};
use pulse_deploy_core::Secret;
use pulse_server_drain::{DrainConfig, DrainState};
use tower::ServiceExt;

async fn state() -> DrainState {
    let config = DrainConfig::builder("v9")
        .instance_id("gate")
        .secret(Secret::new("test", "gate-secret-0123456789").unwrap())
        .handle_signals(false)
        .build()
        .unwrap();
    DrainState::start(config).await.unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> axum::response::Response {
    app.clone().oneshot(req).await.unwrap()
}

#[tokio::test]
async fn gate_layer_turns_away_only_non_exempt_requests_while_draining() {
    let state = state().await;
    let app: Router = Router::new()
        .route("/page", get(|| async { "page" }))
        .route("/prerender", post(|| async { "prerender" }))
        .route_layer(state.gate().exempt(|req| req.headers().contains_key("x-pulse-session")));
    let page = || Request::get("/page?pulse_version=v9&a=b").body(Body::empty()).unwrap();
    assert_eq!(send(&app, page()).await.status(), StatusCode::OK);

    let _session = state.session();
    state.drain(None);
    let r = send(&app, page()).await;
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(r.headers()["location"], "/page?a=b");
    assert_eq!(r.headers()["x-pulse-stale-affinity"], "v9");

    let r = send(&app, Request::post("/prerender").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body = axum::body::to_bytes(r.into_body(), 4096).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "stale_affinity");
    assert_eq!(body["version"], "v9");

    let upgrade = Request::get("/page")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, upgrade).await.status(), StatusCode::CONFLICT);

    let known = Request::get("/page").header("x-pulse-session", "abc").body(Body::empty()).unwrap();
    assert_eq!(send(&app, known).await.status(), StatusCode::OK, "requests of existing sessions pass");
}
