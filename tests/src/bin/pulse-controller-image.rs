//! `pulse-controller-image`: builds the controller's image `pulse-deploy-controller:local` (the static
//! `pulse-deploy` binary `FROM scratch` with a CA bundle, no registry) and prints its tag on stdout. Run
//! by `cargo xtask controller-image`; push it to the app's ECR repository as `:controller`.

use std::process::ExitCode;

use pulse_deploy_local::docker::connect_docker;
use pulse_deploy_tests::controller_image::{build_controller_image, CONTROLLER_IMAGE};

#[tokio::main]
async fn main() -> ExitCode {
    pulse_deploy_tests::init_logging();
    let workspace = pulse_deploy_tests::workspace_root();
    let built = async {
        let docker = connect_docker().await.map_err(|e| e.to_string())?;
        build_controller_image(&docker, &workspace, CONTROLLER_IMAGE).await
    };
    match built.await {
        Ok(_) => {
            println!("{CONTROLLER_IMAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pulse-controller-image: {e}");
            ExitCode::FAILURE
        }
    }
}
