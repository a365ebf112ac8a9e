"""Example Pulse app of pulse-deploy: one page with a counter kept in its RenderSession.

Run by the Pulse tab test (`tests/tests/pulse_app.rs`) in the image `pulse-deploy-example-app:<hash>`
built from this folder (`tests/src/python_image/app.rs`); needs PULSE_SECRET (Pulse's session secret). Served headless
(`PULSE_ENV=prod`, no codegen): the React page tier cannot be built here, the tests use a stand-in.
"""

import os

import pulse as ps


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

app = ps.App(
	[ps.Route("/", Counter)],
	server_address=SERVER_ADDRESS,
	# The local flow is plain HTTP behind Envoy on 127.0.0.1; behind HTTPS the cookie is Secure.
	cookie=None if SERVER_ADDRESS.startswith("https://") else ps.Cookie("pulse.sid", secure=False),
	session_timeout=float(os.environ.get("PULSE_SESSION_GRACE_SECS", "60")),
)
