//! One version's target group: `pulse-{app}-{version}`, target type `ip`, health-checked on the
//! release's health path (every 5 s, healthy after 2, unhealthy after 3), tagged with app, version and
//! affinity mode, with instance pinning (target-group stickiness) inside the version. No stickiness is
//! ever set on the listener's forward action: it would beat the weights and send new sessions to a
//! draining version.
//!
//! Not for: the listener and its rules (see [`crate::alb::AlbRouter`]).

use std::net::IpAddr;

use aws_sdk_elasticloadbalancingv2::types::{
    Matcher, ProtocolEnum, Tag, TargetDescription, TargetGroup, TargetGroupAttribute, TargetHealthStateEnum,
    TargetTypeEnum,
};
use pulse_deploy_core::{Endpoint, Error, Health, InstanceId, Result, Target, VersionRoute};

use crate::alb::AlbConfig;
use crate::errors::map_sdk_error;
use crate::limits::{validate_tags, MAX_HEALTH_PATH_LEN};
use crate::names::target_group_name;
use crate::tags::{version_tags, PHASE_LIVE, TAG_AFFINITY};

const PROVIDER: &str = "alb";

/// The affinity mode as a tag value.
pub fn affinity_tag(mode: pulse_deploy_core::AffinityMode) -> &'static str {
    match mode {
        pulse_deploy_core::AffinityMode::Cookie => "cookie",
        pulse_deploy_core::AffinityMode::Key => "key",
        pulse_deploy_core::AffinityMode::CookieAndKey => "cookie_and_key",
    }
}

/// The affinity mode read back from its tag value.
pub fn affinity_from_tag(value: &str) -> Option<pulse_deploy_core::AffinityMode> {
    use pulse_deploy_core::AffinityMode::*;
    match value {
        "cookie" => Some(Cookie),
        "key" => Some(Key),
        "cookie_and_key" => Some(CookieAndKey),
        _ => None,
    }
}

/// Checks everything of a route the ALB would refuse: the target group name, the health path, targets
/// that are not IP addresses (`ip` target groups take addresses only).
pub fn validate_route(route: &VersionRoute) -> Result<()> {
    target_group_name(&route.app, &route.version)?;
    if route.health_path.len() > MAX_HEALTH_PATH_LEN || !route.health_path.starts_with('/') {
        return Err(Error::invalid(
            "route.health_path",
            format!("must start with `/` and have at most {MAX_HEALTH_PATH_LEN} characters"),
        ));
    }
    for t in &route.targets {
        if t.endpoint.host.parse::<IpAddr>().is_err() || t.endpoint.port == 0 {
            return Err(Error::invalid(
                "route.targets",
                format!(
                    "`{}` is not an IP address and port; ALB `ip` target groups take task IPs",
                    t.endpoint
                ),
            ));
        }
    }
    Ok(())
}

/// A target as the router reports it: the ALB keeps IP and port only, so the instance is the endpoint's
/// text (the engine matches targets to instances by endpoint).
pub fn target(ip: &str, port: u16) -> Target {
    let endpoint = Endpoint::new(ip, port);
    Target { instance: InstanceId(endpoint.to_string()), endpoint }
}

/// The ALB's target health as the core's.
pub fn health(state: Option<&TargetHealthStateEnum>) -> Health {
    match state {
        Some(TargetHealthStateEnum::Healthy) => Health::Healthy,
        Some(
            TargetHealthStateEnum::Unhealthy
            | TargetHealthStateEnum::Draining
            | TargetHealthStateEnum::Unavailable
            | TargetHealthStateEnum::UnhealthyDraining,
        ) => Health::Unhealthy,
        _ => Health::Unknown,
    }
}

/// Finds the version's target group by name.
pub async fn find(
    client: &aws_sdk_elasticloadbalancingv2::Client,
    config: &AlbConfig,
    name: &str,
) -> Result<Option<TargetGroup>> {
    config
        .retry
        .run("DescribeTargetGroups", || async {
            match client.describe_target_groups().names(name).send().await {
                Ok(out) => Ok(out.target_groups().first().cloned()),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_target_group_not_found_exception()) => {
                    Ok(None)
                }
                Err(e) => Err(map_sdk_error(PROVIDER, "finding a target group", e)),
            }
        })
        .await
}

/// Finds or creates the version's target group and sets its attributes; returns its ARN.
pub async fn ensure(
    client: &aws_sdk_elasticloadbalancingv2::Client,
    config: &AlbConfig,
    route: &VersionRoute,
) -> Result<String> {
    let name = target_group_name(&route.app, &route.version)?;
    let mut tags = version_tags(&route.app, &route.version, PHASE_LIVE, None)?;
    tags.insert(TAG_AFFINITY.into(), affinity_tag(route.affinity).into());
    validate_tags(&tags)?;
    let settings = config.target_group_settings();
    settings.validate()?;
    let port = route.targets.first().map(|t| t.endpoint.port).unwrap_or(80);
    let arn = match find(client, config, &name).await? {
        Some(tg) => tg.target_group_arn().map(str::to_owned),
        None => {
            let created = config
                .retry
                .run("CreateTargetGroup", || async {
                    let out = client
                        .create_target_group()
                        .name(&name)
                        .protocol(ProtocolEnum::Http)
                        .port(i32::from(port))
                        .vpc_id(&config.vpc_id)
                        .target_type(TargetTypeEnum::Ip)
                        .health_check_enabled(true)
                        .health_check_protocol(ProtocolEnum::Http)
                        .health_check_path(&route.health_path)
                        .health_check_interval_seconds(settings.health_check_interval.as_secs() as i32)
                        .health_check_timeout_seconds(4)
                        .healthy_threshold_count(settings.healthy_threshold as i32)
                        .unhealthy_threshold_count(settings.unhealthy_threshold as i32)
                        .matcher(Matcher::builder().http_code("200").build())
                        .set_tags(Some(
                            tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect(),
                        ))
                        .send()
                        .await;
                    match out {
                        Ok(out) => Ok(out
                            .target_groups()
                            .first()
                            .and_then(|t| t.target_group_arn())
                            .map(str::to_owned)),
                        // Created by a concurrent or lost call: read it back.
                        Err(e)
                            if e.as_service_error()
                                .is_some_and(|s| s.is_duplicate_target_group_name_exception()) =>
                        {
                            Ok(find(client, config, &name)
                                .await?
                                .and_then(|t| t.target_group_arn().map(str::to_owned)))
                        }
                        Err(e) => Err(map_sdk_error(PROVIDER, "creating the target group", e)),
                    }
                })
                .await?;
            if let Some(arn) = &created {
                set_attributes(client, config, arn).await?;
                tracing::info!(app = %route.app, version = %route.version, target_group = %name, "created target group");
            }
            created
        }
    };
    arn.ok_or_else(|| Error::provider(PROVIDER, format!("target group {name} has no ARN"), true))
}

async fn set_attributes(
    client: &aws_sdk_elasticloadbalancingv2::Client,
    config: &AlbConfig,
    arn: &str,
) -> Result<()> {
    let s = config.target_group_settings();
    let attrs = [
        ("deregistration_delay.timeout_seconds", s.deregistration_delay.as_secs().to_string()),
        ("stickiness.enabled", "true".to_owned()),
        ("stickiness.type", "lb_cookie".to_owned()),
        ("stickiness.lb_cookie.duration_seconds", s.stickiness.as_secs().to_string()),
    ];
    config
        .retry
        .run("ModifyTargetGroupAttributes", || async {
            client
                .modify_target_group_attributes()
                .target_group_arn(arn)
                .set_attributes(Some(
                    attrs
                        .iter()
                        .map(|(k, v)| TargetGroupAttribute::builder().key(*k).value(v).build())
                        .collect(),
                ))
                .send()
                .await
                .map_err(|e| map_sdk_error(PROVIDER, "setting the target group's attributes", e))
        })
        .await?;
    Ok(())
}

/// The registered targets of a target group with their health.
pub async fn targets(
    client: &aws_sdk_elasticloadbalancingv2::Client,
    config: &AlbConfig,
    arn: &str,
) -> Result<Vec<(Target, Health)>> {
    let out = config
        .retry
        .run("DescribeTargetHealth", || async {
            client
                .describe_target_health()
                .target_group_arn(arn)
                .send()
                .await
                .map_err(|e| map_sdk_error(PROVIDER, "reading target health", e))
        })
        .await?;
    let mut list: Vec<(Target, Health)> = out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| {
            let t = d.target()?;
            let port = u16::try_from(t.port()?).ok()?;
            Some((target(t.id()?, port), health(d.target_health().and_then(|h| h.state()))))
        })
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(list)
}

/// Registers the route's targets that are missing and deregisters those no longer in the route.
pub async fn sync_targets(
    client: &aws_sdk_elasticloadbalancingv2::Client,
    config: &AlbConfig,
    arn: &str,
    route: &VersionRoute,
) -> Result<()> {
    let current: Vec<Target> = targets(client, config, arn).await?.into_iter().map(|(t, _)| t).collect();
    let wanted: Vec<Target> =
        route.targets.iter().map(|t| target(&t.endpoint.host, t.endpoint.port)).collect();
    let describe = |ts: Vec<&Target>| -> Vec<TargetDescription> {
        ts.into_iter()
            .map(|t| {
                TargetDescription::builder().id(&t.endpoint.host).port(i32::from(t.endpoint.port)).build()
            })
            .collect()
    };
    let add = describe(wanted.iter().filter(|t| !current.contains(t)).collect());
    let remove = describe(current.iter().filter(|t| !wanted.contains(t)).collect());
    if !add.is_empty() {
        config
            .retry
            .run("RegisterTargets", || async {
                client
                    .register_targets()
                    .target_group_arn(arn)
                    .set_targets(Some(add.clone()))
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(PROVIDER, "registering targets", e))
            })
            .await?;
    }
    if !remove.is_empty() {
        config
            .retry
            .run("DeregisterTargets", || async {
                client
                    .deregister_targets()
                    .target_group_arn(arn)
                    .set_targets(Some(remove.clone()))
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(PROVIDER, "deregistering targets", e))
            })
            .await?;
    }
    Ok(())
}

/// Deletes a target group (gone already counts as deleted).
pub async fn delete(
    client: &aws_sdk_elasticloadbalancingv2::Client,
    config: &AlbConfig,
    arn: &str,
) -> Result<()> {
    config
        .retry
        .run("DeleteTargetGroup", || async {
            // Deleting a target group that is gone succeeds on AWS.
            client
                .delete_target_group()
                .target_group_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map_sdk_error(PROVIDER, "deleting the target group", e))
        })
        .await
}
