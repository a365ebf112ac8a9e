//! Benchmark of the Envoy router (`cargo bench -p pulse-deploy-local --bench envoy_weight_flip`):
//!
//! - time from `set_weights` being called to the first new session following the new weights (p50/p99),
//!   and how long `set_weights` itself takes (it returns once Envoy has applied the routes);
//! - requests per second through Envoy versus straight to the instance (same in-process upstream).
//!
//! Real Envoy, real HTTP on loopback; bounded in count and time. Prints a table and writes
//! `target/bench/envoy-weight-flip.json`. Iterations: `PULSE_BENCH_FLIPS` (default 100); load duration:
//! `PULSE_BENCH_LOAD_SECS` (default 3).

#[path = "../tests/envoy_common/mod.rs"]
mod envoy_common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_common::*;
use pulse_deploy_core::{TrafficRouter, Weights};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn load(http: &Http, url: &str, host: Option<&str>, secs: u64, concurrency: usize) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, done, host) = (http.clone(), url.to_owned(), done.clone(), host.map(str::to_owned));
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let headers: Vec<(&str, &str)> =
                    host.as_deref().map(|h| vec![("host", h)]).unwrap_or_default();
                let resp = http.get(&url, &headers).await;
                assert_eq!(resp.status, 200, "{resp:?}");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let start = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; this bench has no sub-benchmarks to list
    }
    if !envoy_available() {
        return;
    }
    let flips: usize = std::env::var("PULSE_BENCH_FLIPS").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
    let load_secs: u64 =
        std::env::var("PULSE_BENCH_LOAD_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let router = TestRouter::start().await;
    let (a, b) = (Upstream::start("v1", "a").await, Upstream::start("v2", "b").await);
    router.attach(&route("v1", &[&a])).await.unwrap();
    router.attach(&route("v2", &[&b])).await.unwrap();
    router.set_weights(&app(), &Weights::all_to(v("v1"))).await.unwrap();
    let http = Http::new();
    let url = router.url("/");

    let mut apply = Vec::with_capacity(flips);
    let mut follow = Vec::with_capacity(flips);
    let mut stale_after_return = 0usize;
    for i in 0..flips {
        let target = if i % 2 == 0 { "v2" } else { "v1" };
        let start = Instant::now();
        router.set_weights(&app(), &Weights::all_to(v(target))).await.unwrap();
        apply.push(start.elapsed());
        let deadline = start + Duration::from_secs(10);
        loop {
            let resp = http.get(&url, &[]).await;
            if resp.version() == Some(target) {
                follow.push(start.elapsed());
                break;
            }
            stale_after_return += 1;
            assert!(Instant::now() < deadline, "new sessions never followed the flip to {target}");
        }
    }
    apply.sort();
    follow.sort();

    let direct_url = format!("http://{}/", a.addr);
    router.set_weights(&app(), &Weights::all_to(v("v1"))).await.unwrap();
    let rps_direct = load(&http, &direct_url, None, load_secs, 16).await;
    let rps_envoy = load(&http, &url, None, load_secs, 16).await;

    println!("envoy weight flip ({flips} flips, real Envoy on loopback)");
    println!(
        "  set_weights returns (applied): p50 {:.2} ms  p99 {:.2} ms",
        ms(percentile(&apply, 0.5)),
        ms(percentile(&apply, 0.99))
    );
    println!(
        "  new traffic follows:          p50 {:.2} ms  p99 {:.2} ms",
        ms(percentile(&follow, 0.5)),
        ms(percentile(&follow, 0.99))
    );
    println!("  new sessions on the old version after set_weights returned: {stale_after_return}");
    println!(
        "requests per second (16 concurrent clients, {load_secs} s each, 2 cores shared with the client)"
    );
    println!(
        "  straight to the instance: {rps_direct:.0}/s   through Envoy: {rps_envoy:.0}/s   ratio {:.2}",
        rps_envoy / rps_direct
    );

    let report = serde_json::json!({
        "flips": flips,
        "set_weights_applied_ms": { "p50": ms(percentile(&apply, 0.5)), "p99": ms(percentile(&apply, 0.99)) },
        "traffic_follows_ms": { "p50": ms(percentile(&follow, 0.5)), "p99": ms(percentile(&follow, 0.99)) },
        "stale_sessions_after_return": stale_after_return,
        "rps_direct": rps_direct,
        "rps_envoy": rps_envoy,
        "rps_ratio": rps_envoy / rps_direct,
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("envoy-weight-flip.json"), serde_json::to_string_pretty(&report).unwrap())
        .unwrap();
    println!("wrote {}", out.join("envoy-weight-flip.json").display());
}
