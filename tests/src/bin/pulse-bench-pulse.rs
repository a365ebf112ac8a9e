//! `pulse-bench-pulse`: figures of the example Pulse app (`examples/pulse-app/`) on Docker, one container
//! per variant, measured side by side in one run (run by `cargo xtask bench pulse`):
//!
//! - page loads per second: `POST /_pulse/prerender` of `/` (what the page tier sends for every page
//!   view, a fresh browser each time), `PULSE_BENCH_WORKERS` concurrent clients (default 8) for
//!   `PULSE_BENCH_SECS` seconds (default 5) per round;
//! - Socket.IO connect: from opening the WebSocket to the CONNECT answer carrying the render id of a
//!   fresh prerender (engine.io OPEN, `40{auth}`, `40{sid}`), 200 sequential connects per round, p50/p99.
//!
//! Rounds alternate between the variants (`PULSE_BENCH_ROUNDS`, default 3) so that machine noise hits
//! each alike; the figures are medians over rounds. The variants are the example app as deployed (the
//! drain plugin in its `App`, launched by `pulse-deploy-serve`: `with plugin`) and the same routes and
//! options without the plugin under bare uvicorn (`without plugin`; `python_image::app::AppImage`); the
//! ratio with/without is printed. A benchmark, not a test: it asserts nothing about time. Writes
//! `target/bench/pulse.json`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use pulse_deploy_core::{AppName, InstanceState, Orchestrator, Release, Secret};
use pulse_deploy_local::docker::{connect_docker, labels, DockerOrchestrator};
use pulse_deploy_tests::http::HttpClient;
use pulse_deploy_tests::pulse_tab::{self, Cookies};
use pulse_deploy_tests::python_image::app::AppImage;
use pulse_deploy_tests::socketio::SocketIo;

/// One configuration of the app: a label and the image that holds it.
struct Variant {
    label: &'static str,
    image: AppImage,
}

/// The variants compared, side by side: the app with the drain plugin and without it.
fn variants() -> Vec<Variant> {
    vec![
        Variant { label: "with plugin", image: AppImage::WithPlugin },
        Variant { label: "without plugin", image: AppImage::WithoutPlugin },
    ]
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> ExitCode {
    pulse_deploy_tests::init_logging();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pulse-bench-pulse: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What one variant measured over all rounds.
#[derive(Debug, Default, serde::Serialize)]
struct Figures {
    label: String,
    page_loads_per_sec: Vec<f64>,
    connect_p50_ms: Vec<f64>,
    connect_p99_ms: Vec<f64>,
    failures: u64,
}

async fn run() -> Result<(), String> {
    let workspace = pulse_deploy_tests::workspace_root();
    let docker = connect_docker().await.map_err(|e| e.to_string())?;
    let variants = variants();
    let mut images = Vec::new();
    for v in &variants {
        images.push(
            pulse_deploy_tests::python_image::ensure_example_image(&docker, &workspace, v.image).await?,
        );
    }
    let rounds: usize = env_or("PULSE_BENCH_ROUNDS", 3);
    let workers: usize = env_or("PULSE_BENCH_WORKERS", 8);
    let secs: u64 = env_or("PULSE_BENCH_SECS", 5);
    let suffix: String = (0..5).map(|_| (b'a' + rand::random::<u8>() % 26) as char).collect();
    let secret = Secret::new("bench", format!("bench-secret-{:016x}", rand::random::<u64>()))
        .map_err(|e| e.to_string())?;
    let state_dir = std::env::temp_dir().join(format!("pulse-bench-pulse-{suffix}"));
    let o = DockerOrchestrator::builder()
        .drain_secret(secret)
        .state_dir(&state_dir)
        .docker(docker.clone())
        .retire_wait(Duration::from_secs(2))
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let apps: Vec<AppName> = (0..variants.len())
        .map(|i| AppName::new(format!("pbench{i}-{suffix}")).expect("valid app name"))
        .collect();
    let outcome = async {
        let http = HttpClient::new();
        let mut bases = Vec::new();
        for (image, app) in images.iter().zip(&apps) {
            let release = Release::builder(app.as_str(), "v1", image.as_str())
                .replicas(1)
                .port(8000)
                .health_path("/_pulse/health")
                .env("PULSE_SECRET", format!("session-secret-{:016x}", rand::random::<u64>()))
                .env("PULSE_SESSION_GRACE_SECS", "2")
                .build()
                .map_err(|e| e.to_string())?;
            o.deploy(&release).await.map_err(|e| e.to_string())?;
            bases.push(serving(&o, app, &http).await?);
        }
        let mut figures: Vec<Figures> =
            variants.iter().map(|v| Figures { label: v.label.into(), ..Default::default() }).collect();
        for round in 0..rounds {
            for (i, base) in bases.iter().enumerate() {
                let (rate, failed) = page_loads(&http, base, workers, Duration::from_secs(secs)).await;
                let (p50, p99) = connects(&http, base, 200).await?;
                eprintln!(
                    "round {}: {:<16} {rate:>7.0} page loads/s ({failed} failed)   connect p50 {p50:.2} ms p99 {p99:.2} ms",
                    round + 1,
                    variants[i].label
                );
                let f = &mut figures[i];
                f.page_loads_per_sec.push(rate);
                f.connect_p50_ms.push(p50);
                f.connect_p99_ms.push(p99);
                f.failures += failed;
            }
        }
        Ok::<_, String>(figures)
    }
    .await;
    let filters = std::collections::HashMap::from([(
        "label",
        apps.iter().map(|a| format!("{}={a}", labels::APP)).collect::<Vec<_>>(),
    )]);
    let opts = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    for c in docker.list_containers(Some(opts)).await.unwrap_or_default() {
        let rm = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        let _ = docker.remove_container(c.id.as_deref().unwrap_or_default(), Some(rm)).await;
    }
    let _ = std::fs::remove_dir_all(&state_dir);
    let figures = outcome?;
    println!(
        "\nexample Pulse app ({}), one container per variant, {rounds} alternating rounds, medians:\n\
         {:<16} {:>14} {:>18} {:>18} {:>9}",
        images.join(" vs "),
        "variant",
        "page loads/s",
        "connect p50 (ms)",
        "connect p99 (ms)",
        "failures"
    );
    for f in &figures {
        println!(
            "{:<16} {:>14.0} {:>18.2} {:>18.2} {:>9}",
            f.label,
            median(&f.page_loads_per_sec),
            median(&f.connect_p50_ms),
            median(&f.connect_p99_ms),
            f.failures
        );
    }
    if let [with, without] = figures.as_slice() {
        let ratio = |f: fn(&Figures) -> &Vec<f64>| median(f(with)) / median(f(without));
        println!(
            "with / without plugin: page loads/s x{:.3}, connect p50 x{:.3}, connect p99 x{:.3}",
            ratio(|f| &f.page_loads_per_sec),
            ratio(|f| &f.connect_p50_ms),
            ratio(|f| &f.connect_p99_ms)
        );
    }
    let out = workspace.join("target/bench");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join("pulse.json"), serde_json::to_string_pretty(&figures).expect("json"));
    if figures.iter().any(|f| f.failures > 0) {
        return Err("some requests failed during the benchmark (figures above are not comparable)".into());
    }
    Ok(())
}

/// Waits until the app's one instance answers its health path; returns its base URL.
async fn serving(o: &DockerOrchestrator, app: &AppName, http: &HttpClient) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = o.versions(app).await.ok().and_then(|mut v| v.pop()).and_then(|v| {
            v.instances.into_iter().find(|i| i.state == InstanceState::Running && i.endpoint.is_some())
        });
        if let Some(ep) = found.and_then(|i| i.endpoint) {
            let base = format!("http://{}:{}", ep.host, ep.port);
            if http.get(&format!("{base}/_pulse/health"), &[]).await.is_ok_and(|a| a.status == 200) {
                return Ok(base);
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{app} did not answer /_pulse/health within 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Page loads per second over `span` with `workers` concurrent clients, and how many failed.
async fn page_loads(http: &HttpClient, base: &str, workers: usize, span: Duration) -> (f64, u64) {
    let (ok, failed, stop) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (http, base, ok, failed, stop) =
                (http.clone(), base.to_owned(), ok.clone(), failed.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let mut jar = Cookies::new();
                    match pulse_tab::page_load(&http, &base, &mut jar).await {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(span).await; // the measurement window itself, not synchronisation
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    (ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(), failed.load(Ordering::Relaxed))
}

/// p50 and p99 (ms) of `n` sequential Socket.IO connects, each with a fresh prerender's render id.
async fn connects(http: &HttpClient, base: &str, n: usize) -> Result<(f64, f64), String> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let mut jar = Cookies::new();
        let page = pulse_tab::page_load(http, base, &mut jar).await?;
        let auth = serde_json::json!({"render_id": page.render_id});
        let started = Instant::now();
        let sio = SocketIo::connect(base, &pulse_tab::cookie_header(&jar), &auth)
            .await
            .map_err(|e| e.to_string())?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        sio.close().await;
    }
    samples.sort_by(f64::total_cmp);
    Ok((samples[samples.len() / 2], samples[samples.len() * 99 / 100]))
}

fn median(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}
