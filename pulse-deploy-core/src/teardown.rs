//! Tearing an app down through the traits, written once: the router lets go of the app (weights emptied,
//! every version detached), then every version is retired until the orchestrator lists none.
//!
//! For tools and tests that remove an app on purpose (the conformance suites after each check, the e2e and
//! fault tests after a run, a user removing an app). It is not a rollout: sessions still open are cut off
//! by the instances' graceful shutdown. Each step is idempotent, so a teardown interrupted half-way is
//! finished by running it again.

use std::time::Duration;

use tokio::time::Instant;

use crate::{AppName, Error, Orchestrator, Result, TrafficRouter, Weights};

/// How often [`tear_down`] asks the orchestrator again while versions are still listed.
const POLL: Duration = Duration::from_millis(100);

/// Takes `app` out of `router` (if given) and retires all its versions on `orchestrator` (if given),
/// waiting up to `timeout` until none is listed. The error names the versions still present.
pub async fn tear_down(
    orchestrator: Option<&dyn Orchestrator>,
    router: Option<&dyn TrafficRouter>,
    app: &AppName,
    timeout: Duration,
) -> Result<()> {
    if let Some(router) = router {
        let routing = router.routing(app).await?;
        if !routing.weights.is_empty() {
            router.set_weights(app, &Weights::default()).await?;
        }
        for version in routing.versions.keys() {
            router.detach(app, version).await?;
        }
    }
    let Some(orchestrator) = orchestrator else { return Ok(()) };
    let deadline = Instant::now() + timeout;
    loop {
        let versions = orchestrator.versions(app).await?;
        if versions.is_empty() {
            return Ok(());
        }
        for state in &versions {
            orchestrator.retire(app, state.version()).await?;
        }
        if Instant::now() >= deadline {
            let left: Vec<String> = versions.iter().map(|s| s.version().to_string()).collect();
            return Err(Error::Timeout {
                what: format!("tearing down {app}: versions {} still listed", left.join(", ")),
                after: timeout,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}
