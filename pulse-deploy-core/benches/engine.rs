//! The engine benchmark (`cargo xtask bench engine`; not a test, not in CI): what one idle pass of the
//! control loop costs as an app grows.
//!
//! An idle pass is what a controller (`pulse-deploy watch`) does every poll when there is nothing to do:
//! one app with V live versions of I instances each, the newest one with all new sessions and every older
//! one draining with open sessions (its drain signal acknowledged, its deadline hours away). The pass
//! reads the orchestrator's versions, the router's state and the drain status of every live instance,
//! plans, and applies nothing.
//!
//! The providers are the in-memory ones, behind the [`Faulty`] layer with injected latency: 2 ms per
//! orchestrator or router call, 1 ms per drain-protocol call (a `tokio::time::sleep`, so at least that and
//! up to one timer tick more). Measured, with criterion (flat sampling, 10 samples):
//!
//! 1. the idle pass for V = 1, 10, 30 x I = 1, 10, 100, at the default bound on drain-protocol calls in
//!    flight (32);
//! 2. the bound's effect at 30 x 100: 8, 32 and unbounded, side by side;
//! 3. the same pass without latency at I = 100 (the CPU cost: planner, status, and the in-memory world).
//!
//! Then a table: criterion's median per pass, the calls of one pass by kind, the peak of drain-protocol
//! calls in flight, and how the cost grows (ratios to the smallest case). Without `--bench` (`cargo test
//! --benches`) only the small cases run, once each.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use pulse_deploy_core::memory::{
    Faulty, InMemoryCluster, InMemoryDrainClient, InMemoryOrchestrator, InMemoryRouter,
};
use pulse_deploy_core::rollout::{Desired, Executor, Goal, PlanMemory, RolloutPolicy};
use pulse_deploy_core::{AppName, Release};
use tokio::runtime::Runtime;

const PROVIDER_LATENCY: Duration = Duration::from_millis(2);
const STATUS_LATENCY: Duration = Duration::from_millis(1);
/// Sessions left open on each version before the next is deployed (so that it stays draining).
const SESSIONS_PER_VERSION: usize = 3;
const GROUP: &str = "idle_pass";

/// The bound on drain-protocol calls in flight a case uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Default,
    At(usize),
    Unbounded,
}

impl Bound {
    fn limit(self) -> NonZeroUsize {
        match self {
            Bound::Default => pulse_deploy_core::drain::DEFAULT_DRAIN_CONCURRENCY,
            Bound::At(n) => NonZeroUsize::new(n).expect("a bound above 0"),
            Bound::Unbounded => NonZeroUsize::MAX,
        }
    }

    fn label(self) -> String {
        match self {
            Bound::Default => format!("{}", self.limit()),
            Bound::At(n) => format!("{n}"),
            Bound::Unbounded => "none".into(),
        }
    }
}

/// One measured configuration.
#[derive(Debug, Clone, Copy)]
struct Case {
    versions: usize,
    instances: u32,
    bound: Bound,
    latency: bool,
}

impl Case {
    /// Criterion's function name and parameter for the case; also its directory,
    /// `target/criterion/idle_pass/<function>/<parameter>` (neither holds a character criterion replaces).
    fn names(&self) -> (String, String) {
        let latency = if self.latency { "" } else { " no latency" };
        (
            format!("{}v x {}i{latency}", self.versions, self.instances),
            format!("bound {}", self.bound.label()),
        )
    }

    fn id(&self) -> BenchmarkId {
        let (function, parameter) = self.names();
        BenchmarkId::new(function, parameter)
    }

    fn dir(&self) -> PathBuf {
        let (function, parameter) = self.names();
        PathBuf::from(function).join(parameter)
    }
}

/// The calls one pass made, by kind, and the most drain-protocol calls in flight at once.
#[derive(Debug, Clone, Default)]
struct Calls {
    versions: usize,
    routing: usize,
    status: usize,
    drain: usize,
    other: usize,
    peak_in_flight: usize,
}

/// The in-memory providers of one app, each behind a [`Faulty`] layer that adds latency and counts calls.
struct Rig {
    app: AppName,
    orchestrator: Faulty<InMemoryOrchestrator>,
    router: Faulty<InMemoryRouter>,
    drain: Faulty<InMemoryDrainClient>,
}

impl Rig {
    /// Deploys `versions` versions of `instances` instances on a fresh cluster (without latency), leaving
    /// sessions open on each, so that the newest has all new sessions and every older one drains.
    async fn new(versions: usize, instances: u32, latency: bool) -> Rig {
        let cluster = InMemoryCluster::new();
        let app = AppName::new("bench").unwrap();
        let policy = RolloutPolicy { poll_interval: Duration::from_millis(5), ..RolloutPolicy::default() };
        let setup = Executor::builder(cluster.orchestrator(), cluster.router(), cluster.drain_client())
            .policy(policy)
            .drain_concurrency(NonZeroUsize::MAX)
            .build();
        for n in 1..=versions {
            let release = Release::builder(app.as_str(), format!("v{n}"), format!("bench:v{n}"))
                .replicas(instances)
                .drain_deadline(Duration::from_secs(6 * 3600))
                .build()
                .unwrap();
            setup.deploy(&release, Goal::Shifted).await.unwrap();
            for _ in 0..SESSIONS_PER_VERSION {
                cluster.open_session(&app, None).unwrap();
            }
        }
        let (provider, status) =
            if latency { (PROVIDER_LATENCY, STATUS_LATENCY) } else { (Duration::ZERO, Duration::ZERO) };
        Rig {
            orchestrator: Faulty::builder(cluster.orchestrator()).latency(provider).build().unwrap(),
            router: Faulty::builder(cluster.router()).latency(provider).build().unwrap(),
            drain: Faulty::builder(cluster.drain_client()).latency(status).build().unwrap(),
            app,
        }
    }

    fn executor(&self, bound: Bound) -> Executor {
        Executor::builder(
            Arc::new(self.orchestrator.clone()),
            Arc::new(self.router.clone()),
            Arc::new(self.drain.clone()),
        )
        .drain_concurrency(bound.limit())
        .build()
    }

    fn desired(&self) -> Desired {
        Desired { app: self.app.clone(), target: None }
    }

    fn counters(&self) -> [usize; 5] {
        let (o, r, d) = (&self.orchestrator, &self.router, &self.drain);
        let total = o.calls() + r.calls() + d.calls();
        let [versions, routing, status, drain] =
            [o.calls_to("versions"), r.calls_to("routing"), d.calls_to("status"), d.calls_to("drain")];
        [versions, routing, status, drain, total - versions - routing - status - drain]
    }

    /// One pass, counted; panics unless it is idle (the benchmark's precondition).
    async fn counted_pass(&self, executor: &Executor, memory: &mut PlanMemory) -> Calls {
        let before = self.counters();
        self.drain.reset_peak_in_flight();
        let plan = executor.pass(&self.desired(), memory).await.unwrap();
        assert!(plan.actions.is_empty(), "the pass is not idle: {:?}", plan.actions);
        let after = self.counters();
        let d: Vec<usize> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        Calls {
            versions: d[0],
            routing: d[1],
            status: d[2],
            drain: d[3],
            other: d[4],
            peak_in_flight: self.drain.peak_in_flight(),
        }
    }
}

fn cases(full: bool) -> Vec<Case> {
    let sizes: &[usize] = if full { &[1, 10, 30] } else { &[1, 10] };
    let instances: &[u32] = if full { &[1, 10, 100] } else { &[1, 10] };
    let mut out = Vec::new();
    for &versions in sizes {
        for &i in instances {
            out.push(Case { versions, instances: i, bound: Bound::Default, latency: true });
        }
    }
    if full {
        for bound in [Bound::At(8), Bound::Unbounded] {
            out.push(Case { versions: 30, instances: 100, bound, latency: true });
        }
        for versions in [1, 10, 30] {
            out.push(Case { versions, instances: 100, bound: Bound::Default, latency: false });
        }
    }
    out
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) run the small cases once.
    let full = std::env::args().any(|a| a == "--bench");
    let started = SystemTime::now();
    let rt = Runtime::new().expect("a tokio runtime");
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let cases = cases(full);
    let mut rigs: BTreeMap<(usize, u32, bool), Rig> = BTreeMap::new();
    let mut calls: Vec<(Case, Calls)> = Vec::new();
    {
        let mut group = criterion.benchmark_group(GROUP);
        group.sampling_mode(SamplingMode::Flat);
        for case in &cases {
            let rig = rigs
                .entry((case.versions, case.instances, case.latency))
                .or_insert_with(|| rt.block_on(Rig::new(case.versions, case.instances, case.latency)));
            let executor = rig.executor(case.bound);
            let mut memory = PlanMemory::default();
            let counted = rt.block_on(rig.counted_pass(&executor, &mut memory));
            calls.push((*case, counted));
            let (rig, executor) = (&*rig, &executor);
            group.bench_function(case.id(), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let mut memory = memory.clone();
                    async move {
                        let start = std::time::Instant::now();
                        for _ in 0..iters {
                            let plan = executor.pass(&rig.desired(), &mut memory).await.unwrap();
                            assert!(plan.actions.is_empty());
                        }
                        start.elapsed()
                    }
                })
            });
        }
        group.finish();
    }
    criterion.final_summary();
    report(&calls, started);
}

/// Where criterion keeps its results: `$CARGO_TARGET_DIR/criterion`, else `target/criterion` beside
/// this binary (`target/<profile>/deps/engine-<hash>`).
fn criterion_dir() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_exe().ok()?.parent()?.parent()?.parent().map(PathBuf::from))?;
    Some(target.join("criterion").join(GROUP))
}

/// Criterion's median for a case, as saved under `which` (`new`: this run; or a baseline's name).
/// `since`: ignore a result older than that (a case this run filtered out).
fn median(case: &Case, which: &str, since: Option<SystemTime>) -> Option<Duration> {
    let path = criterion_dir()?.join(case.dir()).join(which).join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if since.is_some_and(|since| modified < since) {
        return None;
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    let ns = json.get("median")?.get("point_estimate")?.as_f64()?;
    Some(Duration::from_nanos(ns as u64))
}

/// The baseline this run compares with (criterion's `--baseline NAME`), if any.
fn baseline() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == "--baseline").and_then(|n| args.get(n + 1)).cloned()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn report(calls: &[(Case, Calls)], since: SystemTime) {
    let rows: Vec<(Case, &Calls, Option<Duration>)> =
        calls.iter().map(|(c, n)| (*c, n, median(c, "new", Some(since)))).collect();
    let base = rows.first().and_then(|(_, n, m)| m.map(|m| (m, n.status)));
    println!("\nengine benchmark: one idle pass (V versions x I instances; latency {} per orchestrator/router call, {} per status call)", ms(PROVIDER_LATENCY), ms(STATUS_LATENCY));
    println!(
        "{:<22} {:>6} {:>12} {:>8} {:>8} {:>7} {:>6} {:>6} {:>11} {:>9} {:>9} {:>12}",
        "case",
        "bound",
        "median",
        "versions",
        "routing",
        "status",
        "drain",
        "other",
        "peak flight",
        "x time",
        "x calls",
        "per instance"
    );
    for (case, n, m) in &rows {
        let name = format!(
            "{}v x {}i{}",
            case.versions,
            case.instances,
            if case.latency { "" } else { " no latency" }
        );
        let (ratio_t, ratio_c) = match (base, m) {
            (Some((bm, bs)), Some(m)) if case.latency => (
                format!("{:.1}", m.as_secs_f64() / bm.as_secs_f64()),
                format!("{:.0}", n.status as f64 / bs.max(1) as f64),
            ),
            _ => ("-".into(), "-".into()),
        };
        let per = m
            .map(|m| format!("{:.1} us", m.as_secs_f64() * 1e6 / n.status.max(1) as f64))
            .unwrap_or("-".into());
        println!(
            "{:<22} {:>6} {:>12} {:>8} {:>8} {:>7} {:>6} {:>6} {:>11} {:>9} {:>9} {:>12}",
            name,
            case.bound.label(),
            m.map(ms).unwrap_or_else(|| "-".into()),
            n.versions,
            n.routing,
            n.status,
            n.drain,
            n.other,
            n.peak_in_flight,
            ratio_t,
            ratio_c,
            per
        );
    }
    let bounds: Vec<_> =
        rows.iter().filter(|(c, _, _)| c.versions == 30 && c.instances == 100 && c.latency).collect();
    if bounds.len() > 1 {
        let default = bounds.iter().find(|(c, _, _)| c.bound == Bound::Default).and_then(|(_, _, m)| *m);
        println!("\nthe bound on drain-protocol calls in flight, 30 versions x 100 instances (3,000 status calls a pass):");
        for (case, n, m) in bounds {
            let vs = match (m, default) {
                (Some(m), Some(d)) => format!("{:.2}x the default's time", m.as_secs_f64() / d.as_secs_f64()),
                _ => "-".into(),
            };
            println!(
                "  bound {:>5}: {:>10} a pass, peak {:>4} in flight, {vs}",
                case.bound.label(),
                m.map(ms).unwrap_or("-".into()),
                n.peak_in_flight
            );
        }
    }
    if let Some(name) = baseline() {
        println!("\nbefore and after: the baseline `{name}` (an earlier run's medians) and this run's:");
        println!("{:<22} {:>6} {:>12} {:>12} {:>8}", "case", "bound", name, "now", "change");
        for (case, _, m) in &rows {
            let before = median(case, &name, None);
            let change = match (before, m) {
                (Some(b), Some(m)) => format!("{:+.0}%", (m.as_secs_f64() / b.as_secs_f64() - 1.0) * 100.0),
                _ => "-".into(),
            };
            let (function, _) = case.names();
            let show = |d: Option<Duration>| d.map(ms).unwrap_or_else(|| "-".into());
            println!(
                "{function:<22} {:>6} {:>12} {:>12} {change:>8}",
                case.bound.label(),
                show(before),
                show(*m)
            );
        }
    }
    println!("\n(x time, x calls: ratios to the first case; per instance: median / status calls.)");
}
