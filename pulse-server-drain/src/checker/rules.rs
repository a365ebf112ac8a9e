//! The rules every drain-protocol server follows whatever its app (`docs/drain-protocol.md`): health,
//! authentication, status, drain, deadline and throttling. One function per rule, named after it; the
//! session rules are in `plain.rs` and `pulse.rs`.

use std::time::{Duration, SystemTime};

use http::{Method, StatusCode};
use pulse_deploy_core::drain::wire::{HealthBody, InstanceStatus, ServingState, DRAIN_PATH, STATUS_PATH};

use super::run::{challenge_is_bearer, close_to, Run};

/// Health answers `200` with state `serving` before any drain.
pub(crate) async fn health_is_200_while_serving(run: &mut Run<'_>) {
    let answer = run.http.send(Method::GET, &run.options.health_path, &[], "").await;
    run.judge("health answers 200 with state serving", answer, &["content-type"], |a| {
        a.status == StatusCode::OK && a.json::<HealthBody>().is_ok_and(|b| b.state == ServingState::Serving)
    });
}

/// `401` with a `Bearer` challenge.
fn refused_with_bearer_challenge(a: &super::client::Answer) -> bool {
    a.status == StatusCode::UNAUTHORIZED && challenge_is_bearer(a)
}

/// Status and drain without credentials: `401` with `WWW-Authenticate: Bearer` (2 of the 4 failures the
/// checker makes before the throttling rule: below any conforming throttle).
pub(crate) async fn missing_credentials_are_refused(run: &mut Run<'_>) {
    let status = run.http.send(Method::GET, STATUS_PATH, &[], "").await;
    run.judge(
        "status refuses missing credentials (401, WWW-Authenticate: Bearer)",
        status,
        &["www-authenticate"],
        refused_with_bearer_challenge,
    );
    let drain = run.http.send(Method::POST, DRAIN_PATH, &[], "").await;
    run.judge(
        "drain refuses missing credentials (401, WWW-Authenticate: Bearer)",
        drain,
        &["www-authenticate"],
        refused_with_bearer_challenge,
    );
}

/// A wrong secret: `401`.
pub(crate) async fn wrong_secret_is_refused(run: &mut Run<'_>) {
    let answer = run.http.send(Method::POST, DRAIN_PATH, &[run.wrong()], "").await;
    run.judge(
        "drain refuses a wrong secret (401)",
        answer,
        &["www-authenticate"],
        refused_with_bearer_challenge,
    );
}

/// The secret under another scheme (`Basic`): `401`.
pub(crate) async fn another_scheme_is_refused(run: &mut Run<'_>) {
    let answer = run.http.send(Method::POST, DRAIN_PATH, &[run.authorization("Basic", "")], "").await;
    run.judge(
        "drain refuses another scheme (401)",
        answer,
        &["www-authenticate"],
        refused_with_bearer_challenge,
    );
}

/// Status with the secret: `serving`, no `draining_since` (the rejected requests changed nothing), the
/// expected version and instance id. Remembers them, and the session count, for later rules.
pub(crate) async fn status_is_serving_after_rejections(run: &mut Run<'_>) {
    let name = "status with the secret: serving, rejected requests changed nothing";
    let answer = match run.http.send(Method::GET, STATUS_PATH, &[run.auth()], "").await {
        Ok(a) => a,
        Err(e) => {
            run.report.record(name, false, e);
            return;
        }
    };
    match answer.json::<InstanceStatus>() {
        Ok(s) => {
            let o = run.options;
            let ok = answer.status == StatusCode::OK
                && s.state == ServingState::Serving
                && s.draining_since.is_none()
                && o.expect_version.as_ref().is_none_or(|v| *v == s.version)
                && o.expect_instance_id.as_ref().is_none_or(|i| *i == s.instance_id)
                && !s.version.is_empty()
                && !s.instance_id.is_empty();
            run.report.record(name, ok, answer.saw(&[]));
            run.sessions_before = Some(s.active_sessions);
            run.instance_id = Some(s.instance_id);
            run.version = Some(s.version);
        }
        Err(e) => {
            run.report.record(name, false, format!("{}; {e}", answer.saw(&[])));
        }
    }
}

/// Another method on the drain path: `405` with `Allow: POST`.
pub(crate) async fn drain_refuses_other_methods(run: &mut Run<'_>) {
    let answer = run.http.send(Method::GET, DRAIN_PATH, &[run.auth()], "").await;
    run.judge("drain path answers other methods 405 with Allow: POST", answer, &["allow"], |a| {
        a.status == StatusCode::METHOD_NOT_ALLOWED
            && a.header("allow").is_some_and(|v| v.split(',').any(|m| m.trim() == "POST"))
    });
}

/// `active_sessions` counts the session the checker created: one more than before.
pub(crate) async fn active_sessions_counts_the_session(run: &mut Run<'_>) {
    let name = "active_sessions counts the new session (one more than before)";
    let (Some(before), Some(_)) = (run.sessions_before, &run.held) else {
        run.report.skip(name, "no session was opened, or the count before is unknown");
        return;
    };
    let answer = run.http.send(Method::GET, STATUS_PATH, &[run.auth()], "").await;
    run.judge(name, answer, &[], |a| {
        a.status == StatusCode::OK
            && a.json::<InstanceStatus>().is_ok_and(|s| s.active_sessions == before + 1)
    });
}

/// Drain with a lowercase `bearer` scheme: `200` with a draining state (`draining` while the checker's
/// session lives), `draining_since`, the requested deadline and the same instance id.
pub(crate) async fn drain_is_acknowledged(run: &mut Run<'_>) {
    let name = "drain acknowledged (200, scheme case-insensitive, state, since, deadline, same instance)";
    let body = format!("{{\"deadline_secs\": {}}}", run.deadline_secs);
    let sent_at = SystemTime::now();
    match run.http.send(Method::POST, DRAIN_PATH, &[run.authorization("bearer", "")], &body).await {
        Ok(a) if a.status == StatusCode::OK => match a.json::<InstanceStatus>() {
            Ok(s) => {
                let expected_state = if run.held.is_some() { ServingState::Draining } else { s.state };
                let wanted = sent_at + Duration::from_secs(run.deadline_secs);
                let ok = s.state.is_draining()
                    && s.state != ServingState::ShuttingDown
                    && s.state == expected_state
                    && s.draining_since.is_some()
                    && s.deadline.is_some_and(|d| close_to(d, wanted, Duration::from_secs(3)))
                    && run.instance_id.as_ref().is_none_or(|i| *i == s.instance_id);
                run.report.record(name, ok, a.saw(&[]));
                run.first_drain = Some(s);
            }
            Err(e) => {
                run.report.record(name, false, format!("{}; {e}", a.saw(&[])));
            }
        },
        Ok(a) => {
            run.report.record(
                name,
                false,
                format!("{} (retrying with `Bearer`)", a.saw(&["www-authenticate"])),
            );
            if let Ok(a) = run.http.send(Method::POST, DRAIN_PATH, &[run.auth()], &body).await {
                run.first_drain = a.json::<InstanceStatus>().ok();
            }
        }
        Err(e) => {
            run.report.record(name, false, e);
        }
    }
}

/// A second drain asking for a later deadline: the same `draining_since` and the earlier deadline.
pub(crate) async fn second_drain_keeps_the_earlier_deadline(run: &mut Run<'_>) {
    let name = "second drain is idempotent and keeps the earlier deadline";
    let Some(first) = run.first_drain.clone() else {
        run.report.skip(name, "the first drain was not acknowledged");
        return;
    };
    let later = format!("{{\"deadline_secs\": {}}}", run.deadline_secs + 600);
    let answer = match run.http.send(Method::POST, DRAIN_PATH, &[run.auth()], &later).await {
        Ok(a) => a,
        Err(e) => {
            run.report.record(name, false, e);
            return;
        }
    };
    match answer.json::<InstanceStatus>() {
        Ok(s) => {
            let same = |x: Option<SystemTime>, y: Option<SystemTime>| match (x, y) {
                (Some(x), Some(y)) => close_to(x, y, Duration::from_millis(2)),
                _ => false,
            };
            let ok = answer.status == StatusCode::OK
                && s.state.is_draining()
                && same(s.deadline, first.deadline)
                && same(s.draining_since, first.draining_since);
            run.report.record(name, ok, answer.saw(&[]));
        }
        Err(e) => {
            run.report.record(name, false, format!("{}; {e}", answer.saw(&[])));
        }
    }
}

/// Health while draining: `200 draining` while sessions remain, `503 drained` without any (health fails
/// only once drained).
pub(crate) async fn health_is_200_while_sessions_remain(run: &mut Run<'_>) {
    let answer = run.http.send(Method::GET, &run.options.health_path, &[], "").await;
    run.judge("health while draining: 200 with sessions, 503 without", answer, &[], |a| {
        match a.json::<HealthBody>() {
            Ok(b) if b.active_sessions > 0 => a.status == StatusCode::OK && b.state == ServingState::Draining,
            Ok(b) => a.status == StatusCode::SERVICE_UNAVAILABLE && b.state == ServingState::Drained,
            Err(_) => false,
        }
    });
}

/// Past the drain deadline health answers `503 drained` whatever the session count (polled until the
/// deadline plus 4 s).
pub(crate) async fn health_is_503_past_the_deadline(run: &mut Run<'_>) {
    let name = "past the drain deadline health answers 503 with state drained";
    let give_up =
        tokio::time::Instant::now() + Duration::from_secs(run.deadline_secs) + Duration::from_secs(4);
    let mut last = String::from("no answer");
    let mut ok = false;
    while tokio::time::Instant::now() < give_up {
        match run.http.send(Method::GET, &run.options.health_path, &[], "").await {
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
    run.report.record(name, ok, last);
}

/// Status after the deadline: `drained`.
pub(crate) async fn status_is_drained_past_the_deadline(run: &mut Run<'_>) {
    let answer = run.http.send(Method::GET, STATUS_PATH, &[run.auth()], "").await;
    run.judge("status after the deadline: drained", answer, &[], |a| {
        a.status == StatusCode::OK
            && a.json::<InstanceStatus>().is_ok_and(|s| s.state == ServingState::Drained)
    });
}

/// Repeated wrong secrets from one peer: `429` within 30 attempts, never a `2xx`.
pub(crate) async fn failed_attempts_are_throttled(run: &mut Run<'_>) {
    let name = "repeated failed attempts are throttled (429), never 2xx";
    if !run.options.check_throttling {
        run.report.skip(name, "turned off");
        return;
    }
    let mut saw = String::from("no 429 after 30 failed attempts");
    let mut ok = false;
    for i in 1..=30 {
        match run.http.send(Method::POST, DRAIN_PATH, &[run.wrong()], "").await {
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
    run.report.record(name, ok, saw);
}
