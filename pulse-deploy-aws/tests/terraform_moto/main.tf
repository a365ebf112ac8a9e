# Test-only root module: the shared-infrastructure module (../../terraform) applied to the moto emulator
# by tests/terraform_moto.rs. It creates what an AWS account has and moto has not: a VPC with two subnets
# and an ACM certificate (moto's RequestCertificate answers at once; nothing validates it, and moto's
# ELBv2 only checks that the certificate exists). Never apply this to a real account: the provider's
# endpoints all point at `var.endpoint` with dummy credentials.

terraform {
  required_version = ">= 1.5"
  # The test gives the state's path at init (-backend-config=path=...), outside the source tree.
  backend "local" {}
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

variable "endpoint" {
  description = "moto's URL, e.g. http://127.0.0.1:5000."
  type        = string
  validation {
    condition     = can(regex("^http://127\\.0\\.0\\.1:[0-9]+$", var.endpoint))
    error_message = "endpoint: give moto's loopback URL, http://127.0.0.1:PORT (this module never talks to AWS)."
  }
}

variable "app" {
  description = "The app name of the test (unique per run)."
  type        = string
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true
  endpoints {
    acm            = var.endpoint
    ec2            = var.endpoint
    ecr            = var.endpoint
    ecs            = var.endpoint
    elbv2          = var.endpoint
    iam            = var.endpoint
    cloudwatchlogs = var.endpoint
    secretsmanager = var.endpoint
    sts            = var.endpoint
  }
}

resource "aws_vpc" "test" {
  cidr_block = "10.0.0.0/16"
  # moto's awsvpc tasks need DNS hostnames.
  enable_dns_hostnames = true
  tags                 = { Name = "pulse-${var.app}" }
}

resource "aws_subnet" "test" {
  for_each          = { a = "10.0.1.0/24", b = "10.0.2.0/24" }
  vpc_id            = aws_vpc.test.id
  cidr_block        = each.value
  availability_zone = "us-east-1${each.key}"
}

resource "aws_acm_certificate" "test" {
  domain_name       = "${var.app}.example.com"
  validation_method = "DNS"
}

module "pulse" {
  source            = "../../terraform"
  app               = var.app
  vpc_id            = aws_vpc.test.id
  public_subnet_ids = [for s in aws_subnet.test : s.id]
  task_subnet_ids   = [for s in aws_subnet.test : s.id]
  certificate_arn   = aws_acm_certificate.test.arn
  assign_public_ip  = true
}

output "module" {
  description = "Every output of the module, as a pulse-deploy user reads them."
  value       = module.pulse
}
