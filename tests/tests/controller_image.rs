//! The controller's image runs: `pulse-deploy-controller:local` (the static `pulse-deploy` binary
//! `FROM scratch` with a CA bundle, built through the Engine API) started as a container with `--help`
//! prints the command's help (its usage naming `pulse-deploy`, not the image's `/app`), lists `watch` (what the Terraform module's controller service runs) and
//! exits 0; the CA bundle is in the image where the AWS SDK's TLS looks for it. Needs Docker (with
//! `CI=true` a missing one fails). Builds the static release binary on first use (cold: minutes).

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions, WaitContainerOptions,
};
use futures::StreamExt;
use pulse_deploy_local::preflight;
use pulse_deploy_tests::controller_image::{build_controller_image, CONTROLLER_IMAGE, IMAGE_CA_BUNDLE};

#[tokio::test]
async fn the_controller_image_runs_pulse_deploy_help_in_a_container() {
    let Some(docker) = preflight::or_skip("Docker", preflight::docker().await) else { return };
    let workspace = pulse_deploy_tests::workspace_root();
    let started = std::time::Instant::now();
    build_controller_image(&docker, &workspace, CONTROLLER_IMAGE)
        .await
        .expect("the controller's image builds");
    let built = started.elapsed();

    let name = format!("pulse-tf-controller-help-{}", std::process::id());
    let body = ContainerCreateBody {
        image: Some(CONTROLLER_IMAGE.to_owned()),
        cmd: Some(vec!["--help".to_owned()]),
        labels: Some([("dev.pulse-deploy.purpose".to_owned(), "controller-image-test".to_owned())].into()),
        ..Default::default()
    };
    docker
        .create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body)
        .await
        .expect("creating the container");
    let result = async {
        docker.start_container(&name, None::<StartContainerOptions>).await.map_err(|e| e.to_string())?;
        let mut waited = docker.wait_container(&name, None::<WaitContainerOptions>);
        let code = match waited.next().await {
            Some(Ok(r)) => r.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the wait stream ended without a status".into()),
        };
        let mut logs = docker.logs(&name, Some(LogsOptionsBuilder::new().stdout(true).stderr(true).build()));
        let mut out = String::new();
        while let Some(chunk) = logs.next().await {
            out.push_str(&String::from_utf8_lossy(&chunk.map_err(|e| e.to_string())?.into_bytes()));
        }
        // The CA bundle, read back from the container's file system.
        let mut tar = docker.download_from_container(
            &name,
            Some(DownloadFromContainerOptionsBuilder::new().path(IMAGE_CA_BUNDLE).build()),
        );
        let mut archive = Vec::new();
        while let Some(chunk) = tar.next().await {
            archive.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
        }
        Ok::<_, String>((code, out, archive))
    }
    .await;
    let _ =
        docker.remove_container(&name, Some(RemoveContainerOptionsBuilder::new().force(true).build())).await;
    let (code, out, archive) = result.expect("running the controller's image");

    assert_eq!(code, 0, "`pulse-deploy --help` exits 0; output:\n{out}");
    assert!(out.contains("stateful WebSocket apps"), "the help text:\n{out}");
    // The binary is `/app` in the image: the usage must still name the command, not argv[0].
    assert!(out.contains("Usage: pulse-deploy "), "the usage names `pulse-deploy`:\n{out}");
    assert!(!out.contains("Usage: app"), "the usage names argv[0]:\n{out}");
    assert!(out.contains("watch"), "the help lists `watch`, the controller's command:\n{out}");
    let mut entries = tar::Archive::new(archive.as_slice());
    let mut pem = String::new();
    for entry in entries.entries().expect("a tar of the CA bundle") {
        std::io::Read::read_to_string(&mut entry.expect("an entry"), &mut pem).expect("reading the bundle");
    }
    assert!(pem.contains("-----BEGIN CERTIFICATE-----"), "{IMAGE_CA_BUNDLE} holds certificates");
    println!(
        "controller image {CONTROLLER_IMAGE}: built in {:.1} s (static binary + image), `--help` ran in a \
         container",
        built.as_secs_f64()
    );
}
