# Shared infrastructure of one app: what every version of it uses. The per-version resources (task
# definition, target group, ECS service, listener rules) are created and removed by pulse-deploy itself.

locals {
  name = "pulse-${var.app}"
  tags = merge(var.tags, { "pulse-deploy:app" = var.app, "pulse-deploy:managed-by" = "terraform" })
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

resource "aws_ecs_cluster" "this" {
  name = local.name
  setting {
    name  = "containerInsights"
    value = "disabled"
  }
  tags = local.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]
  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_cloudwatch_log_group" "tasks" {
  name              = "/pulse-deploy/${var.app}"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_ecr_repository" "app" {
  name                 = local.name
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  tags = local.tags
}

resource "aws_ecr_lifecycle_policy" "app" {
  repository = aws_ecr_repository.app.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the 50 newest images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 50 }
      action       = { type = "expire" }
    }]
  })
}

# The drain secret: tasks read it (as PULSE_DRAIN_SECRET) and the deployer sends it as a Bearer token.
# The value is generated once, at the first apply, and never changed by a later apply (ignore_changes):
# rotate it with `aws secretsmanager put-secret-value` and redeploy.
data "aws_secretsmanager_random_password" "drain" {
  password_length     = 48
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "drain" {
  name                    = "${local.name}/drain-secret"
  description             = "Bearer token of the pulse-deploy drain endpoint (/_pulse/admin/*) of ${var.app}."
  recovery_window_in_days = 0
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "drain" {
  secret_id     = aws_secretsmanager_secret.drain.id
  secret_string = data.aws_secretsmanager_random_password.drain.random_password
  lifecycle {
    ignore_changes = [secret_string]
  }
}
