//! The command line: every subcommand, its flags, and the examples `--help` shows.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  pulse-deploy init --app shop --image shop:1.0     write pulse-deploy.toml (defaults that work)
  pulse-deploy deploy v1                            the first version: all new sessions
  pulse-deploy deploy v2 --image shop:1.1           v2 takes new sessions, v1 drains and keeps its own
  pulse-deploy status                               a table of every live version (--json, --watch)
  pulse-deploy watch                                reap drained versions for as long as it runs
  pulse-deploy rollback                             back to the previous version
  pulse-deploy timeline --out rollouts.svg          weight and sessions per version over time
  pulse-deploy check-app http://127.0.0.1:8000      the drain-protocol checker (drains that instance)
  pulse-deploy down                                 remove the app's containers and stop Envoy

Exit codes:
  0  done            1  the rollout failed (rolled back, timed out, refused; check-app: a rule failed)
  2  bad usage or configuration (nothing was contacted)
  3  a provider could not be reached
  130  stopped by Ctrl-C at a safe point (run the same command again to resume; a stopped
       `rollback` names the `deploy` that finishes it);
       `watch` and `status --watch` end with 0 on Ctrl-C";

/// Deploy stateful WebSocket apps with zero dropped sessions.
///
/// `bin_name` keeps help, usage and errors saying `pulse-deploy` whatever the process was started as (clap
/// would take argv\[0\]: the controller image runs the binary as `/app`).
#[derive(Debug, Parser)]
#[command(name = "pulse-deploy", bin_name = "pulse-deploy", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, short = 'c', global = true, default_value = crate::config::FILE_NAME, env = "PULSE_DEPLOY_CONFIG")]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented pulse-deploy.toml and a fresh drain secret.
    #[command(
        after_help = "Example:\n  pulse-deploy init --app shop --image shop:1.0 --listen 127.0.0.1:8080"
    )]
    Init {
        /// The app's name.
        #[arg(long)]
        app: String,
        /// The image new versions run.
        #[arg(long)]
        image: String,
        /// Envoy's public listener.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Deploy a new version: it gets every new session, older versions drain. Resumes when run again.
    #[command(after_help = "Example:\n  pulse-deploy deploy v2 --image shop:1.1")]
    Deploy {
        /// The version's name, e.g. v2 or a commit hash.
        version: String,
        /// The image (default: the configuration's).
        #[arg(long)]
        image: Option<String>,
        /// Also wait until every older version is drained and reaped.
        #[arg(long)]
        settle: bool,
        /// Print progress as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Show every live version.
    #[command(
        after_help = "Examples:\n  pulse-deploy status\n  pulse-deploy status --json\n  pulse-deploy status --watch"
    )]
    Status {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Print again whenever it changes, until Ctrl-C.
        #[arg(long)]
        watch: bool,
    },
    /// Show what `deploy` would do next, without doing it.
    #[command(after_help = "Example:\n  pulse-deploy plan v3")]
    Plan {
        /// The version.
        version: String,
        /// The image (default: the configuration's).
        #[arg(long)]
        image: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Tell a version without new sessions to drain (it is reaped once its sessions end).
    Drain {
        /// The version.
        version: String,
    },
    /// One pass of the controller: drain what must drain, reap what is drained.
    Reap {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Run the controller: reap versions as their sessions end, for as long as it runs.
    Watch,
    /// Back to the previous version: undrained at once if it still drains, otherwise redeployed.
    #[command(after_help = "Examples:\n  pulse-deploy rollback\n  pulse-deploy rollback --json")]
    Rollback {
        /// Print progress as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Remove the app: out of the router, every version retired (open sessions are cut: this is not a
    /// rollout), Envoy stopped. The configuration, the secret and the history are kept.
    #[command(after_help = "Example:\n  pulse-deploy down")]
    Down,
    /// Check that a running instance speaks the drain protocol. It DRAINS that instance: use one that
    /// serves nobody. Exits 1 if any rule fails.
    #[command(
        name = "check-app",
        after_help = "Examples:\n  pulse-deploy check-app http://127.0.0.1:8000\n  \
                      pulse-deploy check-app http://127.0.0.1:8000 --mode pulse --secret-file ./drain-secret"
    )]
    CheckApp {
        /// The instance, `http://HOST:PORT` (not the router: the checker must reach one instance).
        url: String,
        /// `plain` (page load + WebSocket, the Rust server) or `pulse` (prerender + Socket.IO, a Pulse app).
        #[arg(long, value_enum, default_value_t = CheckMode::Plain)]
        mode: CheckMode,
        /// The drain secret's file (default: the configuration's `local.secret_file`). Never printed.
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// The health path (default: the mode's, `/health` or `/_pulse/health`).
        #[arg(long)]
        health_path: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Draw the app's recent rollouts as an SVG: weight and sessions per version over time, from the first
    /// recorded rollout event.
    #[command(
        after_help = "Examples:\n  pulse-deploy timeline --out rollouts.svg\n  pulse-deploy timeline > rollouts.svg"
    )]
    Timeline {
        /// Write the SVG to this file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The recorded events and samples as JSON instead of a picture.
        #[arg(long)]
        json: bool,
    },
}

/// How `check-app` creates sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckMode {
    /// The generic protocol: page load + `x-pulse-session`, WebSocket `?session=<id>`.
    Plain,
    /// The Pulse profile: prerender + Socket.IO CONNECT.
    Pulse,
}
