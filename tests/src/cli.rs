//! Driving the real `pulse-deploy` command from a test ([`CliRig`]): a fresh directory holding the
//! `pulse-deploy.toml` that `pulse-deploy init` wrote (tuned for tests: fast polls, short grace), runs of
//! the binary in it (their exit code, stdout and stderr), a run that can be read line by line, interrupted
//! with SIGINT or killed with SIGKILL, an observer of the same Docker containers and Envoy (built from the
//! same file with the commands' own [`pulse_deploy::commands::connect_local`]), an executor in the test's process
//! over that observer (for the fault tests that break things from inside a rollout), and a cleanup that
//! removes every container of the app, stops Envoy and deletes the directory. The CLI tests
//! (`tests/cli_*.rs`) and the fault tests (`tests/faults_*.rs`, through [`crate::faults`]) share it.
//!
//! The binary is `pulse-deploy`'s own `main.rs`, built by this crate as `pulse-deploy-cli` (Cargo cannot
//! depend on another package's binary on stable); a test passes `env!("CARGO_BIN_EXE_pulse-deploy-cli")`
//! (only integration tests see that variable).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use pulse_deploy::config::Config;
use pulse_deploy_core::rollout::{AppStatus, EventSink, Executor};
use pulse_deploy_core::{AppName, Orchestrator, Release, TrafficRouter, VersionId};
use pulse_deploy_local::docker::{build_demo_image, remove_app_containers, DEMO_IMAGE};
use pulse_deploy_local::{preflight, LocalProvider};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::{Mutex, OnceCell};

use crate::http::HttpClient;
use crate::poll::poll;
use crate::session::{self, Fate, OnError, SessionHandle};

/// How long any single wait of a CLI test may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// The demo image, built once per test process.
static IMAGE: OnceCell<()> = OnceCell::const_new();

/// What one run of the binary did.
#[derive(Debug, Clone)]
pub struct Run {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl Run {
    /// Panics with both outputs unless the run exited with `code`.
    pub fn expect(self, code: i32, what: &str) -> Run {
        assert_eq!(
            self.code, code,
            "{what}: expected exit {code}, got {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// A free TCP port on 127.0.0.1 (closed again, so the caller can hand it to a server).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).expect("a free port").port()
}

/// One CLI test's world: an app, a directory with its configuration, and (once something was deployed)
/// an observer of the same providers.
pub struct CliRig {
    /// The binary under test.
    pub binary: PathBuf,
    /// When the test started (progress lines count from here).
    pub t0: Instant,
    /// The app, unique per test run.
    pub app: AppName,
    /// The directory the commands run in (`pulse-deploy.toml`, `.pulse-deploy/`).
    pub dir: PathBuf,
    /// Envoy's public listener, `127.0.0.1:PORT` (what `init --listen` was given).
    pub base: String,
    /// The Docker client.
    pub docker: Docker,
    /// HTTP client for page loads.
    pub http: HttpClient,
    observer: Mutex<Option<LocalProvider>>,
}

impl CliRig {
    /// Checks Docker and Envoy (skip outside CI, fail under `CI=true`), builds the demo image, and runs
    /// `pulse-deploy init` for a fresh app named `PREFIX-xxxxx` in a fresh directory; then tunes the file it
    /// wrote for tests (`tune`: pairs of a line `init` writes and its replacement).
    pub async fn start(binary: &Path, prefix: &str, tune: &[(&str, &str)]) -> Option<CliRig> {
        let t0 = Instant::now();
        let docker = preflight::or_skip("Docker", preflight::docker().await)?;
        preflight::or_skip("Envoy", preflight::envoy())?;
        let workspace = crate::workspace_root();
        IMAGE
            .get_or_init(|| async {
                build_demo_image(&docker, &workspace, DEMO_IMAGE).await.expect("building the demo image");
            })
            .await;
        let suffix: String = (0..5).map(|_| (b'a' + rand::random::<u8>() % 26) as char).collect();
        let app = AppName::new(format!("{prefix}-{suffix}")).expect("app name");
        let dir = std::env::temp_dir().join(format!("pulse-cli-{app}"));
        std::fs::create_dir_all(&dir).expect("test directory");
        let base = format!("127.0.0.1:{}", free_port());
        let rig = CliRig {
            binary: binary.to_owned(),
            t0,
            app,
            dir,
            base,
            docker,
            http: HttpClient::new(),
            observer: Mutex::new(None),
        };
        rig.run(&["init", "--app", rig.app.as_str(), "--image", DEMO_IMAGE, "--listen", &rig.base])
            .await
            .expect(0, "init");
        rig.edit_config(tune);
        rig.progress(format!("app {} in {} (Envoy will listen on {})", rig.app, rig.dir.display(), rig.base));
        Some(rig)
    }

    /// The configuration file.
    pub fn config(&self) -> PathBuf {
        self.dir.join("pulse-deploy.toml")
    }

    /// Replaces, in the configuration, each line equal to `from` with `to` (each must be present).
    pub fn edit_config(&self, pairs: &[(&str, &str)]) {
        let mut text = std::fs::read_to_string(self.config()).expect("reading pulse-deploy.toml");
        for (from, to) in pairs {
            let lines: Vec<&str> = text.lines().collect();
            assert!(lines.contains(from), "pulse-deploy.toml has no line `{from}`:\n{text}");
            text =
                lines.iter().map(|l| if l == from { *to } else { *l }).collect::<Vec<_>>().join("\n") + "\n";
        }
        std::fs::write(self.config(), text).expect("writing pulse-deploy.toml");
    }

    /// Prints one progress line with the time since the test started.
    pub fn progress(&self, msg: impl AsRef<str>) {
        eprintln!("[{:>6.1}s] {}", self.t0.elapsed().as_secs_f64(), msg.as_ref());
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args).current_dir(&self.dir).env_remove("PULSE_DEPLOY_CONFIG").env("CI", "true");
        cmd.stdin(Stdio::null()).kill_on_drop(true);
        cmd
    }

    /// Runs `pulse-deploy ARGS` in the directory to its end (with `CI=true`, output piped).
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_command(self.command(args), args).await
    }

    /// [`CliRig::run`] without `CI` in the environment (output still piped, so not a terminal).
    pub async fn run_outside_ci(&self, args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        cmd.env_remove("CI");
        self.run_command(cmd, args).await
    }

    async fn run_command(&self, mut cmd: Command, args: &[&str]) -> Run {
        let started = Instant::now();
        let out = cmd.output().await.unwrap_or_else(|e| panic!("running pulse-deploy: {e}"));
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.progress(format!(
            "pulse-deploy {} → exit {} in {:.1} s",
            args.join(" "),
            run.code,
            started.elapsed().as_secs_f64()
        ));
        run
    }

    /// Starts `pulse-deploy ARGS` in the directory, its output piped.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting pulse-deploy: {e}"));
        let out = BufReader::new(child.stdout.take().expect("piped stdout"));
        Running { child, out, stdout: String::new(), args: args.join(" ") }
    }

    /// `pulse-deploy status --json`, parsed.
    pub async fn status(&self) -> AppStatus {
        let run = self.run(&["status", "--json"]).await.expect(0, "status --json");
        serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("status --json is not an AppStatus ({e}): {}", run.stdout))
    }

    /// The configuration as the commands read it.
    pub fn load_config(&self) -> Config {
        Config::load(&self.config()).unwrap_or_else(|e| panic!("pulse-deploy.toml: {e}"))
    }

    /// The release `pulse-deploy deploy VERSION` deploys (the configuration's image and settings).
    pub fn release(&self, version: &str) -> Release {
        self.load_config().release(version, None).expect("the configuration's release")
    }

    /// The providers the commands use, seen from this process: built from the same file by the commands'
    /// own constructor, so it adopts the same containers and the same Envoy (and starts Envoy, from its
    /// state directory, when none runs: a test that drives the binary first lets the binary start it).
    pub async fn observer(&self) -> LocalProvider {
        let mut slot = self.observer.lock().await;
        if let Some(p) = slot.as_ref() {
            return p.clone();
        }
        let provider = pulse_deploy::commands::connect_local(&self.load_config())
            .await
            .unwrap_or_else(|f| panic!("the local provider (observer): {}", f.message));
        *slot = Some(provider.clone());
        provider
    }

    /// An executor in this process over the [`CliRig::observer`] providers, with the configuration's
    /// rollout policy (what `pulse-deploy deploy` builds), reporting to `events`.
    pub async fn executor(&self, events: EventSink) -> Executor {
        self.observer().await.executor().policy(self.load_config().policy).events(events).build()
    }

    /// Pids of every live Envoy process started with the app's bootstrap (there must be one).
    pub async fn envoy_processes(&self) -> Vec<u32> {
        self.observer().await.router.envoy_processes()
    }

    /// Container ids of the app, sorted (running or not).
    pub async fn container_ids(&self) -> Vec<String> {
        use bollard::query_parameters::ListContainersOptionsBuilder;
        let label = format!("{}={}", pulse_deploy_local::docker::labels::APP, self.app);
        let filters = std::collections::HashMap::from([("label", vec![label])]);
        let list = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let mut ids: Vec<String> = self
            .docker
            .list_containers(Some(list))
            .await
            .expect("listing containers")
            .into_iter()
            .filter_map(|c| c.id)
            .collect();
        ids.sort();
        ids
    }

    /// `(live, all)` containers of `version`.
    pub async fn containers(&self, version: &VersionId) -> (usize, usize) {
        let versions = self.observer().await.orchestrator.versions(&self.app).await.expect("versions");
        versions
            .iter()
            .find(|v| v.version() == version)
            .map(|v| (v.live_instances().count(), v.instances.len()))
            .unwrap_or((0, 0))
    }

    /// Waits until `version` has no container and no route left.
    pub async fn wait_gone(&self, version: &VersionId) {
        let observer = self.observer().await;
        poll(&format!("{version} to be gone (containers and routes)"), STEP_TIMEOUT, || async {
            let versions = observer.orchestrator.versions(&self.app).await.ok()?;
            let routing = observer.router.routing(&self.app).await.ok()?;
            let left =
                versions.iter().any(|v| v.version() == version) || routing.versions.contains_key(version);
            (!left).then_some(())
        })
        .await
    }

    /// Opens `n` sessions through Envoy, numbered from `first`; each must land on `version`. A session
    /// whose connection fails is dropped ([`OnError::Drop`]).
    pub async fn open_sessions(&self, first: usize, n: usize, version: &str) -> Vec<SessionHandle> {
        self.open_sessions_with(first, n, version, OnError::Drop).await
    }

    /// [`CliRig::open_sessions`], each client doing `on_error` when its connection fails.
    pub async fn open_sessions_with(
        &self,
        first: usize,
        n: usize,
        version: &str,
        on_error: OnError,
    ) -> Vec<SessionHandle> {
        let tick = Duration::from_millis(500);
        let opens =
            (first..first + n).map(|i| session::open_with(i, &self.http, &self.base, None, tick, on_error));
        let sessions: Vec<SessionHandle> = futures::future::join_all(opens)
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("opening sessions: {e}"));
        for h in &sessions {
            let r = h.record();
            assert_eq!(r.first_version, version, "session {} opened on the wrong version: {r:?}", r.n);
        }
        sessions
    }

    /// Removes every container of the app (forcibly: the test is over), stops Envoy, deletes the
    /// directory. Returns what could not be removed (empty when clean).
    pub async fn cleanup(&self) -> Vec<String> {
        let mut left = remove_app_containers(&self.docker, &self.app).await;
        // Nothing to stop once `pulse-deploy down` removed Envoy's state directory.
        let envoy_state = self.dir.join(".pulse-deploy/envoy");
        if envoy_state.exists() {
            let observer = self.observer().await;
            if let Err(e) = observer.router.stop().await {
                left.push(format!("Envoy: {e}"));
            }
            for pid in observer.router.envoy_processes() {
                left.push(format!("Envoy process {pid} still runs"));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        left
    }

    /// Runs `scenario` and cleans up afterwards whatever happened (a failed assertion included), then
    /// fails the test if the scenario failed or anything was left behind.
    pub async fn run_scenario<F, Fut>(self, scenario: F)
    where
        F: FnOnce(Arc<CliRig>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let rig = Arc::new(self);
        let outcome = tokio::spawn(scenario(rig.clone())).await;
        let left = rig.cleanup().await;
        rig.progress(format!("cleanup done; left behind: {left:?}"));
        if let Err(e) = outcome {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("scenario task: {e}"),
            }
        }
        assert!(left.is_empty(), "cleanup left resources behind: {left:?}");
    }
}

impl std::fmt::Debug for CliRig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CliRig").field("app", &self.app).field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// A `pulse-deploy` process still running, its output piped.
pub struct Running {
    child: Child,
    out: BufReader<ChildStdout>,
    stdout: String,
    args: String,
}

impl Running {
    /// Reads stdout until a line satisfies `wanted` (returned), failing the test if the process exits or
    /// `timeout` passes first.
    pub async fn until_line(&mut self, timeout: Duration, wanted: impl Fn(&str) -> bool) -> String {
        self.until_line_or_end(timeout, wanted).await.unwrap_or_else(|| {
            panic!("pulse-deploy {} ended before the awaited line; stdout:\n{}", self.args, self.stdout)
        })
    }

    /// Reads stdout until a line satisfies `wanted` (returned) or stdout ends (`None`: the process exited
    /// or is exiting; [`Running::finish`] tells how), failing the test if `timeout` passes first.
    pub async fn until_line_or_end(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let read = async {
            let mut line = String::new();
            loop {
                line.clear();
                if self.out.read_line(&mut line).await.expect("reading stdout") == 0 {
                    return None;
                }
                self.stdout.push_str(&line);
                if wanted(line.trim_end()) {
                    return Some(line.trim_end().to_owned());
                }
            }
        };
        tokio::time::timeout(timeout, read)
            .await
            .unwrap_or_else(|_| panic!("pulse-deploy {}: no awaited line within {timeout:?}", self.args))
    }

    /// Sends SIGKILL (no handler runs, nothing is flushed or cleaned up) and waits for the process to be
    /// gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.unwrap_or_else(|e| panic!("SIGKILL pulse-deploy {}: {e}", self.args));
    }

    /// Sends SIGINT (what Ctrl-C sends).
    pub fn interrupt(&self) {
        let pid = self.child.id().expect("the process runs") as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGINT)
            .expect("SIGINT");
    }

    /// Waits for the process to exit (failing the test after `timeout`) and returns the whole run.
    pub async fn finish(mut self, timeout: Duration) -> Run {
        let mut rest = String::new();
        let mut stderr = String::new();
        let mut out = self.out;
        let mut err = self.child.stderr.take().expect("piped stderr");
        let wait = async {
            let (a, b, status) = tokio::join!(
                out.read_to_string(&mut rest),
                err.read_to_string(&mut stderr),
                self.child.wait()
            );
            a.and(b).expect("reading the output");
            status.expect("waiting for pulse-deploy")
        };
        let status = tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or_else(|_| panic!("pulse-deploy {} did not exit within {timeout:?}", self.args));
        self.stdout.push_str(&rest);
        Run { code: status.code().unwrap_or(-1), stdout: self.stdout, stderr }
    }
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("args", &self.args).finish_non_exhaustive()
    }
}

/// Each session's number → the version and instance that hold it now.
pub fn pins_of<'a>(
    sessions: impl IntoIterator<Item = &'a SessionHandle>,
) -> BTreeMap<usize, (String, String)> {
    sessions.into_iter().map(|h| h.record()).map(|r| (r.n, (r.version, r.instance))).collect()
}

/// Every session is open on its pinned version and instance, and answers at least once more.
pub async fn assert_all_answer<'a>(sessions: impl IntoIterator<Item = &'a SessionHandle>) {
    let sessions: Vec<&SessionHandle> = sessions.into_iter().collect();
    let pins = pins_of(sessions.iter().copied());
    let before: Vec<u64> = sessions.iter().map(|h| h.record().answers).collect();
    poll("every session to answer again", Duration::from_secs(10), || async {
        let mut lagging = 0;
        for (h, b) in sessions.iter().zip(&before) {
            let r = h.record();
            assert_eq!(r.fate, Fate::Open, "session {} was dropped: {r:?}", r.n);
            let (version, instance) = &pins[&r.n];
            assert_eq!((&r.version, &r.instance), (version, instance), "session {} moved: {r:?}", r.n);
            assert!(r.moves.is_empty(), "session {} moved: {r:?}", r.n);
            if r.answers <= *b {
                lagging += 1;
            }
        }
        (lagging == 0).then_some(())
    })
    .await
}
