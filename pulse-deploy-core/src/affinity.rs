//! Names of the version-affinity and instance-pinning carriers, shared by routers and servers.
//!
//! A client is kept on its version by a per-tab affinity key (header or query parameter, preferred) or
//! by a cookie shared by the browser's tabs (fallback). Routers route on these; servers set them and, while
//! draining, clear them (see `docs/drain-protocol.md`).

/// Cookie naming the version a browser is pinned to, e.g. `pulse-version=v124`.
pub const VERSION_COOKIE: &str = "pulse-version";
/// Header a client sends with the version its tab is pinned to.
pub const VERSION_HEADER: &str = "x-pulse-version";
/// Query parameter a client sends with the version its tab is pinned to (for page loads and WebSocket
/// URLs, where a header cannot be set).
pub const VERSION_QUERY: &str = "pulse_version";
/// Cookie pinning a client to one instance inside its version.
pub const INSTANCE_COOKIE: &str = "pulse-instance";
/// Response header a draining server sets when it turns away a request that would create a new session:
/// the client drops its affinity and reloads, landing on the newest version.
pub const STALE_AFFINITY_HEADER: &str = "x-pulse-stale-affinity";
/// Path prefix of the admin endpoints. Never routable from the public side of a router.
pub const ADMIN_PATH_PREFIX: &str = "/_pulse/admin";
