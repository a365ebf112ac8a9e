# Test-only root module: the shared-infrastructure module (../../terraform) applied to the moto emulator
# by tests/terraform_moto.rs, in the default VPC (as docs/aws.md's first setup does), with what moto
# has not: an ACM certificate for the HTTPS listener (moto's RequestCertificate answers at once; nothing
# validates it, and moto's ELBv2 only checks that the certificate exists). Never apply this to a real
# account: the provider's endpoints all point at `var.endpoint` with dummy credentials.

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

# The default VPC and its default subnets, as in an account's first setup (docs/aws.md): moto creates
# them in every region, with DNS hostnames on (moto's awsvpc tasks need them).
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

resource "aws_acm_certificate" "test" {
  domain_name       = "${var.app}.example.com"
  validation_method = "DNS"
}

module "pulse" {
  source            = "../../terraform"
  app               = var.app
  vpc_id            = data.aws_vpc.default.id
  public_subnet_ids = data.aws_subnets.default.ids
  task_subnet_ids   = data.aws_subnets.default.ids
  certificate_arn   = aws_acm_certificate.test.arn
  assign_public_ip  = true
}

output "module" {
  description = "Every output of the module, as a pulse-deploy user reads them."
  value       = module.pulse
}
