//! The shared-infrastructure Terraform module (`pulse-deploy-aws/terraform/`) applied to moto through the
//! test-only root module `tests/terraform_moto/` (the default VPC, and an ACM certificate, which moto
//! cannot issue for real), then the providers built from `terraform output -json` alone run one
//! version through deploy, attach, set_weights, detach and retire, and `terraform destroy` leaves
//! nothing behind. Also checks the controller's service, task definition and least-privilege role as
//! applied.
//!
//! Needs `terraform` 1.11, the hashicorp/aws provider mirror (`PULSE_TF_MIRROR`, default
//! `/opt/tf-plugins`) and `moto_server`; with `CI=true` a missing one fails, otherwise the test skips.
//! Prints the time of each phase (about 60 s of it are the aws provider's two fixed 30 s waits when it
//! creates a load balancer).

mod moto_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moto_support::leftovers::{
    leftovers, policy_actions, policy_document, role_policy, stop_tasks_of_deleted_services,
};
use moto_support::rollouts::poll;
use moto_support::scheduler::{NoProcesses, SchedulerStandIn};
use moto_support::server::MotoServer;
use moto_support::terraform::Terraform;
use moto_support::test_retry;
use pulse_deploy_aws::{AlbConfig, AlbRouter, AwsConfig, EcsConfig, EcsOrchestrator};
use pulse_deploy_core::{AppName, Orchestrator, Release, TrafficRouter, VersionId, VersionRoute, Weights};
use serde_json::Value;

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("output `{key}` is not a string: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terraform_module_applies_to_moto_and_its_outputs_drive_a_rollout() {
    let app = format!("tf{}", std::process::id() % 100_000);
    let Some(moto) = tokio::task::spawn_blocking(MotoServer::start).await.expect("moto start") else {
        return;
    };
    let endpoint = moto.url();
    let Some(tf) = Terraform::prepare(&app, &[("endpoint", &endpoint), ("app", &app)]) else { return };
    let started = Instant::now();

    let init = tokio::task::block_in_place(|| tf.init());
    let apply = tokio::task::block_in_place(|| tf.apply());
    let outputs = tokio::task::block_in_place(|| tf.outputs());
    let module = &outputs["module"];
    let applied = Instant::now();

    // The providers, from the outputs alone: the `environment` output is what the controller gets and
    // what a deployer exports.
    let env: BTreeMap<String, String> = module["environment"]
        .as_object()
        .expect("the `environment` output is a map")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string values").to_owned()))
        .collect();
    let mut ecs_config = EcsConfig::from_lookup(|k| env.get(k).cloned()).expect("EcsConfig from the outputs");
    ecs_config.retry = test_retry();
    let mut alb_config = AlbConfig::from_lookup(|k| env.get(k).cloned()).expect("AlbConfig from the outputs");
    alb_config.retry = test_retry();
    assert_eq!(ecs_config.cluster, str_of(module, "cluster"));
    assert!(ecs_config.assign_public_ip, "the root module asks for public IPs");
    assert_eq!(ecs_config.drain_secret_arn.as_deref(), Some(str_of(module, "drain_secret_arn")));
    let aws = AwsConfig::builder()
        .endpoint_url(&endpoint)
        .region("us-east-1")
        .static_credentials("testing", "testing")
        .build()
        .expect("emulator config");
    let _scheduler = SchedulerStandIn::start(aws.ecs(), ecs_config.cluster.clone(), Arc::new(NoProcesses));
    let orchestrator = EcsOrchestrator::new(&aws, ecs_config.clone());
    let router = AlbRouter::new(&aws, alb_config);
    let app_name = AppName::new(&app).expect("app name");

    check_controller(&aws, &moto, module, &env).await;

    // One version through its whole life on the module's cluster, listener and roles.
    let version = VersionId::new("v1").expect("version");
    let image = format!("{}:v1", str_of(module, "repository_url"));
    let release = Release::builder(&app, version.as_str(), &image)
        .replicas(2)
        .stop_grace(Duration::from_secs(10))
        .build()
        .expect("a valid release");
    orchestrator.deploy(&release).await.expect("deploy on the module's cluster");
    let state = poll("two live instances of v1", Duration::from_secs(20), || async {
        let versions = orchestrator.versions(&app_name).await.expect("versions");
        versions.into_iter().find(|s| s.live_instances().count() == 2)
    })
    .await;
    let targets = state
        .live_instances()
        .filter_map(|i| i.endpoint.clone())
        .map(|e| pulse_deploy_aws::alb::target_group::target(&e.host, e.port))
        .collect();
    router.attach(&VersionRoute::for_release(&release, targets)).await.expect("attach");
    router.set_weights(&app_name, &Weights::all_to(version.clone())).await.expect("set_weights");
    let routing = router.routing(&app_name).await.expect("routing");
    assert_eq!(routing.weights, Weights::all_to(version.clone()));
    assert_eq!(routing.versions[&version].targets.len(), 2);
    // The weighted forward action is on the module's HTTPS listener.
    let listener = aws
        .elbv2()
        .describe_listeners()
        .listener_arns(str_of(module, "listener_arn"))
        .send()
        .await
        .expect("DescribeListeners");
    let listener = &listener.listeners()[0];
    assert_eq!(listener.port(), Some(443));
    assert_eq!(listener.protocol().map(|p| p.as_str()), Some("HTTPS"));
    let forward = listener.default_actions()[0].forward_config().expect("a forward action");
    assert_eq!(forward.target_groups().len(), 1);

    router.set_weights(&app_name, &Weights::default()).await.expect("weights emptied");
    router.detach(&app_name, &version).await.expect("detach");
    poll("v1 retired", Duration::from_secs(20), || async {
        orchestrator.retire(&app_name, &version).await.expect("retire");
        orchestrator.versions(&app_name).await.expect("versions").is_empty().then_some(())
    })
    .await;
    let rolled = Instant::now();

    let destroy = tokio::task::block_in_place(|| tf.destroy());
    let state_left = tokio::task::block_in_place(|| tf.state_list());
    assert!(state_left.is_empty(), "terraform destroy left {state_left:?} in the state");
    let orphans = stop_tasks_of_deleted_services(&aws, &ecs_config.cluster).await;
    let left = leftovers(&aws, &moto, &app).await;
    assert!(left.is_empty(), "left on the emulator after terraform destroy: {left:#?}");

    println!(
        "terraform on moto: init {:.1} s, apply {:.1} s, rollout of one version {:.1} s, destroy {:.1} s, \
         total {:.1} s ({orphans} task(s) of deleted services stopped by the stand-in; Terraform's output in {})",
        init.as_secs_f64(),
        apply.as_secs_f64(),
        (rolled - applied).as_secs_f64(),
        destroy.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        tf.work_dir().display()
    );
}

/// The controller as applied: a one-task service with the controller's security group in the task
/// subnets and no load balancer; its container gets the provider's configuration (the `environment`
/// output) and runs `watch`; its role has the deployer's rights minus creating versions, plus the secret.
async fn check_controller(
    aws: &AwsConfig,
    moto: &MotoServer,
    module: &Value,
    env: &BTreeMap<String, String>,
) {
    let ecs = aws.ecs();
    let cluster = str_of(module, "cluster");
    let services = ecs
        .describe_services()
        .cluster(cluster)
        .services(str_of(module, "controller_service"))
        .send()
        .await
        .expect("DescribeServices controller");
    let service = &services.services()[0];
    assert_eq!(service.desired_count(), 1);
    assert!(service.load_balancers().is_empty(), "the controller is behind no load balancer");
    let network = service
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .expect("the controller's network configuration");
    assert_eq!(network.security_groups(), [str_of(module, "controller_security_group")]);
    let subnets: BTreeSet<&str> =
        module["task_subnets"].as_array().expect("task_subnets").iter().filter_map(Value::as_str).collect();
    assert_eq!(network.subnets().iter().map(String::as_str).collect::<BTreeSet<_>>(), subnets);
    // Never two controllers at once (minimum 0 %, maximum 100 %) is not checked here: moto drops a
    // service's deploymentConfiguration.

    let td = ecs
        .describe_task_definition()
        .task_definition(service.task_definition().expect("task definition"))
        .send()
        .await
        .expect("DescribeTaskDefinition controller");
    let td = td.task_definition().expect("the controller's task definition");
    assert_eq!(td.task_role_arn(), Some(str_of(module, "controller_role_arn")));
    let container = &td.container_definitions()[0];
    assert_eq!(container.command(), ["watch"]);
    assert_eq!(container.image(), Some(format!("{}:controller", str_of(module, "repository_url")).as_str()));
    let container_env: BTreeMap<&str, &str> =
        container.environment().iter().filter_map(|kv| Some((kv.name()?, kv.value()?))).collect();
    for (k, v) in env {
        assert_eq!(container_env.get(k.as_str()), Some(&v.as_str()), "the controller's {k}");
    }
    assert_eq!(container_env.get("AWS_REGION"), Some(&"us-east-1"));

    // The stand-in scheduler starts its one task, with its network configuration, as ECS would.
    let group = format!("service:{}", str_of(module, "controller_service"));
    poll("the controller's one task running", Duration::from_secs(10), || async {
        let arns = ecs.list_tasks().cluster(cluster).send().await.expect("ListTasks").task_arns().to_vec();
        if arns.is_empty() {
            return None;
        }
        let tasks =
            ecs.describe_tasks().cluster(cluster).set_tasks(Some(arns)).send().await.expect("DescribeTasks");
        let running = tasks
            .tasks()
            .iter()
            .filter(|t| t.group() == Some(group.as_str()) && t.last_status() == Some("RUNNING"));
        (running.count() == 1).then_some(())
    })
    .await;

    let app = str_of(module, "app");
    let controller =
        policy_actions(&role_policy(moto, &format!("pulse-{app}-controller"), "pulse-deploy-controller"));
    let deployer = policy_actions(&policy_document(moto, str_of(module, "deployer_policy_arn")));
    let not_needed: BTreeSet<String> =
        ["ecs:RegisterTaskDefinition", "ecs:CreateService", "iam:PassRole"].map(str::to_owned).into();
    assert!(controller.is_disjoint(&not_needed), "the controller never creates a version: {controller:?}");
    let extra: Vec<&String> = controller.difference(&deployer).collect();
    assert!(extra.is_empty(), "the controller may do only what the deployer may: {extra:?}");
    assert!(controller.contains("secretsmanager:GetSecretValue"), "the controller reads the drain secret");
    assert!(controller.contains("elasticloadbalancing:ModifyListener"), "the controller shifts the weights");
}
