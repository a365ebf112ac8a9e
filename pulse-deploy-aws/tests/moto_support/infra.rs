//! The shared infrastructure the Terraform module creates on AWS, created on the emulator for tests: a
//! VPC (with DNS hostnames, which moto needs for `awsvpc` tasks) in `127.N.0.0/16`, so that the
//! addresses tasks get from its two subnets are loopback addresses a demo-app process can listen on, a
//! security group, the drain secret in Secrets Manager, the ECS cluster, and per app a load balancer `pulse-{app}` with an HTTP listener whose default action is a
//! fixed 404 and the rule that blocks `/_pulse/admin/*`.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, PathPatternConditionConfig, ProtocolEnum,
    RuleCondition,
};
use pulse_deploy_core::AppName;

use super::server::{xml_value, MotoServer};

/// The listener port of the test load balancers (HTTP: moto has no certificates to offer).
pub(crate) const LISTENER_PORT: u16 = 80;

/// Ids of the shared network.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    /// The VPC.
    pub vpc_id: String,
    /// Two subnets in two zones.
    pub subnets: Vec<String>,
    /// The tasks' security group.
    pub security_group: String,
}

/// Creates the VPC `127.{octet}.0.0/16`, two `/20` subnets and the security group. Tasks get addresses
/// `127.{octet}.0.4` and up (the launcher assigns them from the subnet, as AWS does); `octet` differs per
/// emulator so that concurrent test processes never share a task address.
pub(crate) fn network(moto: &MotoServer, octet: u8) -> Network {
    let vpc_cidr = format!("127.{octet}.0.0/16");
    let vpc_id = xml_value(&moto.ec2(&[("Action", "CreateVpc"), ("CidrBlock", &vpc_cidr)]), "vpcId");
    moto.ec2(&[("Action", "ModifyVpcAttribute"), ("VpcId", &vpc_id), ("EnableDnsHostnames.Value", "true")]);
    let cidrs = [format!("127.{octet}.0.0/20"), format!("127.{octet}.16.0/20")];
    let subnets = cidrs
        .iter()
        .zip(["us-east-1a", "us-east-1b"])
        .map(|(cidr, az)| {
            xml_value(
                &moto.ec2(&[
                    ("Action", "CreateSubnet"),
                    ("VpcId", &vpc_id),
                    ("CidrBlock", cidr),
                    ("AvailabilityZone", az),
                ]),
                "subnetId",
            )
        })
        .collect();
    let security_group = xml_value(
        &moto.ec2(&[
            ("Action", "CreateSecurityGroup"),
            ("GroupName", "pulse-tests-tasks"),
            ("GroupDescription", "pulse-deploy tests"),
            ("VpcId", &vpc_id),
        ]),
        "groupId",
    );
    Network { vpc_id, subnets, security_group }
}

/// Creates the load balancer `pulse-{app}` and its listener, as the Terraform module does for an app.
pub(crate) async fn app_load_balancer(
    elbv2: &aws_sdk_elasticloadbalancingv2::Client,
    net: &Network,
    app: &AppName,
) -> String {
    let lb = elbv2
        .create_load_balancer()
        .name(format!("pulse-{app}"))
        .set_subnets(Some(net.subnets.clone()))
        .security_groups(&net.security_group)
        .send()
        .await
        .expect("CreateLoadBalancer");
    let lb_arn = lb.load_balancers()[0].load_balancer_arn().expect("lb arn").to_owned();
    let fixed = |body: &str| {
        Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code("404")
                    .content_type("text/plain")
                    .message_body(body)
                    .build(),
            )
            .build()
    };
    let listener = elbv2
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(i32::from(LISTENER_PORT))
        .default_actions(fixed("no version deployed yet"))
        .send()
        .await
        .expect("CreateListener");
    let listener_arn = listener.listeners()[0].listener_arn().expect("listener arn").to_owned();
    elbv2
        .create_rule()
        .listener_arn(&listener_arn)
        .priority(1)
        .conditions(
            RuleCondition::builder()
                .field("path-pattern")
                .path_pattern_config(
                    PathPatternConditionConfig::builder()
                        .values("/_pulse/admin")
                        .values("/_pulse/admin/*")
                        .build(),
                )
                .build(),
        )
        .actions(fixed("not found"))
        .send()
        .await
        .expect("CreateRule (admin block)");
    listener_arn
}

/// Deletes the app's load balancer (its listeners and rules go with it).
pub(crate) async fn delete_app_load_balancer(elbv2: &aws_sdk_elasticloadbalancingv2::Client, app: &AppName) {
    if let Ok(out) = elbv2.describe_load_balancers().names(format!("pulse-{app}")).send().await {
        for lb in out.load_balancers() {
            if let Some(arn) = lb.load_balancer_arn() {
                let _ = elbv2.delete_load_balancer().load_balancer_arn(arn).send().await;
            }
        }
    }
}

/// Creates the drain secret in Secrets Manager (as the Terraform module does) and returns its ARN.
pub(crate) async fn drain_secret(sm: &aws_sdk_secretsmanager::Client, value: &str) -> String {
    sm.create_secret()
        .name("pulse-tests/drain-secret")
        .secret_string(value)
        .send()
        .await
        .expect("CreateSecret")
        .arn()
        .expect("secret arn")
        .to_owned()
}
