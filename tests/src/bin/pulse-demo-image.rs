//! `pulse-demo-image`: builds the demo app's image `pulse-demo-app:local` (a static binary `FROM scratch`,
//! no registry) and prints its tag on stdout. Run by `cargo xtask demo-image`: the image a newcomer
//! deploys with `pulse-deploy` before having an app of their own.

use std::process::ExitCode;

use pulse_deploy_local::docker::{build_demo_image, connect_docker, DEMO_IMAGE};

#[tokio::main]
async fn main() -> ExitCode {
    pulse_deploy_tests::init_logging();
    let workspace = pulse_deploy_tests::workspace_root();
    let built = async {
        let docker = connect_docker().await?;
        build_demo_image(&docker, &workspace, DEMO_IMAGE).await
    };
    match built.await {
        Ok(_) => {
            println!("{DEMO_IMAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pulse-demo-image: {e}");
            ExitCode::FAILURE
        }
    }
}
