//! What each subcommand does, over the library: the configuration is checked first, then the provider is
//! built with [`LocalProvider::connect`] and the engine does the work. Progress goes to stdout as plain
//! lines; errors to stderr. Secrets are never printed.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use pulse_deploy_aws::AwsProvider;
use pulse_deploy_core::drain::{drain_all, verified};
use pulse_deploy_core::rollout::{
    AppStatus, Controller, Desired, Executor, Goal, PlanMemory, RolloutEvent, StopSignal, Stopper,
};
use pulse_deploy_core::{Secret, VersionId, VersionPhase, Weights};
use pulse_deploy_local::{LocalConfig, LocalProvider};

use crate::check_app;
use crate::cli::{CheckMode, Cli, Command};
use crate::config::{Config, ProviderKind, TEMPLATE};
use crate::history::History;
use crate::journal::{self, Journal};
use crate::lease::ControllerLease;
use crate::progress::{Progress, Style};
use crate::provider::Connected;
use crate::table;

#[path = "hand_off.rs"]
mod hand_off;

/// Exit codes (documented in `--help`).
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// The rollout failed.
    pub const FAILED: u8 = 1;
    /// Bad usage or configuration; nothing was contacted.
    pub const USAGE: u8 = 2;
    /// A provider could not be reached.
    pub const UNREACHABLE: u8 = 3;
    /// Stopped by Ctrl-C at a safe point.
    pub const STOPPED: u8 = 130;
}

/// A failure and its exit code.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What to tell the user.
    pub message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }
}

fn rollout(e: pulse_deploy_core::Error) -> Failure {
    Failure::new(exit::FAILED, e.to_string())
}

/// Runs the command line; returns the exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("pulse-deploy: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<u8, Failure> {
    if let Command::Init { app, image, listen, force } = &cli.command {
        return init(&cli.config, app, image, listen, *force);
    }
    // check-app needs no configuration when it is given the secret's file.
    if let Command::CheckApp { url, mode, secret_file: Some(file), health_path, json } = &cli.command {
        return check_app(url, *mode, file, health_path.clone(), *json).await;
    }
    let from_env = match &cli.command {
        Command::Watch | Command::Status { .. } | Command::Reap { .. } => {
            Config::from_aws_environment(&cli.config)
        }
        _ => None,
    };
    let config = from_env
        .unwrap_or_else(|| Config::load(&cli.config))
        .map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    match &cli.command {
        Command::CheckApp { url, mode, health_path, json, .. } => {
            let path = health_path.clone().or_else(|| Some(config.health_path().to_owned()));
            return check_app(url, *mode, &config.local.secret_file, path, *json).await;
        }
        // The timeline reads the journal only: no provider is contacted.
        Command::Timeline { out, json } => return timeline(&config, out.as_deref(), *json),
        _ => {}
    }
    // Check what the command line adds before any provider is contacted.
    if let Command::Deploy { version, image, .. } | Command::Plan { version, image, .. } = &cli.command {
        config.release(version, image.as_deref()).map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    }
    if let Command::Drain { version } = &cli.command {
        VersionId::new(version.clone()).map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    }
    let provider = connect(&config).await?;
    match cli.command {
        Command::Init { .. } | Command::CheckApp { .. } | Command::Timeline { .. } => {
            unreachable!("handled above")
        }
        Command::Deploy { version, image, settle, json } => {
            deploy(&config, &provider, &version, image.as_deref(), settle, json).await
        }
        Command::Status { json, watch } => status(&config, &provider, json, watch).await,
        Command::Plan { version, image, json } => {
            plan(&config, &provider, &version, image.as_deref(), json).await
        }
        Command::Drain { version } => drain(&config, &provider, &version).await,
        Command::Reap { json } => reap(&config, &provider, json).await,
        Command::Watch => watch(&config, &provider).await,
        Command::Rollback { json } => rollback(&config, &provider, json).await,
        Command::Down => down(&config, &provider).await,
    }
}

/// Prints a line on stdout and flushes it (progress must be seen as it happens, even through a pipe).
fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref().trim_end_matches('\n'));
    let _ = out.flush();
}

fn init(file: &Path, app: &str, image: &str, listen: &str, force: bool) -> Result<u8, Failure> {
    if file.exists() && !force {
        return Err(Failure::new(
            exit::USAGE,
            format!("{} exists; pass --force to overwrite it", file.display()),
        ));
    }
    let text = TEMPLATE.replace("{app}", app).replace("{image}", image).replace("{listen}", listen);
    // Refuse to write a file that would not load.
    let config = Config::parse(file, &text).map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    std::fs::write(file, &text).map_err(|e| Failure::new(exit::USAGE, format!("{}: {e}", file.display())))?;
    let secret = &config.local.secret_file;
    if !secret.exists() {
        if let Some(dir) = secret.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::new(exit::USAGE, format!("{}: {e}", dir.display())))?;
        }
        let token: String = (0..32).map(|_| format!("{:x}", rand::random::<u8>() % 16)).collect();
        write_private(secret, &token)
            .map_err(|e| Failure::new(exit::USAGE, format!("{}: {e}", secret.display())))?;
    }
    say(format!(
        "wrote {} (app {app}, image {image}) and the drain secret {}",
        file.display(),
        secret.display()
    ));
    say("next: `pulse-deploy deploy v1`, then open http://".to_owned() + listen + "/");
    Ok(exit::OK)
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path)?;
    f.write_all(content.as_bytes())
}

/// The provider the configuration names, connected. `aws` reads the `PULSE_AWS_*` environment (a missing
/// or invalid variable is exit 2, naming it, before any AWS call) and the drain secret (exit 3 when AWS
/// cannot be reached).
pub async fn connect(config: &Config) -> Result<Connected, Failure> {
    match config.provider {
        ProviderKind::Local => Ok(Connected::local(connect_local(config).await?)),
        ProviderKind::Aws => match AwsProvider::from_env().await {
            Ok(p) => Ok(Connected::aws(p)),
            Err(e @ pulse_deploy_core::Error::InvalidInput { .. }) => {
                Err(Failure::new(exit::USAGE, format!("provider = \"aws\": {e}")))
            }
            Err(e) => Err(Failure::new(exit::UNREACHABLE, format!("provider = \"aws\": {e}"))),
        },
    }
}

/// The local provider, built from the configuration: the drain secret read from
/// `local.secret_file` (exit 2 when it cannot be read), Docker, and the Envoy of `local.state_dir` adopted
/// or started on `local.listen` (exit 3 when either cannot be reached). Tests observe what the commands do
/// through a provider built the same way.
pub async fn connect_local(config: &Config) -> Result<LocalProvider, Failure> {
    let file = &config.local.secret_file;
    let token = std::fs::read_to_string(file).map_err(|e| {
        Failure::new(
            exit::USAGE,
            format!("the drain secret {}: {e}; run `pulse-deploy init`", file.display()),
        )
    })?;
    let secret = Secret::new("local.secret_file", token.trim().to_owned())
        .map_err(|e| Failure::new(exit::USAGE, format!("{}: {e}", file.display())))?;
    let mut local = LocalConfig::new(&config.local.state_dir, secret);
    local.default_app = Some(config.app.clone());
    local.listen = Some(config.local.listen);
    local.health_check_interval = Some(config.local.health_check_interval);
    LocalProvider::connect(local).await.map_err(|e| Failure::new(exit::UNREACHABLE, e.to_string()))
}

/// An executor over the provider whose events go to `progress` and to the timeline journal.
fn executor(
    config: &Config,
    provider: &Connected,
    stopper: Option<&Stopper>,
    progress: &Arc<Progress>,
) -> Executor {
    let journal = Journal::new(&config.local.state_dir);
    let progress = progress.clone();
    let events = move |ev: &RolloutEvent| {
        match ev {
            RolloutEvent::Observed { versions, .. } => journal.observed(versions),
            RolloutEvent::Reaped { version } => journal.gone(version.as_str()),
            _ => {}
        }
        progress.event(ev)
    };
    let mut b = provider.providers.executor().policy(config.policy.clone()).events(Arc::new(events));
    if let Some(s) = stopper {
        b = b.stop_on(s.graceful());
    }
    b.build()
}

/// Progress as plain lines on stdout (the commands that are not a rollout: status, reap, watch, plan).
fn plain() -> Arc<Progress> {
    Progress::stdout(Style::Plain)
}

/// Ctrl-C: the first stops at the next safe point, the second exits at once. The handler is installed
/// before this returns, so a Ctrl-C right after it is never lost to the default action (killing the
/// process mid-action).
fn on_ctrl_c(stopper: Stopper) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupts = match signal(SignalKind::interrupt()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pulse-deploy: cannot handle Ctrl-C ({e}); it will stop the process at once");
            return;
        }
    };
    tokio::spawn(async move {
        while interrupts.recv().await.is_some() {
            match stopper.signal() {
                StopSignal::Graceful => {
                    eprintln!("pulse-deploy: stopping at the next safe point (Ctrl-C again to abort at once)")
                }
                StopSignal::Forced => {
                    eprintln!("pulse-deploy: aborted; run the same command again to resume");
                    std::process::exit(exit::STOPPED.into());
                }
            }
        }
    });
}

async fn deploy(
    config: &Config,
    provider: &Connected,
    version: &str,
    image: Option<&str>,
    settle: bool,
    json: bool,
) -> Result<u8, Failure> {
    let release = config.release(version, image).map_err(rollout)?;
    let history = History::new(&config.local.state_dir);
    history.record(&release).map_err(|e| Failure::new(exit::FAILED, e))?;
    let holder = provider.controller(config).await.map_err(|e| Failure::new(exit::UNREACHABLE, e))?;
    if let Some(holder) = holder {
        return hand_off::deploy(config, provider, &release, &holder, settle).await;
    }
    let stopper = Stopper::new();
    on_ctrl_c(stopper.clone());
    let progress = Progress::stdout(Style::detect(json));
    let exec = executor(config, provider, Some(&stopper), &progress);
    if !json {
        progress.line(format!("deploying {} {version} ({})", config.app, release.image));
    }
    let ticker = progress.ticking();
    let journal = Journal::new(&config.local.state_dir);
    journal.mark(format!("deploy {version}"));
    let goal = if settle { Goal::Settled } else { Goal::Shifted };
    let outcome = exec.deploy(&release, goal).await;
    drop(ticker);
    progress.clear();
    let after = exec.status(&config.app).await;
    if let Ok(s) = &after {
        journal.status(s);
    }
    let table = after.map(|s| {
        if json {
            serde_json::json!({ "event": "status", "status": s }).to_string()
        } else {
            table::render(&s)
        }
    });
    match outcome {
        Ok(o) if o.stopped => {
            journal.mark(format!("deploy {version} stopped by Ctrl-C"));
            say(table.unwrap_or_default());
            let resume = format!("pulse-deploy deploy {version}");
            if json {
                say(serde_json::json!({ "event": "stopped", "actions": o.actions.len(), "resume": resume })
                    .to_string());
            } else {
                say(format!(
                    "stopped at a safe point after {} actions; run `{resume}` again to resume",
                    o.actions.len()
                ));
            }
            Ok(exit::STOPPED)
        }
        Ok(_) => {
            say(table.map_err(rollout)?);
            Ok(exit::OK)
        }
        Err(e) => {
            journal.mark(format!("deploy {version} failed"));
            if let Ok(t) = table {
                say(t);
            }
            Err(rollout(e))
        }
    }
}

async fn status(config: &Config, provider: &Connected, json: bool, watch: bool) -> Result<u8, Failure> {
    let exec = executor(config, provider, None, &plain());
    let show = |s: &AppStatus| {
        if json {
            say(serde_json::to_string(s).expect("status serializes"));
        } else {
            say(table::render(s));
        }
    };
    let mut last: Option<AppStatus> = None;
    loop {
        let s = exec.status(&config.app).await.map_err(|e| Failure::new(exit::UNREACHABLE, e.to_string()))?;
        let changed = last.as_ref().is_none_or(|l| !same(l, &s));
        if changed {
            Journal::new(&config.local.state_dir).status(&s);
            show(&s);
        }
        if !watch {
            return Ok(exit::OK);
        }
        last = Some(s);
        tokio::select! {
            _ = tokio::time::sleep(config.policy.poll_interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(exit::OK),
        }
    }
}

/// Two statuses show the same thing (ignoring the clock).
fn same(a: &AppStatus, b: &AppStatus) -> bool {
    let key = |s: &AppStatus| -> Vec<_> {
        s.versions.iter().map(|v| (v.version.clone(), v.phase, v.weight, v.healthy, v.sessions)).collect()
    };
    key(a) == key(b) && a.waiting == b.waiting
}

async fn plan(
    config: &Config,
    provider: &Connected,
    version: &str,
    image: Option<&str>,
    json: bool,
) -> Result<u8, Failure> {
    let release = config.release(version, image).map_err(rollout)?;
    let (plan, status) =
        executor(config, provider, None, &plain()).preview(&release).await.map_err(rollout)?;
    let actions: Vec<String> = plan.actions.iter().map(|a| a.to_string()).collect();
    if json {
        let v = serde_json::json!({ "actions": actions, "waiting": plan.waiting, "status": status });
        say(v.to_string());
        return Ok(exit::OK);
    }
    say(table::render(&status));
    if actions.is_empty() {
        say(format!("next: nothing to do now ({})", plan.waiting.join("; ")));
    }
    for a in actions {
        say(format!("next: {a}"));
    }
    say("(the later steps depend on health and sessions; `deploy` runs them as they become due)");
    Ok(exit::OK)
}

async fn drain(config: &Config, provider: &Connected, version: &str) -> Result<u8, Failure> {
    let id = VersionId::new(version.to_owned()).map_err(rollout)?;
    let exec = executor(config, provider, None, &plain());
    let status = exec.status(&config.app).await.map_err(rollout)?;
    let Some(v) = status.version(&id) else {
        return Err(Failure::new(
            exit::FAILED,
            format!("{version} is not running; `pulse-deploy status` lists what is"),
        ));
    };
    if v.weight > 0 {
        return Err(Failure::new(
            exit::FAILED,
            format!("{version} still gets {}% of new sessions; deploy another version first", v.weight),
        ));
    }
    let versions = provider.providers.orchestrator.versions(&config.app).await.map_err(rollout)?;
    let state = versions.iter().find(|s| s.version() == &id).ok_or_else(|| {
        Failure::new(exit::FAILED, format!("{id} was reaped meanwhile; run the command again"))
    })?;
    let instances: Vec<_> = state.live_instances().cloned().collect();
    let report = drain_all(provider.providers.drain.as_ref(), &instances, state.release.drain_deadline).await;
    say(format!(
        "drain signal: {} of {} instances of {version} acknowledged",
        report.acknowledged(),
        report.acks.len()
    ));
    Ok(if report.acknowledged() == report.acks.len() { exit::OK } else { exit::FAILED })
}

async fn reap(config: &Config, provider: &Connected, json: bool) -> Result<u8, Failure> {
    let exec = executor(config, provider, None, &plain());
    let desired = Desired { app: config.app.clone(), target: None };
    let pass = exec.step(&desired, &mut PlanMemory::default(), &Default::default()).await.map_err(rollout)?;
    let after = exec.status(&config.app).await.map_err(rollout)?;
    Journal::new(&config.local.state_dir).status(&after);
    if json {
        let applied: Vec<String> =
            pass.plan.actions.iter().take(pass.applied).map(|a| a.to_string()).collect();
        say(serde_json::json!({ "applied": applied, "status": after }).to_string());
    } else {
        if pass.applied == 0 {
            say("nothing to reap now");
        }
        say(table::render(&after));
    }
    Ok(exit::OK)
}

async fn watch(config: &Config, provider: &Connected) -> Result<u8, Failure> {
    let _lease = match ControllerLease::acquire(&config.local.state_dir) {
        Ok(Ok(lease)) => lease,
        Ok(Err(holder)) => {
            return Err(Failure::new(
                exit::FAILED,
                format!("{holder} already runs for {}: one controller per app", config.app),
            ))
        }
        Err(e) => return Err(Failure::new(exit::FAILED, format!("taking the controller lease: {e}"))),
    };
    let controller = Controller::start(
        executor(config, provider, None, &plain()),
        config.app.clone(),
        config.policy.poll_interval,
    );
    on_ctrl_c(controller.stopper());
    say(format!("watching {}: draining and reaping as sessions end (Ctrl-C stops)", config.app));
    let mut updates = controller.status_updates();
    let mut last: Option<AppStatus> = None;
    while !controller.is_finished() {
        tokio::select! {
            changed = updates.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
        }
        let Some(s) = updates.borrow_and_update().clone() else { continue };
        if last.as_ref().is_none_or(|l| !same(l, &s)) {
            Journal::new(&config.local.state_dir).status(&s);
            say(table::render(&s));
            last = Some(s);
        }
    }
    controller.join().await;
    say("stopped; the providers keep their state");
    Ok(exit::OK)
}

/// `rollback`. By undrain it is one step for Ctrl-C: undrain, weights and the current version's drain signal
/// all happen (a first Ctrl-C is honoured once it is done, which leaves nothing to resume; stopping between
/// them would leave the older version with the weight and a newer unsignalled one, which a controller takes
/// for a hand-off and shifts back to). By redeploy it stops at the deploy's next safe point; the rest is a
/// `deploy` of that release, which the hint names (another `rollback` would go back from wherever this one
/// got).
async fn rollback(config: &Config, provider: &Connected, json: bool) -> Result<u8, Failure> {
    let progress = Progress::stdout(Style::detect(json));
    let stopper = Stopper::new();
    on_ctrl_c(stopper.clone());
    let exec = executor(config, provider, Some(&stopper), &progress);
    let status = exec.status(&config.app).await.map_err(rollout)?;
    let Some(current) = status.target.clone() else {
        return Err(Failure::new(exit::FAILED, "no version has new sessions; nothing to roll back"));
    };
    // The newest other version that still runs and drains: take the traffic back to it at once.
    let live = status
        .versions
        .iter()
        .filter(|v| v.version != current && v.phase == VersionPhase::Draining)
        .max_by_key(|v| v.created_at);
    let controller = provider.controller(config).await.map_err(|e| Failure::new(exit::UNREACHABLE, e))?;
    if let (Some(previous), Some(holder)) = (live, &controller) {
        // Undraining and moving the weights would write behind the controller's back.
        return Err(Failure::new(
            exit::FAILED,
            format!(
                "{holder} runs for {}: stop it (Ctrl-C) and run `pulse-deploy rollback` again to take the traffic \
                 back to the draining {} at once, or redeploy {}'s release under a new version id",
                config.app, previous.version, previous.version
            ),
        ));
    }
    let started = |by: &str, version: &VersionId| {
        if json {
            say(serde_json::json!({ "event": "rollback_started", "by": by, "version": version, "from": current })
                .to_string());
        }
    };
    let (release, exec) = if let Some(previous) = live {
        let id = previous.version.clone();
        let versions = provider.providers.orchestrator.versions(&config.app).await.map_err(rollout)?;
        let state = versions.iter().find(|s| s.version() == &id).ok_or_else(|| {
            Failure::new(exit::FAILED, format!("{id} was reaped meanwhile; run the command again"))
        })?;
        started("undrain", &id);
        for i in state.live_instances() {
            verified::undrain(provider.providers.drain.as_ref(), i).await.map_err(rollout)?;
        }
        provider
            .providers
            .router
            .set_weights(&config.app, &Weights::all_to(id.clone()))
            .await
            .map_err(rollout)?;
        if !json {
            progress
                .line(format!("rolled back by undrain: {id} serves new sessions again; {current} drains"));
        }
        Journal::new(&config.local.state_dir).mark(format!("rollback to {id} (undrain)"));
        let release = state.release.clone();
        History::new(&config.local.state_dir).record(&release).map_err(|e| Failure::new(exit::FAILED, e))?;
        // The current version's drain signal belongs to the same step: not stopped by a first Ctrl-C.
        (release, executor(config, provider, None, &progress))
    } else {
        let history = History::new(&config.local.state_dir);
        let Some(release) = history.before(&current).map_err(|e| Failure::new(exit::FAILED, e))? else {
            return Err(Failure::new(
                exit::FAILED,
                format!("no release before {current} is recorded; deploy one by name"),
            ));
        };
        if let Some(left) = status.version(&release.version) {
            let v = &release.version;
            let message = if matches!(left.phase, VersionPhase::Starting | VersionPhase::Ready) {
                // E.g. a rollback stopped by Ctrl-C, or aborted during its undrain: finish it with a deploy.
                format!(
                    "{v} is {} and does not drain: `pulse-deploy deploy {v}` finishes going back to it (it gets \
                     every new session, {current} drains)",
                    left.phase
                )
            } else {
                format!(
                    "{v} is {} (no longer able to take sessions back); run `pulse-deploy reap`, then `pulse-deploy rollback` again to redeploy it",
                    left.phase
                )
            };
            return Err(Failure::new(exit::FAILED, message));
        }
        started("redeploy", &release.version);
        if !json {
            progress.line(format!(
                "rolled back by redeploy: {} was reaped, deploying its release again",
                release.version
            ));
        }
        Journal::new(&config.local.state_dir).mark(format!("rollback to {} (redeploy)", release.version));
        history.record(&release).map_err(|e| Failure::new(exit::FAILED, e))?;
        if let Some(holder) = &controller {
            return hand_off::deploy(config, provider, &release, holder, false).await;
        }
        (release, exec)
    };
    // Either way the rest is a deploy of that release: the current version drains.
    let ticker = progress.ticking();
    let outcome = exec.deploy(&release, Goal::Shifted).await;
    drop(ticker);
    progress.clear();
    let outcome = outcome.map_err(rollout)?;
    let after = exec.status(&config.app).await.map_err(rollout)?;
    Journal::new(&config.local.state_dir).status(&after);
    if json {
        say(serde_json::json!({ "event": "status", "status": after }).to_string());
    } else {
        say(table::render(&after));
    }
    if outcome.stopped {
        Journal::new(&config.local.state_dir)
            .mark(format!("rollback to {} stopped by Ctrl-C", release.version));
        let resume = format!("pulse-deploy deploy {}", release.version);
        if json {
            say(
                serde_json::json!({ "event": "stopped", "actions": outcome.actions.len(), "resume": resume })
                    .to_string(),
            );
        } else {
            say(format!("stopped at a safe point; run `{resume}` to finish the rollback"));
        }
        return Ok(exit::STOPPED);
    }
    Ok(exit::OK)
}

async fn down(config: &Config, provider: &Connected) -> Result<u8, Failure> {
    let versions = provider.providers.orchestrator.versions(&config.app).await.map_err(rollout)?;
    let names: Vec<String> = versions.iter().map(|v| v.version().to_string()).collect();
    pulse_deploy_core::teardown::tear_down(
        Some(provider.providers.orchestrator.as_ref()),
        Some(provider.providers.router.as_ref()),
        &config.app,
        config.stop_grace() + Duration::from_secs(30),
    )
    .await
    .map_err(rollout)?;
    provider.shutdown().await.map_err(rollout)?;
    Journal::new(&config.local.state_dir).mark("down");
    let removed = if names.is_empty() { "no version was running".to_owned() } else { names.join(", ") };
    say(format!("{} is down: removed {removed}; Envoy stopped", config.app));
    Ok(exit::OK)
}

async fn check_app(
    url: &str,
    mode: CheckMode,
    secret_file: &Path,
    health_path: Option<String>,
    json: bool,
) -> Result<u8, Failure> {
    let usage = |e: String| Failure::new(exit::USAGE, e);
    check_app::check_url(url).map_err(usage)?;
    let secret = check_app::read_secret(secret_file).map_err(usage)?;
    let options = check_app::options(mode, health_path);
    eprintln!("pulse-deploy: checking {url} (the checker drains it: use an instance that serves nobody)");
    let report = pulse_server_drain::checker::check(url, &secret, &options)
        .await
        .map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    if json {
        say(check_app::to_json(&report).to_string());
    } else {
        say(report.to_string());
    }
    Ok(if report.passed() { exit::OK } else { exit::FAILED })
}

fn timeline(config: &Config, out: Option<&Path>, json: bool) -> Result<u8, Failure> {
    let journal = Journal::new(&config.local.state_dir);
    let entries = journal.read().map_err(|e| Failure::new(exit::FAILED, e))?;
    if json {
        say(serde_json::to_string(&entries).expect("entries serialize"));
        return Ok(exit::OK);
    }
    let (samples, marks) = journal::picture_data(&entries);
    let Some(start) = crate::timeline::start_of(&samples, &marks) else {
        return Err(Failure::new(
            exit::FAILED,
            format!(
                "nothing recorded yet in {}; run `pulse-deploy deploy VERSION` first",
                journal.file().display()
            ),
        ));
    };
    let since = std::time::UNIX_EPOCH + Duration::from_secs_f64(start);
    let title = format!(
        "{}: weight and sessions per version since {}",
        config.app,
        humantime::format_rfc3339_seconds(since)
    );
    let svg = crate::timeline::svg(&title, &samples, &marks);
    match out {
        Some(file) => {
            std::fs::write(file, svg)
                .map_err(|e| Failure::new(exit::FAILED, format!("{}: {e}", file.display())))?;
            say(format!(
                "wrote {} ({} rollout events, {} samples, from the first event on)",
                file.display(),
                marks.len(),
                samples.len()
            ));
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(svg.as_bytes());
            let _ = stdout.flush();
        }
    }
    Ok(exit::OK)
}
