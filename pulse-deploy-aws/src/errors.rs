//! SDK errors mapped to the core's error kinds, so the rollout executor retries exactly what may succeed
//! on a retry: throttling, HTTP 5xx, timeouts and dropped connections are retryable; validation errors,
//! missing resources and refused credentials are not.
//!
//! Not for: retrying itself (see [`crate::retry`]).

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use pulse_deploy_core::Error;

/// Error codes AWS services use for throttling (ECS, ELBv2 and Secrets Manager among them).
pub const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "PriorityInUse",
];

/// Error codes of refused credentials or permissions.
pub const UNAUTHORIZED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
];

/// What went wrong in one call, in terms the engine acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retrying the same call later may succeed.
    Retryable,
    /// The credentials or the IAM policy refused the call.
    Unauthorized,
    /// The call itself is wrong or conflicts with the state: retrying changes nothing.
    Permanent,
}

/// Classifies an error from its HTTP status and AWS error code.
pub fn classify(status: Option<u16>, code: Option<&str>) -> ErrorClass {
    if code.is_some_and(|c| THROTTLING_CODES.contains(&c)) {
        return ErrorClass::Retryable;
    }
    if code.is_some_and(|c| UNAUTHORIZED_CODES.contains(&c)) || status == Some(401) || status == Some(403) {
        return ErrorClass::Unauthorized;
    }
    match status {
        Some(429) => ErrorClass::Retryable,
        Some(s) if s >= 500 => ErrorClass::Retryable,
        _ => ErrorClass::Permanent,
    }
}

/// The AWS error code of an SDK error, if the service answered with one.
pub fn error_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<String> {
    err.code().map(str::to_owned)
}

/// Maps an SDK error of `provider` (`ecs`, `alb`, `secretsmanager`) while `doing` something to the
/// core's [`Error`], keeping the SDK error as its source.
pub fn map_sdk_error<E>(provider: &'static str, doing: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (status, code, message) = match &err {
        SdkError::ServiceError(service) => (
            Some(service.raw().status().as_u16()),
            err.code().map(str::to_owned),
            err.message().unwrap_or_default().to_owned(),
        ),
        SdkError::TimeoutError(_) => {
            return Error::provider_source(provider, format!("{doing}: the call timed out"), true, err)
        }
        SdkError::DispatchFailure(_) => {
            return Error::provider_source(
                provider,
                format!("{doing}: could not reach the endpoint (check the network and AWS_ENDPOINT_URL)"),
                true,
                err,
            )
        }
        SdkError::ResponseError(_) => {
            return Error::provider_source(provider, format!("{doing}: unreadable response"), true, err)
        }
        _ => return Error::provider_source(provider, format!("{doing}: {err}"), false, err),
    };
    let code_text = code.as_deref().unwrap_or("unknown error");
    match classify(status, code.as_deref()) {
        ErrorClass::Unauthorized => Error::Unauthorized {
            what: format!("{provider} ({doing})"),
            message: format!(
                "{code_text}: {message}; check the credentials and that the deployer's IAM policy \
                 (terraform output `deployer_policy_arn`) is attached"
            ),
        },
        ErrorClass::Retryable => Error::provider_source(
            provider,
            format!("{doing}: {code_text} (HTTP {}): {message}", status.unwrap_or(0)),
            true,
            err,
        ),
        ErrorClass::Permanent => Error::provider_source(
            provider,
            format!("{doing}: {code_text} (HTTP {}): {message}", status.unwrap_or(0)),
            false,
            err,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_5xx_are_retryable_validation_is_not() {
        assert_eq!(classify(Some(400), Some("ThrottlingException")), ErrorClass::Retryable);
        assert_eq!(classify(Some(400), Some("Throttling")), ErrorClass::Retryable);
        assert_eq!(classify(Some(503), None), ErrorClass::Retryable);
        assert_eq!(classify(Some(500), Some("InternalFailure")), ErrorClass::Retryable);
        assert_eq!(classify(Some(429), None), ErrorClass::Retryable);
        assert_eq!(classify(Some(400), Some("ValidationError")), ErrorClass::Permanent);
        assert_eq!(classify(Some(400), Some("InvalidParameterException")), ErrorClass::Permanent);
        assert_eq!(classify(Some(400), Some("TargetGroupNotFound")), ErrorClass::Permanent);
        assert_eq!(classify(Some(403), Some("AccessDenied")), ErrorClass::Unauthorized);
        assert_eq!(classify(Some(400), Some("ExpiredToken")), ErrorClass::Unauthorized);
    }
}
