//! The AWS resource names derived from an app and a version: `pulse-{app}-{version}` for the per-version
//! target group and ECS service, `pulse-{app}` for the task definition family's prefix.
//!
//! The core's [`AppName`] and [`VersionId`] limits are chosen so that the derived names always fit the
//! tightest AWS limit, an ALB target group name (at most 32 characters); [`target_group_name`] still checks
//! it, so a change of those limits cannot produce a name AWS would reject.
//!
//! Not for: tags (see [`crate::limits::validate_tags`]).

use pulse_deploy_core::{AppName, Error, Result, VersionId};

/// Prefix of every name pulse-deploy creates on AWS (the deployer's IAM policy is scoped to it).
pub const NAME_PREFIX: &str = "pulse-";

/// The longest ALB target group name AWS accepts.
pub const MAX_TARGET_GROUP_NAME_LEN: usize = 32;

/// The longest ECS service name AWS accepts.
pub const MAX_SERVICE_NAME_LEN: usize = 255;

/// The per-version name `pulse-{app}-{version}`, shared by the version's target group and ECS service.
pub fn version_resource_name(app: &AppName, version: &VersionId) -> String {
    format!("{NAME_PREFIX}{app}-{version}")
}

/// The target group name of one version, checked against the ALB's 32-character limit.
pub fn target_group_name(app: &AppName, version: &VersionId) -> Result<String> {
    let name = version_resource_name(app, version);
    if name.len() > MAX_TARGET_GROUP_NAME_LEN {
        return Err(Error::invalid(
            "version",
            format!(
                "the target group name `{name}` has {} characters, AWS allows {MAX_TARGET_GROUP_NAME_LEN}; \
                 shorten the app name or the version id",
                name.len()
            ),
        ));
    }
    Ok(name)
}

/// The ECS service name of one version (same as its target group name, so both are found from either).
pub fn service_name(app: &AppName, version: &VersionId) -> Result<String> {
    target_group_name(app, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pattern() {
        let app = AppName::new("shop").unwrap();
        let v = VersionId::new("v124").unwrap();
        assert_eq!(target_group_name(&app, &v).unwrap(), "pulse-shop-v124");
        assert_eq!(service_name(&app, &v).unwrap(), "pulse-shop-v124");
    }

    #[test]
    fn the_longest_names_the_core_accepts_fit_the_target_group_limit() {
        let app = AppName::new("a".repeat(16)).unwrap();
        let v = VersionId::new("v".repeat(9)).unwrap();
        let name = target_group_name(&app, &v).unwrap();
        assert_eq!(name.len(), MAX_TARGET_GROUP_NAME_LEN, "{name}");
        assert!(name.len() <= MAX_SERVICE_NAME_LEN);
        // One character more on either side is refused by the core itself.
        assert!(AppName::new("a".repeat(17)).is_err());
        assert!(VersionId::new("v".repeat(10)).is_err());
    }
}
