//! Keeping one Envoy running for the state directory: adopting the one that serves it, starting it again
//! from the files when it is gone, waiting until it is ready, stopping it.

use std::fs;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use pulse_deploy_core::{Error, Result};

use super::apply::{input, version_info};
use super::EnvoyRouter;
use crate::envoy::config;
use crate::envoy::process;
use crate::envoy::state::PersistedState;
use crate::envoy::xds::{write_atomic, Durability};

impl EnvoyRouter {
    pub(super) fn write_bootstrap(&self, state: &PersistedState) -> Result<()> {
        let bootstrap = config::bootstrap(state.listener, state.admin, self.xds.paths(), "pulse-deploy");
        write_atomic(&self.files.process.bootstrap, &bootstrap, Durability::Volatile)
    }

    /// True when the Envoy answering on our admin port was started with our bootstrap. Fast path (Linux):
    /// the recorded pid runs our bootstrap and the admin port answers `/ready`; otherwise Envoy's
    /// `/server_info` (a 120 kB page) must name our bootstrap.
    pub(super) async fn ours_is_answering(&self) -> bool {
        let bootstrap = &self.files.process.bootstrap;
        if let Some(pid) = self.files.process.read_pid() {
            if process::runs_bootstrap_verified(pid, bootstrap) {
                return self.admin.is_ready().await;
            }
        }
        let want = bootstrap.display().to_string();
        matches!(self.admin.config_path().await, Ok(p) if p == want)
    }

    pub(super) async fn ensure_running_locked(&self, state: &PersistedState) -> Result<()> {
        if self.ours_is_answering().await {
            return Ok(());
        }
        // Started but not answering yet (e.g. by a deployer that died right after spawning it)?
        if let Some(pid) = self.files.process.read_pid() {
            if process::runs_bootstrap(pid, &self.files.process.bootstrap) {
                if self.wait_ready(Some(pid)).await.is_ok() {
                    return Ok(());
                }
                tracing::warn!(pid, "Envoy of this state directory does not answer; restarting it");
                self.kill(pid).await;
            }
        }
        // Start from the files: write them straight from the state (nothing serves them yet).
        self.write_bootstrap(state)?;
        let version = version_info(state);
        self.xds.write_cds(&version, config::clusters(input(state), &self.settings))?;
        self.xds.write_rds(&version, vec![config::route_configuration(input(state), &self.settings)])?;
        let pid = process::start(&self.binary, &self.files.process, &self.start)?;
        self.wait_ready(Some(pid)).await
    }

    pub(super) async fn wait_ready(&self, pid: Option<u32>) -> Result<()> {
        let deadline = Instant::now() + self.start_timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            if self.ours_is_answering().await {
                return Ok(());
            }
            if let Some(pid) = pid {
                if !process::is_alive(pid) {
                    return Err(Error::provider(
                        "envoy",
                        format!(
                            "Envoy (pid {pid}) exited while starting; is port {} or {} in use? last lines of {}:\n{}",
                            self.listener.port(),
                            self.admin.addr().port(),
                            self.files.process.log.display(),
                            self.files.process.log_tail(15)
                        ),
                        true,
                    ));
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout { what: "Envoy start".into(), after: self.start_timeout });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    pub(super) async fn kill(&self, pid: u32) {
        process::signal(pid, Signal::SIGTERM);
        if !process::wait_gone(pid, Duration::from_secs(5)).await {
            process::signal(pid, Signal::SIGKILL);
            process::wait_gone(pid, Duration::from_secs(5)).await;
        }
    }

    pub(super) async fn stop_locked(&self) -> Result<()> {
        let pid = self.files.process.read_pid();
        if self.ours_is_answering().await {
            let _ = self.admin.quit().await;
            if let Some(pid) = pid {
                if !process::wait_gone(pid, Duration::from_secs(10)).await {
                    self.kill(pid).await;
                }
            }
        } else if let Some(pid) = pid.filter(|p| process::runs_bootstrap(*p, &self.files.process.bootstrap)) {
            self.kill(pid).await;
        }
        // Make sure the admin port is free of our Envoy before reporting success.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.ours_is_answering().await {
            if Instant::now() >= deadline {
                return Err(Error::Timeout { what: "Envoy stop".into(), after: Duration::from_secs(10) });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = fs::remove_file(&self.files.process.pid);
        tracing::info!(state_dir = %self.state_dir.display(), "stopped Envoy");
        Ok(())
    }
}
