//! [`DrainConfig`]: what an instance needs to speak the drain protocol — its version, identity, secret,
//! health path and timings — from the environment ([`DrainConfig::from_env`]) or a builder.

use std::path::PathBuf;
use std::time::Duration;

use pulse_deploy_core::drain::wire::{deadline, DEFAULT_HEALTH_PATH};
use pulse_deploy_core::{BoxError, Error, Result, Secret};

use crate::identity::InstanceIdSource;
use crate::secret::SecretSource;

/// Longest accepted drain deadline, configured or requested (30 days).
pub(crate) const MAX_DRAIN_DEADLINE: Duration = deadline::MAX_DRAIN_DEADLINE;
/// Longest accepted shutdown bound (1 hour; orchestrators kill long before).
pub(crate) const MAX_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3600);
/// Longest accepted secret refresh interval (1 day).
pub(crate) const MAX_SECRET_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// Longest accepted throttle window (1 hour).
pub(crate) const MAX_THROTTLE_WINDOW: Duration = Duration::from_secs(3600);
/// Most failed authentications accepted as the throttle bound.
pub(crate) const MAX_AUTH_FAILURES: u32 = 1_000_000;

/// Checks `value` is within `min..=max` (whole seconds in the message).
fn in_range(name: &'static str, value: Duration, min: Duration, max: Duration) -> Result<()> {
    if value < min || value > max {
        return Err(Error::invalid(
            name,
            format!(
                "must be between {} and {} seconds, got {}",
                min.as_secs(),
                max.as_secs(),
                value.as_secs_f64()
            ),
        ));
    }
    Ok(())
}

/// Default drain deadline when the drain request names none (`PULSE_DRAIN_DEADLINE_SECS`): the protocol's
/// one default, 6 hours, the same as the deployer's (`deadline::DEFAULT_DRAIN_DEADLINE`).
pub const DEFAULT_DRAIN_DEADLINE: Duration = deadline::DEFAULT_DRAIN_DEADLINE;
/// Default bound on the whole shutdown (`PULSE_SHUTDOWN_TIMEOUT_SECS`). Keep it below the orchestrator's
/// kill timeout (`docker stop` waits 10 s, ECS `stopTimeout` 30 s by default).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(8);
/// Default interval at which the secret is re-read from its source.
pub const DEFAULT_SECRET_REFRESH: Duration = Duration::from_secs(60);
/// Default number of failed admin authentications allowed per peer and window before answering 429.
pub const DEFAULT_MAX_AUTH_FAILURES: u32 = 5;
/// Default throttling window.
pub const DEFAULT_THROTTLE_WINDOW: Duration = Duration::from_secs(10);

/// Configuration of the server side of the drain protocol. Build it with [`DrainConfig::builder`] or
/// [`DrainConfig::from_env`]; start it with [`crate::DrainState::start`]. `Debug` never shows the secret.
#[derive(Debug, Clone)]
pub struct DrainConfig {
    pub(crate) version: String,
    pub(crate) instance_id: InstanceIdSource,
    pub(crate) secret: SecretSource,
    pub(crate) health_path: String,
    pub(crate) default_deadline: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) secret_refresh: Duration,
    pub(crate) max_auth_failures: u32,
    pub(crate) throttle_window: Duration,
    pub(crate) handle_signals: bool,
}

impl DrainConfig {
    /// A builder for an instance running `version`.
    pub fn builder(version: impl Into<String>) -> DrainConfigBuilder {
        DrainConfigBuilder {
            version: version.into(),
            instance_id: InstanceIdSource::Detect,
            secret: None,
            health_path: DEFAULT_HEALTH_PATH.to_owned(),
            default_deadline: DEFAULT_DRAIN_DEADLINE,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            secret_refresh: DEFAULT_SECRET_REFRESH,
            max_auth_failures: DEFAULT_MAX_AUTH_FAILURES,
            throttle_window: DEFAULT_THROTTLE_WINDOW,
            handle_signals: true,
            app_routes: Vec::new(),
        }
    }

    /// The configuration from the environment; see [`DrainConfigBuilder::from_env`].
    pub fn from_env() -> Result<DrainConfig> {
        DrainConfigBuilder::from_env()?.build()
    }

    /// The app version this instance runs.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The health path.
    pub fn health_path(&self) -> &str {
        &self.health_path
    }

    /// The bound on the whole shutdown.
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }
}

/// Builder of [`DrainConfig`].
#[derive(Debug, Clone)]
pub struct DrainConfigBuilder {
    version: String,
    instance_id: InstanceIdSource,
    secret: Option<SecretSource>,
    health_path: String,
    default_deadline: Duration,
    shutdown_timeout: Duration,
    secret_refresh: Duration,
    max_auth_failures: u32,
    throttle_window: Duration,
    handle_signals: bool,
    app_routes: Vec<String>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_secs(name: &'static str) -> Result<Option<Duration>> {
    match env_nonempty(name) {
        None => Ok(None),
        Some(v) => v.trim().parse::<u64>().map(|s| Some(Duration::from_secs(s))).map_err(|_| {
            Error::invalid(name, format!("`{v}` is not a whole number of seconds; set e.g. {name}=60"))
        }),
    }
}

impl DrainConfigBuilder {
    /// A builder from the environment:
    ///
    /// | variable | meaning | default |
    /// | --- | --- | --- |
    /// | `PULSE_VERSION` | the app version (required) | — |
    /// | `PULSE_INSTANCE_ID` | the instance id | ECS task ARN, else host name |
    /// | `PULSE_DRAIN_SECRET_FILE` | path of a file holding the secret (wins over the next) | — |
    /// | `PULSE_DRAIN_SECRET` | the secret (at least 16 printable characters) | — (required if no file) |
    /// | `PULSE_HEALTH_PATH` | the health path | `/health` |
    /// | `PULSE_DRAIN_DEADLINE_SECS` | deadline when a drain request names none (0 to 2592000) | 21600 (6 h) |
    /// | `PULSE_SHUTDOWN_TIMEOUT_SECS` | bound on the whole shutdown (1 to 3600) | 8 |
    ///
    /// Out-of-range values are refused by [`DrainConfigBuilder::build`] with an error naming the variable.
    pub fn from_env() -> Result<DrainConfigBuilder> {
        let version = env_nonempty("PULSE_VERSION").ok_or_else(|| {
            Error::invalid(
                "PULSE_VERSION",
                "not set; set PULSE_VERSION to the version this instance runs (e.g. v124)",
            )
        })?;
        let mut b = DrainConfig::builder(version.trim());
        if let Some(id) = env_nonempty("PULSE_INSTANCE_ID") {
            b = b.instance_id(id.trim());
        }
        if let Some(path) = env_nonempty("PULSE_DRAIN_SECRET_FILE") {
            b = b.secret_file(path.trim());
        } else if let Ok(value) = std::env::var("PULSE_DRAIN_SECRET") {
            b = b.secret(Secret::new("PULSE_DRAIN_SECRET", value)?);
        }
        if let Some(path) = env_nonempty("PULSE_HEALTH_PATH") {
            b = b.health_path(path.trim());
        }
        if let Some(d) = env_secs("PULSE_DRAIN_DEADLINE_SECS")? {
            b = b.default_deadline(d);
        }
        if let Some(d) = env_secs("PULSE_SHUTDOWN_TIMEOUT_SECS")? {
            b = b.shutdown_timeout(d);
        }
        Ok(b)
    }

    /// A fixed instance id (default: detected, see [`InstanceIdSource::Detect`]).
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = InstanceIdSource::Fixed(id.into());
        self
    }

    /// A fixed secret.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(SecretSource::Static(secret));
        self
    }

    /// A file holding the secret, re-read on refresh (rotation without restart).
    pub fn secret_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.secret = Some(SecretSource::File(path.into()));
        self
    }

    /// An async factory returning the secret (e.g. AWS Secrets Manager), called at startup and on refresh.
    pub fn secret_factory<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<String, BoxError>> + Send + 'static,
    {
        self.secret = Some(SecretSource::factory(f));
        self
    }

    /// Any [`SecretSource`].
    pub fn secret_source(mut self, source: SecretSource) -> Self {
        self.secret = Some(source);
        self
    }

    /// The health path (default `/health`).
    pub fn health_path(mut self, path: impl Into<String>) -> Self {
        self.health_path = path.into();
        self
    }

    /// The deadline used when a drain request names none (default 6 h, the protocol's one default).
    pub fn default_deadline(mut self, d: Duration) -> Self {
        self.default_deadline = d;
        self
    }

    /// The bound on the whole shutdown: in-flight requests, WebSocket closes and hooks (default 8 s).
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }

    /// How often the secret is re-read from its source (default 60 s; also re-read, at most once a second,
    /// when a presented token does not match).
    pub fn secret_refresh(mut self, d: Duration) -> Self {
        self.secret_refresh = d;
        self
    }

    /// Failed admin authentications allowed per peer address within `window` before 429 (default 5 per 10 s).
    pub fn throttle(mut self, max_failures: u32, window: Duration) -> Self {
        self.max_auth_failures = max_failures;
        self.throttle_window = window;
        self
    }

    /// Whether [`crate::DrainState::start`] installs SIGTERM/SIGINT handlers (default true; turn off in tests
    /// that run several servers in one process, and call [`crate::DrainState::begin_shutdown`] instead).
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.handle_signals = on;
        self
    }

    /// The app's own routes (axum route paths, e.g. `/` and `/ws`), so that [`DrainConfigBuilder::build`]
    /// refuses a health path equal to one of them: the health route would otherwise shadow the app's route
    /// (or be shadowed by it) without a word. Adds to the routes given before.
    pub fn app_routes<I, P>(mut self, routes: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.app_routes.extend(routes.into_iter().map(Into::into));
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<DrainConfig> {
        let version = self.version.trim().to_owned();
        if version.is_empty() || version.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
            return Err(Error::invalid(
                "PULSE_VERSION",
                "must be non-empty printable ASCII without spaces (it is sent in headers), e.g. v124",
            ));
        }
        if let InstanceIdSource::Fixed(id) = &self.instance_id {
            crate::identity::check_instance_id("PULSE_INSTANCE_ID", id)?;
        }
        let secret = self.secret.ok_or_else(|| {
            Error::invalid(
                "PULSE_DRAIN_SECRET",
                "no drain secret; set PULSE_DRAIN_SECRET or PULSE_DRAIN_SECRET_FILE (at least 16 characters)",
            )
        })?;
        check_health_path(&self.health_path, &self.app_routes)?;
        in_range("PULSE_DRAIN_DEADLINE_SECS", self.default_deadline, Duration::ZERO, MAX_DRAIN_DEADLINE)?;
        in_range(
            "PULSE_SHUTDOWN_TIMEOUT_SECS",
            self.shutdown_timeout,
            Duration::from_secs(1),
            MAX_SHUTDOWN_TIMEOUT,
        )?;
        in_range("secret_refresh", self.secret_refresh, Duration::from_secs(1), MAX_SECRET_REFRESH)?;
        in_range("throttle.window", self.throttle_window, Duration::from_secs(1), MAX_THROTTLE_WINDOW)?;
        if !(1..=MAX_AUTH_FAILURES).contains(&self.max_auth_failures) {
            return Err(Error::invalid(
                "throttle.max_failures",
                format!("must be between 1 and {MAX_AUTH_FAILURES}, got {}", self.max_auth_failures),
            ));
        }
        Ok(DrainConfig {
            version,
            instance_id: self.instance_id,
            secret,
            health_path: self.health_path,
            default_deadline: self.default_deadline,
            shutdown_timeout: self.shutdown_timeout,
            secret_refresh: self.secret_refresh,
            max_auth_failures: self.max_auth_failures,
            throttle_window: self.throttle_window,
            handle_signals: self.handle_signals,
        })
    }
}

/// Longest accepted health path.
pub const MAX_HEALTH_PATH_LEN: usize = 256;

/// The health path must be a plain absolute path: `/` then segments of `A-Z a-z 0-9 - . _ ~`, no empty,
/// `.` or `..` segment, at most [`MAX_HEALTH_PATH_LEN`] bytes (so it is matched literally: no route
/// parameter `{x}`, wildcard or percent-encoding an axum router or a proxy would read otherwise), not under
/// `/_pulse/admin` (health is public) and not one of the app's own routes.
fn check_health_path(path: &str, app_routes: &[String]) -> Result<()> {
    let name = "PULSE_HEALTH_PATH";
    let segments: Vec<&str> = path.strip_prefix('/').map(|p| p.split('/').collect()).unwrap_or_default();
    let plain = |seg: &&str| {
        !seg.is_empty()
            && *seg != "."
            && *seg != ".."
            && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    };
    if !path.starts_with('/') || path.len() > MAX_HEALTH_PATH_LEN || !segments.iter().all(plain) {
        return Err(Error::invalid(
            name,
            format!(
                "`{}` is not a plain absolute path: use `/` and segments of letters, digits, `-`, `.`, `_`, `~` \
                 (at most {MAX_HEALTH_PATH_LEN} bytes), e.g. /health",
                path.escape_debug()
            ),
        ));
    }
    if path == "/_pulse/admin" || path.starts_with("/_pulse/admin/") {
        return Err(Error::invalid(
            name,
            "must not be under /_pulse/admin (health is public); use e.g. /health",
        ));
    }
    if let Some(route) = app_routes.iter().find(|r| r.as_str() == path) {
        return Err(Error::invalid(
            name,
            format!("`{path}` is one of the app's routes (`{route}`); choose a path the app does not serve, e.g. /health"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> DrainConfigBuilder {
        DrainConfig::builder("v1").secret(Secret::new("test", "test-secret-0123456789abcdef").unwrap())
    }

    fn refused(b: DrainConfigBuilder) -> String {
        b.build().unwrap_err().to_string()
    }

    #[test]
    fn every_duration_has_a_range() {
        assert!(builder().build().is_ok());
        let huge = Duration::from_secs(u64::MAX);
        assert!(refused(builder().default_deadline(huge)).contains("PULSE_DRAIN_DEADLINE_SECS"));
        assert!(builder().default_deadline(MAX_DRAIN_DEADLINE).build().is_ok());
        assert!(builder().default_deadline(Duration::ZERO).build().is_ok());
        assert!(refused(builder().shutdown_timeout(huge)).contains("PULSE_SHUTDOWN_TIMEOUT_SECS"));
        assert!(refused(builder().shutdown_timeout(Duration::ZERO)).contains("PULSE_SHUTDOWN_TIMEOUT_SECS"));
        assert!(refused(builder().secret_refresh(huge)).contains("secret_refresh"));
        assert!(refused(builder().throttle(5, huge)).contains("throttle.window"));
        assert!(refused(builder().throttle(0, Duration::from_secs(10))).contains("throttle.max_failures"));
    }

    #[test]
    fn health_path_is_plain_and_not_an_app_route() {
        for good in ["/health", "/_pulse/health", "/a/b-c.d_e~f", "/healthz"] {
            assert!(builder().health_path(good).app_routes(["/", "/ws"]).build().is_ok(), "{good}");
        }
        for bad in [
            "", "health", "/", "/a//b", "/a/", "/{id}", "/:id", "/*rest", "/a b", "/a?b", "/a#b", "/%2e",
            "/./a", "/a/..", "/h\u{e9}", "/\n",
        ] {
            let e = refused(builder().health_path(bad));
            assert!(e.contains("PULSE_HEALTH_PATH") && e.contains("plain absolute path"), "{bad:?}: {e}");
        }
        let long = format!("/{}", "a".repeat(MAX_HEALTH_PATH_LEN));
        assert!(refused(builder().health_path(long)).contains("PULSE_HEALTH_PATH"));
        for admin in ["/_pulse/admin", "/_pulse/admin/status"] {
            assert!(refused(builder().health_path(admin)).contains("/_pulse/admin"), "{admin}");
        }
        assert!(builder().health_path("/_pulse/administrator").build().is_ok());
        let shadow = refused(builder().health_path("/ws").app_routes(["/", "/ws"]));
        assert!(shadow.contains("PULSE_HEALTH_PATH") && shadow.contains("app's routes"), "{shadow}");
    }
}
