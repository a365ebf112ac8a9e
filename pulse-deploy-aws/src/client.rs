//! How the providers reach AWS: one [`AwsConfig`] shared by the ECS, ELBv2 and Secrets Manager clients.
//!
//! [`AwsConfig::from_env`] uses the standard AWS chain (environment variables, profile, container and
//! instance roles) for a deployer on a laptop, in CI or in ECS. [`AwsConfig::builder`] with
//! [`AwsConfigBuilder::endpoint_url`] and [`AwsConfigBuilder::static_credentials`] points every client at an
//! API-compatible endpoint (an emulator such as moto or LocalStack) without reading any AWS profile or
//! environment credentials: tests use only this path.
//!
//! TLS is rustls with the `ring` crypto provider (the lightest to build); the SDK's own retries are off,
//! since [`crate::retry`] retries with the core's error classification under one overall deadline.
//!
//! Not for: which resources are used (see [`crate::ecs::EcsConfig`] and [`crate::alb::AlbConfig`]).

use std::fmt;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::retry::RetryConfig;
use pulse_deploy_core::{Error, Result};

/// The region used when nothing else names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The SDK configuration every client of this crate is built from.
#[derive(Clone)]
pub struct AwsConfig {
    sdk: SdkConfig,
    endpoint_url: Option<String>,
}

impl fmt::Debug for AwsConfig {
    // Credentials never reach a Debug impl: only the region and the endpoint are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsConfig")
            .field("region", &self.sdk.region().map(|r| r.as_ref().to_owned()))
            .field("endpoint_url", &self.endpoint_url)
            .finish_non_exhaustive()
    }
}

/// The HTTPS client every configuration uses unless told otherwise: rustls with `ring`.
pub fn default_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https()
}

impl AwsConfig {
    /// The standard AWS configuration chain: `AWS_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
    /// `AWS_PROFILE`, the ECS task role, the EC2 instance role. `AWS_ENDPOINT_URL` is honoured as by every
    /// AWS SDK.
    pub async fn from_env() -> Self {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(default_http_client())
            .retry_config(RetryConfig::disabled())
            .load()
            .await;
        AwsConfig { endpoint_url: sdk.endpoint_url().map(str::to_owned), sdk }
    }

    /// A configuration built from explicit values only (no profile, no environment).
    pub fn builder() -> AwsConfigBuilder {
        AwsConfigBuilder::default()
    }

    /// The endpoint every client uses instead of AWS's, if one was set.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    /// The region.
    pub fn region(&self) -> Option<&str> {
        self.sdk.region().map(|r| r.as_ref())
    }

    /// The ECS client.
    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.sdk)
    }

    /// The Elastic Load Balancing v2 client.
    pub fn elbv2(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::new(&self.sdk)
    }

    /// The Secrets Manager client.
    pub fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk)
    }

    /// The underlying SDK configuration (to add interceptors or build other clients).
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk
    }
}

/// Builds an [`AwsConfig`] from explicit values. `build` fails, naming the field, when the credentials are
/// missing: an explicit configuration never falls back to the developer's AWS profile.
#[derive(Default)]
pub struct AwsConfigBuilder {
    region: Option<String>,
    endpoint_url: Option<String>,
    credentials: Option<Credentials>,
    http_client: Option<SharedHttpClient>,
}

impl fmt::Debug for AwsConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsConfigBuilder")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("credentials", &self.credentials.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl AwsConfigBuilder {
    /// The region (default `us-east-1`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sends every call to this endpoint (e.g. `http://127.0.0.1:PORT` for moto).
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Fixed credentials (an emulator takes any; real AWS takes an access key pair).
    pub fn static_credentials(mut self, access_key_id: &str, secret_access_key: &str) -> Self {
        self.credentials =
            Some(Credentials::new(access_key_id, secret_access_key, None, None, "pulse-deploy"));
        self
    }

    /// Another HTTP client (a proxy, a metrics or fault-injection layer around [`default_http_client`]).
    pub fn http_client(mut self, client: SharedHttpClient) -> Self {
        self.http_client = Some(client);
        self
    }

    /// The configuration, or an error naming what is missing.
    pub fn build(self) -> Result<AwsConfig> {
        let credentials = self.credentials.ok_or_else(|| {
            Error::invalid(
                "aws.credentials",
                "an explicit AWS configuration needs static credentials (`static_credentials`); use \
                 `AwsConfig::from_env()` for the standard AWS chain",
            )
        })?;
        if let Some(url) = &self.endpoint_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Error::invalid(
                    "aws.endpoint_url",
                    format!("`{url}` must start with http:// or https://, e.g. http://127.0.0.1:5000"),
                ));
            }
        }
        let region = self.region.unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let mut sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(credentials))
            .retry_config(RetryConfig::disabled())
            .http_client(self.http_client.unwrap_or_else(default_http_client));
        if let Some(url) = &self.endpoint_url {
            sdk = sdk.endpoint_url(url.clone());
        }
        Ok(AwsConfig { sdk: sdk.build(), endpoint_url: self.endpoint_url })
    }
}
