//! The `pulse-deploy` binary before any provider is involved: `init` writes a commented configuration and
//! a private drain secret; `--help` shows examples and exit codes; a bad configuration is refused with
//! exit 2, naming the file, the line and the field, and nothing (no container, no Envoy, no state) is
//! created.
//!
//! The first two tests need nothing but the binary. The third runs with the real Docker and Envoy
//! reachable (so that a command which got past the checks would create something) and then looks for what
//! it created; with `CI=true` it fails when Docker or Envoy is missing, otherwise it skips.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use pulse_deploy_local::docker::labels;
use pulse_deploy_local::preflight;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pulse-cli-{name}-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the binary in `dir`; returns (exit code, stdout, stderr).
fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pulse-deploy-cli"))
        .args(args)
        .current_dir(dir)
        .env_remove("PULSE_DEPLOY_CONFIG")
        .output()
        .expect("running pulse-deploy");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Proves `init`: the file it writes loads, is commented (every key explained), names the app, image and
/// listener given; the drain secret is created with mode 0600 and never printed; a second `init` refuses
/// to overwrite without `--force`.
#[test]
fn init_writes_a_commented_config_and_a_private_secret() {
    let dir = temp_dir("init");
    let (code, out, err) =
        cli(&dir, &["init", "--app", "clitest-init", "--image", "shop:1.0", "--listen", "127.0.0.1:18080"]);
    assert_eq!(code, 0, "init: {out}{err}");
    let text = std::fs::read_to_string(dir.join("pulse-deploy.toml")).expect("pulse-deploy.toml written");
    for line in ["app = \"clitest-init\"", "image = \"shop:1.0\"", "listen = \"127.0.0.1:18080\""] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
    }
    let comments = text.lines().filter(|l| l.trim_start().starts_with('#')).count();
    let keys = text.lines().filter(|l| l.contains(" = ") && !l.trim_start().starts_with('#')).count();
    assert!(comments >= keys, "every key is explained: {comments} comment lines for {keys} keys:\n{text}");

    let secret_file = dir.join(".pulse-deploy/drain-secret");
    let mode = std::fs::metadata(&secret_file).expect("the drain secret").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the drain secret must be private, is {mode:o}");
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    assert!(secret.trim().len() >= 32, "a 32-character secret");
    assert!(!out.contains(secret.trim()) && !err.contains(secret.trim()), "init printed the secret");
    assert!(out.contains("pulse-deploy deploy v1"), "init says what to do next: {out}");

    let (code, _, err) = cli(&dir, &["init", "--app", "other", "--image", "x:1"]);
    assert_eq!(code, 2, "a second init must refuse: {err}");
    assert!(err.contains("--force"), "{err}");
    assert!(std::fs::read_to_string(dir.join("pulse-deploy.toml")).unwrap().contains("clitest-init"));
    let (code, _, err) = cli(&dir, &["init", "--app", "other", "--image", "x:1", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret, "--force keeps the existing secret");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Proves that `--help` lists every command with examples and the exit codes, and exits 0; a bad
/// command line (a missing version, an unknown command, an unknown flag, named) exits 2.
#[test]
fn help_shows_examples_and_exit_codes() {
    let dir = temp_dir("help");
    let (code, out, err) = cli(&dir, &["--help"]);
    assert_eq!(code, 0, "{err}");
    for word in ["init", "deploy", "status", "plan", "rollback", "watch", "Examples:", "Exit codes:", "130"] {
        assert!(out.contains(word), "--help lacks `{word}`:\n{out}");
    }
    let (code, _, err) = cli(&dir, &["deploy"]);
    assert_eq!(code, 2, "a missing version is a usage error: {err}");
    let (code, _, err) = cli(&dir, &["launch"]);
    assert_eq!(code, 2, "an unknown command is a usage error: {err}");
    let (code, _, err) = cli(&dir, &["deploy", "v1", "--colour", "red"]);
    assert_eq!(code, 2, "an unknown flag is a usage error: {err}");
    assert!(err.contains("--colour"), "the error names the unknown flag: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Proves that each bad configuration — an unknown key, a value of the wrong type, a bad duration, a bad
/// address, an invalid app name, a missing required field — and a bad version on the command line exits 2
/// with the file, the line and the field in the message, and that none of them created anything: no
/// state directory, no Envoy, no container of the app (Docker and Envoy are reachable, so a command that
/// got past the checks would have).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configs_exit_2_naming_file_line_and_field_and_create_nothing() {
    let Some(docker) = preflight::or_skip("Docker", preflight::docker().await) else { return };
    let Some(_) = preflight::or_skip("Envoy", preflight::envoy()) else { return };
    let dir = temp_dir("badcfg");
    let app = format!("clitest-bad{:04x}", rand::random::<u16>());
    let (code, out, err) = cli(&dir, &["init", "--app", &app, "--image", "pulse-demo-app:local"]);
    assert_eq!(code, 0, "init: {out}{err}");
    let good = std::fs::read_to_string(dir.join("pulse-deploy.toml")).unwrap();
    let secret = std::fs::read_to_string(dir.join(".pulse-deploy/drain-secret")).unwrap();
    let line_of = |text: &str, prefix: &str| {
        text.lines().position(|l| l.starts_with(prefix)).map(|i| i + 1).unwrap_or_else(|| panic!("{prefix}"))
    };
    let replace = |from: &str, to: &str| {
        assert!(good.contains(from), "{from}");
        good.replacen(from, to, 1)
    };
    // (what, the file's text, the field the error must name, its line, a word of the fix)
    let cases: Vec<(&str, String, &str, Option<usize>, &str)> = vec![
        {
            let t = replace("replicas = 2\n", "replicas = 2\nreplicaz = 3\n");
            let l = line_of(&t, "replicaz");
            ("unknown key", t, "replicaz", Some(l), "remove it")
        },
        {
            let t = replace("replicas = 2\n", "replicas = \"two\"\n");
            let l = line_of(&t, "replicas");
            ("wrong type", t, "replicas", Some(l), "correct the value")
        },
        {
            let t = replace("poll_interval = \"2s\"", "poll_interval = \"soon\"");
            let l = line_of(&t, "poll_interval");
            ("bad duration", t, "rollout.poll_interval", Some(l), "\"30s\"")
        },
        {
            let t = replace("listen = \"127.0.0.1:8080\"", "listen = \"localhost\"");
            let l = line_of(&t, "listen");
            ("bad address", t, "local.listen", Some(l), "IP:PORT")
        },
        {
            let t = replace(&format!("app = \"{app}\""), "app = \"Shop!\"");
            let l = line_of(&t, "app =");
            ("bad app name", t, "app", Some(l), "a-z, 0-9")
        },
        {
            let t = replace("replicas = 2\n", "replicas = 0\n");
            let l = line_of(&t, "replicas");
            ("zero replicas", t, "replicas", Some(l), "replicas")
        },
        {
            let t = replace("image = \"pulse-demo-app:local\"\n", "");
            ("missing field", t, "image", None, "add it")
        },
    ];
    let file = dir.join("pulse-deploy.toml");
    for (what, text, field, line, fix) in cases {
        std::fs::write(&file, &text).unwrap();
        for command in [&["deploy", "v1"][..], &["status"], &["watch"]] {
            let (code, out, err) = cli(&dir, command);
            assert_eq!(code, 2, "{what}, {command:?}: expected exit 2: {out}{err}");
            let at = match line {
                Some(l) => format!("pulse-deploy.toml:{l}: `{field}`"),
                None => format!("pulse-deploy.toml:1: `{field}`"),
            };
            assert!(err.contains(&at), "{what}, {command:?}: expected `{at}` in: {err}");
            assert!(err.contains(fix), "{what}, {command:?}: expected the fix `{fix}` in: {err}");
            assert!(!err.contains(secret.trim()) && !out.contains(secret.trim()), "the secret leaked");
        }
    }
    // A bad version on the command line, with a good file.
    std::fs::write(&file, &good).unwrap();
    let (code, _, err) = cli(&dir, &["deploy", "Bad Version!"]);
    assert_eq!(code, 2, "a bad version is a usage error: {err}");
    assert!(err.contains("version"), "{err}");

    let state = dir.join(".pulse-deploy");
    let created: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "drain-secret")
        .collect();
    assert!(created.is_empty(), "the refused commands created state: {created:?}");
    let label = format!("{}={app}", labels::APP);
    let filters = std::collections::HashMap::from([("label", vec![label])]);
    let list =
        bollard::query_parameters::ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let containers = docker.list_containers(Some(list)).await.expect("listing containers");
    assert!(containers.is_empty(), "the refused commands created containers: {containers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Proves that `provider = "aws"` is taken, and that its configuration is checked before any AWS call:
/// without the `PULSE_AWS_*` environment (the Terraform module's `environment` output) every command that
/// needs the provider exits 2 naming the first missing variable and its fix, and nothing local is created.
#[test]
fn the_aws_provider_names_a_missing_variable_before_any_call() {
    let dir = temp_dir("awscfg");
    let (code, out, err) = cli(&dir, &["init", "--app", "clitest-aws", "--image", "shop:1.0"]);
    assert_eq!(code, 0, "init: {out}{err}");
    let file = dir.join("pulse-deploy.toml");
    let text =
        std::fs::read_to_string(&file).unwrap().replacen("provider = \"local\"", "provider = \"aws\"", 1);
    std::fs::write(&file, text).unwrap();
    for command in [&["deploy", "v1"][..], &["status"], &["plan", "v1"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_pulse-deploy-cli"))
            .args(command)
            .current_dir(&dir)
            .env_remove("PULSE_DEPLOY_CONFIG")
            .env_remove("PULSE_AWS_CLUSTER")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9") // were a call made, it would fail with exit 3
            .output()
            .expect("running pulse-deploy");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {err}");
        assert!(
            err.contains("provider = \"aws\"") && err.contains("PULSE_AWS_CLUSTER"),
            "{command:?}: {err}"
        );
        assert!(err.contains("Terraform"), "the error says where the value comes from: {err}");
    }
    assert!(!dir.join(".pulse-deploy/releases.jsonl").exists(), "a refused deploy recorded a release");

    // The controller's task has no file: `watch` (and `status`, `reap`) take the app from PULSE_AWS_APP.
    let bare = temp_dir("awsenv");
    for command in [&["watch"][..], &["status"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_pulse-deploy-cli"))
            .args(command)
            .current_dir(&bare)
            .env_remove("PULSE_DEPLOY_CONFIG")
            .env_remove("PULSE_AWS_CLUSTER")
            .env("PULSE_AWS_APP", "clitest-aws")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .output()
            .expect("running pulse-deploy");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {err}");
        assert!(err.contains("PULSE_AWS_CLUSTER") && !err.contains("cannot read it"), "{command:?}: {err}");
    }
    let (code, _, err) = cli(&bare, &["deploy", "v1"]);
    assert_eq!(code, 2, "deploy still needs its file: {err}");
    assert!(err.contains("cannot read it"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&bare);
}
