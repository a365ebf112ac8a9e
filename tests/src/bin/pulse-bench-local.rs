//! `pulse-bench-local`: the rollout figures of the local providers, on real Docker + Envoy
//! (run by `cargo xtask bench local`, next to Envoy's weight-flip benchmark):
//!
//! - deploy-to-serving: from `deploy` of a 2-instance version to it having every new session
//!   (containers started, health-checked by Envoy, weights flipped);
//! - last-session-to-reaped: from the last session of a draining version closing to the version being
//!   gone (containers and routes).
//!
//! Rounds: `PULSE_BENCH_ROUNDS` (default 5). Prints medians and every sample; writes
//! `target/bench/local-rollout.json`. A benchmark, not a test: it asserts nothing about time.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pulse_deploy_core::{Release, VersionId};
use pulse_deploy_tests::e2e::{E2eConfig, Env};
use pulse_deploy_tests::session;

#[tokio::main]
async fn main() -> ExitCode {
    let workspace = pulse_deploy_tests::workspace_root();
    let rounds: usize = std::env::var("PULSE_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let mut config = E2eConfig::new(workspace.clone());
    config.out_dir = workspace.join("target/bench/local-rollout");
    config.build_image = !std::env::args().any(|a| a == "--no-build");
    let t0 = Instant::now();
    let env = match Env::start(&config, t0).await {
        Ok(env) => env,
        Err(e) => {
            eprintln!("pulse-bench-local: setup failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = measure(&env, rounds).await;
    let leftovers = env.cleanup().await;
    match result {
        Ok((deploy, reap)) => {
            let line = |name: &str, xs: &[f64]| {
                let mut s = xs.to_vec();
                s.sort_by(f64::total_cmp);
                println!(
                    "{name:<28} median {:>7.0} ms   min {:>7.0} ms   max {:>7.0} ms   samples {:?}",
                    s[s.len() / 2],
                    s[0],
                    s[s.len() - 1],
                    xs.iter().map(|x| x.round() as u64).collect::<Vec<_>>()
                );
            };
            println!("\nlocal rollout ({rounds} rounds, 2 instances per version, Envoy health checks every 500 ms):");
            line("deploy-to-serving", &deploy);
            line("last-session-to-reaped", &reap);
            let json = serde_json::json!({ "rounds": rounds, "deploy_to_serving_ms": deploy, "last_session_to_reaped_ms": reap });
            let dir = workspace.join("target/bench");
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(
                dir.join("local-rollout.json"),
                serde_json::to_string_pretty(&json).expect("json"),
            );
            if leftovers.containers > 0 || leftovers.envoy_running {
                eprintln!("pulse-bench-local: left running: {leftovers:?}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pulse-bench-local: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn measure(env: &Env, rounds: usize) -> Result<(Vec<f64>, Vec<f64>), String> {
    let mut deploy_ms = Vec::new();
    let mut reap_ms = Vec::new();
    let mut previous: Option<(VersionId, session::SessionHandle)> = None;
    for round in 1..=rounds + 1 {
        let v = VersionId::new(format!("b{round}")).map_err(|e| e.to_string())?;
        let release = Release::builder(env.app.as_str(), v.as_str(), env.image.clone())
            .replicas(2)
            .drain_deadline(Duration::from_secs(600))
            .stop_grace(Duration::from_secs(10))
            .env("PULSE_SESSION_GRACE_SECS", "1")
            .build()
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        env.controller.deploy(release);
        let target = v.clone();
        env.controller
            .wait_for("the new version to have every new session", Duration::from_secs(120), move |p| {
                p.target.as_ref() == Some(&target) && p.shifted
            })
            .await
            .map_err(|e| e.to_string())?;
        if round <= rounds {
            deploy_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        // The previous version drains with one session open; closing it starts the reap clock.
        if let Some((old, session)) = previous.take() {
            session.close().await;
            let closed = Instant::now();
            env.wait_gone(&old, Duration::from_secs(120)).await?;
            reap_ms.push(closed.elapsed().as_secs_f64() * 1000.0);
        }
        if round <= rounds {
            let s = session::open(round, &env.http, &env.base, None, Duration::from_secs(1)).await?;
            previous = Some((v, s));
        }
    }
    Ok((deploy_ms, reap_ms))
}
