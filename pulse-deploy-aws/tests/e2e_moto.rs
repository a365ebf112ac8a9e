//! The end-to-end scenario on the emulator (`cargo xtask e2e --provider aws`): v1 -> v2 -> v3 driven by
//! the engine (`Executor` over `EcsOrchestrator` + `AlbRouter` + `HttpDrainClient`), with live WebSocket
//! sessions on v1 and v2 and a steady page-load load, every client going through
//! `moto_support::alb_evaluator` (the stand-in for the ALB's data plane, routing by the listener's rules
//! and weighted forward action as they are on the emulator). Checks: no failed request, no dropped
//! session, new sessions on the newest version, affinity rules that send `v1` to v1 and never `v10`,
//! the admin paths never forwarded, old versions reaped once their sessions end, nothing left on AWS.
//! Writes `target/e2e-aws/report.json` (the local e2e's fields where they apply, plus
//! `aws_api_calls` per API and `leftover_aws_resources`).
//!
//! Needs `moto_server` (`cargo xtask install-tools`); with `CI=true` a missing one fails, otherwise the
//! test skips.

mod moto_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moto_support::alb_evaluator::AlbEvaluator;
use moto_support::counting::{format_calls, ApiCalls};
use moto_support::rollouts::{poll, Rig, Session, STEP};
use pulse_deploy_core::rollout::{discard, Goal};
use pulse_deploy_core::{VersionId, Weights};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LONG: Duration = Duration::from_secs(600);
/// Sessions opened on v1 and on v2.
const SESSIONS: usize = 4;

fn v(id: &str) -> VersionId {
    VersionId::new(id).expect("version")
}

/// One HTTP answer through the evaluator.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One request (`Connection: close`) through the evaluator.
async fn request(
    proxy: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Answer> {
    let mut s = tokio::net::TcpStream::connect(proxy).await?;
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {proxy}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("content-length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {text:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Answer { status, headers })
}

/// Redirects a browser follows in a row before it gives up (the Fetch standard's limit).
const MAX_REDIRECTS: u64 = 20;

/// A page load as a fresh browser does it: `GET /`, following stale-affinity redirects (at most
/// [`MAX_REDIRECTS`]); the version that answered and the redirects followed.
async fn page_load(proxy: SocketAddr) -> Result<(String, u64), String> {
    let mut target = "/".to_owned();
    for redirects in 0..=MAX_REDIRECTS {
        let a = request(proxy, "GET", &target, &[]).await.map_err(|e| e.to_string())?;
        match a.status {
            200 => return Ok((a.header("x-pulse-version").unwrap_or("?").to_owned(), redirects)),
            307 => target = a.header("location").unwrap_or("/").to_owned(),
            other => return Err(format!("{other} from {:?}", a.header("x-pulse-version"))),
        }
    }
    Err(format!("more than {MAX_REDIRECTS} redirects in a row"))
}

/// The steady load: `workers` fresh browsers each loading the page every `every`.
#[derive(Debug, Default)]
struct LoadStats {
    ok: AtomicU64,
    failed: AtomicU64,
    redirects: AtomicU64,
    longest_redirect_chain: AtomicU64,
    failures: Mutex<Vec<String>>,
    latencies_us: Mutex<Vec<u64>>,
    versions: Mutex<BTreeMap<String, u64>>,
}

fn start_load(
    proxy: SocketAddr,
    workers: usize,
    every: Duration,
) -> (Arc<AtomicBool>, Arc<LoadStats>, Vec<tokio::task::JoinHandle<()>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(LoadStats::default());
    let tasks = (0..workers)
        .map(|_| {
            let (stop, stats) = (stop.clone(), stats.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every); // the load's pacing, not synchronisation
                while !stop.load(Ordering::SeqCst) {
                    tick.tick().await;
                    let t = Instant::now();
                    match page_load(proxy).await {
                        Ok((version, redirects)) => {
                            stats.ok.fetch_add(1, Ordering::SeqCst);
                            stats.redirects.fetch_add(redirects, Ordering::SeqCst);
                            stats.longest_redirect_chain.fetch_max(redirects, Ordering::SeqCst);
                            *stats.versions.lock().unwrap().entry(version).or_default() += 1;
                        }
                        Err(e) => {
                            stats.failed.fetch_add(1, Ordering::SeqCst);
                            stats.failures.lock().unwrap().push(e);
                        }
                    }
                    stats.latencies_us.lock().unwrap().push(t.elapsed().as_micros() as u64);
                }
            })
        })
        .collect();
    (stop, stats, tasks)
}

/// `n` new sessions through the evaluator, each answered once; all on `version`.
async fn open_sessions(proxy: SocketAddr, n: usize, version: &str) -> Vec<Session> {
    let mut out = Vec::new();
    for _ in 0..n {
        let mut s = Session::open_url(&format!("ws://{proxy}/ws")).await;
        assert_eq!(s.version, version, "a new session lands on the newest version");
        s.increment().await;
        out.push(s);
    }
    out
}

async fn answer_all(sessions: &mut [Session]) {
    for s in sessions {
        s.increment().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_v1_v2_v3_through_the_listener_rules_with_live_sessions_and_steady_load() {
    let Some(rig) = Rig::start().await else { return };
    let started = Instant::now();
    let calls = ApiCalls::counting();
    let evaluator_calls = ApiCalls::counting();
    let aws = rig.emulator.aws_through(calls.client());
    let executor = rig.executor_on(&aws, rig.policy(), discard());
    let listener = rig.router().listener(&rig.app).await.expect("the app's listener");
    let evaluator = AlbEvaluator::start(&rig.emulator.aws_through(evaluator_calls.client()), &listener).await;
    let proxy = evaluator.addr;
    let mut steps: Vec<serde_json::Value> = Vec::new();
    let mut step = |name: &str, t: Instant| {
        println!("[{:5.1} s] {name} ({:.1} s)", started.elapsed().as_secs_f64(), t.elapsed().as_secs_f64());
        steps.push(serde_json::json!({"name": name, "seconds": t.elapsed().as_secs_f64()}));
    };

    // 1. v1, sessions and the load.
    let t = Instant::now();
    executor.deploy(&rig.release("v1", LONG), Goal::Shifted).await.expect("deploying v1");
    poll("a page load through the evaluator to reach v1", STEP, || async {
        page_load(proxy).await.ok().filter(|(version, _)| version == "v1")
    })
    .await;
    let mut s1 = open_sessions(proxy, SESSIONS, "v1").await;
    let (stop, stats, load) = start_load(proxy, 4, Duration::from_millis(100));
    // Instance pinning inside the version: the stickiness cookie keeps a browser on its task.
    let first = request(proxy, "GET", "/", &[]).await.expect("page load");
    let pin =
        first.header("set-cookie").and_then(|c| c.split(';').next()).expect("a stickiness cookie").to_owned();
    for _ in 0..4 {
        let again = request(proxy, "GET", "/", &[("Cookie", &pin)]).await.expect("page load");
        assert_eq!(again.header("x-pulse-instance"), first.header("x-pulse-instance"), "pinned by {pin}");
    }
    let admin =
        request(proxy, "POST", "/_pulse/admin/drain", &[("x-pulse-version", "v1")]).await.expect("admin");
    assert_eq!(admin.status, 404, "the admin block answers, not the task");
    assert_eq!(admin.header("x-pulse-version"), None, "the admin path never reaches a task");
    step("1. deploy v1, open sessions, start the load", t);

    // 2. v2 takes every new session; v1 drains, keeps its sessions and its affinity rules.
    let t = Instant::now();
    executor.deploy(&rig.release("v2", LONG), Goal::Shifted).await.expect("deploying v2");
    assert_eq!(rig.weights().await, Weights::all_to(v("v2")));
    answer_all(&mut s1).await;
    let mut s2 = poll("new sessions through the evaluator to land on v2", STEP, || async {
        // Until the shift has propagated a new session may still reach v1, which refuses it (409).
        let s = Session::try_open_url(&format!("ws://{proxy}/ws")).await.ok()?;
        (s.version == "v2").then_some(s)
    })
    .await;
    s2.increment().await;
    let mut s2 = {
        let mut more = open_sessions(proxy, SESSIONS - 1, "v2").await;
        more.insert(0, s2);
        more
    };
    // The rules: v1's cookie reaches v1 (draining: it answers with the stale-affinity redirect), v10's
    // cookie matches no rule and takes the default action (v2).
    let stale = request(proxy, "GET", "/", &[("Cookie", "a=b; pulse-version=v1")]).await.expect("v1 cookie");
    assert_eq!(
        (stale.status, stale.header("x-pulse-version")),
        (307, Some("v1")),
        "v1's cookie rule: {stale:?}"
    );
    let ten = request(proxy, "GET", "/", &[("Cookie", "pulse-version=v10")]).await.expect("v10 cookie");
    assert_eq!(
        (ten.status, ten.header("x-pulse-version")),
        (200, Some("v2")),
        "no rule of v1 matches v10: {ten:?}"
    );
    let key =
        request(proxy, "GET", "/?pulse_version=v1", &[("Cookie", "pulse-version=v2")]).await.expect("key");
    assert_eq!(key.header("x-pulse-version"), Some("v1"), "the key rule beats the cookie rule: {key:?}");
    step("2. deploy v2, v1 drains", t);

    // 3. v3: three live versions.
    let t = Instant::now();
    executor.deploy(&rig.release("v3", LONG), Goal::Shifted).await.expect("deploying v3");
    assert_eq!(rig.weights().await, Weights::all_to(v("v3")));
    assert_eq!(rig.versions().await, ["v1", "v2", "v3"], "three live versions");
    answer_all(&mut s1).await;
    answer_all(&mut s2).await;
    let mut s3 = poll("new sessions through the evaluator to land on v3", STEP, || async {
        let s = Session::try_open_url(&format!("ws://{proxy}/ws")).await.ok()?;
        (s.version == "v3").then_some(s)
    })
    .await;
    s3.increment().await;
    step("3. deploy v3, v1 and v2 drain", t);

    // 4. v1's sessions end: v1 is reaped; v2 (sessions open, deadline far) is kept.
    let t = Instant::now();
    let settle = {
        let executor = executor.clone();
        let app = rig.app.clone();
        tokio::spawn(async move { executor.reconcile(&app, Goal::Settled).await })
    };
    let sessions_opened = (s1.len() + s2.len() + 1) as u64;
    let mut session_answers = 0;
    for s in s1 {
        session_answers += s.answers();
        s.end().await;
    }
    let v1_closed = Instant::now();
    poll("v1 to be reaped", STEP, || async {
        (!rig.versions().await.contains(&"v1".to_owned())).then_some(())
    })
    .await;
    let v1_reap = v1_closed.elapsed().as_secs_f64();
    assert!(rig.versions().await.contains(&"v2".to_owned()), "v2 holds sessions before its deadline: kept");
    answer_all(&mut s2).await;
    step("4. v1's sessions end, v1 reaped", t);

    // 5. v2's sessions end: v2 is reaped; the settle completes.
    let t = Instant::now();
    for s in s2 {
        session_answers += s.answers();
        s.end().await;
    }
    let v2_closed = Instant::now();
    settle.await.expect("settle task").expect("settling");
    let v2_reap = v2_closed.elapsed().as_secs_f64();
    assert_eq!(rig.versions().await, ["v3"]);
    s3.increment().await;
    step("5. v2's sessions end, v2 reaped", t);

    // 6. Stop the load, tear down, count.
    let t = Instant::now();
    stop.store(true, Ordering::SeqCst);
    for l in load {
        l.await.expect("load worker");
    }
    session_answers += s3.answers();
    s3.end().await;
    let rollout_calls = calls.per_operation();
    rig.tear_down().await;
    let leftovers = rig.leftovers().await;
    step("6. stop the load, tear down", t);

    let log = evaluator.log();
    let admin_forwarded =
        log.iter().filter(|r| r.path.starts_with("/_pulse/admin") && r.target.is_some()).count();
    let mut lat = stats.latencies_us.lock().unwrap().clone();
    lat.sort_unstable();
    let ms = |q: usize| lat.get(lat.len() * q / 100).map(|us| *us as f64 / 1000.0);
    let failed = stats.failed.load(Ordering::SeqCst);
    let failures = stats.failures.lock().unwrap().clone();
    let report = serde_json::json!({
        "passed": failed == 0 && leftovers.is_empty() && admin_forwarded == 0,
        "provider": "aws (moto + ALB evaluator)",
        "failed_requests": failed,
        "ok_requests": stats.ok.load(Ordering::SeqCst),
        "load_redirects_followed": stats.redirects.load(Ordering::SeqCst),
        "load_longest_redirect_chain": stats.longest_redirect_chain.load(Ordering::SeqCst),
        "evaluator_propagation_ms": moto_support::alb_evaluator::CACHE_FOR.as_millis() as u64,
        "load_versions": *stats.versions.lock().unwrap(),
        "load_latency_ms": {"p50": ms(50), "p99": ms(99)},
        // Every session is checked on every step (same version, instance and counter) and ended by
        // the client; any loss fails the test before this report is written.
        "dropped_sessions": 0,
        "sessions_moved": 0,
        "sessions_opened": sessions_opened,
        "session_answers": session_answers,
        "last_session_to_removal_seconds": v1_reap,
        "v2_last_session_to_removal_seconds": v2_reap,
        "steps": steps,
        "requests_through_evaluator": log.len(),
        "admin_requests_forwarded": admin_forwarded,
        "aws_api_calls": rollout_calls,
        "aws_api_calls_total": rollout_calls.values().sum::<u32>(),
        "evaluator_aws_api_calls": evaluator_calls.per_operation(),
        "leftover_aws_resources": leftovers.len(),
        "leftovers": leftovers,
        "seconds": started.elapsed().as_secs_f64(),
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-aws");
    std::fs::create_dir_all(&out).expect("report dir");
    std::fs::write(out.join("report.json"), serde_json::to_string_pretty(&report).expect("json"))
        .expect("report");
    println!("provider AWS API calls: {}", format_calls(&rollout_calls));
    println!("evaluator AWS API calls: {}", format_calls(&evaluator_calls.per_operation()));
    println!(
        "report ({}): {}",
        out.join("report.json").display(),
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert_eq!(failed, 0, "failed page loads: {failures:?}");
    assert_eq!(admin_forwarded, 0, "an admin path was forwarded to a task");
    assert!(leftovers.is_empty(), "left on AWS after the scenario: {leftovers:#?}");
}
