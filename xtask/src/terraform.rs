//! `cargo xtask terraform-validate`: checks the shared-infrastructure module (`pulse-deploy-aws/terraform/`)
//! offline: `terraform init -backend=false`, `terraform validate`, `terraform fmt -check`, and the same
//! init and validate of its first-setup example (`examples/default-vpc/`).
//!
//! The hashicorp/aws provider comes from a filesystem mirror (default `/opt/tf-plugins`, the folder above
//! `registry.terraform.io`; override with `PULSE_TF_MIRROR`), through a CLI config written into
//! `target/terraform/`; the registry is never contacted. A missing `terraform` binary or mirror fails the
//! command, naming what is missing (under `CI=true` and on a workstation alike: a check that skips proves
//! nothing).
//!
//! Not for: applying the module (`pulse-deploy-aws/tests/terraform_moto.rs` applies it to moto; this
//! command only checks the formatting of that test's root module).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{root, run as step};

/// Where the provider mirror is looked for when `PULSE_TF_MIRROR` is not set.
const DEFAULT_MIRROR: &str = "/opt/tf-plugins";

/// Runs init, validate and fmt on the module.
pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    let module = root().join("pulse-deploy-aws/terraform");
    let mirror = PathBuf::from(std::env::var("PULSE_TF_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.into()));
    check_prerequisites(&mirror)?;
    let work = root().join("target/terraform");
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let cli_config = work.join("cli.tfrc");
    std::fs::write(&cli_config, cli_config_text(&mirror))
        .map_err(|e| format!("cannot write {}: {e}", cli_config.display()))?;
    let terraform = |args: &[&str]| {
        let mut cmd = Command::new("terraform");
        cmd.arg(format!("-chdir={}", module.display()))
            .args(args)
            .env("TF_CLI_CONFIG_FILE", &cli_config)
            .env("TF_DATA_DIR", work.join("data"))
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1");
        cmd
    };
    step(
        "terraform init (offline mirror)",
        &mut terraform(&["init", "-backend=false", "-input=false", "-no-color"]),
    )?;
    step("terraform validate", &mut terraform(&["validate", "-no-color"]))?;
    step("terraform fmt -check", &mut terraform(&["fmt", "-check", "-recursive", "-diff"]))?;
    // The first-setup example docs/aws.md points to (the module in the default VPC, with its certificate).
    let example = module.join("examples/default-vpc");
    let example_cmd = |args: &[&str]| {
        let mut cmd = Command::new("terraform");
        cmd.arg(format!("-chdir={}", example.display()))
            .args(args)
            .env("TF_CLI_CONFIG_FILE", &cli_config)
            .env("TF_DATA_DIR", work.join("example-data"))
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1");
        cmd
    };
    step(
        "terraform init (examples/default-vpc)",
        &mut example_cmd(&["init", "-backend=false", "-input=false", "-no-color"]),
    )?;
    step("terraform validate (examples/default-vpc)", &mut example_cmd(&["validate", "-no-color"]))?;
    // The test-only root module that applies the module to moto (tests/terraform_moto.rs).
    let test_root = root().join("pulse-deploy-aws/tests/terraform_moto");
    step(
        "terraform fmt -check (tests/terraform_moto)",
        Command::new("terraform")
            .arg(format!("-chdir={}", test_root.display()))
            .args(["fmt", "-check", "-recursive", "-diff"])
            .env("TF_CLI_CONFIG_FILE", &cli_config)
            .env("CHECKPOINT_DISABLE", "1"),
    )
}

fn check_prerequisites(mirror: &Path) -> Result<(), String> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let context = if ci {
        "CI=true: the Terraform module must be validated, so this fails"
    } else {
        "the module cannot be validated without it"
    };
    let found = Command::new("terraform").arg("version").output().is_ok_and(|o| o.status.success());
    if !found {
        return Err(format!(
            "terraform-validate: `terraform` (1.11) is not on PATH; {context}. Install Terraform 1.11 \
             (https://developer.hashicorp.com/terraform/install)"
        ));
    }
    let provider = mirror.join("registry.terraform.io/hashicorp/aws");
    if !provider.is_dir() {
        return Err(format!(
            "terraform-validate: the offline provider mirror is missing: {} does not exist; {context}. \
             Set PULSE_TF_MIRROR to the folder above `registry.terraform.io` holding hashicorp/aws 5.100 \
             (e.g. made with `terraform providers mirror`)",
            provider.display()
        ));
    }
    Ok(())
}

fn cli_config_text(mirror: &Path) -> String {
    format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path = {:?}\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/*/*\"]\n  }}\n}}\n",
        mirror.display().to_string()
    )
}
