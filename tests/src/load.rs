//! A steady HTTP load through the router: new users loading the page at a fixed rate, every answer checked.
//! A failed request (anything but a 200, after following a stale-affinity redirect as a browser would) is
//! counted with its reason.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::e2e::AppKind;
use crate::http::HttpClient;

/// Counts of the load so far.
#[derive(Debug, Default)]
pub struct LoadStats {
    /// Requests answered 200.
    pub ok: AtomicU64,
    /// Requests that failed.
    pub failed: AtomicU64,
    /// The first few failures, with reasons.
    pub failures: Mutex<Vec<String>>,
    /// Latencies of successful requests, in microseconds.
    pub latencies_us: Mutex<Vec<u64>>,
}

/// A running load generator.
pub struct Load {
    stats: Arc<LoadStats>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `workers` loops, each loading `http://{base}/` every `period`.
    pub fn start(http: HttpClient, base: String, workers: usize, period: Duration) -> Load {
        Load::start_for(AppKind::Demo, http, base, workers, period)
    }

    /// [`Load::start`] for the given app: a page load of the Pulse app is its prerender (through the
    /// page-tier stand-in, a fresh browser each time, following a redirect as Pulse's loader does).
    pub fn start_for(
        kind: AppKind,
        http: HttpClient,
        base: String,
        workers: usize,
        period: Duration,
    ) -> Load {
        let stats = Arc::new(LoadStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..workers)
            .map(|_| {
                let (http, base, stats, stop) = (http.clone(), base.clone(), stats.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(period);
                    while !stop.load(Ordering::SeqCst) {
                        tick.tick().await;
                        let started = std::time::Instant::now();
                        let loaded = match kind {
                            AppKind::Demo => page_load(&http, &base).await,
                            AppKind::Pulse => {
                                let mut jar = crate::pulse_tab::Cookies::new();
                                crate::pulse_tab::page_load(&http, &format!("http://{base}"), &mut jar)
                                    .await
                                    .map(|_| ())
                            }
                        };
                        match loaded {
                            Ok(()) => {
                                stats.ok.fetch_add(1, Ordering::SeqCst);
                                stats.latencies_us.lock().unwrap().push(started.elapsed().as_micros() as u64);
                            }
                            Err(e) => {
                                stats.failed.fetch_add(1, Ordering::SeqCst);
                                let mut f = stats.failures.lock().unwrap();
                                if f.len() < 20 {
                                    f.push(e);
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        Load { stats, stop, tasks }
    }

    /// The counts so far.
    pub fn stats(&self) -> &LoadStats {
        &self.stats
    }

    /// Stops every worker and waits for them.
    pub async fn stop(mut self) -> Arc<LoadStats> {
        self.stop.store(true, Ordering::SeqCst);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
        self.stats.clone()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn page_load(http: &HttpClient, base: &str) -> Result<(), String> {
    let url = format!("http://{base}/");
    let mut answer = http.get(&url, &[]).await?;
    if answer.status.is_redirection() {
        // A draining instance turning a new session away: the browser follows, without the affinity.
        answer = http.get(&url, &[]).await?;
    }
    if answer.status != http::StatusCode::OK {
        return Err(format!(
            "{} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body).chars().take(200).collect::<String>()
        ));
    }
    Ok(())
}

impl std::fmt::Debug for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Load").finish_non_exhaustive()
    }
}
