//! One checker run: the client, the options, the report being written and what earlier rules learned
//! (the instance's id and version, the session opened before draining, the first drain's answer), which
//! later rules check against.

use std::time::{Duration, SystemTime};

use pulse_deploy_core::conformance::ConformanceReport;
use pulse_deploy_core::drain::wire::InstanceStatus;
use pulse_deploy_core::{Error, Result, Secret};

use super::client::{Answer, Http, Socket};
use super::redact::Redactor;
use super::report::Recorder;
use super::socketio::Connection;
use super::CheckOptions;

/// A session's connection held open across the drain (so the session counts as connected).
#[derive(Debug)]
pub(crate) enum Held {
    /// Plain mode: the WebSocket attached with `?session=<id>`.
    WebSocket(Box<Socket>),
    /// Pulse mode: the accepted Socket.IO connection carrying the render id.
    SocketIo(Connection),
}

impl Held {
    pub(crate) async fn close(self) {
        match self {
            Held::WebSocket(mut s) => {
                let _ = s.close(None).await;
            }
            Held::SocketIo(c) => c.close().await,
        }
    }
}

/// The state of one run, passed to every rule.
pub(crate) struct Run<'a> {
    pub(crate) http: Http,
    pub(crate) options: &'a CheckOptions,
    pub(crate) report: Recorder,
    secret: &'a Secret,
    /// The instance id the status reported while serving.
    pub(crate) instance_id: Option<String>,
    /// The version the server reports (or the expected one).
    pub(crate) version: Option<String>,
    /// `active_sessions` while serving, before the checker created its session.
    pub(crate) sessions_before: Option<u64>,
    /// The session (plain) or render (Pulse) id created before draining.
    pub(crate) session: Option<String>,
    /// Pulse: the cookies the prerender set (`name=value; ...`), sent with the Socket.IO upgrade.
    pub(crate) cookie: Option<String>,
    /// The connection attached to that session, held open while draining.
    pub(crate) held: Option<Held>,
    /// The deadline the drain request asked for, in seconds.
    pub(crate) deadline_secs: u64,
    /// The answer to the first drain.
    pub(crate) first_drain: Option<InstanceStatus>,
}

impl<'a> Run<'a> {
    /// Validates `base_url` (plain `http://host:port` only) and starts an empty report.
    pub(crate) fn new(base_url: &str, secret: &'a Secret, options: &'a CheckOptions) -> Result<Self> {
        let url: http::Uri = base_url.parse().map_err(|e| {
            Error::invalid("url", format!("`{base_url}` is not a URL: {e}; use e.g. http://127.0.0.1:8000"))
        })?;
        if url.scheme_str() != Some("http") || url.host().is_none() {
            return Err(Error::invalid(
                "url",
                format!("`{base_url}`: the checker speaks plain http://host:port only"),
            ));
        }
        let redactor = Redactor::new(secret.expose());
        let target = redactor.redact(base_url.trim_end_matches('/'));
        Ok(Run {
            http: Http::new(base_url, options.request_timeout),
            options,
            report: Recorder::new(target, redactor),
            secret,
            instance_id: None,
            version: options.expect_version.clone(),
            sessions_before: None,
            session: None,
            cookie: None,
            held: None,
            deadline_secs: options.drain_deadline.as_secs().max(1),
            first_drain: None,
        })
    }

    /// `Authorization: Bearer <secret>`.
    pub(crate) fn auth(&self) -> (&'static str, String) {
        self.authorization("Bearer", "")
    }

    /// `Authorization: <scheme> <secret><suffix>` (a wrong secret, another scheme, a lowercase scheme).
    pub(crate) fn authorization(&self, scheme: &str, suffix: &str) -> (&'static str, String) {
        ("authorization", format!("{scheme} {}{suffix}", self.secret.expose()))
    }

    /// A wrong secret: the right one with one more character.
    pub(crate) fn wrong(&self) -> (&'static str, String) {
        self.authorization("Bearer", "x")
    }

    /// Records a check from a request's outcome: `judge` decides on an answer; a transport error fails.
    pub(crate) fn judge(
        &mut self,
        name: &str,
        answer: std::result::Result<Answer, String>,
        headers: &[&str],
        judge: impl FnOnce(&Answer) -> bool,
    ) -> bool {
        match answer {
            Ok(a) => {
                let ok = judge(&a);
                self.report.record(name, ok, a.saw(headers))
            }
            Err(e) => self.report.record(name, false, e),
        }
    }

    /// Closes what is still held and returns the report.
    pub(crate) async fn finish(mut self) -> ConformanceReport {
        if let Some(h) = self.held.take() {
            h.close().await;
        }
        self.report.finish()
    }
}

/// Whether a `WWW-Authenticate` challenge names the `Bearer` scheme.
pub(crate) fn challenge_is_bearer(a: &Answer) -> bool {
    a.headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.trim_start().get(..6).is_some_and(|s| s.eq_ignore_ascii_case("bearer")))
}

/// Whether `a` and `b` are within `tolerance` of each other.
pub(crate) fn close_to(a: SystemTime, b: SystemTime, tolerance: Duration) -> bool {
    a.duration_since(b).or_else(|_| b.duration_since(a)).map(|d| d <= tolerance).unwrap_or(false)
}

/// `path` with `pair` added to its query.
pub(crate) fn with_query(path: &str, pair: &str) -> String {
    if path.contains('?') {
        format!("{path}&{pair}")
    } else {
        format!("{path}?{pair}")
    }
}

/// Whether the answer clears the `cookie` (`Set-Cookie: <cookie>=; Max-Age=0`).
pub(crate) fn clears_cookie(a: &Answer, cookie: &str) -> bool {
    a.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .any(|c| c.starts_with(&format!("{cookie}=;")) && c.to_ascii_lowercase().contains("max-age=0"))
}
