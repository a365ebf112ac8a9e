//! Bringing Envoy to a routing state through the xDS files, in the safe order (see the router's module
//! docs), and waiting — polling Envoy's admin interface against a deadline — until each step is applied.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pulse_deploy_core::{Error, Result};
use serde_json::Value;

use super::EnvoyRouter;
use crate::envoy::config::{self, RoutingInput};
use crate::envoy::state::PersistedState;

impl EnvoyRouter {
    /// Brings the xDS files (and so Envoy) to `state` in the safe order, waiting for each step to apply.
    pub(super) async fn apply(&self, state: &PersistedState) -> Result<()> {
        let wanted = config::clusters(input(state), &self.settings);
        let current = self.xds.read_cds();
        let wanted_names: BTreeSet<String> = wanted.iter().filter_map(name_of).collect();
        let mut union = wanted.clone();
        union.extend(
            current.iter().filter(|c| name_of(c).is_some_and(|n| !wanted_names.contains(&n))).cloned(),
        );
        union.sort_by_key(name_of);
        if union != current {
            let version = version_info(state);
            self.xds.write_cds(&version, union.clone())?;
            self.wait_cds(&version, &current, &union).await?;
        }
        let routes = vec![config::route_configuration(input(state), &self.settings)];
        if routes != self.xds.read_rds() {
            let version = version_info(state);
            self.xds.write_rds(&version, routes)?;
            self.wait_applied(self.xds.rds_path(), &version, || async {
                Ok(self.admin.applied_routes().await?.as_deref() == Some(version.as_str()))
            })
            .await?;
        }
        if wanted != union {
            let version = version_info(state);
            self.xds.write_cds(&version, wanted.clone())?;
            self.wait_cds(&version, &union, &wanted).await?;
        }
        Ok(())
    }

    /// Waits until Envoy serves exactly the clusters in `now`, those changed since `before` at `version`,
    /// and none is warming.
    async fn wait_cds(&self, version: &str, before: &[Value], now: &[Value]) -> Result<()> {
        let names: BTreeSet<String> = now.iter().filter_map(name_of).collect();
        let changed: BTreeSet<String> =
            now.iter().filter(|c| !before.contains(c)).filter_map(name_of).collect();
        self.wait_applied(self.xds.cds_path(), version, || async {
            let a = self.admin.applied_clusters().await?;
            Ok(a.warming_clusters.is_empty()
                && a.active_clusters.keys().cloned().collect::<BTreeSet<_>>() == names
                && changed.iter().all(|n| a.active_clusters.get(n).map(String::as_str) == Some(version)))
        })
        .await
    }

    async fn wait_applied<F, Fut>(&self, file: &Path, version: &str, done: F) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let deadline = Instant::now() + self.apply_timeout;
        let mut pause = Duration::from_micros(500);
        loop {
            match done().await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "reading Envoy's applied config"),
            }
            if Instant::now() >= deadline {
                return Err(Error::provider(
                    "envoy",
                    format!(
                        "Envoy did not apply {} (version {version}) within {:?}; it may have rejected it — last \
                         lines of {}:\n{}",
                        file.display(),
                        self.apply_timeout,
                        self.files.process.log.display(),
                        self.files.process.log_tail(10)
                    ),
                    true,
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }
}

/// The configuration generator's view of a persisted state.
pub(super) fn input(state: &PersistedState) -> RoutingInput<'_> {
    RoutingInput { default_app: state.effective_default_app(), apps: &state.apps }
}

fn name_of(resource: &Value) -> Option<String> {
    resource["name"].as_str().map(str::to_owned)
}

/// A `version_info` unique to this write: the generation plus the time in nanoseconds.
pub(super) fn version_info(state: &PersistedState) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{}-{nanos}", state.generation)
}
