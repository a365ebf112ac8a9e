//! The drain benchmark (`cargo xtask bench drain`; not a test). Against the real `pulse-demo-app` binary on
//! loopback: N concurrent WebSocket sessions (default 10,000), the server's memory per session (RSS delta /
//! sessions), health latency p50/p99 while every session is open and a share of them is busy, drain-ack
//! latency, and shutdown (every socket closed with 1001, exit code). Then the demo's page-load throughput
//! with and without the drain layer, side by side in one process, alternating rounds.
//!
//! `--sessions N` changes the session count. RLIMIT_NOFILE is raised to its hard limit; if that cannot hold
//! N sessions (each costs one descriptor in the server and one here), N is lowered and the reason printed.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use pulse_deploy_core::drain::{DrainClient, HttpDrainClient};
use pulse_deploy_core::{Endpoint, Instance, InstanceState, Secret, VersionId};
use pulse_server_drain::demo::{self, DemoConfig};
use pulse_server_drain::{DrainConfig, DrainState};
use rustix::process::{getrlimit, kill_process, setrlimit, Pid, Resource, Rlimit, Signal};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SECRET: &str = "bench-secret-0123456789abcdef";
/// Length of one throughput round (short in smoke mode).
static ROUND: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Raises the descriptor limit to its hard maximum; returns the soft limit now in force.
fn raise_nofile() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum;
    let _ = setrlimit(Resource::Nofile, Rlimit { current: hard, maximum: hard });
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`) run a quick smoke version.
    let full = std::env::args().any(|a| a == "--bench");
    let mut wanted = if full { 10_000usize } else { 50 };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--sessions" {
            wanted = args.next().and_then(|v| v.parse().ok()).expect("--sessions N");
        }
    }
    let _ = ROUND.set(if full { Duration::from_secs(2) } else { Duration::from_millis(100) });
    let nofile = raise_nofile();
    let possible = nofile.saturating_sub(256) as usize;
    let sessions = wanted.min(possible);
    println!("pulse-server-drain drain benchmark");
    println!("  RLIMIT_NOFILE (soft, after raising to the hard limit): {nofile}");
    if sessions < wanted {
        println!(
            "  NOTE: {wanted} sessions need {wanted} descriptors in each process; the hard limit allows {possible}; using {sessions}"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(run(sessions));
}

async fn spawn_demo() -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pulse-demo-app"))
        .env_remove("PULSE_DRAIN_SECRET_FILE")
        .env("PORT", "0")
        .env("PULSE_VERSION", "bench")
        .env("PULSE_INSTANCE_ID", "bench-1")
        .env("PULSE_DRAIN_SECRET", SECRET)
        .env("PULSE_SHUTDOWN_TIMEOUT_SECS", "20")
        .env("PULSE_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn pulse-demo-app");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line =
        tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
    let addr = line.rsplit(' ').next().unwrap().replace("0.0.0.0", "127.0.0.1");
    (child, addr)
}

async fn run(n: usize) {
    let (mut child, addr) = spawn_demo().await;
    let pid = child.id().unwrap();
    let http: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let health_url: http::Uri = format!("http://{addr}/health").parse().unwrap();
    let health = |http: Client<HttpConnector, Empty<Bytes>>, url: http::Uri| async move {
        let r = http.get(url).await.unwrap();
        let status = r.status();
        r.into_body().collect().await.unwrap();
        status
    };
    assert!(health(http.clone(), health_url.clone()).await.is_success());
    let rss_before = rss_kib(pid);

    // 1. Open n sessions, 256 handshakes in flight.
    let started = Instant::now();
    let ws_url = format!("ws://{addr}/ws");
    let sockets: Vec<Ws> = futures::stream::iter(0..n)
        .map(|_| {
            let url = ws_url.clone();
            async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket handshake");
                let hello = ws.next().await.unwrap().unwrap();
                assert!(matches!(hello, Message::Text(_)));
                ws
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let open_time = started.elapsed();
    let settle = Instant::now() + Duration::from_secs(5);
    let mut rss_after = rss_kib(pid);
    // The server's RSS is read once every session answered; let late allocations land (bounded poll).
    while Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = rss_kib(pid);
        if now <= rss_after {
            break;
        }
        rss_after = now;
    }
    println!("\nsessions");
    println!("  concurrent WebSocket sessions: {}", sockets.len());
    println!(
        "  opened in {:.2} s ({:.0} handshakes/s)",
        open_time.as_secs_f64(),
        n as f64 / open_time.as_secs_f64()
    );
    println!("  server RSS: {} KiB before, {} KiB with every session open", rss_before, rss_after);
    println!(
        "  memory per session: {:.1} KiB (RSS delta / sessions)",
        (rss_after.saturating_sub(rss_before)) as f64 / n.max(1) as f64
    );

    // 2. Health latency while every session is open and 8 tasks keep sessions busy (increment round trips).
    let stop = Arc::new(AtomicBool::new(false));
    let messages = Arc::new(AtomicU64::new(0));
    let mut groups: Vec<Vec<Ws>> = (0..8).map(|_| Vec::new()).collect();
    for (i, ws) in sockets.into_iter().enumerate() {
        groups[i % 8].push(ws);
    }
    let load: Vec<_> = groups
        .into_iter()
        .map(|mut group| {
            let (stop, messages) = (stop.clone(), messages.clone());
            tokio::spawn(async move {
                'outer: while !stop.load(Ordering::Relaxed) {
                    for ws in group.iter_mut() {
                        if stop.load(Ordering::Relaxed) {
                            break 'outer;
                        }
                        ws.send(Message::Text(r#"{"type":"increment"}"#.into())).await.unwrap();
                        ws.next().await.unwrap().unwrap();
                        messages.fetch_add(1, Ordering::Relaxed);
                    }
                }
                group
            })
        })
        .collect();
    let probes = if n >= 1000 { 2000 } else { 100 };
    let mut lat = Vec::with_capacity(probes);
    let load_started = Instant::now();
    for _ in 0..probes {
        let t = Instant::now();
        let status = health(http.clone(), health_url.clone()).await;
        lat.push(t.elapsed());
        assert!(status.is_success());
    }
    stop.store(true, Ordering::Relaxed);
    let load_secs = load_started.elapsed().as_secs_f64();
    let mut sockets: Vec<Ws> = Vec::new();
    for h in load {
        sockets.extend(h.await.unwrap());
    }
    lat.sort();
    println!("\nhealth under load ({} probes, sequential, keep-alive)", probes);
    println!(
        "  background load: {:.0} WebSocket round trips/s across {} open sessions",
        messages.load(Ordering::Relaxed) as f64 / load_secs,
        sockets.len()
    );
    println!(
        "  p50 {}  p99 {}  max {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(lat[lat.len() - 1])
    );

    // 3. Drain acknowledgement latency (the deployer's own client).
    let client = HttpDrainClient::new(Secret::new("bench", SECRET).unwrap());
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let endpoint = Instance {
        id: "bench-1".into(),
        version: VersionId::new("bench").unwrap(),
        state: InstanceState::Running,
        endpoint: Some(Endpoint::new("127.0.0.1", port)),
    };
    let t = Instant::now();
    let first = client.drain(&endpoint, Duration::from_secs(600)).await.unwrap();
    let first_ack = t.elapsed();
    let mut acks = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        client.drain(&endpoint, Duration::from_secs(600)).await.unwrap();
        acks.push(t.elapsed());
    }
    acks.sort();
    println!("\ndrain acknowledgement ({} sessions open)", first.active_sessions);
    println!("  first ack (serving -> {:?}): {}", first.state, ms(first_ack));
    println!(
        "  repeated (idempotent) acks: p50 {}  p99 {}",
        ms(percentile(&acks, 0.5)),
        ms(percentile(&acks, 0.99))
    );

    // 4. Shutdown: SIGTERM, every socket must get 1001; the process must exit 0.
    let t = Instant::now();
    kill_process(Pid::from_raw(pid as i32).unwrap(), Signal::TERM).unwrap();
    let codes: Vec<u16> = futures::stream::iter(sockets)
        .map(|mut ws| async move {
            loop {
                match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
                    Ok(Some(Ok(Message::Close(Some(f))))) => return u16::from(f.code),
                    Ok(Some(Ok(_))) => continue,
                    _ => return 0,
                }
            }
        })
        .buffer_unordered(1024)
        .collect()
        .await;
    let all_closed = t.elapsed();
    let status = child.wait().await.unwrap();
    let exited = t.elapsed();
    let going_away = codes.iter().filter(|c| **c == 1001).count();
    println!("\nshutdown (SIGTERM with every session open)");
    println!("  sockets closed with 1001: {going_away} of {}", codes.len());
    println!(
        "  all closes received after {}, process exited after {} with {status}",
        ms(all_closed),
        ms(exited)
    );
    assert_eq!(going_away, codes.len(), "every socket must be closed with 1001");
    assert!(status.success(), "the demo must exit 0 after SIGTERM");

    // 5. Throughput of page loads with and without the drain layer.
    throughput().await;
}

async fn start_inprocess(drain_layer: bool) -> String {
    let config = DrainConfig::builder("bench")
        .instance_id(if drain_layer { "with-layer" } else { "without-layer" })
        .secret(Secret::new("bench", SECRET).unwrap())
        .handle_signals(false)
        .build()
        .unwrap();
    let state = DrainState::start(config).await.unwrap();
    let app = demo::app(
        state.clone(),
        DemoConfig { session_grace: Duration::from_secs(1), drain_layer, ..DemoConfig::default() },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(pulse_server_drain::serve(listener, app, state));
    format!("http://{addr}/")
}

async fn measure(url: &str, window: Duration) -> u64 {
    let http: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = url.parse().unwrap();
    let end = Instant::now() + window;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (http, uri) = (http.clone(), uri.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < end {
                    let r = http.get(uri.clone()).await.unwrap();
                    assert!(r.status().is_success());
                    r.into_body().collect().await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total
}

async fn throughput() {
    let with = start_inprocess(true).await;
    let without = start_inprocess(false).await;
    let window = *ROUND.get().expect("set in main");
    let rounds = 8;
    measure(&with, Duration::from_millis(500)).await; // warm up both
    measure(&without, Duration::from_millis(500)).await;
    let (mut a, mut b) = (0u64, 0u64);
    let mut ratios = Vec::new();
    for round in 0..rounds {
        // Alternate which goes first, so drift in the machine's load hits both alike.
        let (x, y) = if round % 2 == 0 {
            let x = measure(&with, window).await;
            (x, measure(&without, window).await)
        } else {
            let y = measure(&without, window).await;
            (measure(&with, window).await, y)
        };
        a += x;
        b += y;
        ratios.push(x as f64 / y as f64);
    }
    ratios.sort_by(|p, q| p.partial_cmp(q).unwrap());
    let secs = window.as_secs_f64() * rounds as f64;
    let (ra, rb) = (a as f64 / secs, b as f64 / secs);
    println!(
        "\nthroughput of `GET /` page loads (creates a session, renders the page; 32 keep-alive clients;"
    );
    println!(
        "  server and clients in one process on 2 worker threads; {rounds} alternating rounds of {window:?} each)"
    );
    println!("  with the drain layer:    {ra:.0} req/s");
    println!("  without the drain layer: {rb:.0} req/s");
    println!(
        "  ratio with/without: {:.3} overall; per round min {:.3}, median {:.3}, max {:.3}",
        ra / rb,
        ratios[0],
        ratios[ratios.len() / 2],
        ratios[ratios.len() - 1]
    );
}
