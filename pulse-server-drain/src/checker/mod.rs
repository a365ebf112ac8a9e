//! The conformance checker: drives a live server through the drain protocol over real HTTP and WebSocket
//! connections and reports each rule passed, failed or skipped with what it saw.
//!
//! **It drains the server** (and waits past a short drain deadline): run it against a dedicated instance,
//! never one serving users. Plain `http://` only.
//!
//! ```no_run
//! # async fn f() -> Result<(), pulse_deploy_core::Error> {
//! use pulse_deploy_core::Secret;
//! use pulse_server_drain::checker::{check, CheckOptions};
//!
//! let secret = Secret::new("PULSE_DRAIN_SECRET", std::env::var("PULSE_DRAIN_SECRET").unwrap_or_default())?;
//! let report = check("http://127.0.0.1:8000", &secret, &CheckOptions::default()).await?;
//! println!("{report}");
//! assert!(report.passed());
//! # Ok(()) }
//! ```

mod client;
mod redact;
mod report;

use std::time::{Duration, SystemTime};

use http::{Method, StatusCode};
use pulse_deploy_core::affinity::{STALE_AFFINITY_HEADER, VERSION_COOKIE, VERSION_QUERY};
use pulse_deploy_core::drain::wire::{
    HealthBody, InstanceStatus, ServingState, StaleAffinityBody, DEFAULT_HEALTH_PATH, DRAIN_PATH, STATUS_PATH,
};
use pulse_deploy_core::{Error, Result, Secret};

pub use report::{Check, Outcome, Report};

use client::{websocket, Answer, Http};

/// What the checker exercises.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The health path (default `/health`).
    pub health_path: String,
    /// A page that creates a session (default `/`); `None` skips the page-load checks.
    pub page_path: Option<String>,
    /// The WebSocket path taking `?session=<id>` (default `/ws`); `None` skips the WebSocket checks.
    pub websocket_path: Option<String>,
    /// The drain deadline the checker asks for; it waits past it to see health fail (default 3 s).
    pub drain_deadline: Duration,
    /// Whether to provoke throttling of failed attempts (429) at the end (default true).
    pub check_throttling: bool,
    /// Per-request timeout (default 5 s).
    pub request_timeout: Duration,
    /// If set, the version the server must report.
    pub expect_version: Option<String>,
    /// If set, the instance id the server must report.
    pub expect_instance_id: Option<String>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            health_path: DEFAULT_HEALTH_PATH.into(),
            page_path: Some("/".into()),
            websocket_path: Some("/ws".into()),
            drain_deadline: Duration::from_secs(3),
            check_throttling: true,
            request_timeout: Duration::from_secs(5),
            expect_version: None,
            expect_instance_id: None,
        }
    }
}

fn bearer(secret: &Secret) -> (&'static str, String) {
    ("authorization", format!("Bearer {}", secret.expose()))
}

fn challenge_is_bearer(a: &Answer) -> bool {
    a.headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.trim_start().get(..6).is_some_and(|s| s.eq_ignore_ascii_case("bearer")))
}

fn close_to(a: SystemTime, b: SystemTime, tolerance: Duration) -> bool {
    a.duration_since(b).or_else(|_| b.duration_since(a)).map(|d| d <= tolerance).unwrap_or(false)
}

fn with_query(path: &str, pair: &str) -> String {
    if path.contains('?') {
        format!("{path}&{pair}")
    } else {
        format!("{path}?{pair}")
    }
}

/// Runs every check against the server at `base_url` (`http://host:port`). Errors only on a bad URL; a
/// server that does not answer fails checks instead.
pub async fn check(base_url: &str, secret: &Secret, options: &CheckOptions) -> Result<Report> {
    let url: http::Uri = base_url.parse().map_err(|e| {
        Error::invalid("url", format!("`{base_url}` is not a URL: {e}; use e.g. http://127.0.0.1:8000"))
    })?;
    if url.scheme_str() != Some("http") || url.host().is_none() {
        return Err(Error::invalid(
            "url",
            format!("`{base_url}`: the checker speaks plain http://host:port only"),
        ));
    }
    let http = Http::new(base_url, options.request_timeout);
    let redactor = redact::Redactor::new(secret.expose());
    let target = redactor.redact(base_url.trim_end_matches('/'));
    let mut report = Report { target, checks: vec![], redactor };
    let auth = bearer(secret);
    let wrong = ("authorization", format!("Bearer {}x", secret.expose()));
    let hp = options.health_path.as_str();

    // 1. Health while serving.
    match http.send(Method::GET, hp, &[], "").await {
        Ok(a) => {
            let body = a.json::<HealthBody>();
            let ok = a.status == StatusCode::OK && matches!(&body, Ok(b) if b.state == ServingState::Serving);
            report.record("health answers 200 with state serving", ok, a.saw(&["content-type"]));
        }
        Err(e) => {
            report.record("health answers 200 with state serving", false, e);
        }
    }

    // 2-5. Rejected credentials (4 failures: below any conforming throttle).
    type Rejection<'a> = (&'a str, Method, &'a str, Vec<(&'a str, String)>);
    let rejections: [Rejection; 4] = [
        (
            "status refuses missing credentials (401, WWW-Authenticate: Bearer)",
            Method::GET,
            STATUS_PATH,
            vec![],
        ),
        (
            "drain refuses missing credentials (401, WWW-Authenticate: Bearer)",
            Method::POST,
            DRAIN_PATH,
            vec![],
        ),
        ("drain refuses a wrong secret (401)", Method::POST, DRAIN_PATH, vec![wrong.clone()]),
        (
            "drain refuses another scheme (401)",
            Method::POST,
            DRAIN_PATH,
            vec![("authorization", format!("Basic {}", secret.expose()))],
        ),
    ];
    for (name, method, path, headers) in rejections {
        match http.send(method, path, &headers, "").await {
            Ok(a) => {
                let ok = a.status == StatusCode::UNAUTHORIZED && challenge_is_bearer(&a);
                report.record(name, ok, a.saw(&["www-authenticate"]));
            }
            Err(e) => {
                report.record(name, false, e);
            }
        }
    }

    // 6. Status with the secret; nothing changed by the rejected requests.
    let mut instance_id = None;
    let mut version = options.expect_version.clone();
    match http.send(Method::GET, STATUS_PATH, std::slice::from_ref(&auth), "").await {
        Ok(a) => match a.json::<InstanceStatus>() {
            Ok(s) => {
                let mut ok = a.status == StatusCode::OK
                    && s.state == ServingState::Serving
                    && s.draining_since.is_none();
                ok &= options.expect_version.as_ref().is_none_or(|v| *v == s.version);
                ok &= options.expect_instance_id.as_ref().is_none_or(|i| *i == s.instance_id);
                ok &= !s.version.is_empty() && !s.instance_id.is_empty();
                report.record(
                    "status with the secret: serving, rejected requests changed nothing",
                    ok,
                    a.saw(&[]),
                );
                instance_id = Some(s.instance_id);
                version = Some(s.version);
            }
            Err(e) => {
                report.record(
                    "status with the secret: serving, rejected requests changed nothing",
                    false,
                    format!("{}; {e}", a.saw(&[])),
                );
            }
        },
        Err(e) => {
            report.record("status with the secret: serving, rejected requests changed nothing", false, e);
        }
    }

    // 7. Method not allowed on the drain path.
    match http.send(Method::GET, DRAIN_PATH, std::slice::from_ref(&auth), "").await {
        Ok(a) => {
            let ok = a.status == StatusCode::METHOD_NOT_ALLOWED
                && a.header("allow").is_some_and(|v| v.split(',').any(|m| m.trim() == "POST"));
            report.record("drain path answers other methods 405 with Allow: POST", ok, a.saw(&["allow"]));
        }
        Err(e) => {
            report.record("drain path answers other methods 405 with Allow: POST", false, e);
        }
    }

    // 8. A session before draining.
    let mut session: Option<String> = None;
    let mut socket = None;
    match &options.page_path {
        None => report.skip("page load creates a session", "no page path given"),
        Some(page) => match http.send(Method::GET, page, &[], "").await {
            Ok(a) => {
                session = a.header("x-pulse-session").map(str::to_owned);
                report.record(
                    "page load creates a session",
                    a.status == StatusCode::OK,
                    a.saw(&["x-pulse-session"]),
                );
            }
            Err(e) => {
                report.record("page load creates a session", false, e);
            }
        },
    }
    let name = "websocket attaches to the session";
    match (&options.websocket_path, &session) {
        (Some(ws), Some(id)) => {
            let url = format!("{}{}", http.ws_base(), with_query(ws, &format!("session={id}")));
            match websocket(&url, options.request_timeout).await {
                Ok(s) => {
                    socket = Some(s);
                    report.record(name, true, "101 Switching Protocols");
                }
                Err(Ok(a)) => {
                    report.record(name, false, a.saw(&[]));
                }
                Err(Err(e)) => {
                    report.record(name, false, e);
                }
            }
        }
        _ => report.skip(name, "no websocket path, or the page load named no session (x-pulse-session)"),
    }

    // 9. Drain, with a lowercase scheme.
    let deadline_secs = options.drain_deadline.as_secs().max(1);
    let body = format!("{{\"deadline_secs\": {deadline_secs}}}");
    let lower = ("authorization", format!("bearer {}", secret.expose()));
    let sent_at = SystemTime::now();
    let mut first: Option<InstanceStatus> = None;
    let name = "drain acknowledged (200, scheme case-insensitive, state, since, deadline, same instance)";
    match http.send(Method::POST, DRAIN_PATH, &[lower], &body).await {
        Ok(a) if a.status == StatusCode::OK => match a.json::<InstanceStatus>() {
            Ok(s) => {
                let expected_state = if socket.is_some() { ServingState::Draining } else { s.state };
                let ok = s.state.is_draining()
                    && s.state != ServingState::ShuttingDown
                    && s.state == expected_state
                    && s.draining_since.is_some()
                    && s.deadline.is_some_and(|d| {
                        close_to(d, sent_at + Duration::from_secs(deadline_secs), Duration::from_secs(3))
                    })
                    && instance_id.as_ref().is_none_or(|i| *i == s.instance_id);
                report.record(name, ok, a.saw(&[]));
                first = Some(s);
            }
            Err(e) => {
                report.record(name, false, format!("{}; {e}", a.saw(&[])));
            }
        },
        Ok(a) => {
            report.record(name, false, format!("{} (retrying with `Bearer`)", a.saw(&["www-authenticate"])));
            if let Ok(a) = http.send(Method::POST, DRAIN_PATH, std::slice::from_ref(&auth), &body).await {
                first = a.json::<InstanceStatus>().ok();
            }
        }
        Err(e) => {
            report.record(name, false, e);
        }
    }

    // 10. Idempotent; the earlier deadline is kept.
    let name = "second drain is idempotent and keeps the earlier deadline";
    let later = format!("{{\"deadline_secs\": {}}}", deadline_secs + 600);
    match (&first, http.send(Method::POST, DRAIN_PATH, std::slice::from_ref(&auth), &later).await) {
        (Some(f), Ok(a)) => match a.json::<InstanceStatus>() {
            Ok(s) => {
                let same = |x: Option<SystemTime>, y: Option<SystemTime>| match (x, y) {
                    (Some(x), Some(y)) => close_to(x, y, Duration::from_millis(2)),
                    _ => false,
                };
                let ok = a.status == StatusCode::OK
                    && s.state.is_draining()
                    && same(s.deadline, f.deadline)
                    && same(s.draining_since, f.draining_since);
                report.record(name, ok, a.saw(&[]));
            }
            Err(e) => {
                report.record(name, false, format!("{}; {e}", a.saw(&[])));
            }
        },
        (None, _) => report.skip(name, "the first drain was not acknowledged"),
        (_, Err(e)) => {
            report.record(name, false, e);
        }
    }

    // 11. Health while draining.
    let name = "health while draining: 200 with sessions, 503 without";
    match http.send(Method::GET, hp, &[], "").await {
        Ok(a) => {
            let body = a.json::<HealthBody>();
            let ok = match &body {
                Ok(b) if b.active_sessions > 0 => {
                    a.status == StatusCode::OK && b.state == ServingState::Draining
                }
                Ok(b) => a.status == StatusCode::SERVICE_UNAVAILABLE && b.state == ServingState::Drained,
                Err(_) => false,
            };
            report.record(name, ok, a.saw(&[]));
        }
        Err(e) => {
            report.record(name, false, e);
        }
    }

    // 12. New page load turned away with the stale-affinity answer.
    let name = "new page load while draining: 307 without pulse_version, cookie cleared, stale header";
    match (&options.page_path, &version) {
        (Some(page), Some(v)) => {
            let path = with_query(page, &format!("{VERSION_QUERY}={v}"));
            let cookie = ("cookie", format!("{VERSION_COOKIE}={v}"));
            match http.send(Method::GET, &path, &[cookie], "").await {
                Ok(a) => {
                    let cleared =
                        a.headers.get_all("set-cookie").iter().filter_map(|c| c.to_str().ok()).any(|c| {
                            c.starts_with(&format!("{VERSION_COOKIE}=;"))
                                && c.to_ascii_lowercase().contains("max-age=0")
                        });
                    let location_ok = a.header("location").is_some_and(|l| !l.contains(VERSION_QUERY));
                    let ok = a.status == StatusCode::TEMPORARY_REDIRECT
                        && location_ok
                        && cleared
                        && a.headers.contains_key(STALE_AFFINITY_HEADER);
                    report.record(name, ok, a.saw(&["location", "set-cookie", STALE_AFFINITY_HEADER]));
                }
                Err(e) => {
                    report.record(name, false, e);
                }
            }
        }
        _ => report.skip(name, "no page path, or the version is unknown"),
    }

    // 13. WebSocket for an unknown session turned away.
    let name = "websocket for an unknown session while draining: 409, stale header, reload body";
    match &options.websocket_path {
        Some(ws) => {
            let unknown = format!("checker-unknown-{:016x}", rand::random::<u64>());
            let url = format!("{}{}", http.ws_base(), with_query(ws, &format!("session={unknown}")));
            match websocket(&url, options.request_timeout).await {
                Ok(_) => {
                    report.record(
                        name,
                        false,
                        "101 Switching Protocols: a new session was created while draining",
                    );
                }
                Err(Ok(a)) => {
                    let body_ok = a.json::<StaleAffinityBody>().is_ok_and(|b| b.reload);
                    let ok = a.status == StatusCode::CONFLICT
                        && a.headers.contains_key(STALE_AFFINITY_HEADER)
                        && body_ok;
                    report.record(name, ok, a.saw(&[STALE_AFFINITY_HEADER, "set-cookie"]));
                }
                Err(Err(e)) => {
                    report.record(name, false, e);
                }
            }
        }
        None => report.skip(name, "no websocket path given"),
    }

    // 14. Existing session reconnects.
    let name = "existing session reconnects while draining (101)";
    match (socket.take(), &options.websocket_path, &session) {
        (Some(mut s), Some(ws), Some(id)) => {
            let _ = s.close(None).await;
            drop(s);
            let url = format!("{}{}", http.ws_base(), with_query(ws, &format!("session={id}")));
            match websocket(&url, options.request_timeout).await {
                Ok(mut s) => {
                    report.record(name, true, "101 Switching Protocols");
                    let _ = s.close(None).await;
                }
                Err(Ok(a)) => {
                    report.record(name, false, a.saw(&[STALE_AFFINITY_HEADER]));
                }
                Err(Err(e)) => {
                    report.record(name, false, e);
                }
            }
        }
        _ => report.skip(name, "no session was opened before draining"),
    }

    // 15. Past the deadline health fails whatever the session count.
    let name = "past the drain deadline health answers 503 with state drained";
    let give_up = tokio::time::Instant::now() + options.drain_deadline + Duration::from_secs(4);
    let mut last = String::from("no answer");
    let mut ok = false;
    while tokio::time::Instant::now() < give_up {
        match http.send(Method::GET, hp, &[], "").await {
            Ok(a) => {
                last = a.saw(&[]);
                if a.status == StatusCode::SERVICE_UNAVAILABLE
                    && a.json::<HealthBody>().is_ok_and(|b| b.state == ServingState::Drained)
                {
                    ok = true;
                    break;
                }
            }
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    report.record(name, ok, last);
    let name = "status after the deadline: drained";
    match http.send(Method::GET, STATUS_PATH, std::slice::from_ref(&auth), "").await {
        Ok(a) => {
            let ok = a.status == StatusCode::OK
                && a.json::<InstanceStatus>().is_ok_and(|s| s.state == ServingState::Drained);
            report.record(name, ok, a.saw(&[]));
        }
        Err(e) => {
            report.record(name, false, e);
        }
    }

    // 16. Throttling.
    let name = "repeated failed attempts are throttled (429), never 2xx";
    if options.check_throttling {
        let mut saw = String::from("no 429 after 30 failed attempts");
        let mut ok = false;
        for i in 1..=30 {
            match http.send(Method::POST, DRAIN_PATH, std::slice::from_ref(&wrong), "").await {
                Ok(a) if a.status == StatusCode::TOO_MANY_REQUESTS => {
                    saw = format!("attempt {i}: {}", a.saw(&["retry-after"]));
                    ok = true;
                    break;
                }
                Ok(a) if a.status.is_success() => {
                    saw = format!("attempt {i}: {}", a.saw(&[]));
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    saw = e;
                    break;
                }
            }
        }
        report.record(name, ok, saw);
    } else {
        report.skip(name, "turned off");
    }
    Ok(report)
}
