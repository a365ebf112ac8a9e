//! `pulse-e2e`: runs the end-to-end scenario (see `pulse_deploy_tests::e2e`). Started by `cargo xtask e2e`,
//! which installs Envoy first. Exits non-zero if any check failed. Ctrl-C (or SIGTERM) cleans up and exits.

use std::process::ExitCode;

use pulse_deploy_tests::e2e::{run, AppKind, E2eConfig};

#[tokio::main]
async fn main() -> ExitCode {
    pulse_deploy_tests::init_logging();
    let workspace = pulse_deploy_tests::workspace_root();
    let mut config = E2eConfig::new(workspace);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-build" => config.build_image = false,
            "--app" => match args.next().as_deref().map(AppKind::parse) {
                Some(Ok(kind)) => config.app = kind,
                Some(Err(e)) => {
                    eprintln!("pulse-e2e: {e}");
                    return ExitCode::FAILURE;
                }
                None => {
                    eprintln!("pulse-e2e: --app needs `demo` or `pulse`");
                    return ExitCode::FAILURE;
                }
            },
            "-h" | "--help" => {
                println!("pulse-e2e [--no-build] [--app demo|pulse]\n\nRuns the whole multi-version rollout on Docker + Envoy and writes target/e2e/report.json and timeline.svg.\n  --no-build   use the existing demo image instead of building it\n  --app        demo (default: the Rust demo app) or pulse (the example Pulse app, examples/pulse-app)");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("pulse-e2e: unknown argument `{other}`; see --help");
                return ExitCode::FAILURE;
            }
        }
    }
    if config.app == AppKind::Pulse {
        config.out_dir = config.workspace.join("target/e2e-pulse");
    }
    let interrupt = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("pulse-e2e: interrupted; cleaning up");
    };
    let report = run(config.clone(), interrupt).await;
    println!("\nreport: {}", config.out_dir.join("report.json").display());
    println!("timeline: {}", config.out_dir.join("timeline.svg").display());
    if report.passed {
        println!(
            "e2e: PASSED — {} requests ok, 0 failed; {} sessions, 0 dropped, {} moved at a deadline; v1 reaped {:.1} s after its last session",
            report.ok_requests,
            report.sessions_opened,
            report.sessions_moved,
            report.last_session_to_removal_seconds.unwrap_or(f64::NAN)
        );
        ExitCode::SUCCESS
    } else {
        println!("e2e: FAILED — {}", report.failure.as_deref().unwrap_or("unknown"));
        ExitCode::FAILURE
    }
}
