//! The tags pulse-deploy puts on every AWS resource it creates, so that a deployer started on an empty
//! machine recovers the whole state from AWS: which app and version a resource belongs to, its phase,
//! and a hash of the release (the release itself is stored in the task definition, see
//! [`crate::ecs::task_definition`]).
//!
//! Not for: tag limits (see [`crate::limits::validate_tags`]).

use std::collections::BTreeMap;

use pulse_deploy_core::{AppName, Release, Result, VersionId};
use ring::digest;

use crate::limits::validate_tags;

/// The app a resource belongs to (the deployer's IAM policy is scoped by it).
pub const TAG_APP: &str = "pulse-deploy:app";
/// The version a resource belongs to.
pub const TAG_VERSION: &str = "pulse-deploy:version";
/// When the version was first created, in milliseconds since the Unix epoch: durable, and finer than
/// some APIs' `createdAt` (versions created within a second keep their order).
pub const TAG_CREATED_AT: &str = "pulse-deploy:created-at";
/// `live` or `retiring`: set to `retiring` (durably) by `retire` before anything is stopped.
pub const TAG_PHASE: &str = "pulse-deploy:phase";
/// The SHA-256 of the release's canonical JSON: tells an identical release from another one under the
/// same version id.
pub const TAG_RELEASE_HASH: &str = "pulse-deploy:release-hash";
/// What a listener rule routes (`cookie`, `header`, `query`) or `split` for an app's catch-all rule.
pub const TAG_ROLE: &str = "pulse-deploy:role";
/// The affinity mode of a version's target group (`cookie`, `key`, `cookie_and_key`).
pub const TAG_AFFINITY: &str = "pulse-deploy:affinity";

/// [`TAG_PHASE`] of a version that takes or may take sessions.
pub const PHASE_LIVE: &str = "live";
/// [`TAG_PHASE`] of a version on its way out.
pub const PHASE_RETIRING: &str = "retiring";

/// The hex SHA-256 of a release's canonical JSON (its fields in a fixed order, env sorted).
pub fn release_hash(release: &Release) -> String {
    let json = serde_json::to_vec(release).expect("a release serialises");
    digest::digest(&digest::SHA256, &json).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The tags of one version's resource: app, version, phase, and (if given) the release hash; checked
/// against AWS's tag limits.
pub fn version_tags(
    app: &AppName,
    version: &VersionId,
    phase: &str,
    release: Option<&Release>,
) -> Result<BTreeMap<String, String>> {
    let mut tags = BTreeMap::from([
        (TAG_APP.to_owned(), app.to_string()),
        (TAG_VERSION.to_owned(), version.to_string()),
        (TAG_PHASE.to_owned(), phase.to_owned()),
    ]);
    if let Some(release) = release {
        tags.insert(TAG_RELEASE_HASH.to_owned(), release_hash(release));
    }
    validate_tags(&tags)?;
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_tells_releases_apart_and_fits_a_tag() {
        let a = Release::builder("shop", "v1", "shop:1").build().unwrap();
        let b = Release::builder("shop", "v1", "shop:1").env("K", "v").build().unwrap();
        assert_eq!(release_hash(&a), release_hash(&a.clone()));
        assert_ne!(release_hash(&a), release_hash(&b));
        assert_eq!(release_hash(&a).len(), 64);
        let tags = version_tags(&a.app, &a.version, PHASE_LIVE, Some(&a)).unwrap();
        assert_eq!(tags[TAG_PHASE], "live");
        assert_eq!(tags.len(), 4);
    }
}
