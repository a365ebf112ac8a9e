//! A stand-in for the ALB's data plane (moto routes no traffic): an HTTP proxy on loopback that sends
//! each request where the load balancer would, from the app's listener as it is on the emulator, so the
//! listener rules pulse-deploy writes are themselves exercised.
//!
//! Modelled: rules in priority order, then the default action; the condition types pulse-deploy and
//! the Terraform module use (`http-header` with `*`/`?` wildcards matched case-insensitively,
//! `query-string` key/value pairs, `path-pattern` case-sensitively); conditions of a rule ANDed, values
//! of a condition ORed; `fixed-response` actions answered by the proxy itself; weighted `forward`
//! actions (a weighted round-robin over the groups with weight above 0); within a group only healthy
//! targets (from `DescribeTargetHealth`), pinned by the proxy's stickiness cookie `AWSALB` when the
//! group has `stickiness.enabled`, round-robin otherwise. HTTP requests are forwarded one per
//! connection (`Connection: close` towards the target); a WebSocket upgrade is forwarded and then
//! pumped byte for byte.
//!
//! Not modelled: the ALB's propagation delay (the proxy reads the listener at most every
//! [`CACHE_FOR`]), connection draining and the deregistration delay, fail-open when every target of a
//! group is unhealthy (the proxy answers 503), request and idle timeouts, HTTP/2, TLS.
//!
//! Its AWS calls go through their own [`AwsConfig`] so that they are counted apart from the provider's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Rule, RuleCondition, TargetHealthStateEnum,
};
use pulse_deploy_aws::AwsConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long one read of the listener is used: the evaluator's propagation delay (a real ALB takes seconds
/// to apply a `ModifyListener`). The router under test is configured with a longer `weight_propagation`
/// ([`super::WEIGHT_PROPAGATION`]), so the engine drains an old version only once every request follows
/// the new weights, as it does on AWS (see `docs/aws.md`).
pub(crate) const CACHE_FOR: Duration = Duration::from_millis(200);

/// The stickiness cookie the proxy sets and honours (the ALB's name for it).
pub(crate) const STICKY_COOKIE: &str = "AWSALB";

/// `*` (any run, empty included) and `?` (exactly one character) wildcards, as ALB conditions take them.
pub(crate) fn wildcard(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let norm = |s: &str| -> Vec<char> {
        if case_insensitive {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (p, t) = (norm(pattern), norm(text));
    // Iterative matching with backtracking to the last `*`.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    /// A header's value matches one of the patterns.
    Header { name: String, patterns: Vec<String> },
    /// One of the key/value pairs (key `None`: any key) is in the query string.
    Query { pairs: Vec<(Option<String>, String)> },
    /// The path matches one of the patterns.
    Path { patterns: Vec<String> },
    /// A condition type the evaluator does not model: never matches (and is reported by the tests).
    Unsupported(String),
}

/// What a rule or the default action does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Weighted target groups (ARN, weight).
    Forward(Vec<(String, u32)>),
    /// Answered by the load balancer itself.
    Fixed { status: u16, body: String },
    /// An action type the evaluator does not model.
    Unsupported(String),
}

/// One listener rule.
#[derive(Debug, Clone)]
pub(crate) struct EvalRule {
    /// Its priority (lower first).
    pub priority: i32,
    /// Its conditions (ANDed).
    pub conditions: Vec<Condition>,
    /// Its action.
    pub verdict: Verdict,
}

/// The parts of a request the rules look at.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestView {
    /// The path, without the query.
    pub path: String,
    /// The query's key/value pairs, percent-decoded.
    pub query: Vec<(String, String)>,
    /// The headers (names as sent).
    pub headers: Vec<(String, String)>,
}

impl RequestView {
    /// From a request target (`/path?query`) and headers.
    pub(crate) fn new(target: &str, headers: Vec<(String, String)>) -> RequestView {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let query = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        RequestView { path: path.to_owned(), query, headers }
    }

    fn header(&self, name: &str) -> impl Iterator<Item = &str> {
        let name = name.to_owned();
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(&name)).map(|(_, v)| v.as_str())
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Condition {
    /// From a condition read back from the listener.
    pub(crate) fn from_aws(c: &RuleCondition) -> Condition {
        match c.field().unwrap_or("") {
            "http-header" => {
                let Some(h) = c.http_header_config() else {
                    return Condition::Unsupported("http-header".into());
                };
                Condition::Header {
                    name: h.http_header_name().unwrap_or("").to_owned(),
                    patterns: h.values().to_vec(),
                }
            }
            "query-string" => Condition::Query {
                pairs: c
                    .query_string_config()
                    .map(|q| q.values())
                    .unwrap_or_default()
                    .iter()
                    .map(|kv| (kv.key().map(str::to_owned), kv.value().unwrap_or("").to_owned()))
                    .collect(),
            },
            "path-pattern" => {
                let mut patterns: Vec<String> =
                    c.path_pattern_config().map(|p| p.values().to_vec()).unwrap_or_default();
                if patterns.is_empty() {
                    patterns = c.values().to_vec();
                }
                Condition::Path { patterns }
            }
            other => Condition::Unsupported(other.to_owned()),
        }
    }

    /// Whether the request meets the condition (any of its values).
    pub(crate) fn matches(&self, req: &RequestView) -> bool {
        match self {
            // A header sent more than once: ALB matches each value.
            Condition::Header { name, patterns } => {
                req.header(name).any(|v| patterns.iter().any(|p| wildcard(p, v, true)))
            }
            Condition::Query { pairs } => pairs.iter().any(|(key, value)| {
                req.query.iter().any(|(k, v)| {
                    key.as_ref().is_none_or(|key| wildcard(key, k, true)) && wildcard(value, v, true)
                })
            }),
            Condition::Path { patterns } => patterns.iter().any(|p| wildcard(p, &req.path, false)),
            Condition::Unsupported(_) => false,
        }
    }
}

impl Verdict {
    /// From the first action of a rule or the default actions.
    pub(crate) fn from_aws(actions: &[Action]) -> Verdict {
        let Some(a) = actions.iter().min_by_key(|a| a.order().unwrap_or(0)) else {
            return Verdict::Unsupported("no action".into());
        };
        match a.r#type() {
            Some(ActionTypeEnum::Forward) => {
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
                    match a.target_group_arn() {
                        Some(arn) => Verdict::Forward(vec![(arn.to_owned(), 1)]),
                        None => Verdict::Unsupported("forward without a target group".into()),
                    }
                } else {
                    Verdict::Forward(tuples)
                }
            }
            Some(ActionTypeEnum::FixedResponse) => {
                let f = a.fixed_response_config();
                Verdict::Fixed {
                    status: f.and_then(|f| f.status_code()).and_then(|s| s.parse().ok()).unwrap_or(503),
                    body: f.and_then(|f| f.message_body()).unwrap_or("").to_owned(),
                }
            }
            other => Verdict::Unsupported(format!("{other:?}")),
        }
    }
}

/// A listener as the evaluator routes by it.
#[derive(Debug, Clone)]
pub(crate) struct ListenerView {
    /// Non-default rules, by priority.
    pub rules: Vec<EvalRule>,
    /// The default action.
    pub default: Verdict,
}

impl ListenerView {
    /// From the listener's default actions and its rules as read back from AWS.
    pub(crate) fn from_aws(default_actions: &[Action], rules: &[Rule]) -> ListenerView {
        let mut rules: Vec<EvalRule> = rules
            .iter()
            .filter(|r| !r.is_default().unwrap_or(false))
            .filter_map(|r| {
                Some(EvalRule {
                    priority: r.priority()?.parse().ok()?,
                    conditions: r.conditions().iter().map(Condition::from_aws).collect(),
                    verdict: Verdict::from_aws(r.actions()),
                })
            })
            .collect();
        rules.sort_by_key(|r| r.priority);
        ListenerView { rules, default: Verdict::from_aws(default_actions) }
    }

    /// What the listener does with `req`, and the priority of the rule that decided (`None`: the
    /// default action).
    pub(crate) fn decide(&self, req: &RequestView) -> (&Verdict, Option<i32>) {
        for r in &self.rules {
            if !r.conditions.is_empty() && r.conditions.iter().all(|c| c.matches(req)) {
                return (&r.verdict, Some(r.priority));
            }
        }
        (&self.default, None)
    }
}

/// One target group as the evaluator sends to it.
#[derive(Debug, Clone, Default)]
struct Group {
    healthy: Vec<SocketAddr>,
    sticky: bool,
}

/// One read of the listener and its groups.
#[derive(Debug)]
struct Snapshot {
    at: Instant,
    view: ListenerView,
    groups: HashMap<String, Group>,
}

/// What happened to one request, for the tests' checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Routed {
    /// The request's path.
    pub path: String,
    /// The rule that decided (`None`: the default action).
    pub rule: Option<i32>,
    /// The target it was forwarded to (`None`: answered by the evaluator).
    pub target: Option<SocketAddr>,
    /// The status the evaluator answered with itself.
    pub fixed_status: Option<u16>,
}

/// The running proxy.
#[derive(Debug)]
pub(crate) struct AlbEvaluator {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
    listener: String,
    snapshot: tokio::sync::Mutex<Option<Arc<Snapshot>>>,
    sticky: Mutex<HashMap<String, bool>>,
    next: AtomicU64,
    log: Mutex<Vec<Routed>>,
}

impl Drop for AlbEvaluator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AlbEvaluator {
    /// Starts the proxy for the listener `listener_arn`, reading it through `aws`.
    pub(crate) async fn start(aws: &AwsConfig, listener_arn: &str) -> AlbEvaluator {
        let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind the evaluator");
        let addr = socket.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            elbv2: aws.elbv2(),
            listener: listener_arn.to_owned(),
            snapshot: tokio::sync::Mutex::new(None),
            sticky: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        });
        let task = {
            let shared = shared.clone();
            tokio::spawn(async move {
                while let Ok((conn, _)) = socket.accept().await {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let _ = shared.serve(conn).await;
                    });
                }
            })
        };
        AlbEvaluator { addr, shared, task }
    }

    /// Every request routed so far.
    pub(crate) fn log(&self) -> Vec<Routed> {
        self.shared.log.lock().expect("log").clone()
    }
}

/// Reads up to the end of an HTTP head; returns the head and the bytes after it.
async fn read_head(conn: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return Ok(Some((head, buf[end + 4..].to_vec())));
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("head too large"));
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn parse_headers<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect()
}

fn cookie_value(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(&format!("{name}=")).map(str::to_owned))
}

fn reason(status: u16) -> &'static str {
    match status {
        404 => "Not Found",
        503 => "Service Unavailable",
        502 => "Bad Gateway",
        _ => "Fixed",
    }
}

impl Shared {
    /// The listener as of at most [`CACHE_FOR`] ago.
    async fn snapshot(&self) -> Result<Arc<Snapshot>, String> {
        let mut cached = self.snapshot.lock().await;
        if let Some(s) = cached.as_ref().filter(|s| s.at.elapsed() < CACHE_FOR) {
            return Ok(s.clone());
        }
        let at = Instant::now();
        let listeners = self
            .elbv2
            .describe_listeners()
            .listener_arns(&self.listener)
            .send()
            .await
            .map_err(|e| format!("DescribeListeners: {e:?}"))?;
        let default_actions =
            listeners.listeners().first().map(|l| l.default_actions().to_vec()).unwrap_or_default();
        let rules = self
            .elbv2
            .describe_rules()
            .listener_arn(&self.listener)
            .send()
            .await
            .map_err(|e| format!("DescribeRules: {e:?}"))?;
        let view = ListenerView::from_aws(&default_actions, rules.rules());
        let mut arns: Vec<String> = Vec::new();
        for v in view.rules.iter().map(|r| &r.verdict).chain([&view.default]) {
            if let Verdict::Forward(tuples) = v {
                arns.extend(tuples.iter().map(|(a, _)| a.clone()));
            }
        }
        arns.sort();
        arns.dedup();
        let mut groups = HashMap::new();
        for arn in arns {
            let health = self
                .elbv2
                .describe_target_health()
                .target_group_arn(&arn)
                .send()
                .await
                .map_err(|e| format!("DescribeTargetHealth: {e:?}"))?;
            let healthy = health
                .target_health_descriptions()
                .iter()
                .filter(|d| {
                    d.target_health().and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy)
                })
                .filter_map(|d| {
                    let t = d.target()?;
                    format!("{}:{}", t.id()?, t.port()?).parse().ok()
                })
                .collect();
            let known = self.sticky.lock().expect("sticky").get(&arn).copied();
            // Stickiness is set once, when pulse-deploy creates the group: read it once per group.
            let sticky = match known {
                Some(s) => s,
                None => {
                    let attrs = self
                        .elbv2
                        .describe_target_group_attributes()
                        .target_group_arn(&arn)
                        .send()
                        .await
                        .map_err(|e| format!("DescribeTargetGroupAttributes: {e:?}"))?;
                    let s = attrs
                        .attributes()
                        .iter()
                        .any(|a| a.key() == Some("stickiness.enabled") && a.value() == Some("true"));
                    self.sticky.lock().expect("sticky").insert(arn.clone(), s);
                    s
                }
            };
            groups.insert(arn, Group { healthy, sticky });
        }
        let s = Arc::new(Snapshot { at, view, groups });
        *cached = Some(s.clone());
        Ok(s)
    }

    /// Picks a target: a group by weight among those with weight above 0, then the pinned target if
    /// the group is sticky and the pin is healthy, else the next healthy target.
    fn pick(
        &self,
        snap: &Snapshot,
        tuples: &[(String, u32)],
        req_headers: &[(String, String)],
    ) -> Option<(SocketAddr, bool)> {
        let live: Vec<&(String, u32)> = tuples.iter().filter(|(_, w)| *w > 0).collect();
        let total: u64 = live.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return None;
        }
        let mut n = self.next.fetch_add(1, Ordering::SeqCst) % total;
        let (arn, _) = live.iter().find(|(_, w)| {
            if n < u64::from(*w) {
                true
            } else {
                n -= u64::from(*w);
                false
            }
        })?;
        let group = snap.groups.get(arn)?;
        if group.sticky {
            if let Some(pin) = cookie_value(req_headers, STICKY_COOKIE).and_then(|v| v.parse().ok()) {
                if group.healthy.contains(&pin) {
                    return Some((pin, true));
                }
            }
        }
        if group.healthy.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::SeqCst) as usize % group.healthy.len();
        Some((group.healthy[i], group.sticky))
    }

    fn record(&self, routed: Routed) {
        self.log.lock().expect("log").push(routed);
    }

    async fn answer(conn: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
        let out = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            reason(status),
            body.len()
        );
        conn.write_all(out.as_bytes()).await?;
        conn.shutdown().await
    }

    async fn serve(self: Arc<Self>, mut conn: TcpStream) -> std::io::Result<()> {
        let Some((head, rest)) = read_head(&mut conn).await? else { return Ok(()) };
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or("").to_owned();
        let target = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
        let headers = parse_headers(lines);
        let req = RequestView::new(&target, headers.clone());
        let path = req.path.clone();
        let snap = match self.snapshot().await {
            Ok(s) => s,
            Err(e) => {
                self.record(Routed { path, rule: None, target: None, fixed_status: Some(503) });
                return Self::answer(&mut conn, 503, &e).await;
            }
        };
        let (verdict, rule) = snap.view.decide(&req);
        let (addr, sticky) = match verdict {
            Verdict::Fixed { status, body } => {
                self.record(Routed { path, rule, target: None, fixed_status: Some(*status) });
                return Self::answer(&mut conn, *status, body).await;
            }
            Verdict::Unsupported(what) => {
                self.record(Routed { path, rule, target: None, fixed_status: Some(503) });
                return Self::answer(&mut conn, 503, &format!("unsupported action {what}")).await;
            }
            Verdict::Forward(tuples) => match self.pick(&snap, tuples, &headers) {
                Some(t) => t,
                None => {
                    self.record(Routed { path, rule, target: None, fixed_status: Some(503) });
                    return Self::answer(&mut conn, 503, "no healthy target").await;
                }
            },
        };
        self.record(Routed { path, rule, target: Some(addr), fixed_status: None });
        let upgrade = headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("upgrade") && !v.is_empty());
        let mut upstream = match TcpStream::connect(addr).await {
            Ok(u) => u,
            Err(_) => return Self::answer(&mut conn, 502, "target refused the connection").await,
        };
        let mut out = request_line;
        out.push_str("\r\n");
        for (n, v) in &headers {
            if !upgrade && (n.eq_ignore_ascii_case("connection") || n.eq_ignore_ascii_case("keep-alive")) {
                continue;
            }
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        if !upgrade {
            out.push_str("connection: close\r\n");
        }
        out.push_str("x-forwarded-for: 127.0.0.1\r\n\r\n");
        upstream.write_all(out.as_bytes()).await?;
        upstream.write_all(&rest).await?;
        // The response head, with the stickiness cookie added.
        let Some((resp_head, resp_rest)) = read_head(&mut upstream).await? else {
            return Self::answer(&mut conn, 502, "target closed the connection").await;
        };
        let mut resp = resp_head;
        if sticky {
            resp.push_str(&format!("\r\nset-cookie: {STICKY_COOKIE}={addr}; Path=/"));
        }
        resp.push_str("\r\n\r\n");
        conn.write_all(resp.as_bytes()).await?;
        conn.write_all(&resp_rest).await?;
        let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticloadbalancingv2::types::{FixedResponseActionConfig, PathPatternConditionConfig};
    use pulse_deploy_aws::alb::rules::{condition, RuleKind};
    use pulse_deploy_core::VersionId;

    fn vid(s: &str) -> VersionId {
        VersionId::new(s).unwrap()
    }

    fn forward(arn: &str) -> Action {
        Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(arn).build()
    }

    /// The listener AlbRouter and the infrastructure build: the admin block at priority 1, header and
    /// query rules of v1 and v10, cookie rules of both, the default forward to v10.
    fn listener() -> ListenerView {
        let mut rules = vec![Rule::builder()
            .priority("1")
            .conditions(
                RuleCondition::builder()
                    .field("path-pattern")
                    .path_pattern_config(
                        PathPatternConditionConfig::builder()
                            .values("/_pulse/admin")
                            .values("/_pulse/admin/*")
                            .build(),
                    )
                    .build(),
            )
            .actions(
                Action::builder()
                    .r#type(ActionTypeEnum::FixedResponse)
                    .fixed_response_config(
                        FixedResponseActionConfig::builder()
                            .status_code("404")
                            .content_type("text/plain")
                            .message_body("not found")
                            .build(),
                    )
                    .build(),
            )
            .build()];
        let mut priority = 1000;
        for version in ["v1", "v10"] {
            for kind in [RuleKind::Header, RuleKind::Query, RuleKind::Cookie] {
                let p = if kind == RuleKind::Cookie { priority + 24_000 } else { priority };
                priority += 1;
                rules.push(
                    Rule::builder()
                        .priority(p.to_string())
                        .conditions(condition(kind, &vid(version)).unwrap())
                        .actions(forward(&format!("tg-{version}")))
                        .build(),
                );
            }
        }
        rules.reverse(); // the evaluator orders them itself
        let default = forward_weighted(&[("tg-v10", 1)]);
        ListenerView::from_aws(&[default], &rules)
    }

    fn forward_weighted(w: &[(&str, i32)]) -> Action {
        use aws_sdk_elasticloadbalancingv2::types::{ForwardActionConfig, TargetGroupTuple};
        let mut f = ForwardActionConfig::builder();
        for (arn, weight) in w {
            f = f.target_groups(TargetGroupTuple::builder().target_group_arn(*arn).weight(*weight).build());
        }
        Action::builder().r#type(ActionTypeEnum::Forward).forward_config(f.build()).build()
    }

    fn to(view: &ListenerView, target: &str, headers: &[(&str, &str)]) -> Verdict {
        let req = RequestView::new(
            target,
            headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
        );
        view.decide(&req).0.clone()
    }

    fn fwd(arn: &str) -> Verdict {
        Verdict::Forward(vec![(arn.to_owned(), 1)])
    }

    #[test]
    fn wildcards_are_anchored() {
        assert!(wildcard("pulse-version=v1", "PULSE-VERSION=V1", true));
        assert!(!wildcard("pulse-version=v1", "pulse-version=v10", true));
        assert!(wildcard("*; pulse-version=v1;*", "a=b; pulse-version=v1; c=d", true));
        assert!(!wildcard("*; pulse-version=v1;*", "a=b; pulse-version=v10; c=d", true));
        assert!(wildcard("/_pulse/admin/*", "/_pulse/admin/drain", false));
        assert!(!wildcard("/_pulse/admin/*", "/_PULSE/admin/drain", false));
        assert!(wildcard("a?c", "abc", false) && !wildcard("a?c", "ac", false));
        assert!(wildcard("*", "", false));
    }

    #[test]
    fn the_cookie_rule_of_v1_never_matches_v10_nor_a_lookalike_cookie() {
        let view = listener();
        for cookie in [
            "pulse-version=v1",
            "a=b; pulse-version=v1",
            "pulse-version=v1; a=b",
            "x=1; pulse-version=v1; y=2",
        ] {
            assert_eq!(to(&view, "/", &[("Cookie", cookie)]), fwd("tg-v1"), "{cookie}");
        }
        for cookie in ["pulse-version=v10", "a=b; pulse-version=v10", "pulse-version=v10; a=b"] {
            assert_eq!(to(&view, "/", &[("Cookie", cookie)]), fwd("tg-v10"), "{cookie}");
        }
        // Another cookie whose name ends in `pulse-version`, or whose value starts with v1: the default.
        let default = Verdict::Forward(vec![("tg-v10".into(), 1)]);
        for cookie in
            ["my-pulse-version=v1", "a=b; xpulse-version=v1", "pulse-version=v1x", "pulse-version=v"]
        {
            assert_eq!(to(&view, "/", &[("Cookie", cookie)]), default, "{cookie}");
        }
    }

    #[test]
    fn keys_beat_the_cookie_and_v1_never_matches_v10() {
        let view = listener();
        assert_eq!(to(&view, "/?pulse_version=v1", &[("Cookie", "pulse-version=v10")]), fwd("tg-v1"));
        assert_eq!(to(&view, "/ws?session=s&pulse_version=v10", &[]), fwd("tg-v10"));
        assert_eq!(
            to(&view, "/", &[("x-pulse-version", "v1"), ("Cookie", "pulse-version=v10")]),
            fwd("tg-v1")
        );
        assert_eq!(to(&view, "/", &[("X-Pulse-Version", "v10")]), fwd("tg-v10"));
        let default = Verdict::Forward(vec![("tg-v10".into(), 1)]);
        assert_eq!(to(&view, "/?pulse_version=v100", &[]), default);
        assert_eq!(to(&view, "/?pulse_versionx=v1", &[]), default);
    }

    #[test]
    fn the_admin_paths_are_answered_404_whatever_the_affinity() {
        let view = listener();
        let blocked = Verdict::Fixed { status: 404, body: "not found".into() };
        for path in ["/_pulse/admin", "/_pulse/admin/drain", "/_pulse/admin/status?pulse_version=v1"] {
            assert_eq!(
                to(&view, path, &[("x-pulse-version", "v1"), ("Cookie", "pulse-version=v1")]),
                blocked
            );
        }
        assert_eq!(to(&view, "/_pulse/adminx", &[]), Verdict::Forward(vec![("tg-v10".into(), 1)]));
    }

    #[test]
    fn conditions_are_anded_and_values_ored() {
        let two = Rule::builder()
            .priority("5")
            .conditions(condition(RuleKind::Header, &vid("v1")).unwrap())
            .conditions(condition(RuleKind::Query, &vid("v2")).unwrap())
            .actions(forward("tg-both"))
            .build();
        let view = ListenerView::from_aws(&[forward("tg-default")], &[two]);
        assert_eq!(to(&view, "/?pulse_version=v2", &[("x-pulse-version", "v1")]), fwd("tg-both"));
        assert_eq!(to(&view, "/?pulse_version=v2", &[]), fwd("tg-default"));
        assert_eq!(to(&view, "/", &[("x-pulse-version", "v1")]), fwd("tg-default"));
    }

    #[test]
    fn weighted_forward_is_read_with_its_weights() {
        let view = ListenerView::from_aws(&[forward_weighted(&[("a", 0), ("b", 3)])], &[]);
        assert_eq!(view.default, Verdict::Forward(vec![("a".into(), 0), ("b".into(), 3)]));
    }
}
