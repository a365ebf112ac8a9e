//! [`Release`]: everything needed to run one version of an app, validated by [`ReleaseBuilder`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AppName, VersionId};
use crate::{Error, Result};

/// How a client is kept on the version that holds its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AffinityMode {
    /// A version cookie shared by all tabs of a browser (the seed plan's sticky sessions).
    Cookie,
    /// A per-tab affinity key the client carries in a header or query parameter (see
    /// [`crate::affinity`]): a new tab lands on the newest version while old tabs keep theirs.
    Key,
    /// Both: the per-tab key wins, the cookie is the fallback for clients that do not send a key.
    #[default]
    CookieAndKey,
}

/// One version of an app, as the deployer runs it. Build it with [`Release::builder`].
///
/// A release is stored with the version by the orchestrator (as labels or tags), so a restarted deployer
/// recovers it from the provider. `Debug` redacts environment values: they may hold credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The app this release belongs to.
    pub app: AppName,
    /// The version id.
    pub version: VersionId,
    /// The container image (a tag or digest the orchestrator can run).
    pub image: String,
    /// How many instances serve this version.
    pub replicas: u32,
    /// The port the app listens on inside its instance.
    pub port: u16,
    /// Environment variables for every instance (besides those the deployer sets: version, instance id).
    pub env: BTreeMap<String, String>,
    /// The health path checked by the router, e.g. `/health`.
    pub health_path: String,
    /// How long a draining version may keep live sessions before it is retired regardless.
    #[serde(with = "humantime_serde_secs")]
    pub drain_deadline: Duration,
    /// How long an instance has between SIGTERM and SIGKILL to shut down gracefully.
    #[serde(with = "humantime_serde_secs")]
    pub stop_grace: Duration,
    /// How clients are kept on this version.
    pub affinity: AffinityMode,
}

impl fmt::Debug for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env: Vec<&str> = self.env.keys().map(String::as_str).collect();
        f.debug_struct("Release")
            .field("app", &self.app)
            .field("version", &self.version)
            .field("image", &self.image)
            .field("replicas", &self.replicas)
            .field("port", &self.port)
            .field("env_keys", &env)
            .field("health_path", &self.health_path)
            .field("drain_deadline", &self.drain_deadline)
            .field("stop_grace", &self.stop_grace)
            .field("affinity", &self.affinity)
            .finish()
    }
}

impl Release {
    /// Starts building a release of `app` at `version` running `image`.
    pub fn builder(
        app: impl Into<String>,
        version: impl Into<String>,
        image: impl Into<String>,
    ) -> ReleaseBuilder {
        ReleaseBuilder {
            app: app.into(),
            version: version.into(),
            image: image.into(),
            replicas: 2,
            port: 8000,
            env: BTreeMap::new(),
            health_path: "/health".into(),
            drain_deadline: crate::drain::wire::deadline::DEFAULT_DRAIN_DEADLINE,
            stop_grace: Duration::from_secs(30),
            affinity: AffinityMode::default(),
        }
    }

    /// Re-checks every field (used on releases read back from a provider).
    pub fn validate(&self) -> Result<()> {
        validate(self)
    }
}

/// Builds a validated [`Release`]. Defaults: 2 replicas, port 8000, `/health`, drain deadline 6 h,
/// stop grace 30 s, affinity by cookie and per-tab key.
#[derive(Debug, Clone)]
pub struct ReleaseBuilder {
    app: String,
    version: String,
    image: String,
    replicas: u32,
    port: u16,
    env: BTreeMap<String, String>,
    health_path: String,
    drain_deadline: Duration,
    stop_grace: Duration,
    affinity: AffinityMode,
}

impl ReleaseBuilder {
    /// Number of instances (1 to 100).
    pub fn replicas(mut self, n: u32) -> Self {
        self.replicas = n;
        self
    }
    /// The port the app listens on inside the instance.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }
    /// The health path, starting with `/`.
    pub fn health_path(mut self, path: impl Into<String>) -> Self {
        self.health_path = path.into();
        self
    }
    /// How long a draining version may keep sessions (1 s to 7 days).
    pub fn drain_deadline(mut self, d: Duration) -> Self {
        self.drain_deadline = d;
        self
    }
    /// Time between SIGTERM and SIGKILL (1 s to 1 h).
    pub fn stop_grace(mut self, d: Duration) -> Self {
        self.stop_grace = d;
        self
    }
    /// How clients are kept on their version.
    pub fn affinity(mut self, mode: AffinityMode) -> Self {
        self.affinity = mode;
        self
    }

    /// Validates every field and returns the release, or an error naming the first bad field.
    pub fn build(self) -> Result<Release> {
        let release = Release {
            app: AppName::new(self.app)?,
            version: VersionId::new(self.version)?,
            image: self.image,
            replicas: self.replicas,
            port: self.port,
            env: self.env,
            health_path: self.health_path,
            drain_deadline: self.drain_deadline,
            stop_grace: self.stop_grace,
            affinity: self.affinity,
        };
        validate(&release)?;
        Ok(release)
    }
}

/// Environment variables the deployer sets itself; a release may not override them.
pub(super) const RESERVED_ENV: &[&str] =
    &["PULSE_VERSION", "PULSE_INSTANCE_ID", "PULSE_DRAIN_SECRET", "PULSE_APP"];

fn validate(r: &Release) -> Result<()> {
    AppName::new(r.app.as_str())?;
    VersionId::new(r.version.as_str())?;
    if r.image.trim().is_empty() || r.image.chars().any(char::is_whitespace) {
        return Err(Error::invalid("release.image", "must be an image reference without spaces, e.g. `shop:v124` or `123456789.dkr.ecr.eu-west-1.amazonaws.com/shop@sha256:...`"));
    }
    if !(1..=100).contains(&r.replicas) {
        return Err(Error::invalid("release.replicas", format!("is {}; use 1 to 100 instances", r.replicas)));
    }
    if r.port == 0 {
        return Err(Error::invalid(
            "release.port",
            "is 0; set the port the app listens on inside its container, e.g. 8000",
        ));
    }
    if !r.health_path.starts_with('/')
        || r.health_path.contains(char::is_whitespace)
        || r.health_path.starts_with("/_pulse/admin")
    {
        return Err(Error::invalid("release.health_path", format!("`{}` must be a path starting with '/', without spaces, outside /_pulse/admin (e.g. `/health`)", r.health_path)));
    }
    if r.drain_deadline < Duration::from_secs(1) || r.drain_deadline > Duration::from_secs(7 * 24 * 3600) {
        return Err(Error::invalid("release.drain_deadline", "use 1 s to 7 days (e.g. `6h`); it bounds how long old versions keep running for their open sessions"));
    }
    if r.stop_grace < Duration::from_secs(1) || r.stop_grace > Duration::from_secs(3600) {
        return Err(Error::invalid(
            "release.stop_grace",
            "use 1 s to 1 h (e.g. `30s`): the time an instance has between SIGTERM and SIGKILL",
        ));
    }
    for key in r.env.keys() {
        let valid = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Error::invalid(
                "release.env",
                format!(
                    "`{key}` is not a valid variable name; use A-Z, 0-9 and '_', not starting with a digit"
                ),
            ));
        }
        if RESERVED_ENV.contains(&key.as_str()) {
            return Err(Error::invalid(
                "release.env",
                format!("`{key}` is set by pulse-deploy itself; remove it from the release"),
            ));
        }
    }
    Ok(())
}

/// Serde for durations as whole seconds (language-neutral in labels and tags).
mod humantime_serde_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ReleaseBuilder {
        Release::builder("shop", "v1", "shop:v1")
    }

    #[test]
    fn defaults_are_valid() {
        let r = base().build().unwrap();
        assert_eq!(r.replicas, 2);
        assert_eq!(r.health_path, "/health");
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases: Vec<(ReleaseBuilder, &str)> = vec![
            (base().replicas(0), "release.replicas"),
            (base().port(0), "release.port"),
            (base().health_path("health"), "release.health_path"),
            (base().health_path("/_pulse/admin/status"), "release.health_path"),
            (base().drain_deadline(Duration::ZERO), "release.drain_deadline"),
            (base().stop_grace(Duration::from_secs(7200)), "release.stop_grace"),
            (base().env("1BAD", "x"), "release.env"),
            (base().env("PULSE_DRAIN_SECRET", "x"), "release.env"),
            (Release::builder("shop", "v1", "has space"), "release.image"),
            (Release::builder("Shop", "v1", "i"), "app"),
        ];
        for (b, field) in cases {
            let e = b.build().unwrap_err();
            assert!(matches!(e, Error::InvalidInput { field: f, .. } if f == field), "{field}: {e}");
        }
    }

    #[test]
    fn debug_redacts_env_values() {
        let r = base().env("DATABASE_URL", "postgres://user:hunter2@db").build().unwrap();
        let dbg = format!("{r:?}");
        assert!(dbg.contains("DATABASE_URL") && !dbg.contains("hunter2"), "{dbg}");
    }

    #[test]
    fn serde_round_trip() {
        let r = base().env("A", "b").build().unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Release>(&json).unwrap(), r);
    }
}
