//! Offline validation of the configuration with `envoy --mode validate`: the bootstrap Envoy runs with, and
//! a self-contained copy with the current clusters and routes inlined (validation mode reads no xDS file).

use std::fs;
use std::path::Path;

use pulse_deploy_core::{Error, Result};

use super::apply::input;
use super::EnvoyRouter;
use crate::envoy::config;
use crate::envoy::xds::{write_atomic, Durability};

impl EnvoyRouter {
    /// Checks the current configuration offline with `envoy --mode validate`: the bootstrap Envoy runs
    /// with, and a self-contained copy with the current clusters and routes inlined.
    pub async fn validate_config(&self) -> Result<()> {
        let state = self.load_state()?;
        self.write_bootstrap(&state)?;
        validate_file(&self.binary, &self.files.process.bootstrap).await?;
        let inline = config::validation_bootstrap(state.listener, state.admin, input(&state), &self.settings);
        let path = self.state_dir.join("validate-inline.json");
        write_atomic(&path, &inline, Durability::Volatile)?;
        let result = validate_file(&self.binary, &path).await;
        let _ = fs::remove_file(&path);
        result
    }
}

async fn validate_file(binary: &Path, file: &Path) -> Result<()> {
    let out = tokio::process::Command::new(binary)
        .args(["--mode", "validate", "--disable-hot-restart", "--log-level", "error", "-c"])
        .arg(file)
        .output()
        .await
        .map_err(|e| Error::provider_source("envoy", format!("cannot run {}", binary.display()), false, e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::provider(
            "envoy",
            format!(
                "envoy --mode validate rejected {}: {}{}",
                file.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            false,
        ))
    }
}
