//! The listener rules that keep a client on its version, as pure values: what each rule matches, where
//! its priority goes, and how a rule read back from the listener is recognised.
//!
//! Conditions inside one ALB rule are ANDed, so the cookie, the `x-pulse-version` header and the
//! `pulse_version` query parameter are separate rules. Key rules (header, query) get lower priority
//! numbers than every cookie rule, so a tab's key wins over its browser's cookie. The cookie is matched
//! through the `Cookie` header with anchored wildcards, so that `v1` never matches `v10` nor another
//! cookie whose name ends in `pulse-version`.
//!
//! Not for: the calls that create and delete rules (see [`crate::alb::AlbRouter`]).

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use aws_sdk_elasticloadbalancingv2::types::{
    HttpHeaderConditionConfig, QueryStringConditionConfig, QueryStringKeyValuePair, Rule, RuleCondition,
};
use pulse_deploy_core::affinity::{VERSION_COOKIE, VERSION_HEADER, VERSION_QUERY};
use pulse_deploy_core::{AffinityMode, Error, Result, VersionId};

use crate::limits::validate_condition_values;

/// What one affinity rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleKind {
    /// The `x-pulse-version` header.
    Header,
    /// The `pulse_version` query parameter.
    Query,
    /// The `pulse-version` cookie.
    Cookie,
}

impl RuleKind {
    /// The rules a version needs for its affinity mode.
    pub fn for_affinity(affinity: AffinityMode) -> &'static [RuleKind] {
        match affinity {
            AffinityMode::Cookie => &[RuleKind::Cookie],
            AffinityMode::Key => &[RuleKind::Header, RuleKind::Query],
            AffinityMode::CookieAndKey => &[RuleKind::Header, RuleKind::Query, RuleKind::Cookie],
        }
    }

    /// The priorities this kind of rule takes: key rules before every cookie rule. Priority 1 is the
    /// shared rule that blocks `/_pulse/admin/*`.
    pub fn priorities(self) -> RangeInclusive<i32> {
        match self {
            RuleKind::Header | RuleKind::Query => 1000..=24_999,
            RuleKind::Cookie => 25_000..=49_999,
        }
    }

    /// The tag value of [`crate::tags::TAG_ROLE`] on a rule of this kind.
    pub fn role(self) -> &'static str {
        match self {
            RuleKind::Header => "header",
            RuleKind::Query => "query",
            RuleKind::Cookie => "cookie",
        }
    }
}

/// The `Cookie` header values that match exactly the cookie `pulse-version={version}`, wherever it is
/// in the header.
pub fn cookie_patterns(version: &VersionId) -> Vec<String> {
    let c = format!("{VERSION_COOKIE}={version}");
    vec![c.clone(), format!("{c};*"), format!("*; {c}"), format!("*; {c};*")]
}

/// The condition of a rule of `kind` for `version`, checked against the ALB's condition limits.
pub fn condition(kind: RuleKind, version: &VersionId) -> Result<RuleCondition> {
    // Version ids are lowercase letters, digits and `-`: never an ALB wildcard (`*`, `?`).
    let version_text = version.to_string();
    Ok(match kind {
        RuleKind::Header => {
            let values = vec![version_text];
            validate_condition_values("rule.http_header", &values)?;
            RuleCondition::builder()
                .field("http-header")
                .http_header_config(
                    HttpHeaderConditionConfig::builder()
                        .http_header_name(VERSION_HEADER)
                        .set_values(Some(values))
                        .build(),
                )
                .build()
        }
        RuleKind::Query => {
            validate_condition_values("rule.query_string", std::slice::from_ref(&version_text))?;
            RuleCondition::builder()
                .field("query-string")
                .query_string_config(
                    QueryStringConditionConfig::builder()
                        .values(
                            QueryStringKeyValuePair::builder().key(VERSION_QUERY).value(version_text).build(),
                        )
                        .build(),
                )
                .build()
        }
        RuleKind::Cookie => {
            let values = cookie_patterns(version);
            validate_condition_values("rule.cookie", &values)?;
            RuleCondition::builder()
                .field("http-header")
                .http_header_config(
                    HttpHeaderConditionConfig::builder()
                        .http_header_name("Cookie")
                        .set_values(Some(values))
                        .build(),
                )
                .build()
        }
    })
}

/// What kind of affinity rule a rule read from the listener is, from its conditions.
pub fn kind_of(rule: &Rule) -> Option<RuleKind> {
    let [c] = rule.conditions() else { return None };
    match c.field()? {
        "query-string" => Some(RuleKind::Query),
        "http-header" => {
            let name = c.http_header_config()?.http_header_name()?;
            if name.eq_ignore_ascii_case(VERSION_HEADER) {
                Some(RuleKind::Header)
            } else if name.eq_ignore_ascii_case("cookie") {
                Some(RuleKind::Cookie)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The lowest free priority for a rule of `kind`, given the priorities in use on the listener.
pub fn free_priority(kind: RuleKind, used: &BTreeSet<i32>) -> Result<i32> {
    kind.priorities().find(|p| !used.contains(p)).ok_or_else(|| Error::Conflict {
        message: "the listener has no free rule priority left; retire old versions".into(),
    })
}

/// The numeric priority of a rule (`default` rules have none).
pub fn priority_of(rule: &Rule) -> Option<i32> {
    rule.priority().and_then(|p| p.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> VersionId {
        VersionId::new(s).unwrap()
    }

    #[test]
    fn cookie_patterns_are_anchored() {
        let p = cookie_patterns(&v("v1"));
        assert_eq!(
            p,
            ["pulse-version=v1", "pulse-version=v1;*", "*; pulse-version=v1", "*; pulse-version=v1;*"]
        );
        assert!(p.len() <= crate::limits::MAX_CONDITION_VALUES);
    }

    #[test]
    fn rules_round_trip_their_kind() {
        for kind in [RuleKind::Header, RuleKind::Query, RuleKind::Cookie] {
            let rule = Rule::builder().conditions(condition(kind, &v("v3")).unwrap()).build();
            assert_eq!(kind_of(&rule), Some(kind));
        }
        let admin =
            Rule::builder().conditions(RuleCondition::builder().field("path-pattern").build()).build();
        assert_eq!(kind_of(&admin), None);
    }

    #[test]
    fn key_rules_come_before_cookie_rules_and_priorities_are_reused() {
        assert!(RuleKind::Header.priorities().end() < RuleKind::Cookie.priorities().start());
        let used = BTreeSet::from([1, 1000, 1001, 25_000]);
        assert_eq!(free_priority(RuleKind::Query, &used).unwrap(), 1002);
        assert_eq!(free_priority(RuleKind::Cookie, &used).unwrap(), 25_001);
        assert_eq!(
            RuleKind::for_affinity(AffinityMode::CookieAndKey).len(),
            crate::limits::rules_per_version(AffinityMode::CookieAndKey)
        );
        assert_eq!(
            RuleKind::for_affinity(AffinityMode::Key).len(),
            crate::limits::rules_per_version(AffinityMode::Key)
        );
    }
}
