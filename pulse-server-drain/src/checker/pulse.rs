//! The session rules of the Pulse mode (`docs/drain-protocol.md`, "Pulse profile"), with sessions created
//! the way Pulse's client creates them: `POST /_pulse/prerender` creates a render (its id is in the
//! answer's `directives.socketio.auth.render_id`, its session cookie in `Set-Cookie`), then a Socket.IO
//! CONNECT carries `auth.render_id`. While draining a new prerender gets `303` and a CONNECT naming no live
//! render a CONNECT_ERROR `stale_affinity` (`data.code` `render_id_collision`); the live render is served.

use http::{Method, StatusCode};
use pulse_deploy_core::affinity::{INSTANCE_COOKIE, STALE_AFFINITY_HEADER, VERSION_COOKIE};
use serde_json::{json, Value};

use super::client::Answer;
use super::run::{clears_cookie, Held, Run};
use super::socketio::{self, ConnectError, Connected};

/// The request header naming a live render on prerender.
const RENDER_ID_HEADER: &str = "x-pulse-render-id";
/// The request header with the page URL Pulse's client loader sends, and the plugin redirects to.
const LOADER_LOCATION_HEADER: &str = "x-pulse-client-loader-location";
/// Pulse's client reloads on a CONNECT_ERROR whose `data.code` is this.
const RELOAD_CODE: &str = "render_id_collision";

/// The prerender body Pulse's client loader sends for `route`.
fn prerender_body(route: &str) -> String {
    json!({
        "paths": [route],
        "routeInfo": {"pathname": route, "hash": "", "query": "", "queryParams": {}, "pathParams": {}, "catchall": []},
    })
    .to_string()
}

/// The first `render_id` string anywhere in a prerender answer (Pulse puts it in
/// `directives.socketio.auth.render_id`).
pub(crate) fn render_id(body: &Value) -> Option<String> {
    match body {
        Value::Object(map) => map
            .get("render_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| map.values().find_map(render_id)),
        Value::Array(items) => items.iter().find_map(render_id),
        _ => None,
    }
}

/// The `name=value` pairs of every `Set-Cookie`, as one `Cookie` header value.
fn cookies(a: &Answer) -> Option<String> {
    let pairs: Vec<&str> = a
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .map(str::trim)
        .filter(|p| p.contains('='))
        .collect();
    (!pairs.is_empty()).then(|| pairs.join("; "))
}

/// `ws://host:port<socketio path>?EIO=4&transport=websocket`.
fn socketio_url(run: &Run<'_>, path: &str) -> String {
    let path = if path.ends_with('/') { path.to_owned() } else { format!("{path}/") };
    format!("{}{path}?EIO=4&transport=websocket", run.http.ws_base())
}

/// While serving, a prerender creates a render: `200` with a render id in the answer.
pub(crate) async fn prerender_creates_a_render(run: &mut Run<'_>) {
    let name = "prerender creates a render (200, render id in the answer)";
    let Some(route) = run.options.page_path.clone() else {
        run.report.skip(name, "no page route given");
        return;
    };
    let answer = run.http.send(Method::POST, &run.options.prerender_path, &[], &prerender_body(&route)).await;
    if let Ok(a) = &answer {
        run.session = a.json::<Value>().ok().as_ref().and_then(render_id);
        run.cookie = cookies(a);
    }
    let found = run.session.is_some();
    run.judge(name, answer, &[], |a| a.status == StatusCode::OK && found);
}

/// While serving, a Socket.IO CONNECT carrying the render id is accepted (`40`); the connection is held
/// open across the drain.
pub(crate) async fn connect_attaches_to_the_render(run: &mut Run<'_>) {
    let name = "Socket.IO CONNECT with the render id is accepted (40)";
    let (Some(path), Some(rid)) = (run.options.websocket_path.clone(), run.session.clone()) else {
        run.report.skip(name, "no Socket.IO path, or the prerender named no render");
        return;
    };
    connect_and_hold(run, name, &path, &rid).await;
}

/// While draining, a prerender naming no live render (with the version's cookie) gets `303` to the
/// loader's location, `x-pulse-stale-affinity: <version>`, both affinity cookies cleared and a
/// `"reload": true` body.
pub(crate) async fn new_prerender_is_redirected(run: &mut Run<'_>) {
    let name = "new prerender while draining: 303 to the loader location, cookies cleared, stale header";
    let (Some(route), Some(v)) = (run.options.page_path.clone(), run.version.clone()) else {
        run.report.skip(name, "no page route, or the version is unknown");
        return;
    };
    let location = format!("/checker-page?x={:08x}", rand::random::<u32>());
    let headers = [
        (LOADER_LOCATION_HEADER, location.clone()),
        ("cookie", format!("{VERSION_COOKIE}={v}; {INSTANCE_COOKIE}=checker")),
    ];
    let answer =
        run.http.send(Method::POST, &run.options.prerender_path, &headers, &prerender_body(&route)).await;
    run.judge(name, answer, &["location", "set-cookie", STALE_AFFINITY_HEADER], |a| {
        a.status == StatusCode::SEE_OTHER
            && a.header("location") == Some(location.as_str())
            && a.header(STALE_AFFINITY_HEADER) == Some(v.as_str())
            && clears_cookie(a, VERSION_COOKIE)
            && clears_cookie(a, INSTANCE_COOKIE)
            && a.json::<Value>().is_ok_and(|b| b.get("reload") == Some(&Value::Bool(true)))
    });
}

/// Whether a CONNECT_ERROR is the Pulse profile's stale-affinity answer for `version`.
fn is_stale_affinity(e: &ConnectError, version: Option<&str>) -> bool {
    e.message.as_deref() == Some("stale_affinity")
        && e.code.as_deref() == Some(RELOAD_CODE)
        && e.reason.as_deref() == Some("stale_affinity")
        && version.is_none_or(|v| e.version.as_deref() == Some(v))
}

/// While draining, a Socket.IO CONNECT with no render id, and one naming an unknown render, gets the
/// CONNECT_ERROR `stale_affinity` (never `40`: no new render while draining).
pub(crate) async fn connect_without_a_live_render_is_refused(run: &mut Run<'_>) {
    let Some(path) = run.options.websocket_path.clone() else {
        run.report.skip("Socket.IO CONNECT without a live render while draining", "no Socket.IO path given");
        return;
    };
    let url = socketio_url(run, &path);
    let unknown = format!("checker-unknown-{:016x}", rand::random::<u64>());
    let cases = [
        ("Socket.IO CONNECT without a render id while draining: CONNECT_ERROR stale_affinity", json!({})),
        (
            "Socket.IO CONNECT for an unknown render while draining: CONNECT_ERROR stale_affinity",
            json!({"render_id": unknown}),
        ),
    ];
    for (name, auth) in cases {
        match socketio::connect(&url, run.cookie.as_deref(), &auth, run.options.request_timeout).await {
            Ok(Connected::Accepted(c, saw)) => {
                c.close().await;
                run.report.record(name, false, format!("accepted while draining: {saw}"));
            }
            Ok(Connected::Refused(e, saw)) => {
                let ok = is_stale_affinity(&e, run.version.as_deref());
                run.report.record(name, ok, saw);
            }
            Err(e) => {
                run.report.record(name, false, e);
            }
        }
    }
}

/// While draining, the live render is served: its prerender (naming it in `x-pulse-render-id`) answers
/// `200` with the same render, and its socket reconnects (CONNECT accepted).
pub(crate) async fn existing_render_is_served(run: &mut Run<'_>) {
    let name = "prerender naming the live render while draining: 200, the same render";
    let (Some(route), Some(rid)) = (run.options.page_path.clone(), run.session.clone()) else {
        run.report.skip(name, "no render was created before draining");
        run.report.skip("the live render's socket reconnects while draining (40)", "no render was created");
        return;
    };
    let mut headers = vec![(RENDER_ID_HEADER, rid.clone())];
    if let Some(c) = &run.cookie {
        headers.push(("cookie", c.clone()));
    }
    let answer =
        run.http.send(Method::POST, &run.options.prerender_path, &headers, &prerender_body(&route)).await;
    run.judge(name, answer, &[], |a| {
        a.status == StatusCode::OK
            && a.json::<Value>().ok().as_ref().and_then(render_id).as_deref() == Some(&rid)
    });

    let name = "the live render's socket reconnects while draining (40)";
    let (Some(held), Some(path)) = (run.held.take(), run.options.websocket_path.clone()) else {
        run.report.skip(name, "no Socket.IO connection was held");
        return;
    };
    held.close().await;
    connect_and_hold(run, name, &path, &rid).await;
}

/// Rule `name`: a Socket.IO CONNECT at `path` carrying render `rid` is accepted (`40`); the accepted
/// connection is held open in `run`.
async fn connect_and_hold(run: &mut Run<'_>, name: &str, path: &str, rid: &str) {
    let url = socketio_url(run, path);
    let outcome = socketio::connect(
        &url,
        run.cookie.as_deref(),
        &json!({"render_id": rid}),
        run.options.request_timeout,
    )
    .await;
    match outcome {
        Ok(Connected::Accepted(c, saw)) => {
            run.held = Some(Held::SocketIo(c));
            run.report.record(name, true, saw);
        }
        Ok(Connected::Refused(_, saw)) => {
            run.report.record(name, false, saw);
        }
        Err(e) => {
            run.report.record(name, false, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_id_is_found_where_pulse_puts_it() {
        let answer = json!([{"views": {}}, {"directives": {"socketio": {"auth": {"render_id": "r-42"}}}}]);
        assert_eq!(render_id(&answer).as_deref(), Some("r-42"));
        assert_eq!(render_id(&json!({"directives": {}})), None);
    }
}
