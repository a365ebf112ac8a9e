//! The error type of the core and of every provider.
//!
//! Errors are semantic (what went wrong, from the caller's point of view) and classified: the rollout
//! executor retries only errors for which [`Error::is_retryable`] is true. Messages say what to do next.

use std::time::Duration;

/// A boxed error from a provider's SDK or transport, kept as the `source()` of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with the core's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in pulse-deploy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value given by the user is invalid. Raised before any provider call.
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The field (as the user spells it, e.g. `release.replicas`).
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The thing asked for does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `version v3 of app shop`.
        what: String,
    },
    /// The request conflicts with the current state (e.g. another deploy owns the app).
    #[error("conflict: {message}")]
    Conflict {
        /// What conflicts and what to do about it.
        message: String,
    },
    /// A dependency is temporarily unavailable; retrying later may succeed.
    #[error("{what} is unavailable: {message}")]
    Unavailable {
        /// What could not be reached.
        what: String,
        /// Why, and what the user can check.
        message: String,
    },
    /// An operation did not finish within its deadline.
    #[error("{what} timed out after {}", humantime::format_duration(*after))]
    Timeout {
        /// What timed out.
        what: String,
        /// After how long.
        after: Duration,
    },
    /// A credential was refused.
    #[error("{what}: unauthorized ({message})")]
    Unauthorized {
        /// Who refused.
        what: String,
        /// What to check.
        message: String,
    },
    /// A new version failed (e.g. never became healthy) and was rolled back: the previous version keeps
    /// all new sessions.
    #[error("version {version} was rolled back: {reason}")]
    RolledBack {
        /// The failed version.
        version: String,
        /// Why it failed.
        reason: String,
    },
    /// An error from a provider's SDK or transport.
    #[error("{provider}: {message}")]
    Provider {
        /// The provider, e.g. `docker`, `envoy`, `ecs`, `alb`, `memory`.
        provider: &'static str,
        /// What the provider was doing when it failed.
        message: String,
        /// Whether retrying the same call may succeed.
        retryable: bool,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidInput { field, message: message.into() }
    }

    /// Shorthand for a [`Error::Provider`] error.
    pub fn provider(provider: &'static str, message: impl Into<String>, retryable: bool) -> Self {
        Error::Provider { provider, message: message.into(), retryable, source: None }
    }

    /// Shorthand for a [`Error::Provider`] error with a source.
    pub fn provider_source(
        provider: &'static str,
        message: impl Into<String>,
        retryable: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Provider { provider, message: message.into(), retryable, source: Some(source.into()) }
    }

    /// Whether retrying the failed operation may succeed. The executor retries only these errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unavailable { .. } | Error::Timeout { .. } => true,
            Error::Provider { retryable, .. } => *retryable,
            Error::InvalidInput { .. }
            | Error::NotFound { .. }
            | Error::Conflict { .. }
            | Error::Unauthorized { .. }
            | Error::RolledBack { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(Error::provider("docker", "daemon busy", true).is_retryable());
        assert!(!Error::provider("docker", "bad image", false).is_retryable());
        assert!(!Error::invalid("release.port", "must be 1..=65535").is_retryable());
        assert!(Error::Timeout { what: "x".into(), after: Duration::from_secs(1) }.is_retryable());
    }

    #[test]
    fn message_names_field() {
        let e = Error::invalid("release.replicas", "must be at least 1; set replicas = 1 or more");
        assert_eq!(e.to_string(), "invalid release.replicas: must be at least 1; set replicas = 1 or more");
    }
}
