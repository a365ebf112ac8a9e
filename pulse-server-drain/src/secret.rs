//! Where the drain secret comes from ([`SecretSource`]) and the cache that re-reads it so a rotated secret
//! is picked up without a restart.
//!
//! Not for comparing tokens by hand: [`pulse_deploy_core::Secret::matches`] does that in constant time.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use pulse_deploy_core::{BoxError, Error, Result, Secret};
use tokio::sync::{Mutex, RwLock};

/// An async function returning the current secret, e.g. one that reads AWS Secrets Manager.
pub type SecretFactory = Arc<dyn Fn() -> BoxFuture<'static, Result<String, BoxError>> + Send + Sync>;

/// Where the drain secret comes from. `Debug` never shows a secret.
#[derive(Clone)]
pub enum SecretSource {
    /// A fixed value (from `PULSE_DRAIN_SECRET` or code).
    Static(Secret),
    /// A file holding the secret (from `PULSE_DRAIN_SECRET_FILE`; surrounding whitespace is ignored). Re-read
    /// on every refresh, so replacing the file rotates the secret without a restart.
    File(PathBuf),
    /// An async factory, called at startup and on every refresh.
    Factory(SecretFactory),
}

impl SecretSource {
    /// A source calling `f` for the current secret.
    pub fn factory<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<String, BoxError>> + Send + 'static,
    {
        SecretSource::Factory(Arc::new(move || Box::pin(f())))
    }

    /// Reads the secret now, validating it (empty or shorter than 16 characters is refused).
    pub async fn load(&self) -> Result<Secret> {
        match self {
            SecretSource::Static(s) => Ok(s.clone()),
            SecretSource::File(path) => {
                let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                    Error::invalid(
                        "PULSE_DRAIN_SECRET_FILE",
                        format!(
                            "cannot read the secret file {}: {e}; check the path and its permissions",
                            path.display()
                        ),
                    )
                })?;
                Secret::new("PULSE_DRAIN_SECRET_FILE", text)
            }
            SecretSource::Factory(f) => {
                let value = f().await.map_err(|e| Error::Unavailable {
                    what: "the drain secret factory".into(),
                    message: format!("it failed: {e}"),
                })?;
                Secret::new("drain secret (factory)", value)
            }
        }
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Static(_) => f.write_str("SecretSource::Static(***)"),
            SecretSource::File(p) => write!(f, "SecretSource::File({})", p.display()),
            SecretSource::Factory(_) => f.write_str("SecretSource::Factory(..)"),
        }
    }
}

/// The current secret, re-read from its source every `refresh` and, when a presented token does not match,
/// at most once per `min_reload` (so a rotation is seen at once while an attacker cannot make it call the
/// source more than once a second).
pub(crate) struct SecretStore {
    source: SecretSource,
    current: RwLock<(Secret, Instant)>,
    reload: Mutex<()>,
    refresh: Duration,
    min_reload: Duration,
}

impl SecretStore {
    /// Loads the secret once; fails (at startup) if it is missing, empty or short.
    pub(crate) async fn start(source: SecretSource, refresh: Duration) -> Result<Self> {
        let secret = source.load().await?;
        Ok(SecretStore {
            source,
            current: RwLock::new((secret, Instant::now())),
            reload: Mutex::new(()),
            refresh,
            min_reload: Duration::from_secs(1),
        })
    }

    /// Re-reads the secret if the cached one is older than `max_age`. Keeps the old one if the source fails.
    async fn reload_if_older(&self, max_age: Duration) {
        let _one_at_a_time = self.reload.lock().await;
        if self.current.read().await.1.elapsed() < max_age {
            return;
        }
        match self.source.load().await {
            Ok(secret) => *self.current.write().await = (secret, Instant::now()),
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh the drain secret; keeping the previous one");
                self.current.write().await.1 = Instant::now();
            }
        }
    }

    /// Whether `candidate` is the cached secret (constant-time comparison), without reading the source:
    /// for a throttled peer, which must not make the server call the source.
    pub(crate) async fn verify_cached(&self, candidate: &[u8]) -> bool {
        self.current.read().await.0.matches(candidate)
    }

    /// Whether `candidate` is the current secret (constant-time comparison).
    pub(crate) async fn verify(&self, candidate: &[u8]) -> bool {
        if self.current.read().await.1.elapsed() >= self.refresh {
            self.reload_if_older(self.refresh).await;
        }
        if self.current.read().await.0.matches(candidate) {
            return true;
        }
        if matches!(self.source, SecretSource::Static(_)) {
            return false;
        }
        self.reload_if_older(self.min_reload).await;
        self.current.read().await.0.matches(candidate)
    }
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore").field("source", &self.source).field("refresh", &self.refresh).finish()
    }
}
