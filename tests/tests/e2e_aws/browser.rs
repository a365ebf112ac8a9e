//! The clients of the AWS e2e, all through the ALB evaluator's address: one HTTP request, a browser's page
//! load (following stale-affinity redirects), the steady load of fresh browsers, new WebSocket sessions.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::moto_support::rollouts::Session;

/// One HTTP answer through the evaluator.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One request (`Connection: close`) through the evaluator.
pub(crate) async fn request(
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
pub(crate) const MAX_REDIRECTS: u64 = 20;

/// A page load as a fresh browser does it: `GET /`, following stale-affinity redirects (at most
/// [`MAX_REDIRECTS`]); the version that answered and the redirects followed.
pub(crate) async fn page_load(proxy: SocketAddr) -> Result<(String, u64), String> {
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
pub(crate) struct LoadStats {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub redirects: AtomicU64,
    pub longest_redirect_chain: AtomicU64,
    pub failures: Mutex<Vec<String>>,
    pub latencies_us: Mutex<Vec<u64>>,
    pub versions: Mutex<BTreeMap<String, u64>>,
}

pub(crate) fn start_load(
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
pub(crate) async fn open_sessions(proxy: SocketAddr, n: usize, version: &str) -> Vec<Session> {
    let mut out = Vec::new();
    for _ in 0..n {
        let mut s = Session::open_url(&format!("ws://{proxy}/ws")).await;
        assert_eq!(s.version, version, "a new session lands on the newest version");
        s.increment().await;
        out.push(s);
    }
    out
}

/// The first new session that lands on `version`, answered once. Until a shift has propagated through
/// the evaluator's listener cache a new session may still reach the version before it.
pub(crate) async fn first_session_on(proxy: SocketAddr, version: &str) -> Session {
    let mut s = crate::moto_support::rollouts::poll(
        &format!("new sessions through the evaluator to land on {version}"),
        crate::moto_support::rollouts::STEP,
        || async {
            let s = Session::try_open_url(&format!("ws://{proxy}/ws")).await.ok()?;
            (s.version == version).then_some(s)
        },
    )
    .await;
    s.increment().await;
    s
}

pub(crate) async fn answer_all(sessions: &mut [Session]) {
    for s in sessions {
        s.increment().await;
    }
}
