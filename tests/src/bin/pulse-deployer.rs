//! `pulse-deployer`: a small deployer CLI over the library — `DockerOrchestrator` + `EnvoyRouter` adopting
//! the state directories under `--state-dir` (`docker/`, `envoy/`), the drain secret read from a file, and
//! the rollout `Executor`. The fault tests run it as a separate process and SIGKILL it between actions.
//!
//! ```text
//! pulse-deployer deploy --app A --version V --image I --state-dir D --secret-file F
//!                       [--replicas 2] [--port 8000] [--health-path /health] [--drain-deadline 6h]
//!                       [--stop-grace 30s] [--env K=V]... [--goal shifted|settled]
//!                       [--health-check-interval 1s] [--poll 2s] [--health-timeout 5m]
//! pulse-deployer reconcile --app A --state-dir D --secret-file F [--goal settled|shifted] [...]
//! ```
//!
//! stdout carries one line per action started, `action: <action>`, flushed as it starts, then
//! `goal reached: <target>`; everything else (progress, retries, logs) goes to stderr. Exit code 0 when
//! the goal holds, 1 when the rollout failed, 2 on bad usage.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use pulse_deploy_core::drain::HttpDrainClient;
use pulse_deploy_core::rollout::{Executor, Goal, RolloutEvent, RolloutPolicy};
use pulse_deploy_core::{AppName, Release, Secret};
use pulse_deploy_local::{DockerOrchestrator, EnvoyRouter};

const USAGE: &str = "usage:
  pulse-deployer deploy --app A --version V --image I --state-dir D --secret-file F
                        [--replicas N] [--port P] [--health-path PATH] [--drain-deadline DUR]
                        [--stop-grace DUR] [--env K=V]... [--goal shifted|settled]
                        [--health-check-interval DUR] [--poll DUR] [--health-timeout DUR]
  pulse-deployer reconcile --app A --state-dir D --secret-file F [--goal settled|shifted] [...]

Deploys (or reconciles) with DockerOrchestrator + EnvoyRouter on the state directories D/docker and D/envoy,
adopting what an earlier run left. Prints `action: <action>` on stdout as each action starts.";

/// The parsed command line.
struct Args {
    command: String,
    flags: BTreeMap<String, String>,
    env: Vec<(String, String)>,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let command = it.next().ok_or("missing command (deploy or reconcile)")?;
    if command == "-h" || command == "--help" {
        return Err(String::new());
    }
    if command != "deploy" && command != "reconcile" {
        return Err(format!("unknown command `{command}`; use deploy or reconcile"));
    }
    let mut flags = BTreeMap::new();
    let mut env = Vec::new();
    while let Some(flag) = it.next() {
        let name = flag.strip_prefix("--").ok_or(format!("expected a --flag, got `{flag}`"))?;
        let value = it.next().ok_or(format!("--{name} needs a value"))?;
        if name == "env" {
            let (k, v) = value.split_once('=').ok_or(format!("--env `{value}`: use KEY=VALUE"))?;
            env.push((k.to_owned(), v.to_owned()));
        } else if flags.insert(name.to_owned(), value).is_some() {
            return Err(format!("--{name} given twice"));
        }
    }
    Ok(Args { command, flags, env })
}

impl Args {
    fn take(&mut self, name: &str) -> Option<String> {
        self.flags.remove(name)
    }
    fn required(&mut self, name: &str) -> Result<String, String> {
        self.take(name).ok_or(format!("--{name} is required"))
    }
    fn duration(&mut self, name: &str) -> Result<Option<Duration>, String> {
        self.take(name)
            .map(|v| {
                humantime::parse_duration(&v).map_err(|e| format!("--{name} `{v}`: {e} (e.g. 30s, 500ms)"))
            })
            .transpose()
    }
    fn number<T: std::str::FromStr>(&mut self, name: &str) -> Result<Option<T>, String> {
        self.take(name).map(|v| v.parse().map_err(|_| format!("--{name} `{v}` is not a number"))).transpose()
    }
}

/// What to run, validated before any provider is touched.
struct Invocation {
    app: AppName,
    release: Option<Release>,
    goal: Goal,
    state_dir: PathBuf,
    secret: Secret,
    health_check_interval: Option<Duration>,
    policy: RolloutPolicy,
}

fn plan(mut args: Args) -> Result<Invocation, String> {
    let e = |e: pulse_deploy_core::Error| e.to_string();
    let app_name = args.required("app")?;
    let app = AppName::new(app_name.clone()).map_err(e)?;
    let state_dir = PathBuf::from(args.required("state-dir")?);
    let secret_file = PathBuf::from(args.required("secret-file")?);
    let token = std::fs::read_to_string(&secret_file)
        .map_err(|err| format!("--secret-file {}: {err}", secret_file.display()))?;
    let secret = Secret::new("--secret-file", token.trim().to_owned()).map_err(e)?;
    let goal = match args.take("goal").as_deref() {
        None if args.command == "deploy" => Goal::Shifted,
        None => Goal::Settled,
        Some("shifted") => Goal::Shifted,
        Some("settled") => Goal::Settled,
        Some(other) => return Err(format!("--goal `{other}`: use shifted or settled")),
    };
    let mut policy = RolloutPolicy::default();
    if let Some(d) = args.duration("poll")? {
        policy.poll_interval = d;
    }
    if let Some(d) = args.duration("health-timeout")? {
        policy.health_timeout = d;
    }
    policy.validate().map_err(e)?;
    let health_check_interval = args.duration("health-check-interval")?;
    let release = if args.command == "deploy" {
        let mut b = Release::builder(app_name, args.required("version")?, args.required("image")?);
        if let Some(n) = args.number("replicas")? {
            b = b.replicas(n);
        }
        if let Some(p) = args.number("port")? {
            b = b.port(p);
        }
        if let Some(p) = args.take("health-path") {
            b = b.health_path(p);
        }
        if let Some(d) = args.duration("drain-deadline")? {
            b = b.drain_deadline(d);
        }
        if let Some(d) = args.duration("stop-grace")? {
            b = b.stop_grace(d);
        }
        for (k, v) in std::mem::take(&mut args.env) {
            b = b.env(k, v);
        }
        Some(b.build().map_err(e)?)
    } else {
        None
    };
    if let Some(unknown) = args.flags.keys().next() {
        return Err(format!("unknown flag --{unknown} for {}", args.command));
    }
    if !args.env.is_empty() {
        return Err("--env is only for deploy".into());
    }
    Ok(Invocation { app, release, goal, state_dir, secret, health_check_interval, policy })
}

/// Prints one line on stdout and flushes it, so a reader sees each action as it starts.
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn run(plan: Invocation) -> Result<(), String> {
    let e = |e: pulse_deploy_core::Error| e.to_string();
    let orchestrator = Arc::new(
        DockerOrchestrator::builder()
            .drain_secret(plan.secret.clone())
            .state_dir(plan.state_dir.join("docker"))
            .build()
            .await
            .map_err(e)?,
    );
    let mut router = EnvoyRouter::builder(plan.state_dir.join("envoy"));
    if let Some(d) = plan.health_check_interval {
        router = router.health_check_interval(d);
    }
    let router = Arc::new(router.build().await.map_err(e)?);
    eprintln!("pulse-deployer: Envoy on http://{} (pid {:?})", router.listener_addr(), router.envoy_pid());
    let drain = Arc::new(HttpDrainClient::new(plan.secret));
    let events = |ev: &RolloutEvent| match ev {
        RolloutEvent::ActionStarted { action } => say(format!("action: {action}")),
        RolloutEvent::ActionRetried { action, attempt, error, .. } => {
            eprintln!("pulse-deployer: {action}: attempt {attempt} failed: {error}")
        }
        RolloutEvent::Waiting { reasons } => eprintln!("pulse-deployer: waiting: {}", reasons.join("; ")),
        RolloutEvent::RollingBack { version, reason } => {
            eprintln!("pulse-deployer: rolling back {version}: {reason}")
        }
        _ => {}
    };
    let executor =
        Executor::builder(orchestrator, router, drain).policy(plan.policy).events(Arc::new(events)).build();
    let outcome = match &plan.release {
        Some(release) => executor.deploy(release, plan.goal).await,
        None => executor.reconcile(&plan.app, plan.goal).await,
    }
    .map_err(e)?;
    let target = outcome.target.map(|v| v.to_string()).unwrap_or_else(|| "none".into());
    say(format!("goal reached: {target}"));
    eprintln!("pulse-deployer: {} actions in {} passes", outcome.actions.len(), outcome.passes);
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    pulse_deploy_tests::init_logging();
    let plan = match parse().and_then(plan) {
        Ok(p) => p,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("pulse-deployer: {msg}\n");
            }
            eprintln!("{USAGE}");
            return if msg.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) };
        }
    };
    match run(plan).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("pulse-deployer: {msg}");
            ExitCode::FAILURE
        }
    }
}
