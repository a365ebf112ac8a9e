//! What is left of an app on the emulator, asked of every service the Terraform module and the providers
//! use: load balancers and target groups (ELBv2), the cluster, services, running tasks and active task
//! definitions (ECS), the secret, the ECR repository, the log group, roles and policies (IAM), security
//! groups and the test's VPC (EC2), and the test's certificate (ACM). Each entry names the resource.
//!
//! ECS, ELBv2 and Secrets Manager are asked through the crate's SDK clients; the others (the crate has no
//! SDK for them) through their plain query or JSON APIs, which moto routes by the credential scope and
//! answers without checking the signature.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aws_sdk_ecs::types::DesiredStatus;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use pulse_deploy_aws::AwsConfig;

use super::server::MotoServer;

/// One AWS call: a query-protocol form body (`target` `None`) or a JSON body for `X-Amz-Target`.
fn call(moto: &MotoServer, scope: &str, target: Option<&str>, body: &str) -> String {
    let content_type =
        if target.is_some() { "application/x-amz-json-1.1" } else { "application/x-www-form-urlencoded" };
    let target_header = target.map(|t| format!("X-Amz-Target: {t}\r\n")).unwrap_or_default();
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{target_header}\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{scope}/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = TcpStream::connect(("127.0.0.1", moto.port)).expect("connecting to moto");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    s.write_all(raw.as_bytes()).expect("writing to moto");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("reading moto's answer");
    assert!(out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200"), "{scope} {body}: {out}");
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
}

/// Every `<tag>...</tag>` value of an XML answer.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open).skip(1).filter_map(|rest| rest.split_once(&close).map(|(v, _)| v.to_owned())).collect()
}

/// Every resource of `app` still there (empty when everything was removed).
pub(crate) async fn leftovers(aws: &AwsConfig, moto: &MotoServer, app: &str) -> Vec<String> {
    let name = format!("pulse-{app}");
    let prefix = format!("{name}-");
    let mut left = Vec::new();

    let elbv2 = aws.elbv2();
    let lbs = elbv2.describe_load_balancers().send().await.expect("DescribeLoadBalancers");
    for lb in lbs.load_balancers().iter().filter(|lb| lb.load_balancer_name() == Some(name.as_str())) {
        left.push(format!("load balancer {}", lb.load_balancer_arn().unwrap_or_default()));
    }
    let tgs = elbv2.describe_target_groups().send().await.expect("DescribeTargetGroups");
    for tg in
        tgs.target_groups().iter().filter(|tg| tg.target_group_name().is_some_and(|n| n.starts_with(&prefix)))
    {
        left.push(format!("target group {}", tg.target_group_name().unwrap_or_default()));
    }

    let ecs = aws.ecs();
    let clusters = ecs.describe_clusters().clusters(&name).send().await.expect("DescribeClusters");
    for c in clusters.clusters().iter().filter(|c| c.status() != Some("INACTIVE")) {
        left.push(format!(
            "ECS cluster {} ({})",
            c.cluster_name().unwrap_or_default(),
            c.status().unwrap_or("?")
        ));
    }
    if !clusters.clusters().is_empty() {
        let services = ecs.list_services().cluster(&name).send().await.expect("ListServices");
        for chunk in services.service_arns().chunks(10) {
            let d = ecs
                .describe_services()
                .cluster(&name)
                .set_services(Some(chunk.to_vec()))
                .send()
                .await
                .expect("DescribeServices");
            for s in d.services().iter().filter(|s| s.status() != Some("INACTIVE")) {
                left.push(format!(
                    "ECS service {} ({})",
                    s.service_name().unwrap_or_default(),
                    s.status().unwrap_or("?")
                ));
            }
        }
        let tasks = ecs
            .list_tasks()
            .cluster(&name)
            .desired_status(DesiredStatus::Running)
            .send()
            .await
            .expect("ListTasks");
        for t in tasks.task_arns() {
            left.push(format!("running ECS task {t}"));
        }
    }
    // moto's familyPrefix matches whole families only: list every active revision and filter here.
    let defs = ecs.list_task_definitions().send().await.expect("ListTaskDefinitions");
    for arn in defs.task_definition_arns().iter().filter(|a| a.contains(&format!("task-definition/{prefix}")))
    {
        left.push(format!("active task definition {arn}"));
    }

    let secrets = aws
        .secrets_manager()
        .list_secrets()
        .filters(Filter::builder().key(FilterNameStringType::Name).values(format!("{name}/")).build())
        .send()
        .await
        .expect("ListSecrets");
    for s in secrets.secret_list() {
        left.push(format!("secret {}", s.name().unwrap_or_default()));
    }

    let repos = call(moto, "ecr", Some("AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"), "{}");
    let repos: serde_json::Value = serde_json::from_str(&repos).expect("DescribeRepositories JSON");
    for r in repos["repositories"].as_array().into_iter().flatten() {
        if r["repositoryName"] == name.as_str() {
            left.push(format!("ECR repository {name}"));
        }
    }
    let groups = call(
        moto,
        "logs",
        Some("Logs_20140328.DescribeLogGroups"),
        &format!(r#"{{"logGroupNamePrefix":"/pulse-deploy/{app}"}}"#),
    );
    let groups: serde_json::Value = serde_json::from_str(&groups).expect("DescribeLogGroups JSON");
    for g in groups["logGroups"].as_array().into_iter().flatten() {
        if g["logGroupName"] == format!("/pulse-deploy/{app}").as_str() {
            left.push(format!("log group /pulse-deploy/{app}"));
        }
    }
    let certs = call(moto, "acm", Some("CertificateManager.ListCertificates"), "{}");
    let certs: serde_json::Value = serde_json::from_str(&certs).expect("ListCertificates JSON");
    for c in certs["CertificateSummaryList"].as_array().into_iter().flatten() {
        if c["DomainName"] == format!("{app}.example.com").as_str() {
            left.push(format!("ACM certificate {}", c["CertificateArn"]));
        }
    }

    let roles = call(moto, "iam", None, "Action=ListRoles&Version=2010-05-08");
    for role in xml_values(&roles, "RoleName").into_iter().filter(|r| r.starts_with(&prefix)) {
        left.push(format!("IAM role {role}"));
    }
    let policies = call(moto, "iam", None, "Action=ListPolicies&Scope=Local&Version=2010-05-08");
    for policy in xml_values(&policies, "PolicyName").into_iter().filter(|p| p.starts_with(&prefix)) {
        left.push(format!("IAM policy {policy}"));
    }

    let sgs = moto.ec2(&[("Action", "DescribeSecurityGroups")]);
    for sg in xml_values(&sgs, "groupName").into_iter().filter(|g| g.starts_with(&prefix)) {
        left.push(format!("security group {sg}"));
    }
    left
}

/// Stops the running tasks of `cluster` whose service is gone (a stand-in): ECS keeps a deleted service
/// DRAINING until its tasks have stopped, moto marks it INACTIVE at once and leaves its tasks running, so
/// a task whose service was scaled to 0 and deleted in the same instant (as `terraform destroy` does)
/// would outlive its service. Returns how many it stopped.
pub(crate) async fn stop_tasks_of_deleted_services(aws: &AwsConfig, cluster: &str) -> usize {
    let ecs = aws.ecs();
    let arns = ecs
        .list_tasks()
        .cluster(cluster)
        .desired_status(DesiredStatus::Running)
        .send()
        .await
        .expect("ListTasks")
        .task_arns()
        .to_vec();
    if arns.is_empty() {
        return 0;
    }
    let tasks =
        ecs.describe_tasks().cluster(cluster).set_tasks(Some(arns)).send().await.expect("DescribeTasks");
    let mut stopped = 0;
    for task in tasks.tasks() {
        let Some(service) = task.group().and_then(|g| g.strip_prefix("service:")) else { continue };
        let d = ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .expect("DescribeServices");
        if d.services().iter().any(|s| s.status() != Some("INACTIVE")) {
            continue;
        }
        ecs.stop_task()
            .cluster(cluster)
            .task(task.task_arn().unwrap_or_default())
            .reason("its service was deleted")
            .send()
            .await
            .expect("StopTask");
        stopped += 1;
    }
    stopped
}

/// The inline policy `policy` of the IAM role `role`, as JSON.
pub(crate) fn role_policy(moto: &MotoServer, role: &str, policy: &str) -> serde_json::Value {
    let xml = call(
        moto,
        "iam",
        None,
        &format!("Action=GetRolePolicy&RoleName={role}&PolicyName={policy}&Version=2010-05-08"),
    );
    let document = xml_values(&xml, "PolicyDocument").into_iter().next().expect("a PolicyDocument");
    parse_document(&document)
}

/// The default version of the managed policy `arn`, as JSON.
pub(crate) fn policy_document(moto: &MotoServer, arn: &str) -> serde_json::Value {
    let policy = call(moto, "iam", None, &format!("Action=GetPolicy&PolicyArn={arn}&Version=2010-05-08"));
    let version = xml_values(&policy, "DefaultVersionId").into_iter().next().expect("a DefaultVersionId");
    let xml = call(
        moto,
        "iam",
        None,
        &format!("Action=GetPolicyVersion&PolicyArn={arn}&VersionId={version}&Version=2010-05-08"),
    );
    let document = xml_values(&xml, "Document").into_iter().next().expect("a Document");
    parse_document(&document)
}

/// Every action an IAM policy document allows.
pub(crate) fn policy_actions(document: &serde_json::Value) -> std::collections::BTreeSet<String> {
    let statements = match &document["Statement"] {
        serde_json::Value::Array(s) => s.clone(),
        one => vec![one.clone()],
    };
    statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| match &s["Action"] {
            serde_json::Value::Array(a) => a.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
            serde_json::Value::String(a) => vec![a.clone()],
            _ => Vec::new(),
        })
        .collect()
}

fn parse_document(document: &str) -> serde_json::Value {
    let unescaped =
        [("&quot;", "\""), ("&#34;", "\""), ("&apos;", "'"), ("&#39;", "'"), ("&lt;", "<"), ("&gt;", ">")]
            .iter()
            .fold(document.to_owned(), |text, (entity, c)| text.replace(entity, c))
            .replace("&amp;", "&");
    let text = if unescaped.trim_start().starts_with('{') { unescaped } else { percent_decode(&unescaped) };
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("an IAM policy document is not JSON ({e}): {text}"))
}

/// IAM returns policy documents URL-encoded (moto returns them as they were given).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
