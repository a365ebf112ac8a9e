//! `deploy` while a controller (`pulse-deploy watch`) holds the app's lease: the one-writer hand-off. The
//! release is handed over through the orchestrator alone: the new version is created, and the controller
//! (which takes a version deployed after its primary as its target, see `docs/architecture.md`, "One
//! writer") attaches it, shifts new sessions to it, drains and reaps the old ones. This command never sets
//! weights or drains; it follows the controller's progress, read from the providers, and says so.

use pulse_deploy_core::rollout::AppStatus;
use pulse_deploy_core::{Release, VersionPhase};

use super::{executor, exit, rollout, same, say, Failure};
use crate::config::Config;
use crate::provider::Connected;
use crate::table;

/// Hands `release` to the controller and waits until it has every new session (with `settle`, until it is
/// the only version left). Ctrl-C stops following; the controller goes on.
pub(super) async fn deploy(
    config: &Config,
    provider: &Connected,
    release: &Release,
    holder: &str,
    settle: bool,
) -> Result<u8, Failure> {
    let version = &release.version;
    say(format!(
        "{holder} runs for {}: handing {version} over to it (this command only follows)",
        config.app
    ));
    provider.providers.orchestrator.deploy(release).await.map_err(rollout)?;
    say(format!("→ created {version} ({}); the controller takes it from here", release.image));
    let exec = executor(config, provider, None, &super::plain());
    let deadline =
        tokio::time::Instant::now() + config.policy.health_timeout * 2 + config.policy.poll_interval * 10;
    let mut last: Option<AppStatus> = None;
    loop {
        let status = exec.status(&config.app).await.map_err(rollout)?;
        let done = {
            let ours = status.version(version);
            let shifted = status.target.as_ref() == Some(version) && ours.is_some_and(|v| v.weight == 100);
            shifted && (!settle || status.versions.len() == 1)
        };
        if last.as_ref().is_none_or(|l| !same(l, &status)) {
            if let Some(v) = status.version(version) {
                say(format!(
                    "… {version}: {:?}, {} of {} instances healthy, weight {}%",
                    v.phase, v.healthy, v.replicas, v.weight
                ));
            }
            if status.version(version).is_some_and(|v| v.phase == VersionPhase::Failed) {
                say(table::render(&status));
                return Err(Failure::new(
                    exit::FAILED,
                    format!("{version} failed its health checks; the controller rolls it back"),
                ));
            }
        }
        if done {
            say(table::render(&status));
            say(format!("✓ {version} has every new session (the controller drains and reaps the rest)"));
            return Ok(exit::OK);
        }
        last = Some(status);
        tokio::select! {
            _ = tokio::time::sleep(config.policy.poll_interval) => {}
            _ = tokio::signal::ctrl_c() => {
                say(format!("stopped following; the controller goes on with {version} (`pulse-deploy status` shows it)"));
                return Ok(exit::STOPPED);
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Failure::new(
                exit::FAILED,
                format!(
                    "the controller has not given {version} every new session yet; is it healthy? (`pulse-deploy status`, the controller's output)"
                ),
            ));
        }
    }
}
