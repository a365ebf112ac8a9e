# The load balancer and its listeners. The HTTPS listener's default action is a fixed 404: pulse-deploy
# replaces it with the weighted forward action of the app's versions and adds each version's affinity rules.

resource "aws_lb" "this" {
  name                       = local.name
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.public_subnet_ids
  idle_timeout               = var.idle_timeout_seconds
  drop_invalid_header_fields = true
  tags                       = local.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      message_body = "no version of ${var.app} is deployed yet"
      status_code  = "404"
    }
  }
  tags = local.tags
  # pulse-deploy owns the default action once a version is live.
  lifecycle {
    ignore_changes = [default_action]
  }
}

resource "aws_lb_listener" "http_redirect" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
  tags = local.tags
}

# The admin endpoints (drain, status, undrain) are never reachable from the public side: the rule with the
# highest priority (1) answers 404 before any version rule is evaluated. The controller reaches tasks
# directly inside the VPC.
resource "aws_lb_listener_rule" "block_admin" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 1
  condition {
    path_pattern {
      values = ["/_pulse/admin", "/_pulse/admin/*"]
    }
  }
  action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      message_body = "not found"
      status_code  = "404"
    }
  }
  tags = local.tags
}
