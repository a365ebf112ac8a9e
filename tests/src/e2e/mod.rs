//! The end-to-end run behind `cargo xtask e2e`: the complete multi-version rollout on real Docker
//! containers behind a real Envoy, with real WebSocket sessions and a steady HTTP load.
//!
//! 1. deploy v1 (2 instances), open 50 sessions through Envoy;
//! 2. deploy v2: healthy, then all new sessions to v2; v1 drains — its 50 sessions keep working on their
//!    version and instance; a new page load carrying v1's affinity lands on v2 without an error;
//! 3. deploy v3 while v1 still drains: three live versions, v2 drains too;
//! 4. close v1's sessions one by one: v1 fails health and is reaped automatically;
//! 5. v2 reaches its drain deadline with sessions open: they get 1001, reconnect, and land on v3;
//! 6. throughout, a steady HTTP load; every session client checks every answer.
//!
//! It fails on any failed request, any session dropped or moved before its version's deadline, or anything
//! left running; it writes `report.json` and `timeline.svg` into its output directory, and cleans up on
//! success, failure and interruption.

mod app_kind;
mod setup;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use pulse_deploy_core::rollout::{plan, Desired, PlanMemory, RolloutPolicy};
use pulse_deploy_core::{Release, VersionId, VersionPhase};

use crate::load::Load;
use crate::report::{Report, StepReport};
use crate::session::{Fate, SessionHandle, SessionRecord};
pub use app_kind::AppKind;
use pulse_deploy::timeline::{self, Mark, Sample};
pub use setup::Env;

/// What the run does and where it writes.
#[derive(Debug, Clone)]
pub struct E2eConfig {
    /// The workspace root (to build the demo image).
    pub workspace: PathBuf,
    /// Where `report.json`, `timeline.svg` and the providers' state go.
    pub out_dir: PathBuf,
    /// Sessions opened on v1.
    pub sessions_v1: usize,
    /// Sessions opened on v2.
    pub sessions_v2: usize,
    /// v2's drain deadline (step 5 waits for it).
    pub v2_deadline: Duration,
    /// Build the demo image first (skip when it is known to be current). The Pulse app's images are
    /// always checked (they are cached by content tag).
    pub build_image: bool,
    /// The app deployed.
    pub app: AppKind,
}

impl E2eConfig {
    /// The defaults of `cargo xtask e2e`.
    pub fn new(workspace: PathBuf) -> Self {
        let out_dir = workspace.join("target/e2e");
        E2eConfig {
            workspace,
            out_dir,
            sessions_v1: 50,
            sessions_v2: 20,
            v2_deadline: Duration::from_secs(40),
            build_image: true,
            app: AppKind::Demo,
        }
    }
}

/// The title of the picture the run writes (`timeline.svg`).
const TIMELINE_TITLE: &str = "pulse-deploy end-to-end: sessions and weight per version";

/// How long any single wait of the run may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// Prints one progress line with the time since the run started.
pub fn progress(t0: Instant, msg: impl AsRef<str>) {
    println!("[{:>6.1}s] {}", t0.elapsed().as_secs_f64(), msg.as_ref());
}

/// Runs the whole scenario, cleaning up whatever happens (including `interrupt` resolving, e.g. Ctrl-C).
/// Writes the report and timeline, and returns the report (its `passed` says whether every check held).
pub async fn run(config: E2eConfig, interrupt: impl Future<Output = ()>) -> Report {
    let t0 = Instant::now();
    let mut report = Report::default();
    let env = match Env::start(&config, t0).await {
        Ok(env) => env,
        Err(e) => {
            report.failure = Some(format!("setup: {e}"));
            write(&config, &report);
            return report;
        }
    };
    let outcome = tokio::select! {
        r = scenario(&env, &config, &mut report) => r,
        _ = interrupt => Err("interrupted".to_string()),
    };
    report.controller_errors = env.controller.errors();
    let (samples, marks) = env.timeline();
    report.timeline = samples;
    report.marks = marks;
    let leftovers = env.cleanup().await;
    report.leftover_containers = leftovers.containers;
    let mut failure = outcome.err();
    if failure.is_none() {
        failure = check(&report, &leftovers);
    }
    report.passed = failure.is_none();
    report.failure = failure;
    write(&config, &report);
    report
}

fn check(report: &Report, leftovers: &setup::Leftovers) -> Option<String> {
    if report.failed_requests > 0 {
        return Some(format!("{} requests failed", report.failed_requests));
    }
    if report.dropped_sessions > 0 {
        return Some(format!("{} sessions dropped", report.dropped_sessions));
    }
    if leftovers.containers > 0 || leftovers.envoy_running {
        return Some(format!(
            "left running: {} containers, envoy running: {}",
            leftovers.containers, leftovers.envoy_running
        ));
    }
    None
}

fn write(config: &E2eConfig, report: &Report) {
    let _ = std::fs::create_dir_all(&config.out_dir);
    let json = serde_json::to_string_pretty(report).expect("serializable");
    let _ = std::fs::write(config.out_dir.join("report.json"), json);
    let _ = std::fs::write(
        config.out_dir.join("timeline.svg"),
        timeline::svg(TIMELINE_TITLE, &report.timeline, &report.marks),
    );
}

fn release(env: &Env, version: &str, deadline: Duration) -> Result<Release, String> {
    let mut b = Release::builder(env.app.as_str(), version, env.image.clone())
        .replicas(2)
        .port(8000)
        .health_path(env.kind.health_path())
        .drain_deadline(deadline)
        .stop_grace(Duration::from_secs(10));
    for (k, v) in env.kind.env(&env.session_secret) {
        b = b.env(k, v);
    }
    b.build().map_err(|e| e.to_string())
}

fn vid(s: &str) -> VersionId {
    VersionId::new(s).expect("valid")
}

async fn scenario(env: &Env, config: &E2eConfig, report: &mut Report) -> Result<(), String> {
    let t0 = env.t0;
    let mut step = |name: &str, started: Instant| {
        report.steps.push(StepReport { name: name.into(), seconds: started.elapsed().as_secs_f64() });
    };

    // 1. v1 with 50 sessions.
    let s = env.mark("1. deploy v1, open sessions");
    let v1 = release(env, "v1", Duration::from_secs(600))?;
    env.controller.deploy(v1.clone());
    env.controller
        .wait_for("v1 to have every new session", STEP_TIMEOUT, |p| p.target == Some(vid("v1")) && p.shifted)
        .await
        .map_err(|e| e.to_string())?;
    env.check_drain_protocol(&vid("v1")).await?;
    progress(t0, "v1 is healthy, has every new session and answers the drain protocol");
    let v1_sessions = env.open_sessions(config.sessions_v1, None).await?;
    expect_all_on(&v1_sessions, "v1")?;
    let v1_pins: BTreeMap<usize, String> =
        v1_sessions.iter().map(|h| (h.record().n, h.record().instance)).collect();
    progress(
        t0,
        format!("{} sessions open on v1 across {} instances", v1_sessions.len(), distinct(&v1_pins)),
    );
    let load = Load::start_for(env.kind, env.http.clone(), env.base.clone(), 4, Duration::from_millis(100));
    step("1. deploy v1 and open sessions", s);

    // 2. v2 takes every new session; v1 drains and keeps its sessions.
    let s = env.mark("2. deploy v2");
    let v2 = release(env, "v2", config.v2_deadline)?;
    env.controller.deploy(v2.clone());
    env.controller
        .wait_for("v2 to have every new session and v1 to drain", STEP_TIMEOUT, |p| {
            p.target == Some(vid("v2"))
                && p.shifted
                && p.phases.get(&vid("v1")) == Some(&VersionPhase::Draining)
        })
        .await
        .map_err(|e| e.to_string())?;
    progress(t0, "v2 has every new session; v1 is draining");
    wait_answers(&v1_sessions, Duration::from_secs(3)).await?;
    for h in &v1_sessions {
        let r = h.record();
        if r.fate != Fate::Open || r.version != "v1" || Some(&r.instance) != v1_pins.get(&r.n) {
            return Err(format!("v1 session {} did not stay on v1/{}: {:?}", r.n, v1_pins[&r.n], r));
        }
    }
    progress(t0, format!("all {} v1 sessions still answer on their version and instance", v1_sessions.len()));
    let stale = env.kind.open_session(9999, &env.http, &env.base, Some("v1")).await?;
    let r = stale.record();
    if r.first_version != "v2" {
        return Err(format!("a page load carrying v1's affinity landed on {}, not v2", r.first_version));
    }
    progress(
        t0,
        format!(
            "a page load carrying v1's affinity landed on v2 ({} stale-affinity redirect)",
            r.stale_redirects
        ),
    );
    let mut v2_sessions = env.open_sessions(config.sessions_v2, None).await?;
    v2_sessions.push(stale);
    expect_all_on(&v2_sessions, "v2")?;
    progress(t0, format!("{} sessions open on v2", v2_sessions.len()));
    step("2. deploy v2, v1 drains", s);

    // 3. v3 while v1 still drains: three live versions.
    let s = env.mark("3. deploy v3");
    let v3 = release(env, "v3", Duration::from_secs(600))?;
    env.controller.deploy(v3.clone());
    let p = env
        .controller
        .wait_for("v3 to have every new session and v2 to drain", STEP_TIMEOUT, |p| {
            p.target == Some(vid("v3"))
                && p.shifted
                && p.phases.get(&vid("v2")) == Some(&VersionPhase::Draining)
                && p.phases.get(&vid("v1")) == Some(&VersionPhase::Draining)
        })
        .await
        .map_err(|e| e.to_string())?;
    progress(t0, format!("three live versions: {:?}", p.phases));
    let v2_deadline = env.deadline_of(&vid("v2")).await?;
    step("3. deploy v3, v1 and v2 drain", s);

    // 4. v1's sessions close one by one; v1 is reaped automatically.
    let s = env.mark("4. close v1 sessions");
    let mut records: Vec<SessionRecord> = Vec::new();
    for h in v1_sessions {
        records.push(h.close().await);
        tokio::time::sleep(Duration::from_millis(100)).await; // pacing of users leaving, not synchronisation
    }
    let last_closed = Instant::now();
    progress(t0, "v1's last session closed");
    env.wait_gone(&vid("v1"), STEP_TIMEOUT).await?;
    let reap = last_closed.elapsed().as_secs_f64();
    report.last_session_to_removal_seconds = Some(reap);
    progress(t0, format!("v1 reaped {reap:.1} s after its last session closed (containers and routes gone)"));
    step("4. v1's sessions close, v1 reaped", s);

    // 5. v2 reaches its deadline with sessions open: 1001, reconnect, land on v3.
    let s = env.mark("5. v2 deadline");
    let left = v2_deadline.duration_since(SystemTime::now()).unwrap_or_default();
    progress(t0, format!("waiting for v2's drain deadline ({:.0} s from now)", left.as_secs_f64()));
    env.wait_gone(&vid("v2"), left + STEP_TIMEOUT).await?;
    report.deadline_to_removal_seconds =
        SystemTime::now().duration_since(v2_deadline).ok().map(|d| d.as_secs_f64());
    progress(t0, "v2 reaped at its deadline");
    wait_answers(&v2_sessions, Duration::from_secs(3)).await?;
    for h in &v2_sessions {
        let r = h.record();
        if r.fate != Fate::Open || r.version != "v3" {
            return Err(format!("v2 session {} did not move to v3: {r:?}", r.n));
        }
    }
    progress(t0, format!("all {} v2 sessions got 1001, reconnected and landed on v3", v2_sessions.len()));
    step("5. v2's deadline: sessions move to v3", s);

    // 6. Stop the load, close everything, count.
    let s = env.mark("6. finish");
    let stats = load.stop().await;
    for h in v2_sessions {
        records.push(h.close().await);
    }
    report.ok_requests = stats.ok.load(std::sync::atomic::Ordering::SeqCst);
    report.failed_requests = stats.failed.load(std::sync::atomic::Ordering::SeqCst);
    let failures = stats.failures.lock().unwrap().clone();
    let mut lat = stats.latencies_us.lock().unwrap().clone();
    lat.sort_unstable();
    if !lat.is_empty() {
        report.load_latency_ms.insert("p50".into(), lat[lat.len() / 2] as f64 / 1000.0);
        report.load_latency_ms.insert("p99".into(), lat[lat.len() * 99 / 100] as f64 / 1000.0);
    }
    report.sessions_opened = records.len() as u64;
    for r in &records {
        report.session_answers += r.answers;
        let moved_at_deadline = r.moves.iter().all(|m| m.from == "v2" && m.to == "v3");
        match (&r.fate, moved_at_deadline) {
            (Fate::Closed, true) => report.sessions_moved += r.moves.len() as u64,
            _ => {
                report.dropped_sessions += 1;
                progress(t0, format!("DROPPED session {}: {r:?}", r.n));
            }
        }
    }
    progress(
        t0,
        format!(
            "load: {} ok, {} failed{}; sessions: {} opened, {} answers checked, {} moved at v2's deadline, {} dropped",
            report.ok_requests,
            report.failed_requests,
            if failures.is_empty() { String::new() } else { format!(" ({failures:?})") },
            report.sessions_opened,
            report.session_answers,
            report.sessions_moved,
            report.dropped_sessions
        ),
    );
    step("6. finish", s);
    Ok(())
}

fn distinct(pins: &BTreeMap<usize, String>) -> usize {
    pins.values().collect::<std::collections::BTreeSet<_>>().len()
}

fn expect_all_on(sessions: &[SessionHandle], version: &str) -> Result<(), String> {
    for h in sessions {
        let r = h.record();
        if r.first_version != version {
            return Err(format!("session {} opened on {}, expected {version}", r.n, r.first_version));
        }
    }
    Ok(())
}

/// Waits until every open session has answered at least once more (they answer every second).
async fn wait_answers(sessions: &[SessionHandle], timeout: Duration) -> Result<(), String> {
    let before: Vec<u64> = sessions.iter().map(|h| h.record().answers).collect();
    let deadline = Instant::now() + timeout;
    loop {
        let lagging = sessions
            .iter()
            .zip(&before)
            .filter(|(h, b)| {
                let r = h.record();
                r.fate == Fate::Open && r.answers <= **b
            })
            .count();
        let failed: Vec<_> = sessions.iter().map(|h| h.record()).filter(|r| r.fate != Fate::Open).collect();
        if let Some(r) = failed.first() {
            return Err(format!("session {} failed: {:?}", r.n, r.fate));
        }
        if lagging == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{lagging} sessions stopped answering"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Samples weight, sessions and phase of every version (for the timeline).
pub(crate) fn sample(
    observed: &pulse_deploy_core::rollout::Observed,
    t: f64,
    policy: &RolloutPolicy,
) -> Vec<Sample> {
    let desired = Desired { app: observed.app.clone(), target: None };
    let p = plan(&desired, observed, &PlanMemory::default(), policy);
    observed
        .versions
        .iter()
        .map(|v| Sample {
            t,
            version: v.id().to_string(),
            weight: observed.weight(v.id()),
            sessions: v.known_sessions(),
            phase: p.phases.get(v.id()).map(|p| p.to_string()).unwrap_or_default(),
        })
        .collect()
}

/// A shared, growing timeline.
#[derive(Debug, Default, Clone)]
pub(crate) struct Timeline {
    pub samples: Arc<Mutex<Vec<Sample>>>,
    pub marks: Arc<Mutex<Vec<Mark>>>,
}
