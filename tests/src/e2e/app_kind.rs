//! Which app the end-to-end run deploys: the Rust demo app (`pulse-demo-app`, plain WebSocket sessions)
//! or the example Pulse app (`examples/pulse-app/`, sessions through prerender and Socket.IO). The
//! scenario is the same; this is everything that differs: the image, the health path, the environment,
//! how a session is opened and what one page load of the steady load is.

use std::time::Duration;

use crate::http::HttpClient;
use crate::session::SessionHandle;

/// The app of an end-to-end run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppKind {
    /// The Rust demo app in a `FROM scratch` image.
    #[default]
    Demo,
    /// The example Pulse app on the Python image.
    Pulse,
}

impl AppKind {
    /// Parses `demo` or `pulse`.
    pub fn parse(s: &str) -> Result<AppKind, String> {
        match s {
            "demo" => Ok(AppKind::Demo),
            "pulse" => Ok(AppKind::Pulse),
            other => Err(format!("--app must be `demo` or `pulse`, not `{other}`")),
        }
    }

    /// The health path the router and the orchestrator probe.
    pub fn health_path(self) -> &'static str {
        match self {
            AppKind::Demo => "/health",
            AppKind::Pulse => "/_pulse/health",
        }
    }

    /// Environment every instance gets besides what the orchestrator sets (session grace for both;
    /// Pulse's own session-cookie secret for the Pulse app).
    pub fn env(self, session_secret: &str) -> Vec<(&'static str, String)> {
        let mut env = vec![("PULSE_SESSION_GRACE_SECS", "3".to_owned())];
        if self == AppKind::Pulse {
            env.push(("PULSE_SECRET", session_secret.to_owned()));
        }
        env
    }

    /// Opens session `n` through the router at `base` (`127.0.0.1:PORT`).
    pub async fn open_session(
        self,
        n: usize,
        http: &HttpClient,
        base: &str,
        affinity: Option<&str>,
    ) -> Result<SessionHandle, String> {
        match self {
            AppKind::Demo => crate::session::open(n, http, base, affinity, Duration::from_secs(1)).await,
            AppKind::Pulse => {
                crate::pulse_session::open(
                    n,
                    http,
                    &format!("http://{base}"),
                    affinity,
                    Duration::from_secs(1),
                )
                .await
            }
        }
    }
}
