"""Example Pulse app of pulse-deploy: one page with a counter kept in its RenderSession, deployable with
zero dropped sessions through the drain plugin (`DeployToECS`, `python/pulse-deploy-plugin`).

Run by the Pulse tests (`tests/tests/pulse_app.rs`, `cargo xtask e2e --app pulse`) in the image
`pulse-deploy-example-app:<hash>` built from this folder and the plugin (`tests/src/python_image/app.rs`),
whose entrypoint is the plugin's launcher: `pulse-deploy-serve app:app`. Needs PULSE_SECRET (Pulse's session
secret) and PULSE_DRAIN_SECRET_FILE (the drain secret's file, which the orchestrator mounts). Served headless
(`PULSE_ENV=prod`, no codegen): the React page tier cannot be built here, the tests use a stand-in.
"""

import os
from datetime import timedelta
from pathlib import Path

import pulse as ps

from pulse_deploy import DeployToECS


class CounterState(ps.State):
	count: int = 0

	def increment(self):
		self.count += 1


@ps.component
def Counter():
	with ps.init():
		state = CounterState()
	return ps.div(
		# Which version and instance rendered this page (set by the orchestrator): the e2e checks it.
		ps.h1(f"pulse-app {VERSION} {INSTANCE}", id="served-by"),
		ps.p(f"count: {state.count}", id="count"),
		ps.button("+1", onClick=state.increment, id="inc"),
	)


VERSION = os.environ.get("PULSE_VERSION", "dev")
INSTANCE = os.environ.get("PULSE_INSTANCE_ID", "local")
SERVER_ADDRESS = os.environ.get("PULSE_SERVER_ADDRESS", "http://127.0.0.1:8000")


def drain_secret() -> str:
	"""The drain secret, read from the file the orchestrator mounts (`PULSE_DRAIN_SECRET_FILE`).

	A callable, so that the plugin re-reads it when a token does not match (at most once a second): a
	rotated secret works without a restart.
	"""
	name = os.environ.get("PULSE_DRAIN_SECRET_FILE", "").strip()
	if not name:
		raise SystemExit("PULSE_DRAIN_SECRET_FILE: not set; point it at the file holding the drain secret")
	return Path(name).read_text().strip()


ROUTES = [ps.Route("/", Counter)]
# Everything but the plugins (the benchmark's baseline builds the same app from these without the plugin).
OPTIONS = dict(
	server_address=SERVER_ADDRESS,
	# The local flow is plain HTTP behind Envoy on 127.0.0.1; behind HTTPS the cookie is Secure.
	cookie=None if SERVER_ADDRESS.startswith("https://") else ps.Cookie("pulse.sid", secure=False),
	session_timeout=float(os.environ.get("PULSE_SESSION_GRACE_SECS", "60")),
)

app = ps.App(ROUTES, plugins=[DeployToECS(secret=drain_secret, timeout=timedelta(minutes=15))], **OPTIONS)
