//! [`AlbRouter`]: splits new sessions with the weighted forward action of each app's HTTPS listener and
//! keeps clients on their version with per-version listener rules.
//!
//! - New sessions: one `ModifyListener` whose default forward action holds only the versions with weight
//!   above 0 (at most 5 target groups, weights 0-999), never with listener-level stickiness. No weight
//!   left: the default action is a fixed 404 again.
//! - Affinity: a target group per version and one rule per affinity carrier (see [`crate::alb::rules`]);
//!   rules are evaluated before the default action, so a pinned client reaches its version at weight 0.
//! - State comes from AWS alone: the listener's default action (weights), its rules (attached versions
//!   and their kinds), the target groups' tags (app, version, affinity) and target health.
//!
//! Not for: running the versions (see [`crate::ecs::EcsOrchestrator`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig, Rule, Tag,
    TargetGroupStickinessConfig, TargetGroupTuple,
};
use pulse_deploy_core::{
    AppName, Error, Result, RoutedVersion, RouterCapabilities, RoutingState, TargetHealth, TrafficRouter,
    VersionId, VersionRoute, Weights,
};

use crate::alb::rules::{condition, free_priority, kind_of, priority_of, RuleKind};
use crate::alb::target_group::{self, affinity_from_tag, validate_route};
use crate::alb::AlbConfig;
use crate::client::AwsConfig;
use crate::errors::map_sdk_error;
use crate::limits::{alb_router_capabilities, validate_weights};
use crate::names::{target_group_name, NAME_PREFIX};
use crate::tags::{TAG_AFFINITY, TAG_APP, TAG_ROLE, TAG_VERSION};

const PROVIDER: &str = "alb";

/// Routes each app through its own ALB listener.
#[derive(Debug)]
pub struct AlbRouter {
    client: aws_sdk_elasticloadbalancingv2::Client,
    config: AlbConfig,
    /// Listener ARNs found by load balancer name (safe to lose: found again).
    found: Mutex<HashMap<AppName, String>>,
    /// Target groups by ARN (app, version, affinity and health path). Never stale: pulse-deploy sets these
    /// only when it creates a group, and a group created again gets a new ARN. Safe to lose: read again.
    groups: Mutex<HashMap<String, VersionGroup>>,
}

/// One version's target group as read back from AWS.
#[derive(Debug, Clone)]
struct VersionGroup {
    arn: String,
    version: VersionId,
    route: VersionRoute,
}

/// The listener's state for one app.
#[derive(Debug)]
struct ListenerState {
    listener: String,
    /// Weighted target groups of the default action (ARN, weight).
    forward: Vec<(String, u32)>,
    rules: Vec<Rule>,
    groups: BTreeMap<VersionId, VersionGroup>,
}

impl ListenerState {
    fn weights(&self) -> Result<Weights> {
        let by_arn: HashMap<&str, &VersionId> =
            self.groups.values().map(|g| (g.arn.as_str(), &g.version)).collect();
        Weights::new(
            self.forward
                .iter()
                .filter(|(_, w)| *w > 0)
                .filter_map(|(arn, w)| by_arn.get(arn.as_str()).map(|v| ((*v).clone(), *w)))
                .collect(),
        )
    }

    fn rules_of<'a>(&'a self, arn: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| forward_target(r) == Some(arn))
    }
}

/// The single target group a rule forwards to.
fn forward_target(rule: &Rule) -> Option<&str> {
    let action = rule.actions().iter().find(|a| a.r#type() == Some(&ActionTypeEnum::Forward))?;
    action.target_group_arn().or_else(|| action.forward_config()?.target_groups().first()?.target_group_arn())
}

impl AlbRouter {
    /// A router using `aws` with `config`.
    pub fn new(aws: &AwsConfig, config: AlbConfig) -> Self {
        AlbRouter {
            client: aws.elbv2(),
            config,
            found: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// A router from the standard AWS chain and `PULSE_AWS_*` variables (see [`AlbConfig::from_env`]).
    pub async fn from_env() -> Result<Self> {
        let config = AlbConfig::from_env()?;
        Ok(Self::new(&AwsConfig::from_env().await, config))
    }

    /// The configuration.
    pub fn config(&self) -> &AlbConfig {
        &self.config
    }

    /// The app's listener: named in the configuration, or found on the load balancer `pulse-{app}`.
    pub async fn listener(&self, app: &AppName) -> Result<String> {
        if let Some(arn) = self.config.listeners.get(app) {
            return Ok(arn.clone());
        }
        if let Some(arn) = self.found.lock().expect("listener cache").get(app) {
            return Ok(arn.clone());
        }
        let lb_name = format!("{NAME_PREFIX}{app}");
        let not_found = || Error::NotFound {
            what: format!(
                "the HTTPS listener of app {app} (load balancer `{lb_name}`, port {}); apply the Terraform \
                 module `pulse-deploy-aws/terraform` for this app first",
                self.config.listener_port
            ),
        };
        let lb = self
            .config
            .retry
            .run("DescribeLoadBalancers", || async {
                match self.client.describe_load_balancers().names(&lb_name).send().await {
                    Ok(out) => Ok(out
                        .load_balancers()
                        .first()
                        .and_then(|l| l.load_balancer_arn())
                        .map(str::to_owned)),
                    Err(e)
                        if e.as_service_error().is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(map_sdk_error(PROVIDER, "finding the app's load balancer", e)),
                }
            })
            .await?
            .ok_or_else(not_found)?;
        let listeners = self
            .config
            .retry
            .run("DescribeListeners", || async {
                self.client
                    .describe_listeners()
                    .load_balancer_arn(&lb)
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(PROVIDER, "finding the app's listener", e))
            })
            .await?;
        let arn = listeners
            .listeners()
            .iter()
            .find(|l| l.port() == Some(self.config.listener_port))
            .and_then(|l| l.listener_arn())
            .map(str::to_owned)
            .ok_or_else(not_found)?;
        self.found.lock().expect("listener cache").insert(app.clone(), arn.clone());
        Ok(arn)
    }

    /// Reads the app's listener: default action, rules, the target groups they use and their tags.
    async fn state(&self, app: &AppName) -> Result<ListenerState> {
        let listener = self.listener(app).await?;
        let described = self
            .config
            .retry
            .run("DescribeListeners", || async {
                self.client
                    .describe_listeners()
                    .listener_arns(&listener)
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(PROVIDER, "reading the listener", e))
            })
            .await?;
        let forward: Vec<(String, u32)> = described
            .listeners()
            .first()
            .map(|l| l.default_actions())
            .unwrap_or_default()
            .iter()
            .filter(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
            .flat_map(|a| {
                let tuples: Vec<(String, u32)> = a
                    .forward_config()
                    .map(|f| f.target_groups())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|t| {
                        Some((t.target_group_arn()?.to_owned(), t.weight().unwrap_or(1).max(0) as u32))
                    })
                    .collect();
                if tuples.is_empty() {
                    a.target_group_arn().map(|arn| vec![(arn.to_owned(), 1)]).unwrap_or_default()
                } else {
                    tuples
                }
            })
            .collect();
        let rules = self.rules(&listener).await?;
        let mut arns: BTreeSet<String> = forward.iter().map(|(a, _)| a.clone()).collect();
        arns.extend(rules.iter().filter_map(forward_target).map(str::to_owned));
        let groups = self.groups(app, arns.into_iter().collect()).await?;
        Ok(ListenerState { listener, forward, rules, groups })
    }

    async fn rules(&self, listener: &str) -> Result<Vec<Rule>> {
        let mut rules = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .config
                .retry
                .run("DescribeRules", || async {
                    self.client
                        .describe_rules()
                        .listener_arn(listener)
                        .set_marker(marker.clone())
                        .send()
                        .await
                        .map_err(|e| map_sdk_error(PROVIDER, "reading the listener's rules", e))
                })
                .await?;
            rules.extend(page.rules().iter().filter(|r| r.is_default() != Some(true)).cloned());
            marker = page.next_marker().map(str::to_owned);
            if marker.is_none() {
                return Ok(rules);
            }
        }
    }

    /// The target groups among `arns` that belong to `app`, with their routes (targets not filled).
    /// Groups read before come from the cache; only new ARNs are described (an idle pass reads none).
    async fn groups(&self, app: &AppName, arns: Vec<String>) -> Result<BTreeMap<VersionId, VersionGroup>> {
        let mut out = BTreeMap::new();
        let mut unknown = Vec::new();
        {
            let cache = self.groups.lock().expect("target group cache");
            for arn in arns {
                match cache.get(&arn) {
                    Some(g) if g.route.app == *app => {
                        out.insert(g.version.clone(), g.clone());
                    }
                    Some(_) => {}
                    None => unknown.push(arn),
                }
            }
        }
        for chunk in unknown.chunks(20) {
            let described = self
                .config
                .retry
                .run("DescribeTargetGroups", || async {
                    self.client
                        .describe_target_groups()
                        .set_target_group_arns(Some(chunk.to_vec()))
                        .send()
                        .await
                        .map_err(|e| map_sdk_error(PROVIDER, "reading target groups", e))
                })
                .await?;
            let tags = self
                .config
                .retry
                .run("DescribeTags", || async {
                    self.client
                        .describe_tags()
                        .set_resource_arns(Some(chunk.to_vec()))
                        .send()
                        .await
                        .map_err(|e| map_sdk_error(PROVIDER, "reading target group tags", e))
                })
                .await?;
            let tags_of: HashMap<&str, HashMap<&str, &str>> = tags
                .tag_descriptions()
                .iter()
                .filter_map(|d| {
                    Some((
                        d.resource_arn()?,
                        d.tags().iter().filter_map(|t| Some((t.key()?, t.value()?))).collect(),
                    ))
                })
                .collect();
            for tg in described.target_groups() {
                let Some(arn) = tg.target_group_arn() else { continue };
                let Some(tags) = tags_of.get(arn) else { continue };
                if tags.get(TAG_APP) != Some(&app.as_str()) {
                    continue;
                }
                let Some(version) = tags.get(TAG_VERSION).and_then(|v| VersionId::new(*v).ok()) else {
                    continue;
                };
                let affinity = tags.get(TAG_AFFINITY).and_then(|a| affinity_from_tag(a)).unwrap_or_default();
                let route = VersionRoute {
                    app: app.clone(),
                    version: version.clone(),
                    targets: Vec::new(),
                    health_path: tg.health_check_path().unwrap_or("/").to_owned(),
                    affinity,
                };
                let group = VersionGroup { arn: arn.to_owned(), version: version.clone(), route };
                self.groups.lock().expect("target group cache").insert(arn.to_owned(), group.clone());
                out.insert(version, group);
            }
        }
        Ok(out)
    }

    async fn create_rule(
        &self,
        listener: &str,
        route: &VersionRoute,
        kind: RuleKind,
        priority: i32,
        tg: &str,
    ) -> Result<()> {
        let cond = condition(kind, &route.version)?;
        let tags = [
            (TAG_APP, route.app.to_string()),
            (TAG_VERSION, route.version.to_string()),
            (TAG_ROLE, kind.role().to_owned()),
        ];
        self.config
            .retry
            .run("CreateRule", || async {
                self.client
                    .create_rule()
                    .listener_arn(listener)
                    .priority(priority)
                    .conditions(cond.clone())
                    .actions(forward_to(tg)?)
                    .set_tags(Some(
                        tags.iter().map(|(k, v)| Tag::builder().key(*k).value(v).build()).collect(),
                    ))
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(PROVIDER, "creating an affinity rule", e))
            })
            .await?;
        Ok(())
    }

    async fn delete_rule(&self, rule: &Rule) -> Result<()> {
        let Some(arn) = rule.rule_arn() else { return Ok(()) };
        self.config
            .retry
            .run("DeleteRule", || async {
                match self.client.delete_rule().rule_arn(arn).send().await {
                    Ok(_) => Ok(()),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_rule_not_found_exception()) => Ok(()),
                    Err(e) => Err(map_sdk_error(PROVIDER, "deleting an affinity rule", e)),
                }
            })
            .await
    }

    async fn set_default_action(&self, app: &AppName, listener: &str, action: Action) -> Result<()> {
        self.config
            .retry
            .run("ModifyListener", || async {
                self.client
                    .modify_listener()
                    .listener_arn(listener)
                    .default_actions(action.clone())
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(PROVIDER, "setting the listener's weights", e))
            })
            .await?;
        tracing::info!(%app, "listener default action updated");
        Ok(())
    }
}

fn forward_to(tg: &str) -> Result<Action> {
    Ok(Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(tg).build())
}

/// The default action for these weights: a weighted forward without stickiness, or a fixed 404.
fn default_action(app: &AppName, tuples: Vec<(String, u32)>) -> Result<Action> {
    if tuples.is_empty() {
        let cfg = FixedResponseActionConfig::builder()
            .status_code("404")
            .content_type("text/plain")
            .message_body(format!("no version of {app} takes new sessions"))
            .build();
        return Ok(Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(cfg)
            .build());
    }
    let forward = ForwardActionConfig::builder()
        .set_target_groups(Some(
            tuples
                .into_iter()
                .map(|(arn, w)| TargetGroupTuple::builder().target_group_arn(arn).weight(w as i32).build())
                .collect(),
        ))
        // Listener-level stickiness would pin browsers to a target group and beat the weights.
        .target_group_stickiness_config(TargetGroupStickinessConfig::builder().enabled(false).build())
        .build();
    Ok(Action::builder().r#type(ActionTypeEnum::Forward).forward_config(forward).build())
}

#[async_trait]
impl TrafficRouter for AlbRouter {
    fn capabilities(&self) -> RouterCapabilities {
        let mut caps = alb_router_capabilities();
        caps.weight_propagation = self.config.weight_propagation;
        caps
    }

    #[tracing::instrument(skip_all, fields(app = %route.app, version = %route.version))]
    async fn attach(&self, route: &VersionRoute) -> Result<()> {
        validate_route(route)?;
        for kind in RuleKind::for_affinity(route.affinity) {
            condition(*kind, &route.version)?;
        }
        let listener = self.listener(&route.app).await?;
        let tg = target_group::ensure(&self.client, &self.config, route).await?;
        target_group::sync_targets(&self.client, &self.config, &tg, route).await?;
        let rules = self.rules(&listener).await?;
        let mine: Vec<&Rule> = rules.iter().filter(|r| forward_target(r) == Some(tg.as_str())).collect();
        let wanted = RuleKind::for_affinity(route.affinity);
        let mut used: BTreeSet<i32> = rules.iter().filter_map(priority_of).collect();
        for kind in wanted {
            if mine.iter().any(|r| kind_of(r) == Some(*kind)) {
                continue;
            }
            let priority = free_priority(*kind, &used)?;
            self.create_rule(&listener, route, *kind, priority, &tg).await?;
            used.insert(priority);
        }
        for rule in mine.iter().filter(|r| kind_of(r).is_none_or(|k| !wanted.contains(&k))) {
            self.delete_rule(rule).await?;
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(%app, %weights))]
    async fn set_weights(&self, app: &AppName, weights: &Weights) -> Result<()> {
        validate_weights(weights)?;
        let state = self.state(app).await?;
        let mut tuples = Vec::new();
        for (version, w) in weights.iter().filter(|(_, w)| *w > 0) {
            let group = state.groups.get(version).ok_or_else(|| Error::Conflict {
                message: format!(
                    "version {version} of {app} is not attached; attach it before giving it weight"
                ),
            })?;
            tuples.push((group.arn.clone(), w));
        }
        let (mut current, mut wanted) = (state.forward.clone(), tuples.clone());
        current.sort();
        wanted.sort();
        if current == wanted {
            return Ok(());
        }
        self.set_default_action(app, &state.listener, default_action(app, tuples)?).await
    }

    #[tracing::instrument(skip(self))]
    async fn detach(&self, app: &AppName, version: &VersionId) -> Result<()> {
        let name = target_group_name(app, version)?;
        let state = match self.state(app).await {
            Ok(state) => state,
            // No load balancer for the app: nothing of it can be attached.
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let arn = match state.groups.get(version) {
            Some(g) => Some(g.arn.clone()),
            // Not in any rule: a target group left by an attach that crashed before its rules.
            None => target_group::find(&self.client, &self.config, &name)
                .await?
                .and_then(|t| t.target_group_arn().map(str::to_owned)),
        };
        let Some(arn) = arn else { return Ok(()) };
        if state.forward.iter().any(|(a, w)| *a == arn && *w > 0) {
            return Err(Error::Conflict {
                message: format!(
                    "version {version} of {app} still has weight; set its weight to 0 before detaching it"
                ),
            });
        }
        if state.forward.iter().any(|(a, _)| *a == arn) {
            let rest: Vec<(String, u32)> = state.forward.iter().filter(|(a, _)| *a != arn).cloned().collect();
            self.set_default_action(app, &state.listener, default_action(app, rest)?).await?;
        }
        for rule in state.rules_of(&arn) {
            self.delete_rule(rule).await?;
        }
        target_group::delete(&self.client, &self.config, &arn).await
    }

    async fn routing(&self, app: &AppName) -> Result<RoutingState> {
        let state = self.state(app).await?;
        let weights = state.weights()?;
        let mut versions = BTreeMap::new();
        for (version, group) in &state.groups {
            // Attached means it has its affinity rules; a target group only in the default action (an
            // interrupted detach) is still reported so that it can be detached.
            let targets = target_group::targets(&self.client, &self.config, &group.arn).await?;
            let mut route = group.route.clone();
            route.targets = targets.iter().map(|(t, _)| t.clone()).collect();
            versions.insert(
                version.clone(),
                RoutedVersion {
                    route,
                    targets: targets
                        .into_iter()
                        .map(|(target, health)| TargetHealth { target, health })
                        .collect(),
                },
            );
        }
        Ok(RoutingState { weights, versions })
    }
}
