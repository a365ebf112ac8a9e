"""The launcher refuses bad settings before serving: exit 2, the variable named, the secret never printed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.parametrize(
	("env", "named"),
	[
		({"PULSE_DRAIN_DEADLINE_SECS": "18446744073709551615"}, "PULSE_DRAIN_DEADLINE_SECS"),
		({"PULSE_SHUTDOWN_TIMEOUT_SECS": "0"}, "PULSE_SHUTDOWN_TIMEOUT_SECS"),
		({"PORT": "70000"}, "PORT"),
		({"PULSE_VERSION": ""}, "PULSE_VERSION"),
		({"PULSE_INSTANCE_ID": "has space"}, "PULSE_INSTANCE_ID"),
		({"PULSE_HEALTH_PATH": "/_pulse/admin/h"}, "PULSE_HEALTH_PATH"),
	],
)
def test_bad_setting_exits_2_naming_it(env, named):
	full = {**os.environ, "PULSE_VERSION": "v1", "PULSE_INSTANCE_ID": "i1", "PULSE_DRAIN_SECRET": "s3cret-s3cret-s3cret", **env}
	done = subprocess.run(
		[sys.executable, "-m", "pulse_deploy.serve", "pulse_test_app:app"], cwd=HERE, env=full, capture_output=True, text=True, timeout=60
	)
	assert done.returncode == 2, done.stderr
	assert named in done.stderr and "s3cret-s3cret-s3cret" not in done.stderr + done.stdout
