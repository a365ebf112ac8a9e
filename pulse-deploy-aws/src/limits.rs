//! Every value AWS would reject, checked before any AWS call, with an error naming the field and the fix.
//!
//! The AWS API emulator used in tests (moto) silently accepts most of these (weights of 1000, six target
//! groups in one forward action, stickiness of 0 s, a Fargate `stopTimeout` of 3600 s, 51 tags, ...), and
//! real AWS rejects them only midway through a rollout. So this module is the only thing that protects a
//! user: providers call [`validate_release`] and [`validate_weights`] first and never send a value these
//! functions have not seen. The figures come from the ELBv2 and ECS API references and quotas pages.
//!
//! Not for: the core's own checks (replicas, ports, env names: [`Release::validate`], which
//! [`validate_release`] runs first), or naming (see [`crate::names`]).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use pulse_deploy_core::{
    AffinityMode, Error, OrchestratorCapabilities, Release, Result, RouterCapabilities, Weights,
};

use crate::names;

/// Weights of a forward action's target groups (ELBv2 `TargetGroupTuple.Weight`).
pub const ALB_WEIGHT: RangeInclusive<u32> = 0..=999;
/// Target groups in one forward action (not adjustable): the versions that can take new sessions at once.
pub const MAX_WEIGHTED_VERSIONS: usize = 5;
/// Target-group stickiness (`stickiness.lb_cookie.duration_seconds`), in seconds: 1 s to 7 days.
pub const STICKINESS_SECS: RangeInclusive<u64> = 1..=604_800;
/// Target-group health check interval, in seconds.
pub const HEALTH_CHECK_INTERVAL_SECS: RangeInclusive<u64> = 5..=300;
/// Healthy and unhealthy threshold counts of a target group's health check.
pub const HEALTH_CHECK_THRESHOLD: RangeInclusive<u32> = 2..=10;
/// Target-group deregistration delay (`deregistration_delay.timeout_seconds`), in seconds.
pub const DEREGISTRATION_DELAY_SECS: RangeInclusive<u64> = 0..=3600;
/// The longest Fargate `stopTimeout` (time between SIGTERM and SIGKILL), in seconds.
pub const MAX_FARGATE_STOP_TIMEOUT_SECS: u64 = 120;
/// Tags per resource (ECS and ELBv2).
pub const MAX_TAGS: usize = 50;
/// Characters in a tag key.
pub const MAX_TAG_KEY_LEN: usize = 128;
/// Characters in a tag value.
pub const MAX_TAG_VALUE_LEN: usize = 256;
/// Values in one rule condition.
pub const MAX_CONDITION_VALUES: usize = 5;
/// Characters in one rule condition value.
pub const MAX_CONDITION_VALUE_LEN: usize = 128;
/// Rules per load balancer (default rules of the listeners not counted).
pub const MAX_RULES_PER_LOAD_BALANCER: usize = 100;
/// Target groups per load balancer.
pub const MAX_TARGET_GROUPS_PER_LOAD_BALANCER: usize = 100;
/// Rules every app's listener holds besides the versions' own: the rule that blocks `/_pulse/admin/*`.
pub const SHARED_RULES: usize = 1;
/// Characters in a container image reference (ECS container definition `image`).
pub const MAX_IMAGE_LEN: usize = 255;
/// Characters in a target group's health check path.
pub const MAX_HEALTH_PATH_LEN: usize = 1024;

/// Versions that may be attached to one load balancer when every version uses the most rules
/// ([`AffinityMode::CookieAndKey`]): `(100 - 1) / 3 = 33`.
pub const MAX_ATTACHED_VERSIONS: usize = max_attached_versions(rules_per_version(AffinityMode::CookieAndKey));

/// Listener rules one version needs for its affinity. Conditions inside one rule are ANDed, so the cookie,
/// the `x-pulse-version` header and the `pulse_version` query parameter each need a rule of their own.
pub const fn rules_per_version(affinity: AffinityMode) -> usize {
    match affinity {
        AffinityMode::Cookie => 1,
        AffinityMode::Key => 2,
        AffinityMode::CookieAndKey => 3,
    }
}

/// How many versions fit on one load balancer when each needs `rules_per_version` rules: bounded by the
/// rule quota (less the shared rules) and by the target group quota (one target group per version).
pub const fn max_attached_versions(rules_per_version: usize) -> usize {
    let by_rules = (MAX_RULES_PER_LOAD_BALANCER - SHARED_RULES) / rules_per_version;
    if by_rules < MAX_TARGET_GROUPS_PER_LOAD_BALANCER {
        by_rules
    } else {
        MAX_TARGET_GROUPS_PER_LOAD_BALANCER
    }
}

/// What `AlbRouter` can do: 5 weighted versions, [`MAX_ATTACHED_VERSIONS`] attached, both affinities,
/// instance pinning by target-group stickiness, health checks at weight 0 (a target group is checked as
/// soon as it has targets, whatever its weight).
pub fn alb_router_capabilities() -> RouterCapabilities {
    let mut caps = RouterCapabilities::new("alb");
    caps.max_weighted_versions = MAX_WEIGHTED_VERSIONS;
    caps.max_attached_versions = MAX_ATTACHED_VERSIONS;
    caps.cookie_affinity = true;
    caps.key_affinity = true;
    caps.instance_pinning = true;
    caps.health_checks_at_zero_weight = true;
    caps.weight_propagation = WEIGHT_PROPAGATION;
    caps
}

/// How long a `ModifyListener` takes to reach every node of an ALB, as the engine assumes (AWS documents
/// no bound; changes are seen within seconds): versions that lost their weight are drained this long after
/// the shift. `AlbConfig::weight_propagation` changes it.
pub const WEIGHT_PROPAGATION: std::time::Duration = std::time::Duration::from_secs(10);

/// What `EcsOrchestrator` can do: ECS replaces crashed tasks to keep a service's desired count.
pub fn ecs_orchestrator_capabilities() -> OrchestratorCapabilities {
    let mut caps = OrchestratorCapabilities::new("ecs");
    caps.replaces_crashed_instances = true;
    caps
}

/// Checks a release for everything ECS and the ALB would refuse, after the core's own checks.
///
/// Refused: a `stop_grace` above Fargate's 120 s `stopTimeout`, an image reference longer than 255
/// characters, a health path longer than 1024 characters, names whose target group name would not fit, a
/// drain deadline longer than the target-group stickiness allows (7 days).
pub fn validate_release(release: &Release) -> Result<()> {
    release.validate()?;
    if release.stop_grace.as_secs() > MAX_FARGATE_STOP_TIMEOUT_SECS || release.stop_grace.subsec_nanos() != 0
    {
        return Err(Error::invalid(
            "release.stop_grace",
            format!(
                "is {} s; Fargate allows at most {MAX_FARGATE_STOP_TIMEOUT_SECS} s between SIGTERM and SIGKILL \
                 (task definition `stopTimeout`): use whole seconds up to {MAX_FARGATE_STOP_TIMEOUT_SECS} s, \
                 e.g. `30s`",
                release.stop_grace.as_secs_f64()
            ),
        ));
    }
    if release.image.len() > MAX_IMAGE_LEN {
        return Err(Error::invalid(
            "release.image",
            format!(
                "has {} characters; ECS allows {MAX_IMAGE_LEN}: use a shorter reference (a tag or a digest)",
                release.image.len()
            ),
        ));
    }
    if release.health_path.len() > MAX_HEALTH_PATH_LEN {
        return Err(Error::invalid(
            "release.health_path",
            format!(
                "has {} characters; ALB health checks allow {MAX_HEALTH_PATH_LEN}: use a short path such as `/health`",
                release.health_path.len()
            ),
        ));
    }
    names::target_group_name(&release.app, &release.version)?;
    TargetGroupSettings::for_release(release).validate()
}

/// Checks that the ALB can carry these weights in one forward action: at most 5 versions, each weight
/// 0-999 (a weight here is a percentage, used as the ALB weight unchanged).
pub fn validate_weights(weights: &Weights) -> Result<()> {
    if weights.len() > MAX_WEIGHTED_VERSIONS {
        return Err(Error::invalid(
            "weights",
            format!(
                "{} versions have a weight above 0; an ALB forward action holds at most \
                 {MAX_WEIGHTED_VERSIONS} target groups: give the oldest versions weight 0 first",
                weights.len()
            ),
        ));
    }
    if let Some((version, w)) = weights.iter().find(|(_, w)| !ALB_WEIGHT.contains(w)) {
        return Err(Error::invalid(
            "weights",
            format!("{version} has weight {w}; ALB weights are 0 to {}", ALB_WEIGHT.end()),
        ));
    }
    Ok(())
}

/// The target-group settings of one version. Built from the release by [`TargetGroupSettings::for_release`]
/// and checked by [`TargetGroupSettings::validate`] before `CreateTargetGroup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetGroupSettings {
    /// Time between two health checks of one target.
    pub health_check_interval: Duration,
    /// Consecutive passed checks before a target is healthy.
    pub healthy_threshold: u32,
    /// Consecutive failed checks before a target is unhealthy.
    pub unhealthy_threshold: u32,
    /// Time the ALB keeps a deregistered target's open connections.
    pub deregistration_delay: Duration,
    /// Lifetime of the ALB's instance-pinning cookie inside the version.
    pub stickiness: Duration,
}

impl TargetGroupSettings {
    /// Settings for a release: fast but safe start (checks every 5 s, healthy after 2, unhealthy after 3),
    /// a deregistration delay equal to the stop grace (a version is deregistered only once drained, so this
    /// lets in-flight requests finish without holding the target for the ALB's default 300 s), and
    /// instance pinning for as long as a drain may last.
    pub fn for_release(release: &Release) -> Self {
        TargetGroupSettings {
            health_check_interval: Duration::from_secs(5),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            deregistration_delay: release.stop_grace,
            stickiness: release.drain_deadline,
        }
    }

    /// Checks every setting against the ALB's ranges.
    pub fn validate(&self) -> Result<()> {
        check_secs(
            "target_group.health_check_interval",
            self.health_check_interval,
            &HEALTH_CHECK_INTERVAL_SECS,
            "the time between two health checks",
        )?;
        check_count("target_group.healthy_threshold", self.healthy_threshold)?;
        check_count("target_group.unhealthy_threshold", self.unhealthy_threshold)?;
        check_secs(
            "target_group.deregistration_delay",
            self.deregistration_delay,
            &DEREGISTRATION_DELAY_SECS,
            "how long a removed target keeps its connections",
        )?;
        check_secs(
            "release.drain_deadline",
            self.stickiness,
            &STICKINESS_SECS,
            "it is also the lifetime of the ALB's instance-pinning cookie",
        )
    }
}

fn check_secs(field: &'static str, d: Duration, range: &RangeInclusive<u64>, what: &str) -> Result<()> {
    if d.subsec_nanos() != 0 || !range.contains(&d.as_secs()) {
        return Err(Error::invalid(
            field,
            format!(
                "is {} s; use whole seconds from {} to {} ({what})",
                d.as_secs_f64(),
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(())
}

fn check_count(field: &'static str, n: u32) -> Result<()> {
    if !HEALTH_CHECK_THRESHOLD.contains(&n) {
        return Err(Error::invalid(
            field,
            format!(
                "is {n}; the ALB counts {} to {} consecutive health checks",
                HEALTH_CHECK_THRESHOLD.start(),
                HEALTH_CHECK_THRESHOLD.end()
            ),
        ));
    }
    Ok(())
}

/// Checks the tags of one resource: at most 50, keys 1-128 characters not starting with the reserved
/// `aws:` prefix, values at most 256 characters.
pub fn validate_tags(tags: &BTreeMap<String, String>) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid(
            "tags",
            format!("{} tags on one resource; AWS allows {MAX_TAGS}: remove some", tags.len()),
        ));
    }
    for (key, value) in tags {
        let key_len = key.chars().count();
        if key_len == 0 || key_len > MAX_TAG_KEY_LEN || key.to_ascii_lowercase().starts_with("aws:") {
            return Err(Error::invalid(
                "tags",
                format!(
                    "key `{key}` has {key_len} characters; use 1 to {MAX_TAG_KEY_LEN}, not starting with `aws:`"
                ),
            ));
        }
        let value_len = value.chars().count();
        if value_len > MAX_TAG_VALUE_LEN {
            // The value itself is not repeated: tags are not for secrets, but a user may have put one there.
            return Err(Error::invalid(
                "tags",
                format!(
                    "the value of `{key}` has {value_len} characters; AWS allows {MAX_TAG_VALUE_LEN}: \
                     store large values elsewhere (a release goes in the task definition, a hash in a tag)"
                ),
            ));
        }
    }
    Ok(())
}

/// Checks the values of one listener rule condition: 1 to 5 values of at most 128 characters each.
pub fn validate_condition_values(field: &'static str, values: &[String]) -> Result<()> {
    if values.is_empty() || values.len() > MAX_CONDITION_VALUES {
        return Err(Error::invalid(
            field,
            format!(
                "has {} values; an ALB rule condition holds 1 to {MAX_CONDITION_VALUES}: split it into \
                 several rules",
                values.len()
            ),
        ));
    }
    if let Some(v) = values.iter().find(|v| v.chars().count() > MAX_CONDITION_VALUE_LEN) {
        return Err(Error::invalid(
            field,
            format!(
                "a value has {} characters; an ALB condition value allows {MAX_CONDITION_VALUE_LEN}",
                v.chars().count()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
