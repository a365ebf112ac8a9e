//! Property tests of the admin endpoints over arbitrary methods, paths, `Authorization` bytes and bodies,
//! in sequences against one instance (so throttling is exercised too): never a 2xx from an admin path
//! without the exact token, never a panic, never a state change on a rejected request.

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{HeaderValue, Method, Request};
use proptest::prelude::*;
use pulse_deploy_core::drain::ServingState;
use pulse_deploy_core::Secret;
use pulse_server_drain::{DrainConfig, DrainState};
use tower::ServiceExt;

const SECRET: &str = "prop-secret-0123456789abcdef";

#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    auth: Option<Vec<u8>>,
    body: String,
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("POST".to_owned()),
        Just("GET".to_owned()),
        Just("HEAD".to_owned()),
        Just("PUT".to_owned()),
        Just("DELETE".to_owned()),
        Just("OPTIONS".to_owned()),
        "[A-Za-z]{1,12}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("/_pulse/admin/drain".to_owned()),
        2 => Just("/_pulse/admin/status".to_owned()),
        1 => "/_pulse/admin/[a-z/]{0,12}",
        1 => "/_pulse/admin/drain[?#/a-z=&]{0,8}",
        1 => "/[a-zA-Z0-9_./%-]{0,20}",
    ]
}

fn auth() -> impl Strategy<Value = Option<Vec<u8>>> {
    let scheme = prop_oneof![
        Just("Bearer"),
        Just("bearer"),
        Just("BEARER"),
        Just("Basic"),
        Just("Bearerx"),
        Just(""),
        Just("Token")
    ];
    let token = prop_oneof![
        Just(SECRET.to_owned()),
        Just(SECRET[..SECRET.len() - 1].to_owned()),
        Just(format!("{SECRET}x")),
        Just(SECRET.to_uppercase()),
        Just(format!("{SECRET} {SECRET}")),
        "[ -~]{0,40}",
    ];
    let spaces = prop_oneof![Just(" "), Just("  "), Just("\t"), Just("")];
    prop_oneof![
        1 => Just(None),
        4 => (scheme, spaces, token).prop_map(|(s, sp, t)| Some(format!("{s}{sp}{t}").into_bytes())),
        2 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Some),
    ]
}

fn request() -> impl Strategy<Value = Req> {
    (
        method(),
        path(),
        auth(),
        prop_oneof![Just(String::new()), Just("{\"deadline_secs\": 5}".to_owned()), "[ -~]{0,30}"],
    )
        .prop_map(|(method, path, auth, body)| Req { method, path, auth, body })
}

/// The oracle: a single `Authorization` value `<bearer, any case><spaces/tabs><the secret><spaces/tabs>`.
fn carries_exact_token(auth: &Option<Vec<u8>>) -> bool {
    let Some(bytes) = auth else { return false };
    let Ok(s) = std::str::from_utf8(bytes) else { return false };
    let s = s.trim_matches(|c| c == ' ' || c == '\t');
    let Some((scheme, rest)) = s.split_once(' ') else { return false };
    scheme.eq_ignore_ascii_case("bearer") && rest.trim_matches(|c| c == ' ' || c == '\t') == SECRET
}

fn is_admin(path: &str) -> bool {
    path.starts_with("/_pulse/admin")
}

async fn run_sequence(reqs: Vec<Req>) -> Result<(), TestCaseError> {
    let config = DrainConfig::builder("v1")
        .instance_id("prop")
        .secret(Secret::new("test", SECRET).unwrap())
        .handle_signals(false)
        .build()
        .unwrap();
    let state = DrainState::start(config).await.unwrap();
    let app: Router =
        Router::new().route("/", get(|| async { "page" })).route_layer(state.gate()).merge(state.routes());
    for req in reqs {
        let Ok(method) = Method::from_bytes(req.method.as_bytes()) else { continue };
        let mut builder = Request::builder().method(method).uri(&req.path);
        let header_ok = match &req.auth {
            Some(bytes) => match HeaderValue::from_bytes(bytes) {
                Ok(v) => {
                    builder = builder.header("authorization", v);
                    true
                }
                Err(_) => false,
            },
            None => true,
        };
        if !header_ok {
            continue;
        }
        let Ok(request) = builder.body(Body::from(req.body.clone())) else { continue };
        let before = state.status();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let _ = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let admin = is_admin(
            http::Uri::try_from(req.path.as_str()).map(|u| u.path().to_owned()).unwrap_or_default().as_str(),
        );
        if admin && status.is_success() {
            prop_assert!(carries_exact_token(&req.auth), "2xx {status} without the exact token: {req:?}");
        }
        if !status.is_success() {
            let after = state.status();
            prop_assert_eq!(after.state, before.state, "state changed by a rejected request {:?}", req);
            prop_assert_eq!(after.deadline, before.deadline);
            prop_assert_eq!(after.draining_since, before.draining_since);
        }
        if state.state() != ServingState::Serving {
            prop_assert!(carries_exact_token(&req.auth) || before.state != ServingState::Serving);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn admin_endpoints_never_yield_without_the_exact_token(reqs in proptest::collection::vec(request(), 1..12)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), run_sequence(reqs)).await }).expect("no hang")?;
    }
}
