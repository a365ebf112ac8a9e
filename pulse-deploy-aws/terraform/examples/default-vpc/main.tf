# A first setup (docs/aws.md, "From an empty AWS account to a first deploy"): one app in the account's
# default VPC (a public subnet per availability zone, no NAT gateway to pay for), an ACM certificate
# validated through a Route 53 zone, and the app's domain pointed at the load balancer.
#
# Copy this file into your own repository, set the source to
# "git::https://github.com/OWNER/pulse-deploy.git//pulse-deploy-aws/terraform?ref=TAG", fill in the
# variables, then `terraform init && terraform apply`. `cargo xtask terraform-validate` checks it offline.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

variable "region" {
  description = "The AWS region."
  type        = string
  default     = "us-east-1"
}

variable "app" {
  description = "The app's name (1-16 characters of a-z, 0-9, '-')."
  type        = string
}

variable "zone" {
  description = "The Route 53 hosted zone of your domain, e.g. example.com."
  type        = string
}

variable "domain" {
  description = "The app's domain, inside the zone, e.g. shop.example.com."
  type        = string
}

provider "aws" {
  region = var.region
}

data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
  filter {
    name   = "default-for-az"
    values = ["true"]
  }
}

data "aws_route53_zone" "main" {
  name = var.zone
}

# The HTTPS certificate (free), validated through DNS: a few minutes at the first apply.
resource "aws_acm_certificate" "app" {
  domain_name       = var.domain
  validation_method = "DNS"
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "validation" {
  for_each = { for o in aws_acm_certificate.app.domain_validation_options : o.domain_name => o }
  zone_id  = data.aws_route53_zone.main.zone_id
  name     = each.value.resource_record_name
  type     = each.value.resource_record_type
  records  = [each.value.resource_record_value]
  ttl      = 300
}

resource "aws_acm_certificate_validation" "app" {
  certificate_arn         = aws_acm_certificate.app.arn
  validation_record_fqdns = [for r in aws_route53_record.validation : r.fqdn]
}

module "pulse" {
  source            = "../.."
  app               = var.app
  vpc_id            = data.aws_vpc.default.id
  public_subnet_ids = data.aws_subnets.default.ids
  task_subnet_ids   = data.aws_subnets.default.ids
  # Public subnets without a NAT gateway: tasks need a public IP to pull their image.
  assign_public_ip = true
  certificate_arn  = aws_acm_certificate_validation.app.certificate_arn
}

# The app's domain -> the load balancer.
resource "aws_route53_record" "app" {
  zone_id = data.aws_route53_zone.main.zone_id
  name    = var.domain
  type    = "A"
  alias {
    name                   = module.pulse.load_balancer_dns_name
    zone_id                = module.pulse.load_balancer_zone_id
    evaluate_target_health = false
  }
}

output "pulse" {
  description = "Every output of the module: `terraform output -json pulse`."
  value       = module.pulse
}
