//! What a provider can do. The rollout engine and the conformance suite branch on these values, never on
//! a provider's concrete type.

use serde::{Deserialize, Serialize};

/// What an [`crate::Orchestrator`] can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OrchestratorCapabilities {
    /// The provider's short name, e.g. `docker`, `ecs`, `memory`.
    pub provider: &'static str,
    /// `deploy` replaces crashed instances of a live version (ECS always does; Docker does it on the
    /// next `deploy` call, which the engine makes on every pass).
    pub replaces_crashed_instances: bool,
}

impl OrchestratorCapabilities {
    /// Capabilities with the given provider name and everything else on.
    pub fn new(provider: &'static str) -> Self {
        OrchestratorCapabilities { provider, replaces_crashed_instances: true }
    }
}

/// What a [`crate::TrafficRouter`] can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RouterCapabilities {
    /// The provider's short name, e.g. `envoy`, `alb`, `memory`.
    pub provider: &'static str,
    /// How many versions may receive new sessions at once (ALB: 5 target groups per forward action).
    pub max_weighted_versions: usize,
    /// How many versions may be attached at once (ALB: bounded by rules and target groups).
    pub max_attached_versions: usize,
    /// Routes by the version cookie.
    pub cookie_affinity: bool,
    /// Routes by the per-tab affinity key (header or query parameter).
    pub key_affinity: bool,
    /// Keeps a client on one instance inside its version.
    pub instance_pinning: bool,
    /// Health-checks versions at weight 0 (needed to know a new version is ready before it gets traffic).
    pub health_checks_at_zero_weight: bool,
    /// How long after `set_weights` returns new sessions may still follow the old weights (a load
    /// balancer's nodes take the change one by one). The engine drains a version that lost its weight only
    /// this long after the shift, so that a new session is never sent to a version that already refuses
    /// new sessions. 0 for a router that applies weights before `set_weights` returns.
    pub weight_propagation: std::time::Duration,
}

impl RouterCapabilities {
    /// Capabilities with the given provider name, everything on and generous limits.
    pub fn new(provider: &'static str) -> Self {
        RouterCapabilities {
            provider,
            max_weighted_versions: 5,
            max_attached_versions: 50,
            cookie_affinity: true,
            key_affinity: true,
            instance_pinning: true,
            health_checks_at_zero_weight: true,
            weight_propagation: std::time::Duration::ZERO,
        }
    }
}
