variable "app" {
  description = "The app name (1-16 characters of a-z, 0-9, '-'), as in every release. Every resource is named pulse-{app}..."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$", var.app)) && !strcontains(var.app, "--")
    error_message = "app: use 1 to 16 characters of a-z, 0-9 and '-', starting and ending with a letter or digit (e.g. shop)."
  }
}

variable "vpc_id" {
  description = "The VPC the load balancer and the tasks run in."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the load balancer (at least two, in different availability zones)."
  type        = list(string)
  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "public_subnet_ids: an ALB needs at least two subnets in different availability zones."
  }
}

variable "task_subnet_ids" {
  description = "Subnets of the tasks (private subnets with a NAT gateway or VPC endpoints for ECR and logs)."
  type        = list(string)
  validation {
    condition     = length(var.task_subnet_ids) >= 1
    error_message = "task_subnet_ids: give at least one subnet for the tasks."
  }
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener."
  type        = string
  validation {
    condition     = startswith(var.certificate_arn, "arn:")
    error_message = "certificate_arn: give the ARN of an ACM certificate for the app's domain (arn:aws:acm:...)."
  }
}

variable "app_port" {
  description = "The port the app listens on inside its container (release.port)."
  type        = number
  default     = 8000
  validation {
    condition     = var.app_port >= 1 && var.app_port <= 65535
    error_message = "app_port: use the port the app listens on inside its container, 1 to 65535."
  }
}

variable "idle_timeout_seconds" {
  description = "ALB idle timeout. A WebSocket that sends nothing for this long is closed: keep it above the app's ping interval."
  type        = number
  default     = 3600
  validation {
    condition     = var.idle_timeout_seconds >= 60 && var.idle_timeout_seconds <= 4000
    error_message = "idle_timeout_seconds: use 60 to 4000 (the ALB maximum); WebSockets need it above the app's ping interval."
  }
}

variable "log_retention_days" {
  description = "How long task logs are kept."
  type        = number
  default     = 30
}

variable "ingress_cidr_blocks" {
  description = "Who may reach the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "assign_public_ip" {
  description = "Give the tasks (and the controller) a public IP. Needed in subnets without a NAT gateway or VPC endpoints (e.g. the default VPC's public subnets), so that tasks can pull their image; the tasks' security group still admits only the ALB and the controller."
  type        = bool
  default     = false
}

variable "controller_image" {
  description = "Image of the controller (`pulse-deploy watch`). Default: the tag `controller` of this module's ECR repository (push it once after the first apply; tags are immutable, so an upgrade pushes a new tag and sets this input)."
  type        = string
  default     = null
  validation {
    condition     = var.controller_image == null ? true : length(var.controller_image) > 0 && length(var.controller_image) <= 255
    error_message = "controller_image: give an image reference of 1 to 255 characters (e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/pulse-shop:controller-0.2.0), or leave it unset for the repository's `controller` tag."
  }
}

variable "controller_command" {
  description = "Arguments of the controller's container (the image's entrypoint is the pulse-deploy binary)."
  type        = list(string)
  default     = ["watch"]
  validation {
    condition     = length(var.controller_command) > 0
    error_message = "controller_command: give at least the subcommand, e.g. [\"watch\"]."
  }
}

variable "controller_environment" {
  description = "Extra environment variables of the controller (e.g. RUST_LOG). The provider's configuration (PULSE_AWS_*) is set by the module and cannot be overridden here."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k in keys(var.controller_environment) : !startswith(k, "PULSE_AWS_")])
    error_message = "controller_environment: PULSE_AWS_* variables are set by the module from its own resources; remove them from this map."
  }
}
