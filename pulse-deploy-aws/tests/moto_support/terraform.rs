//! Terraform for the emulator tests: the `terraform` binary (1.11) with the hashicorp/aws provider from
//! the offline filesystem mirror (`PULSE_TF_MIRROR`, default `/opt/tf-plugins`, as in
//! `cargo xtask terraform-validate`), run on the test-only root module `tests/terraform_moto/` against a
//! moto URL. Every run has its own data directory and state file under the test's temporary directory,
//! so runs in parallel never share anything; the registry is never contacted.
//!
//! With `CI=true` a missing `terraform` or mirror fails loudly; elsewhere the test prints why and skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where the provider mirror is looked for when `PULSE_TF_MIRROR` is not set.
const DEFAULT_MIRROR: &str = "/opt/tf-plugins";

/// A Terraform working copy of the test root module with its own data directory and state.
#[derive(Debug)]
pub(crate) struct Terraform {
    root_module: PathBuf,
    work: PathBuf,
    /// `-var` arguments of every plan.
    vars: Vec<String>,
}

fn missing(what: String) -> Option<Terraform> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true: {what}; the Terraform module must be applied to the emulator, so this fails");
    }
    eprintln!("SKIPPED: {what}");
    None
}

impl Terraform {
    /// Prepares a run of `tests/terraform_moto/` in a fresh directory named after `run`, or `None` (with
    /// the reason printed) when Terraform or the provider mirror is missing outside CI.
    pub(crate) fn prepare(run: &str, vars: &[(&str, &str)]) -> Option<Terraform> {
        let found = Command::new("terraform").arg("version").output().is_ok_and(|o| o.status.success());
        if !found {
            return missing(
                "`terraform` (1.11) is not on PATH (https://developer.hashicorp.com/terraform/install)"
                    .into(),
            );
        }
        let mirror =
            PathBuf::from(std::env::var("PULSE_TF_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.into()));
        if !mirror.join("registry.terraform.io/hashicorp/aws").is_dir() {
            return missing(format!(
                "the offline provider mirror is missing: {}/registry.terraform.io/hashicorp/aws does not exist \
                 (set PULSE_TF_MIRROR to the folder above registry.terraform.io)",
                mirror.display()
            ));
        }
        let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("terraform-moto").join(run);
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).expect("creating the Terraform work directory");
        std::fs::write(work.join("cli.tfrc"), cli_config(&mirror)).expect("writing the Terraform CLI config");
        Some(Terraform {
            root_module: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../pulse-deploy-aws/tests/terraform_moto"),
            work,
            vars: vars.iter().map(|(k, v)| format!("-var={k}={v}")).collect(),
        })
    }

    /// The state file.
    pub(crate) fn state_file(&self) -> PathBuf {
        self.work.join("terraform.tfstate")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("terraform");
        cmd.arg(format!("-chdir={}", self.root_module.display()))
            .args(args)
            .env("TF_CLI_CONFIG_FILE", self.work.join("cli.tfrc"))
            .env("TF_DATA_DIR", self.work.join("data"))
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            // The provider reads no profile and no instance metadata: the root module gives it dummy
            // credentials and moto's endpoints; these make sure nothing else leaks in.
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        cmd
    }

    /// Runs `terraform ARGS`, panicking with its output when it fails; returns stdout and the time taken.
    /// The output is also kept in the work directory (`apply.log`, ...).
    fn run(&self, what: &str, args: &[&str]) -> (String, Duration) {
        let started = Instant::now();
        let out: Output = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("terraform {what}: cannot start terraform: {e}"));
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let log = self.work.join(format!("{}.log", what.replace(' ', "-")));
        let _ = std::fs::write(
            &log,
            format!("{stdout}\n--- stderr ---\n{}", String::from_utf8_lossy(&out.stderr)),
        );
        if !out.status.success() {
            // The last lines carry Terraform's error; the plan above them is noise.
            let tail: Vec<&str> = stdout.lines().rev().take(60).collect();
            panic!(
                "terraform {what} failed ({}):\n{}\n--- stderr ---\n{}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        (stdout, took)
    }

    /// `terraform init` from the mirror, the state kept in the work directory.
    pub(crate) fn init(&self) -> Duration {
        let backend = format!("-backend-config=path={}", self.state_file().display());
        self.run("init", &["init", "-input=false", "-no-color", "-lockfile=readonly", &backend]).1
    }

    /// `terraform apply -auto-approve`.
    pub(crate) fn apply(&self) -> Duration {
        let mut args = vec!["apply", "-auto-approve", "-input=false", "-no-color"];
        args.extend(self.vars.iter().map(String::as_str));
        self.run("apply", &args).1
    }

    /// `terraform output -json`: every root output by name, with its value.
    pub(crate) fn outputs(&self) -> Value {
        let (json, _) = self.run("output", &["output", "-json", "-no-color"]);
        let all: Value = serde_json::from_str(&json).expect("terraform output -json is JSON");
        let Value::Object(all) = all else { panic!("terraform output -json is not an object: {json}") };
        Value::Object(all.into_iter().map(|(k, v)| (k, v["value"].clone())).collect())
    }

    /// `terraform destroy -auto-approve`, from the state as it is (no refresh: the apply has just read
    /// every resource back, and pulse-deploy's own changes to the listener are ignored by the module).
    pub(crate) fn destroy(&self) -> Duration {
        let mut args = vec!["destroy", "-auto-approve", "-refresh=false", "-input=false", "-no-color"];
        args.extend(self.vars.iter().map(String::as_str));
        self.run("destroy", &args).1
    }

    /// The resources Terraform still tracks (`terraform state list`).
    pub(crate) fn state_list(&self) -> Vec<String> {
        let (out, _) = self.run("state list", &["state", "list"]);
        out.lines().map(str::to_owned).filter(|l| !l.is_empty()).collect()
    }

    /// The work directory (CLI config, data directory, state).
    pub(crate) fn work_dir(&self) -> &Path {
        &self.work
    }
}

fn cli_config(mirror: &Path) -> String {
    format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path = {:?}\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/*/*\"]\n  }}\n}}\n",
        mirror.display().to_string()
    )
}
