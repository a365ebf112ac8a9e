# Outputs are named after the AWS provider's configuration keys, so that no value is copied by hand.

output "app" {
  description = "The app name."
  value       = var.app
}
output "cluster" {
  description = "ECS cluster of every version's service."
  value       = aws_ecs_cluster.this.name
}
output "listener_arn" {
  description = "HTTPS listener whose default action and rules pulse-deploy manages."
  value       = aws_lb_listener.https.arn
}
output "load_balancer_arn" {
  description = "The application load balancer."
  value       = aws_lb.this.arn
}
output "load_balancer_dns_name" {
  description = "Point the app's domain (CNAME or alias) here."
  value       = aws_lb.this.dns_name
}
output "vpc_id" {
  description = "VPC of the target groups."
  value       = var.vpc_id
}
output "task_subnets" {
  description = "Subnets of the tasks."
  value       = var.task_subnet_ids
}
output "task_security_group" {
  description = "Security group of the tasks."
  value       = aws_security_group.tasks.id
}
output "controller_security_group" {
  description = "Security group of the controller."
  value       = aws_security_group.controller.id
}
output "execution_role_arn" {
  description = "Task execution role."
  value       = aws_iam_role.execution.arn
}
output "task_role_arn" {
  description = "The app's task role."
  value       = aws_iam_role.task.arn
}
output "log_group" {
  description = "CloudWatch log group of the tasks."
  value       = aws_cloudwatch_log_group.tasks.name
}
output "repository_url" {
  description = "ECR repository to push images to."
  value       = aws_ecr_repository.app.repository_url
}
output "drain_secret_arn" {
  description = "Secrets Manager secret holding the drain token (the value is never an output)."
  value       = aws_secretsmanager_secret.drain.arn
}
output "deployer_policy_arn" {
  description = "Attach to the role or user that runs pulse-deploy."
  value       = aws_iam_policy.deployer.arn
}
output "assign_public_ip" {
  description = "Whether tasks get a public IP."
  value       = var.assign_public_ip
}
output "controller_service" {
  description = "The controller's ECS service (in the cluster above)."
  value       = aws_ecs_service.controller.name
}
output "controller_role_arn" {
  description = "The controller's task role."
  value       = aws_iam_role.controller.arn
}
output "environment" {
  description = "The provider's configuration as environment variables (PULSE_AWS_*), as the controller gets them: export them where pulse-deploy runs."
  value       = local.provider_environment
}
output "load_balancer_zone_id" {
  description = "The load balancer's Route 53 zone, for an alias record of the app's domain."
  value       = aws_lb.this.zone_id
}
