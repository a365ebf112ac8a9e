"""Fixtures: the test app served by the launcher in a real subprocess on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import socketio

HERE = Path(__file__).parent
SECRET = "test-drain-secret-0123456789"
ROUTE_INFO = {"pathname": "/", "hash": "", "query": "", "queryParams": {}, "pathParams": {}, "catchall": []}


def free_port() -> int:
	with socket.socket() as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


def wait_for(condition, what: str, timeout: float = 30.0):
	"""Poll `condition` until it returns a truthy value or the deadline passes."""
	deadline = time.monotonic() + timeout
	while time.monotonic() < deadline:
		value = condition()
		if value:
			return value
		time.sleep(0.02)
	raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Served:
	base: str
	process: subprocess.Popen
	secret_file: Path
	marker: Path

	def auth(self, secret: str = SECRET) -> dict[str, str]:
		return {"authorization": f"Bearer {secret}"}

	def page_load(self, client: httpx.Client) -> httpx.Response:
		return client.post(f"{self.base}/_pulse/prerender", json={"paths": ["/"], "routeInfo": ROUTE_INFO})

	def connect(self, client: httpx.Client, render_id: str | None) -> socketio.SimpleClient:
		sio = socketio.SimpleClient()
		cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
		auth = {"render_id": render_id} if render_id else {}
		sio.connect(self.base, transports=["websocket"], headers={"cookie": cookie}, auth=auth, wait_timeout=10)
		return sio


def start(tmp_path: Path, **env: str) -> Served:
	port = free_port()
	secret_file = tmp_path / "secret"
	secret_file.write_text(SECRET)
	marker = tmp_path / "shutdown-marker"
	base = f"http://127.0.0.1:{port}"
	full = {
		**os.environ,
		"PYTHONPATH": str(HERE),
		"PULSE_ENV": "prod",
		"PULSE_DISABLE_CODEGEN": "1",
		"PULSE_REACT_SERVER_ADDRESS": "http://127.0.0.1:9",
		"PULSE_SERVER_ADDRESS": base,
		"PULSE_SECRET": "pulse-session-secret-for-tests-0123456789",
		"PULSE_VERSION": "v-test",
		"PULSE_INSTANCE_ID": "instance-1",
		"PULSE_HOST": "127.0.0.1",
		"PORT": str(port),
		"TEST_SECRET_FILE": str(secret_file),
		"TEST_SHUTDOWN_MARKER": str(marker),
		**env,
	}
	process = subprocess.Popen(
		[sys.executable, "-m", "pulse_deploy.serve", "pulse_test_app:app"], cwd=HERE, env=full,
		stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
	)

	def up():
		if process.poll() is not None:
			raise AssertionError(f"server exited {process.returncode}: {process.stdout.read()}")
		try:
			return httpx.get(f"{base}/_pulse/health", timeout=1).status_code == 200
		except httpx.HTTPError:
			return False

	wait_for(up, "the server to answer health")
	return Served(base, process, secret_file, marker)


@pytest.fixture
def served(tmp_path):
	s = start(tmp_path)
	yield s
	if s.process.poll() is None:
		s.process.kill()
		s.process.wait()
