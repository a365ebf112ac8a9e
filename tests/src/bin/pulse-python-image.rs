//! `pulse-python-image`: makes sure the Python base and venv images exist (built without any registry,
//! cached by content; see `pulse_deploy_tests::python_image`) and prints the venv image's reference on
//! stdout. Run by `cargo xtask python-image`, `cargo xtask pytest` and the Pulse e2e.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    pulse_deploy_tests::init_logging();
    let workspace = pulse_deploy_tests::workspace_root();
    let docker = match pulse_deploy_local::docker::connect_docker().await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("pulse-python-image: {e}");
            return ExitCode::FAILURE;
        }
    };
    match pulse_deploy_tests::python_image::ensure_images(&docker, &workspace).await {
        Ok(reference) => {
            println!("{reference}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pulse-python-image: {e}");
            ExitCode::FAILURE
        }
    }
}
