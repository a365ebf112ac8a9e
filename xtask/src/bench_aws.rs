//! `cargo xtask bench aws`: AWS API calls per full rollout and per idle controller pass, per API, and
//! the pass latency on the moto emulator (bench `aws` of pulse-deploy-aws, with `pulse-demo-app`
//! processes as the tasks). Built in the dev profile: the figures are call counts and the emulator's
//! latency, and a release build of the AWS SDK would cost minutes. About 30 s after the build.

use crate::util::{cargo_command, run as step};

/// Runs the benchmark.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(extra) = args.first() {
        return Err(format!("bench aws takes no arguments (got `{extra}`)"));
    }
    let tools = crate::tools::ensure()?;
    step(
        "AWS API calls per rollout and per idle pass on moto (pulse-deploy-aws, bench `aws`)",
        cargo_command()
            .args(["bench", "--profile", "dev", "--package", "pulse-deploy-aws", "--bench", "aws"])
            .env("PULSE_MOTO_BIN", &tools.moto_server),
    )
}
