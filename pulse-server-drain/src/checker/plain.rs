//! The session rules of the plain mode (the generic protocol as `pulse-demo-app` speaks it): a page load
//! names its session in `x-pulse-session`, a WebSocket attaches with `?session=<id>`; while draining a new
//! page load gets `307`, a WebSocket for an unknown session `409`, and the existing session reconnects.

use http::{Method, StatusCode};
use pulse_deploy_core::affinity::{STALE_AFFINITY_HEADER, VERSION_COOKIE, VERSION_QUERY};
use pulse_deploy_core::drain::wire::StaleAffinityBody;

use super::client::websocket;
use super::run::{clears_cookie, with_query, Held, Run};

/// While serving, a page load creates a session and names it (`200`, `x-pulse-session`).
pub(crate) async fn page_load_creates_a_session(run: &mut Run<'_>) {
    let name = "page load creates a session";
    let Some(page) = run.options.page_path.clone() else {
        run.report.skip(name, "no page path given");
        return;
    };
    let answer = run.http.send(Method::GET, &page, &[], "").await;
    if let Ok(a) = &answer {
        run.session = a.header("x-pulse-session").map(str::to_owned);
    }
    run.judge(name, answer, &["x-pulse-session"], |a| a.status == StatusCode::OK);
}

/// While serving, a WebSocket attaches to that session (`101`); it is held open across the drain.
pub(crate) async fn websocket_attaches_to_the_session(run: &mut Run<'_>) {
    let name = "websocket attaches to the session";
    let (Some(ws), Some(id)) = (run.options.websocket_path.clone(), run.session.clone()) else {
        run.report.skip(name, "no websocket path, or the page load named no session (x-pulse-session)");
        return;
    };
    let url = format!("{}{}", run.http.ws_base(), with_query(&ws, &format!("session={id}")));
    match websocket(&url, &[], run.options.request_timeout).await {
        Ok(s) => {
            run.held = Some(Held::WebSocket(Box::new(s)));
            run.report.record(name, true, "101 Switching Protocols");
        }
        Err(Ok(a)) => {
            run.report.record(name, false, a.saw(&[]));
        }
        Err(Err(e)) => {
            run.report.record(name, false, e);
        }
    }
}

/// While draining, a new page load (with the version's cookie and query parameter) gets `307` to the same
/// page without `pulse_version`, the cookie cleared and `x-pulse-stale-affinity`.
pub(crate) async fn new_page_load_is_redirected(run: &mut Run<'_>) {
    let name = "new page load while draining: 307 without pulse_version, cookie cleared, stale header";
    let (Some(page), Some(v)) = (run.options.page_path.clone(), run.version.clone()) else {
        run.report.skip(name, "no page path, or the version is unknown");
        return;
    };
    let path = with_query(&page, &format!("{VERSION_QUERY}={v}"));
    let cookie = ("cookie", format!("{VERSION_COOKIE}={v}"));
    let answer = run.http.send(Method::GET, &path, &[cookie], "").await;
    run.judge(name, answer, &["location", "set-cookie", STALE_AFFINITY_HEADER], |a| {
        a.status == StatusCode::TEMPORARY_REDIRECT
            && a.header("location").is_some_and(|l| !l.contains(VERSION_QUERY))
            && clears_cookie(a, VERSION_COOKIE)
            && a.headers.contains_key(STALE_AFFINITY_HEADER)
    });
}

/// While draining, a WebSocket for an unknown session gets `409` with `x-pulse-stale-affinity` and a
/// `"reload": true` body, never `101`.
pub(crate) async fn websocket_for_an_unknown_session_is_refused(run: &mut Run<'_>) {
    let name = "websocket for an unknown session while draining: 409, stale header, reload body";
    let Some(ws) = run.options.websocket_path.clone() else {
        run.report.skip(name, "no websocket path given");
        return;
    };
    let unknown = format!("checker-unknown-{:016x}", rand::random::<u64>());
    let url = format!("{}{}", run.http.ws_base(), with_query(&ws, &format!("session={unknown}")));
    match websocket(&url, &[], run.options.request_timeout).await {
        Ok(_) => {
            run.report.record(
                name,
                false,
                "101 Switching Protocols: a new session was created while draining",
            );
        }
        Err(Ok(a)) => {
            let ok = a.status == StatusCode::CONFLICT
                && a.headers.contains_key(STALE_AFFINITY_HEADER)
                && a.json::<StaleAffinityBody>().is_ok_and(|b| b.reload);
            run.report.record(name, ok, a.saw(&[STALE_AFFINITY_HEADER, "set-cookie"]));
        }
        Err(Err(e)) => {
            run.report.record(name, false, e);
        }
    }
}

/// While draining, the existing session's WebSocket closes and reconnects (`101`).
pub(crate) async fn existing_session_reconnects(run: &mut Run<'_>) {
    let name = "existing session reconnects while draining (101)";
    let (Some(held), Some(ws), Some(id)) =
        (run.held.take(), run.options.websocket_path.clone(), run.session.clone())
    else {
        run.report.skip(name, "no session was opened before draining");
        return;
    };
    held.close().await;
    let url = format!("{}{}", run.http.ws_base(), with_query(&ws, &format!("session={id}")));
    match websocket(&url, &[], run.options.request_timeout).await {
        Ok(mut s) => {
            run.report.record(name, true, "101 Switching Protocols");
            let _ = s.close(None).await;
        }
        Err(Ok(a)) => {
            run.report.record(name, false, a.saw(&[STALE_AFFINITY_HEADER]));
        }
        Err(Err(e)) => {
            run.report.record(name, false, e);
        }
    }
}
