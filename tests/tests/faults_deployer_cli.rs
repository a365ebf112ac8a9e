//! The `pulse-deployer` binary the fault tests kill: bad input is refused with exit code 2 and a message
//! naming the flag, before any provider is contacted (no Docker or Envoy needed here).

use std::process::Command;

fn deployer(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pulse-deployer"))
        .args(args)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("PULSE_ENVOY_BIN", "/nonexistent/envoy")
        .output()
        .expect("running pulse-deployer");
    assert!(out.stdout.is_empty(), "nothing on stdout (reserved for actions): {:?}", out.stdout);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Proves that usage errors exit 2 before any provider call (Docker and Envoy point nowhere here, so
/// reaching them would fail differently), each message naming what to fix, and that the secret never
/// appears in what the deployer prints.
#[test]
fn bad_input_is_refused_before_any_provider_is_contacted() {
    let dir = std::env::temp_dir().join(format!("pulse-deployer-cli-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "cli-test-secret-value-0123456789\n").unwrap();
    let secret = secret.to_str().unwrap();
    let state = dir.to_str().unwrap();
    let base =
        ["deploy", "--app", "shop", "--image", "demo:local", "--state-dir", state, "--secret-file", secret];

    let (code, err) = deployer(&["--help"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("pulse-deployer deploy"), "{err}");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "missing command"),
        (vec!["launch"], "unknown command `launch`"),
        (base.to_vec(), "--version is required"),
        ([&base[..], &["--version", "v1", "--replicas", "two"]].concat(), "--replicas `two` is not a number"),
        ([&base[..], &["--version", "v1", "--stop-grace", "soon"]].concat(), "--stop-grace `soon`"),
        ([&base[..], &["--version", "v1", "--env", "NOVALUE"]].concat(), "--env `NOVALUE`: use KEY=VALUE"),
        ([&base[..], &["--version", "v1", "--goal", "done"]].concat(), "--goal `done`"),
        ([&base[..], &["--version", "v1", "--colour", "red"]].concat(), "unknown flag --colour"),
        ([&base[..], &["--version", "v1", "--replicas", "0"]].concat(), "replicas"),
        (
            vec![
                "deploy",
                "--app",
                "shop",
                "--version",
                "v1",
                "--image",
                "i",
                "--state-dir",
                state,
                "--secret-file",
                "/nonexistent",
            ],
            "--secret-file /nonexistent",
        ),
    ];
    for (args, expected) in cases {
        let (code, err) = deployer(&args);
        assert_eq!(code, 2, "{args:?} should be a usage error (exit 2): {err}");
        assert!(err.contains(expected), "{args:?}: expected `{expected}` in: {err}");
        assert!(!err.contains("cli-test-secret-value"), "the secret leaked: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
