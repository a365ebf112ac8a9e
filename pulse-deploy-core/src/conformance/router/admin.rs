//! The router check that admin paths (`/_pulse/admin/...`, however encoded) are never routed from the
//! public side, and the probes it sends.

use super::harness::{AffinityCarrier, Probe, Reply, RouterHarness};
use super::support::*;
use crate::affinity::ADMIN_PATH_PREFIX;
use crate::conformance::report::{CheckResult, Verdict};
use crate::conformance::wait::ensure;
use crate::{TrafficRouter, Weights};

/// Request paths that reach an admin endpoint on a server that normalizes paths (dot segments, repeated
/// slashes, percent-encoding): a router must refuse every one of them on its public side.
pub fn admin_path_probes() -> Vec<String> {
    vec![
        format!("{ADMIN_PATH_PREFIX}/drain"),
        format!("{ADMIN_PATH_PREFIX}/status"),
        format!("{ADMIN_PATH_PREFIX}/"),
        ADMIN_PATH_PREFIX.to_string(),
        format!("{ADMIN_PATH_PREFIX}/drain?x=1"),
        "/_pulse/admin/../admin/drain".to_string(),
        "/_pulse/./admin/status".to_string(),
        "/_pulse//admin/drain".to_string(),
        "//_pulse/admin/drain".to_string(),
        "/_pulse/admin%2fdrain".to_string(),
        "/_pulse%2Fadmin/drain".to_string(),
        "/%5fpulse/admin/status".to_string(),
    ]
}

/// Requests for admin paths from the public side never reach an upstream, whatever the affinity.
pub async fn admin_paths_are_not_routed(
    router: &dyn TrafficRouter,
    harness: &dyn RouterHarness,
) -> CheckResult {
    if !harness.can_send_requests() {
        return requests_skipped();
    }
    in_fresh_app(router, harness, |app| async move {
        let v1 = v("v1");
        spawn_and_attach(router, harness, &app, &v1, 1).await?;
        wait_healthy(router, harness, &app, &v1).await?;
        router.set_weights(&app, &Weights::all_to(v1.clone())).await?;
        wait_landing(harness, &app, &Probe::new(), "a plain request to land on v1", 3, landed_on(&v1))
            .await?;
        for path in admin_path_probes() {
            for probe in [
                Probe::new().path(path.clone()),
                Probe::new().path(path.clone()).affinity(AffinityCarrier::Key, v1.clone()),
            ] {
                let reply = harness.request(&app, &probe).await?;
                ensure!(!matches!(reply, Reply::Landed(_)), "{probe:?} reached an upstream: {reply:?}");
            }
        }
        Ok(Verdict::Passed)
    })
    .await
}
