# Roles of the tasks, and the deployer's least-privilege policy (resources limited to the app's own
# names, pulse-{app}-*, and tags).

locals {
  arn_prefix = "arn:${data.aws_partition.current.partition}"
  account    = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Used by ECS to start a task: pull the image, write logs, read the drain secret into the container.
resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [aws_ecr_repository.app.arn]
  }
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.tasks.arn}:*"]
  }
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.drain.arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pulse-deploy-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# The app's own role while it runs. pulse-deploy grants it nothing; attach the app's own policies to it.
resource "aws_iam_role" "task" {
  name               = "${local.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "deployer" {
  # Describe/List calls support no resource-level permissions on ECS task definitions and ELBv2.
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
    sid       = "TaskDefinitionsTaggedWithTheApp"
    actions   = ["ecs:RegisterTaskDefinition", "ecs:TagResource"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/pulse-deploy:app"
      values   = [var.app]
    }
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
    sid = "ServicesOfTheApp"
    actions = [
      "ecs:CreateService", "ecs:UpdateService", "ecs:DeleteService", "ecs:DescribeServices",
      "ecs:TagResource", "ecs:ListTagsForResource",
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
    sid       = "PassTheTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn, aws_iam_role.task.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
  statement {
    sid       = "ReadTheDrainSecret"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [aws_secretsmanager_secret.drain.arn]
  }
}

resource "aws_iam_policy" "deployer" {
  name        = "${local.name}-deployer"
  description = "What pulse-deploy needs to deploy ${var.app}, and nothing of any other app."
  policy      = data.aws_iam_policy_document.deployer.json
  tags        = local.tags
}
