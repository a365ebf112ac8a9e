//! The real `pulse-demo-app` binary refuses a bad setting at start, before it listens: exit 2 with a
//! message naming the setting, never a panic. Covers the health path (an app route, malformed) and an
//! instance id taken from the host name.

mod common;

use common::SECRET;
use tokio::process::Command;

/// Runs the demo with `envs` (no instance id, secret file or health path inherited) and returns its exit
/// code and stderr.
async fn start_with(envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pulse-demo-app"));
    for var in
        ["PULSE_INSTANCE_ID", "ECS_CONTAINER_METADATA_URI_V4", "PULSE_DRAIN_SECRET_FILE", "PULSE_HEALTH_PATH"]
    {
        cmd.env_remove(var);
    }
    let out = cmd
        .env("PORT", "0")
        .env("PULSE_VERSION", "v1")
        .env("PULSE_DRAIN_SECRET", SECRET)
        .env("PULSE_INSTANCE_ID", "startup-test")
        .envs(envs.iter().copied())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run pulse-demo-app");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_refused(code: Option<i32>, err: &str, setting: &str, case: &str) {
    assert_eq!(code, Some(2), "{case}: {err}");
    assert!(err.contains(setting), "{case}: the message names {setting}: {err}");
    assert!(!err.contains("panicked"), "{case}: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_path_equal_to_an_app_route_is_refused() {
    for route in pulse_server_drain::demo::ROUTES {
        let (code, err) = start_with(&[("PULSE_HEALTH_PATH", route)]).await;
        assert_refused(code, &err, "PULSE_HEALTH_PATH", route);
        // `/` is not a plain path anyway; every other route is refused as the app's.
        assert!(route == "/" || err.contains("app's routes"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_health_path_is_refused_without_panic() {
    for bad in ["health", "/{id}", "/:id", "/*rest", "/a//b", "/a b", "/a?x=1", "/%2e%2e", "/_pulse/admin/x"]
    {
        let (code, err) = start_with(&[("PULSE_HEALTH_PATH", bad)]).await;
        assert_refused(code, &err, "PULSE_HEALTH_PATH", bad);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_id_from_the_host_name_is_validated() {
    let long = "h".repeat(pulse_server_drain::MAX_INSTANCE_ID_LEN + 1);
    for bad in ["bad host", "caf\u{e9}", long.as_str()] {
        let (code, err) = start_with(&[("PULSE_INSTANCE_ID", ""), ("HOSTNAME", bad)]).await;
        assert_refused(code, &err, "HOSTNAME", bad);
        assert!(err.contains("PULSE_INSTANCE_ID"), "the fix is named: {err}");
    }
    let (code, err) = start_with(&[("PULSE_INSTANCE_ID", "bad\tid")]).await;
    assert_refused(code, &err, "PULSE_INSTANCE_ID", "a tab in PULSE_INSTANCE_ID");
}
