//! Driving the `pulse-deployer` binary from a test: start a deploy as a separate process on the rig's state
//! directories, read the actions it starts (one stdout line each), SIGKILL it at a chosen action, or let
//! it finish. The deployer's stderr goes to the test's stderr.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use pulse_deploy_core::Release;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::rig::{Rig, HEALTH_CHECK_INTERVAL};

/// The prefix of the line the deployer prints when an action starts.
pub const ACTION_PREFIX: &str = "action: ";

/// A running deployer process. Dropping it kills the process.
pub struct DeployerProcess {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// The actions it started so far, in order.
    pub actions: Vec<String>,
}

/// How a deployer run ended when a test waited for an action.
#[derive(Debug)]
pub enum Reached {
    /// The process started the awaited action (it still runs).
    Action(String),
    /// The process exited before starting it.
    Exited(ExitStatus),
}

impl DeployerProcess {
    /// Starts `bin deploy` for `release` on the rig's state directories and secret file.
    pub fn deploy(bin: &Path, rig: &Rig, release: &Release) -> DeployerProcess {
        let mut cmd = Command::new(bin);
        cmd.arg("deploy")
            .args(["--app", release.app.as_str(), "--version", release.version.as_str()])
            .args(["--image", &release.image])
            .arg("--state-dir")
            .arg(&rig.dir)
            .arg("--secret-file")
            .arg(&rig.secret_file)
            .args(["--replicas", &release.replicas.to_string(), "--port", &release.port.to_string()])
            .args(["--health-path", &release.health_path])
            .args(["--drain-deadline", &humantime::format_duration(release.drain_deadline).to_string()])
            .args(["--stop-grace", &humantime::format_duration(release.stop_grace).to_string()])
            .args(["--health-check-interval", &humantime::format_duration(HEALTH_CHECK_INTERVAL).to_string()])
            .args(["--poll", &humantime::format_duration(rig.policy.poll_interval).to_string()]);
        for (k, v) in &release.env {
            cmd.args(["--env", &format!("{k}={v}")]);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        DeployerProcess { child, lines: BufReader::new(stdout).lines(), actions: Vec::new() }
    }

    /// Reads the deployer's output until it has started `k` actions in all (counting from its start),
    /// or until it exits; fails the test after `timeout`.
    pub async fn until_action(&mut self, k: usize, timeout: Duration) -> Reached {
        let read = async {
            while self.actions.len() < k {
                match self.lines.next_line().await {
                    Ok(Some(line)) => {
                        if let Some(action) = line.strip_prefix(ACTION_PREFIX) {
                            self.actions.push(action.to_owned());
                        }
                    }
                    Ok(None) | Err(_) => {
                        let status = self.child.wait().await.expect("waiting for the deployer");
                        return Reached::Exited(status);
                    }
                }
            }
            Reached::Action(self.actions[k - 1].clone())
        };
        tokio::time::timeout(timeout, read).await.unwrap_or_else(|_| {
            panic!("the deployer neither started action {k} nor exited within {timeout:?}")
        })
    }

    /// SIGKILLs the process and waits for it to be gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL the deployer");
    }
}

impl std::fmt::Debug for DeployerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployerProcess").finish_non_exhaustive()
    }
}
