"""moto_server with three AWS behaviours moto lacks, and a log of API calls, for the tests of pulse-deploy-aws
(see moto_support/mod.rs).

Run with moto's own interpreter and moto_server's arguments: `python moto_like_aws.py -H 127.0.0.1 -p 0`.

1. An ECS task's network interface (awsvpc) takes the next free address of its subnet, skipping the five
   addresses AWS reserves in every subnet (the first four and the last). moto gives it a random 10.x address
   outside every subnet.
2. DescribeTargetHealth of a registered `ip` target runs the target group's health check at that moment: an
   HTTP GET of its path on the target's address and health check port, healthy when the answer's code is one
   of the matcher's codes, else unhealthy with AWS's reason codes. moto answers "healthy" for every registered
   target. Unlike the ALB, there are no intervals or thresholds: each describe is one probe.
3. A service's `runningCount` is the number of its tasks (group `service:NAME`) that are RUNNING, as ECS
   reports it. moto answers 0 for every service (or `MOTO_ECS_SERVICE_RUNNING` for all of them).

And for the tests' figures: every API call is logged on stderr as `pulse-api-call ACCESS_KEY_ID ACTION`
(the access key of the request's signature names the caller; `server.rs` counts these lines).

Nothing else changes; the providers under test talk to this server as to moto_server.
"""

import http.client
import ipaddress
import os
import re
import sys

from moto.core.responses import BaseResponse
from moto.ec2.models.elastic_network_interfaces import NetworkInterfaceBackend
from moto.ecs.models import Service
from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup
from moto.server import main

ECS_ENI_DESCRIPTION = "moto ECS"
PROBE_TIMEOUT_SECONDS = 1.0

_create_network_interface = NetworkInterfaceBackend.create_network_interface


def _next_free_address(backend, subnet):
    if isinstance(subnet, str):
        subnet = backend.get_subnet(subnet)
    used = {
        eni.private_ip_address
        for eni in backend.enis.values()
        if getattr(eni.subnet, "id", None) == subnet.id
    }
    network = ipaddress.ip_network(subnet.cidr_block)
    # AWS reserves the network address, the next three and the broadcast address.
    for address in list(network.hosts())[3:]:
        if str(address) not in used:
            return str(address)
    raise RuntimeError(f"subnet {subnet.id} ({subnet.cidr_block}) has no free address left")


def create_network_interface(self, subnet, private_ip_address, *args, **kwargs):
    if kwargs.get("description") == ECS_ENI_DESCRIPTION:
        private_ip_address = _next_free_address(self, subnet)
    return _create_network_interface(self, subnet, private_ip_address, *args, **kwargs)


NetworkInterfaceBackend.create_network_interface = create_network_interface

_health_for = FakeTargetGroup.health_for


def _matches(code, matcher):
    for part in str(matcher.get("HttpCode", "200")).split(","):
        low, _, high = part.strip().partition("-")
        if low and int(low) <= code <= int(high or low):
            return True
    return False


def health_for(self, target, ec2_backend):
    status = _health_for(self, target, ec2_backend)
    if status.status != "healthy" or self.target_type != "ip" or not self.health_check_enabled:
        return status
    port = status.port if self.health_check_port in (None, "traffic-port") else self.health_check_port
    path = self.health_check_path or "/"
    unhealthy = lambda reason, description: FakeHealthStatus(  # noqa: E731
        status.instance_id, status.port, self.health_check_port, "unhealthy", reason, description
    )
    try:
        conn = http.client.HTTPConnection(status.instance_id, int(port), timeout=PROBE_TIMEOUT_SECONDS)
        conn.request("GET", path, headers={"User-Agent": "ELB-HealthChecker/2.0"})
        code = conn.getresponse().status
        conn.close()
    except TimeoutError:
        return unhealthy("Target.Timeout", "Request timed out")
    except OSError:
        return unhealthy("Target.FailedHealthChecks", "Health checks failed")
    if not _matches(code, self.matcher or {}):
        return unhealthy("Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{code}]")
    return status


FakeTargetGroup.health_for = health_for


def _running_count(self):
    group = f"service:{self.name}"
    tasks = self._backend.tasks.get(self.cluster_name, {}).values()
    return sum(1 for t in tasks if t.group == group and t.last_status == "RUNNING")


def _ignore_running_count(self, _value):
    pass  # moto's constructor and UpdateService set it; ECS derives it from the tasks


Service.running_count = property(_running_count, _ignore_running_count)

_call_action = BaseResponse.call_action
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def call_action(self):
    key = _CREDENTIAL.search(self.headers.get("Authorization", "") or "")
    line = f"pulse-api-call {key.group(1) if key else '-'} {self._get_action()}\n"
    # One write(2) of less than PIPE_BUF bytes: never interleaved with the server's other log lines.
    os.write(sys.stderr.fileno(), line.encode())
    return _call_action(self)


BaseResponse.call_action = call_action

if __name__ == "__main__":
    sys.exit(main())
