//! The real `pulse-demo-app` binary refuses a bad setting at start, before it listens: exit 2 with a
//! message naming the setting, never a panic. Covers the health path (an app route, malformed) and an
//! instance id taken from the host name, and the bind address.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_address_that_is_not_an_ip_address_is_refused() {
    for bad in ["localhost", "127.0.0.1:8000", "300.1.1.1", "0.0.0.0/0"] {
        let (code, err) = start_with(&[("PULSE_BIND_ADDRESS", bad)]).await;
        assert_refused(code, &err, "PULSE_BIND_ADDRESS", bad);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bind_address_is_the_one_listened_on() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulse-demo-app"))
        .env_remove("ECS_CONTAINER_METADATA_URI_V4")
        .env("PORT", "0")
        .env("PULSE_BIND_ADDRESS", "127.0.0.7")
        .env("PULSE_VERSION", "v1")
        .env("PULSE_DRAIN_SECRET", SECRET)
        .env("PULSE_INSTANCE_ID", "bind-test")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run pulse-demo-app");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .expect("the demo printed its address within 20 s")
        .expect("stdout")
        .expect("a line");
    let addr = line.strip_prefix("pulse-demo-app listening on ").expect("the listening line");
    assert!(addr.starts_with("127.0.0.7:"), "{line}");
    let stream = tokio::net::TcpStream::connect(addr).await.expect("it accepts on the bind address");
    drop(stream);
    child.start_kill().expect("kill");
    let _ = child.wait().await;
}
