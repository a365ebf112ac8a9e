"""A small Pulse app with the plugin, run by the tests through the launcher (`pulse_deploy.serve`)."""

import os
import sys
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
	return ps.div(ps.p(f"count: {state.count}", id="count"), ps.button("+1", onClick=state.increment))


class ShutdownMarker(ps.Plugin):
	"""Writes a file from on_shutdown so the test sees that plugins' shutdown hooks ran."""

	def on_shutdown(self, app):
		Path(os.environ["TEST_SHUTDOWN_MARKER"]).write_text("ran")
		print("on_shutdown ran", file=sys.stderr, flush=True)


app = ps.App(
	[ps.Route("/", Counter)],
	server_address=os.environ["PULSE_SERVER_ADDRESS"],
	cookie=ps.Cookie("pulse.sid", secure=False),
	session_timeout=float(os.environ.get("PULSE_SESSION_GRACE_SECS", "60")),
	plugins=[DeployToECS(secret=lambda: Path(os.environ["TEST_SECRET_FILE"]).read_text().strip()), ShutdownMarker()],
)
