//! The new-session gate: while an instance drains (or shuts down), a request that would create a NEW
//! session is turned away with the stale-affinity answer, which sends the client to the newest version
//! without an error page. Requests for existing sessions (reconnects) are not gated.
//!
//! The answer (normative text: `docs/drain-protocol.md`, "Turning new sessions away"):
//! - a `GET`/`HEAD` page load: `307` to the same path and query minus `pulse_version`;
//! - a WebSocket upgrade or any other method: `409` with a JSON [`StaleAffinityBody`];
//! - both: `x-pulse-stale-affinity: <version>`, `Set-Cookie` clearing `pulse-version` and `pulse-instance`,
//!   `Cache-Control: no-store`.
//!
//! Use [`DrainState::admit_new_session`] in a handler that knows whether the session exists, or the tower
//! layer [`NewSessionGateLayer`] on routes that always create a session.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use pulse_deploy_core::affinity::{INSTANCE_COOKIE, STALE_AFFINITY_HEADER, VERSION_COOKIE, VERSION_QUERY};
use pulse_deploy_core::drain::wire::{StaleAffinityBody, STALE_AFFINITY_ERROR};
use tower::{Layer, Service};

use crate::state::DrainState;

/// Whether the request asks for a WebSocket upgrade (`Connection: upgrade` + `Upgrade: websocket`).
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has_token(header::UPGRADE, "websocket") && has_token(header::CONNECTION, "upgrade")
}

/// The URL a turned-away page load is redirected to: the same path and query without `pulse_version`.
pub fn location_without_affinity(uri: &Uri) -> String {
    let path = uri.path();
    let Some(query) = uri.query() else { return path.to_owned() };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(VERSION_QUERY))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// The stale-affinity answer of `version` for a request that would create a new session (see the module
/// docs); [`DrainState::stale_affinity_response`] is its public face.
pub(crate) fn stale_affinity_response(
    version: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    let page_load = (method == Method::GET || method == Method::HEAD) && !is_websocket_upgrade(headers);
    let mut response = if page_load {
        let location = location_without_affinity(uri);
        let mut r =
            (StatusCode::TEMPORARY_REDIRECT, "this version is draining; reloading on the newest version\n")
                .into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    } else {
        let body = StaleAffinityBody {
            error: STALE_AFFINITY_ERROR.into(),
            message:
                "this version is draining and takes no new session; drop the version affinity and reload"
                    .into(),
            reload: true,
            version: version.to_owned(),
        };
        (StatusCode::CONFLICT, axum::Json(body)).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(version) {
        h.insert(STALE_AFFINITY_HEADER, v);
    }
    for cookie in [VERSION_COOKIE, INSTANCE_COOKIE] {
        if let Ok(v) = HeaderValue::from_str(&format!("{cookie}=; Max-Age=0; Path=/")) {
            h.append(header::SET_COOKIE, v);
        }
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

type Exempt = Arc<dyn Fn(&Request) -> bool + Send + Sync>;

/// Tower layer turning away new-session requests while draining. Requests for which the `exempt`
/// predicate is true (e.g. "names a live session") always pass.
#[derive(Clone)]
pub struct NewSessionGateLayer {
    state: DrainState,
    exempt: Option<Exempt>,
}

impl NewSessionGateLayer {
    /// The gate of `state` ([`DrainState::gate`]).
    pub(crate) fn new(state: DrainState) -> Self {
        NewSessionGateLayer { state, exempt: None }
    }

    /// Lets requests for which `f` is true through even while draining (reconnects of existing sessions).
    pub fn exempt(mut self, f: impl Fn(&Request) -> bool + Send + Sync + 'static) -> Self {
        self.exempt = Some(Arc::new(f));
        self
    }
}

impl fmt::Debug for NewSessionGateLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSessionGateLayer").field("exempt", &self.exempt.is_some()).finish()
    }
}

impl<S> Layer<S> for NewSessionGateLayer {
    type Service = NewSessionGate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        NewSessionGate { inner, state: self.state.clone(), exempt: self.exempt.clone() }
    }
}

/// The service made by [`NewSessionGateLayer`].
#[derive(Clone)]
pub struct NewSessionGate<S> {
    inner: S,
    state: DrainState,
    exempt: Option<Exempt>,
}

impl<S> fmt::Debug for NewSessionGate<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSessionGate").finish_non_exhaustive()
    }
}

impl<S> Service<Request<Body>> for NewSessionGate<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let exempt = self.exempt.as_ref().is_some_and(|f| f(&req));
        if !exempt {
            if let Err(answer) = self.state.admit_new_session(req.method(), req.uri(), req.headers()) {
                return Box::pin(async move { Ok(answer) });
            }
        }
        let fut = self.inner.call(req);
        Box::pin(fut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_drops_only_the_affinity_parameter() {
        let u: Uri = "/a/b?x=1&pulse_version=v1&y=2".parse().unwrap();
        assert_eq!(location_without_affinity(&u), "/a/b?x=1&y=2");
        let u: Uri = "/?pulse_version=v1".parse().unwrap();
        assert_eq!(location_without_affinity(&u), "/");
        let u: Uri = "/p".parse().unwrap();
        assert_eq!(location_without_affinity(&u), "/p");
        let u: Uri = "/p?pulse_versionx=1".parse().unwrap();
        assert_eq!(location_without_affinity(&u), "/p?pulse_versionx=1");
    }

    #[test]
    fn websocket_upgrade_detection() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(is_websocket_upgrade(&h));
        h.remove(header::CONNECTION);
        assert!(!is_websocket_upgrade(&h));
    }
}
