//! The CI job of the AWS e2e: the real `pulse-deploy` binary (this crate's `pulse-deploy-cli`, built from
//! `pulse-deploy/src/main.rs`) run in a directory holding the team's `pulse-deploy.toml`
//! (`provider = "aws"`), with the environment a CI runner has: the Terraform module's `environment`
//! output (`PULSE_AWS_*`), `AWS_REGION`, the deployer's credentials, and `AWS_ENDPOINT_URL` (the emulator:
//! the one setting a runner against AWS would not have). Nothing else of the test's environment reaches
//! it. Every line it prints is kept, for the check that no secret is ever printed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

/// The access key id of the deployer's credentials (names the caller in the emulator's API log).
pub(crate) const DEPLOYER_ACCESS_KEY: &str = "ci-deployer";

/// One finished run.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing the output otherwise.
    pub(crate) fn expect(self, code: i32, what: &str) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// The deployer: a directory with the configuration, and the runner's environment.
#[derive(Debug)]
pub(crate) struct Deployer {
    dir: PathBuf,
    env: BTreeMap<String, String>,
    printed: Mutex<Vec<String>>,
}

/// How long one command may take before the test gives up on it.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

impl Deployer {
    /// A fresh directory `dir` with `config` as its `pulse-deploy.toml`; `provider_env` is the module's
    /// `environment` output, `endpoint` the emulator's URL.
    pub(crate) fn new(
        dir: PathBuf,
        config: &str,
        provider_env: &BTreeMap<String, String>,
        endpoint: &str,
    ) -> Deployer {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("deployer dir");
        std::fs::write(dir.join("pulse-deploy.toml"), config).expect("pulse-deploy.toml");
        let mut env = provider_env.clone();
        let none = dir.join("no-aws-profile");
        for (k, v) in [
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", DEPLOYER_ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "emulator".to_owned()),
            ("AWS_ENDPOINT_URL", endpoint.to_owned()),
            ("AWS_CONFIG_FILE", none.display().to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", none.display().to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("HOME", dir.display().to_string()),
            ("CI", "true".to_owned()),
        ] {
            env.insert(k.to_owned(), v);
        }
        Deployer { dir, env, printed: Mutex::new(Vec::new()) }
    }

    /// Runs `pulse-deploy ARGS` to its end.
    pub(crate) async fn run(&self, args: &[&str]) -> Run {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pulse-deploy-cli"))
            .args(args)
            .current_dir(&self.dir)
            .env_clear()
            .envs(&self.env)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(RUN_TIMEOUT, out)
            .await
            .unwrap_or_else(|_| panic!("pulse-deploy {args:?} did not finish within {RUN_TIMEOUT:?}"))
            .expect("running pulse-deploy");
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        for line in run.stdout.lines().chain(run.stderr.lines()) {
            println!("  [pulse-deploy {}] {line}", args.first().unwrap_or(&""));
        }
        self.printed.lock().expect("printed").extend([run.stdout.clone(), run.stderr.clone()]);
        run
    }

    /// `status --json`: the app's status.
    pub(crate) async fn status(&self) -> Value {
        let run = self.run(&["status", "--json"]).await.expect(0, "status --json");
        serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("status --json ({e}): {}", run.stdout))
    }

    /// Everything every run printed.
    pub(crate) fn printed(&self) -> String {
        self.printed.lock().expect("printed").join("\n")
    }
}

/// A status as `(version, phase, weight)` per version, oldest first.
pub(crate) fn versions(status: &Value) -> Vec<(String, String, u64)> {
    status["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("no versions in {status}"))
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap_or_default().to_owned(),
                v["phase"].as_str().unwrap_or_default().to_owned(),
                v["weight"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}
