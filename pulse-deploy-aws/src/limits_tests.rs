use std::collections::BTreeMap;
use std::time::Duration;

use pulse_deploy_core::{AffinityMode, Error, Release, VersionId, Weights};

use super::*;

fn release() -> pulse_deploy_core::ReleaseBuilder {
    Release::builder("shop", "v1", "shop:v1")
}

fn field_of(r: Result<()>) -> &'static str {
    match r {
        Err(Error::InvalidInput { field, .. }) => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

fn weights(ws: &[u32]) -> Weights {
    let map: BTreeMap<VersionId, u32> =
        ws.iter().enumerate().map(|(i, w)| (VersionId::new(format!("v{i}")).unwrap(), *w)).collect();
    Weights::new(map).unwrap()
}

fn settings() -> TargetGroupSettings {
    TargetGroupSettings::for_release(&release().build().unwrap())
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn the_default_release_passes() {
    validate_release(&release().build().unwrap()).unwrap();
}

#[test]
fn stop_grace_is_bounded_by_fargates_stop_timeout() {
    validate_release(&release().stop_grace(secs(120)).build().unwrap()).unwrap();
    let r = release().stop_grace(secs(121)).build().unwrap();
    let e = validate_release(&r).unwrap_err();
    assert!(matches!(&e, Error::InvalidInput { field: "release.stop_grace", .. }), "{e}");
    assert!(e.to_string().contains("120 s") && e.to_string().contains("stopTimeout"), "{e}");
    let r = release().stop_grace(Duration::from_millis(1500)).build().unwrap();
    assert_eq!(field_of(validate_release(&r)), "release.stop_grace");
}

#[test]
fn image_and_health_path_lengths() {
    let at = |n: usize| Release::builder("shop", "v1", "i".repeat(n)).build().unwrap();
    validate_release(&at(MAX_IMAGE_LEN)).unwrap();
    assert_eq!(field_of(validate_release(&at(MAX_IMAGE_LEN + 1))), "release.image");
    let path = |n: usize| release().health_path(format!("/{}", "h".repeat(n - 1))).build().unwrap();
    validate_release(&path(MAX_HEALTH_PATH_LEN)).unwrap();
    assert_eq!(field_of(validate_release(&path(MAX_HEALTH_PATH_LEN + 1))), "release.health_path");
}

#[test]
fn the_core_checks_run_first() {
    let mut r = release().build().unwrap();
    r.replicas = 0;
    assert_eq!(field_of(validate_release(&r)), "release.replicas");
}

#[test]
fn at_most_five_weighted_versions() {
    validate_weights(&weights(&[20, 20, 20, 20, 20])).unwrap();
    validate_weights(&weights(&[100])).unwrap();
    validate_weights(&Weights::default()).unwrap();
    let e = validate_weights(&weights(&[20, 20, 20, 20, 10, 10])).unwrap_err();
    assert!(matches!(&e, Error::InvalidInput { field: "weights", .. }), "{e}");
    assert!(e.to_string().contains("at most 5"), "{e}");
}

#[test]
fn alb_weight_range() {
    assert!(ALB_WEIGHT.contains(&0) && ALB_WEIGHT.contains(&999) && !ALB_WEIGHT.contains(&1000));
}

#[test]
fn health_check_interval_5_to_300() {
    for ok in [5, 300] {
        TargetGroupSettings { health_check_interval: secs(ok), ..settings() }.validate().unwrap();
    }
    for bad in [4, 301] {
        let s = TargetGroupSettings { health_check_interval: secs(bad), ..settings() };
        assert_eq!(field_of(s.validate()), "target_group.health_check_interval");
    }
}

#[test]
fn thresholds_2_to_10() {
    for ok in [2, 10] {
        TargetGroupSettings { healthy_threshold: ok, unhealthy_threshold: ok, ..settings() }
            .validate()
            .unwrap();
    }
    for bad in [1, 11] {
        let s = TargetGroupSettings { healthy_threshold: bad, ..settings() };
        assert_eq!(field_of(s.validate()), "target_group.healthy_threshold");
        let s = TargetGroupSettings { unhealthy_threshold: bad, ..settings() };
        assert_eq!(field_of(s.validate()), "target_group.unhealthy_threshold");
    }
}

#[test]
fn deregistration_delay_0_to_3600() {
    for ok in [0, 3600] {
        TargetGroupSettings { deregistration_delay: secs(ok), ..settings() }.validate().unwrap();
    }
    let s = TargetGroupSettings { deregistration_delay: secs(3601), ..settings() };
    assert_eq!(field_of(s.validate()), "target_group.deregistration_delay");
}

#[test]
fn stickiness_1_to_604800() {
    for ok in [1, 604_800] {
        TargetGroupSettings { stickiness: secs(ok), ..settings() }.validate().unwrap();
    }
    for bad in [0, 604_801] {
        let s = TargetGroupSettings { stickiness: secs(bad), ..settings() };
        assert_eq!(field_of(s.validate()), "release.drain_deadline");
    }
    // The longest drain deadline the core accepts (7 days) fits.
    validate_release(&release().drain_deadline(secs(7 * 24 * 3600)).build().unwrap()).unwrap();
}

#[test]
fn settings_derived_from_a_release_are_valid() {
    let r = release().stop_grace(secs(120)).drain_deadline(secs(1)).build().unwrap();
    let s = TargetGroupSettings::for_release(&r);
    assert_eq!(s.deregistration_delay, secs(120));
    assert_eq!(s.stickiness, secs(1));
    s.validate().unwrap();
}

fn tags(n: usize) -> BTreeMap<String, String> {
    (0..n).map(|i| (format!("k{i}"), "v".into())).collect()
}

#[test]
fn tag_count_and_lengths() {
    validate_tags(&tags(MAX_TAGS)).unwrap();
    assert_eq!(field_of(validate_tags(&tags(MAX_TAGS + 1))), "tags");
    let one = |k: String, v: String| BTreeMap::from([(k, v)]);
    validate_tags(&one("k".repeat(128), "v".repeat(256))).unwrap();
    assert_eq!(field_of(validate_tags(&one("k".repeat(129), "v".into()))), "tags");
    assert_eq!(field_of(validate_tags(&one(String::new(), "v".into()))), "tags");
    assert_eq!(field_of(validate_tags(&one("aws:app".into(), "v".into()))), "tags");
    let e = validate_tags(&one("secretish".into(), "s".repeat(257))).unwrap_err().to_string();
    assert!(e.contains("257") && !e.contains("sss"), "the value is not repeated: {e}");
}

#[test]
fn condition_values_1_to_5() {
    let vals = |n: usize, len: usize| vec!["x".repeat(len); n];
    validate_condition_values("rule.cookie", &vals(1, 1)).unwrap();
    validate_condition_values("rule.cookie", &vals(5, 128)).unwrap();
    assert_eq!(field_of(validate_condition_values("rule.cookie", &vals(6, 1))), "rule.cookie");
    assert_eq!(field_of(validate_condition_values("rule.cookie", &vals(0, 1))), "rule.cookie");
    assert_eq!(field_of(validate_condition_values("rule.header", &vals(1, 129))), "rule.header");
}

#[test]
fn attached_versions_follow_from_the_rule_quota() {
    assert_eq!(rules_per_version(AffinityMode::Cookie), 1);
    assert_eq!(rules_per_version(AffinityMode::Key), 2);
    assert_eq!(rules_per_version(AffinityMode::CookieAndKey), 3);
    assert_eq!(MAX_ATTACHED_VERSIONS, 33);
    assert_eq!(max_attached_versions(2), 49);
    // One rule per version: the rule quota leaves 99, below the 100 target groups.
    assert_eq!(max_attached_versions(1), 99);
    // Every version's rules plus the shared rule fit the quota.
    const { assert!(MAX_ATTACHED_VERSIONS * 3 + SHARED_RULES <= MAX_RULES_PER_LOAD_BALANCER) };
    const { assert!((MAX_ATTACHED_VERSIONS + 1) * 3 + SHARED_RULES > MAX_RULES_PER_LOAD_BALANCER) };
}

#[test]
fn capabilities() {
    let r = alb_router_capabilities();
    assert_eq!((r.provider, r.max_weighted_versions, r.max_attached_versions), ("alb", 5, 33));
    let o = ecs_orchestrator_capabilities();
    assert_eq!(o.provider, "ecs");
    assert!(o.replaces_crashed_instances);
}
