//! The admin endpoints (`POST /_pulse/admin/drain`, `POST /_pulse/admin/undrain`,
//! `GET /_pulse/admin/status`) and the health endpoint,
//! as an axum [`Router`] to merge into the app ([`DrainState::router`]).
//!
//! Admin requests are checked in this order, and a rejected request never changes the serving state:
//! method (405 with `Allow`), credentials — the exact secret passes; anything else is 429 with
//! `Retry-After` while the peer is throttled, else 401 with `WWW-Authenticate: Bearer` — then body (400).
//! Only then does the endpoint act. A valid token is never throttled (see [`authenticate`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use pulse_deploy_core::drain::wire::{
    deadline, DrainRequest, ErrorBody, DRAIN_PATH, STATUS_PATH, UNDRAIN_PATH,
};

use crate::state::DrainState;

/// Largest accepted drain request body.
const MAX_BODY: usize = 4096;
/// Largest accepted `deadline_secs` (30 days).
const MAX_DEADLINE_SECS: u64 = deadline::MAX_DRAIN_DEADLINE.as_secs();

/// The admin and health routes of `state` ([`DrainState::router`]).
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(state: &DrainState) -> Router<S> {
    let (d, u, s, h) = (state.clone(), state.clone(), state.clone(), state.clone());
    Router::new()
        .route(DRAIN_PATH, any(move |req: Request| drain_endpoint(d.clone(), req)))
        .route(UNDRAIN_PATH, any(move |req: Request| undrain_endpoint(u.clone(), req)))
        .route(STATUS_PATH, any(move |req: Request| status_endpoint(s.clone(), req)))
        .route(state.config().health_path(), any(move |req: Request| health_endpoint(h.clone(), req)))
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    no_store((status, Json(ErrorBody { error: code.into(), message: message.into() })).into_response())
}

fn method_not_allowed(allow: &'static str) -> Response {
    let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", &format!("use {allow}"));
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn unauthorized(invalid_token: bool) -> Response {
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "send `Authorization: Bearer <drain secret>` with the instance's drain secret",
    );
    let challenge = if invalid_token {
        r#"Bearer realm="pulse-admin", error="invalid_token""#
    } else {
        r#"Bearer realm="pulse-admin""#
    };
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    r
}

fn peer(parts: &http::request::Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// The token of a single `Authorization: Bearer <token>` header, if well-formed: the scheme in any case,
/// one or more spaces, a non-empty token without space or tab, optional trailing spaces/tabs
/// (`docs/drain-protocol.md`, "Authentication"). `None` for no header, two headers, another scheme or a
/// malformed value.
pub fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let bytes = value.as_bytes();
    let space = bytes.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = bytes.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    if token.is_empty() || token.iter().any(|&b| b == b' ' || b == b'\t') {
        return None;
    }
    Some(token)
}

/// Credentials, then throttling of failures. `Err` is the answer to return.
///
/// A valid token is never throttled (the deployer is never locked out, even when an attacker shares its
/// address behind a proxy): the token is compared with the secret in constant time first, and throttling
/// applies to failures only — a throttled peer gets `429` for anything but the exact secret. While the peer
/// is throttled, the token is compared with the cached secret only (no re-read of the secret's source), so
/// a throttled attacker cannot make the server call the source. Safe because the secret, not the throttle,
/// is what resists guessing: at least 16 printable characters (about 2^105 values; the deployer's are 256
/// bits) cannot be found online at any request rate; the throttle only bounds how fast failures come.
async fn authenticate(state: &DrainState, req: &http::request::Parts) -> Result<(), Response> {
    let peer = peer(req);
    let throttle = state.throttle();
    let throttled = throttle.check(peer);
    let token = bearer_token(&req.headers);
    if let Some(token) = token {
        let valid = match throttled {
            Ok(()) => state.secret_store().verify(token).await,
            Err(_) => state.secret_store().verify_cached(token).await,
        };
        if valid {
            return Ok(());
        }
    }
    if let Err(retry) = throttled {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "too many failed authentications; wait for Retry-After seconds",
        );
        let secs = retry.max(Duration::from_secs(1)).as_secs_f64().ceil() as u64;
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Err(r);
    }
    throttle.record_failure(peer);
    if token.is_none() {
        let present = req.headers.contains_key(header::AUTHORIZATION);
        tracing::warn!(?peer, path = %req.uri.path(), "admin request without valid Bearer credentials");
        Err(unauthorized(present))
    } else {
        tracing::warn!(?peer, path = %req.uri.path(), "admin request with a wrong drain secret");
        Err(unauthorized(true))
    }
}

/// The checks every admin `POST` passes, in the spec's order: method (405), then credentials and
/// throttling of failures ([`authenticate`]: 401, 429), then a body of at most 4096 bytes (400).
async fn authenticated_post_body(state: &DrainState, req: Request) -> Result<axum::body::Bytes, Response> {
    if req.method() != Method::POST {
        return Err(method_not_allowed("POST"));
    }
    let (parts, body) = req.into_parts();
    authenticate(state, &parts).await?;
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        error(StatusCode::BAD_REQUEST, "bad_request", "the body is unreadable or over 4096 bytes")
    })
}

async fn drain_endpoint(state: DrainState, req: Request) -> Response {
    let body = match authenticated_post_body(&state, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let request = match parse_drain_body(&body) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, "bad_request", &message),
    };
    let status = state.drain(request.deadline_secs.map(Duration::from_secs));
    no_store(Json(status).into_response())
}

/// Parses a drain request body: empty (or only whitespace) is the default request; otherwise it must be a
/// JSON object (an array such as `[600]` is refused, although serde would read it as a struct) with
/// `deadline_secs` at most 30 days. `Err` is the message of the 400 answer.
pub fn parse_drain_body(body: &[u8]) -> Result<DrainRequest, String> {
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() {
        return Ok(DrainRequest::default());
    }
    let shape = "the body must be empty or a JSON object like {\"deadline_secs\": 600}";
    let value: serde_json::Value = serde_json::from_slice(trimmed).map_err(|e| format!("{shape}: {e}"))?;
    if !value.is_object() {
        return Err(format!("{shape}, not a JSON {}", json_kind(&value)));
    }
    let request: DrainRequest = serde_json::from_value(value).map_err(|e| format!("{shape}: {e}"))?;
    if request.deadline_secs.is_some_and(|s| s > MAX_DEADLINE_SECS) {
        return Err(format!("deadline_secs must be at most {MAX_DEADLINE_SECS} (30 days)"));
    }
    Ok(request)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

async fn undrain_endpoint(state: DrainState, req: Request) -> Response {
    let body = match authenticated_post_body(&state, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let trimmed = body.trim_ascii();
    if !trimmed.is_empty()
        && !serde_json::from_slice::<serde_json::Value>(trimmed)
            .is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
    {
        return error(StatusCode::BAD_REQUEST, "bad_request", "the undrain body must be empty or `{}`");
    }
    match state.undrain() {
        Ok(status) => no_store(Json(status).into_response()),
        Err(status) => error(
            StatusCode::CONFLICT,
            "conflict",
            &format!(
                "cannot undrain an instance that is {}; it is replaced, not revived",
                state_name(status.state)
            ),
        ),
    }
}

fn state_name(s: pulse_deploy_core::drain::wire::ServingState) -> &'static str {
    use pulse_deploy_core::drain::wire::ServingState::*;
    match s {
        Serving => "serving",
        Draining => "draining",
        Drained => "drained",
        ShuttingDown => "shutting_down",
    }
}

async fn status_endpoint(state: DrainState, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return method_not_allowed("GET, HEAD");
    }
    let (parts, _body) = req.into_parts();
    if let Err(r) = authenticate(&state, &parts).await {
        return r;
    }
    no_store(Json(state.status()).into_response())
}

async fn health_endpoint(state: DrainState, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return method_not_allowed("GET, HEAD");
    }
    let (healthy, body) = state.health();
    let code = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    no_store((code, Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn drain_body_must_be_an_object() {
        assert_eq!(parse_drain_body(b""), Ok(DrainRequest::default()));
        assert_eq!(parse_drain_body(b"  \n"), Ok(DrainRequest::default()));
        assert_eq!(parse_drain_body(b"{}"), Ok(DrainRequest::default()));
        assert_eq!(
            parse_drain_body(br#"{"deadline_secs": 600}"#),
            Ok(DrainRequest { deadline_secs: Some(600) })
        );
        let array = parse_drain_body(b"[600]").unwrap_err();
        assert!(array.contains("not a JSON array"), "{array}");
        assert!(parse_drain_body(b"600").is_err());
        assert!(parse_drain_body(b"null").is_err());
        assert!(parse_drain_body(br#"{"deadline_secs": 2592001}"#).is_err());
        assert!(parse_drain_body(br#"{"deadline_secs": 18446744073709551615}"#).is_err());
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(&headers(&[b"Bearer abc"])), Some(&b"abc"[..]));
        assert_eq!(bearer_token(&headers(&[b"bEaReR   abc "])), Some(&b"abc"[..]));
        assert_eq!(bearer_token(&headers(&[b"Bearer"])), None);
        assert_eq!(bearer_token(&headers(&[b"Bearer "])), None);
        assert_eq!(bearer_token(&headers(&[b"Basic abc"])), None);
        assert_eq!(bearer_token(&headers(&[b"Bearer a b"])), None);
        assert_eq!(bearer_token(&headers(&[b"Bearer abc", b"Bearer abc"])), None);
        assert_eq!(bearer_token(&headers(&[])), None);
    }
}
