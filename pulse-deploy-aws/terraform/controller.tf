# The controller: `pulse-deploy watch` as a one-task ECS service inside the VPC. Task IPs are private, so
# everything that needs a task (drain, status, reap) is done from here; a deploy from outside the VPC only
# creates the new version and follows the controller's progress through the AWS API (docs/aws.md).
#
# Its service is named `controller`, outside the `pulse-{app}-*` names of the app's versions: the versions'
# listing never mistakes it for a version, and the deployer's rights on `pulse-{app}-*` services do not
# cover it. At most one controller runs at any time (maximum 100 %, minimum 0 % during a replacement): it
# is the single writer of the listener's weights.

locals {
  controller_image = coalesce(var.controller_image, "${aws_ecr_repository.app.repository_url}:controller")
  # The provider's configuration keys (`EcsConfig::from_env`, `AlbConfig::from_env`), from this module's
  # own resources: the controller's environment and the `environment` output.
  provider_environment = {
    PULSE_AWS_APP                 = var.app
    PULSE_AWS_CLUSTER             = aws_ecs_cluster.this.name
    PULSE_AWS_LISTENER_ARN        = aws_lb_listener.https.arn
    PULSE_AWS_VPC_ID              = var.vpc_id
    PULSE_AWS_TASK_SUBNETS        = join(",", var.task_subnet_ids)
    PULSE_AWS_TASK_SECURITY_GROUP = aws_security_group.tasks.id
    PULSE_AWS_ASSIGN_PUBLIC_IP    = tostring(var.assign_public_ip)
    PULSE_AWS_EXECUTION_ROLE_ARN  = aws_iam_role.execution.arn
    PULSE_AWS_TASK_ROLE_ARN       = aws_iam_role.task.arn
    PULSE_AWS_LOG_GROUP           = aws_cloudwatch_log_group.tasks.name
    PULSE_AWS_DRAIN_SECRET_ARN    = aws_secretsmanager_secret.drain.arn
  }
  controller_environment = merge(var.controller_environment, local.provider_environment, {
    AWS_REGION = local.region
  })
}

resource "aws_iam_role" "controller" {
  name               = "${local.name}-controller"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

# The deployer's ECS and ELBv2 rights minus what only a deploy does (register a task definition, create a
# service, pass the task roles), plus reading the drain secret (the Bearer token of /_pulse/admin/*).
data "aws_iam_policy_document" "controller" {
  statement {
    sid = "Read"
    actions = [
      "ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions",
      "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeRules", "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetGroupAttributes", "elasticloadbalancing:DescribeTargetHealth",
      "elasticloadbalancing:DescribeTags",
    ]
    resources = ["*"]
  }
  statement {
    sid       = "DeregisterTheAppsTaskDefinitions"
    actions   = ["ecs:DeregisterTaskDefinition", "ecs:DeleteTaskDefinitions"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/pulse-deploy:app"
      values   = [var.app]
    }
  }
  statement {
    sid = "ScaleTagAndDeleteTheAppsServices"
    actions = [
      "ecs:UpdateService", "ecs:DeleteService", "ecs:DescribeServices", "ecs:TagResource",
      "ecs:ListTagsForResource",
    ]
    resources = ["${local.arn_prefix}:ecs:${local.region}:${local.account}:service/${aws_ecs_cluster.this.name}/${local.name}-*"]
  }
  statement {
    sid       = "TasksInTheAppsCluster"
    actions   = ["ecs:ListTasks", "ecs:DescribeTasks", "ecs:ListServices"]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }
  statement {
    sid = "TargetGroupsOfTheApp"
    actions = [
      "elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:DeleteTargetGroup",
      "elasticloadbalancing:ModifyTargetGroup", "elasticloadbalancing:ModifyTargetGroupAttributes",
      "elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets",
      "elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags",
    ]
    resources = ["${local.arn_prefix}:elasticloadbalancing:${local.region}:${local.account}:targetgroup/${local.name}-*/*"]
  }
  statement {
    sid     = "TheAppsListenerAndRules"
    actions = ["elasticloadbalancing:ModifyListener", "elasticloadbalancing:CreateRule", "elasticloadbalancing:AddTags"]
    resources = [
      aws_lb_listener.https.arn,
      replace("${aws_lb_listener.https.arn}/*", ":listener/", ":listener-rule/"),
    ]
  }
  statement {
    sid = "TheAppsRules"
    actions = [
      "elasticloadbalancing:ModifyRule", "elasticloadbalancing:DeleteRule", "elasticloadbalancing:SetRulePriorities",
      "elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags",
    ]
    resources = [replace("${aws_lb_listener.https.arn}/*", ":listener/", ":listener-rule/")]
  }
  statement {
    sid       = "ReadTheDrainSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.drain.arn]
  }
}

resource "aws_iam_role_policy" "controller" {
  name   = "pulse-deploy-controller"
  role   = aws_iam_role.controller.id
  policy = data.aws_iam_policy_document.controller.json
}

resource "aws_ecs_task_definition" "controller" {
  family                   = "${local.name}-controller"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = "256"
  memory                   = "512"
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.controller.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  container_definitions = jsonencode([{
    name      = "controller"
    image     = local.controller_image
    essential = true
    # All of the task's memory, as a hard limit (the versions' containers do the same).
    memory  = 512
    command = var.controller_command
    # A controller stopped mid-pass resumes from AWS state: SIGTERM, then SIGKILL after 30 s.
    stopTimeout = 30
    environment = [for k in sort(keys(local.controller_environment)) : { name = k, value = local.controller_environment[k] }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.tasks.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "controller"
      }
    }
  }])
  tags = merge(local.tags, { "pulse-deploy:role" = "controller" })
}

resource "aws_ecs_service" "controller" {
  name            = "controller"
  cluster         = aws_ecs_cluster.this.arn
  task_definition = aws_ecs_task_definition.controller.arn
  desired_count   = 1
  launch_type     = "FARGATE"
  # Never two controllers at once: the old task stops before its replacement starts.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"
  network_configuration {
    subnets          = var.task_subnet_ids
    security_groups  = [aws_security_group.controller.id]
    assign_public_ip = var.assign_public_ip
  }
  tags = merge(local.tags, { "pulse-deploy:role" = "controller" })
}
