"""Sessions: active_sessions from Pulse's renders, stale-affinity answers while not serving, SIGTERM."""

from __future__ import annotations

import signal

import httpx
import pytest
import socketio

from conftest import wait_for


def render_id(answer: httpx.Response) -> str:
	return answer.json()[1]["directives"]["socketio"]["auth"]["render_id"]


def drain(served, secs: int = 600) -> dict:
	return httpx.post(f"{served.base}/_pulse/admin/drain", headers=served.auth(), json={"deadline_secs": secs}).json()


def test_active_sessions_counts_renders_and_socket_attaches(served):
	client = httpx.Client()
	rid = render_id(served.page_load(client))
	sio = served.connect(client, rid)
	try:
		assert httpx.get(f"{served.base}/_pulse/admin/status", headers=served.auth()).json()["active_sessions"] == 1
	finally:
		sio.disconnect()


def test_draining_turns_new_sessions_away_and_serves_existing(served):
	client = httpx.Client()
	rid = render_id(served.page_load(client))
	sio = served.connect(client, rid)
	assert drain(served)["state"] == "draining"
	# A new page load (prerender without a live render id): the 303 Pulse's client loader reloads on.
	fresh = httpx.Client()
	stale = fresh.post(
		f"{served.base}/_pulse/prerender",
		json={"paths": ["/"], "routeInfo": {}},
		headers={"x-pulse-client-loader-location": f"{served.base}/page?x=1"},
		cookies={"pulse-version": "v-test", "pulse-instance": "instance-1"},
	)
	assert stale.status_code == 303
	assert stale.headers["location"] == f"{served.base}/page?x=1"
	assert stale.headers["x-pulse-stale-affinity"] == "v-test"
	cleared = stale.headers.get_list("set-cookie")
	assert "pulse-version=; Max-Age=0; Path=/" in cleared and "pulse-instance=; Max-Age=0; Path=/" in cleared
	assert stale.json()["reload"] is True
	# A Socket.IO CONNECT for no render or an unknown one: CONNECT_ERROR with render_id_collision.
	for unknown in (None, "not-a-live-render"):
		with pytest.raises(socketio.exceptions.ConnectionError) as refused:
			served.connect(client, unknown)
		assert "render_id_collision" in str(refused.value.args) or refused.value.args
	status = httpx.get(f"{served.base}/_pulse/admin/status", headers=served.auth()).json()
	assert status["active_sessions"] == 1 and status["state"] == "draining"
	# The existing render keeps being served: its prerender reuses it, its socket reconnects.
	again = client.post(
		f"{served.base}/_pulse/prerender", json={"paths": ["/"], "routeInfo": {"pathname": "/", "hash": "", "query": "", "queryParams": {}, "pathParams": {}, "catchall": []}}, headers={"x-pulse-render-id": rid}
	)
	assert again.status_code == 200 and render_id(again) == rid
	sio.disconnect()
	served.connect(client, rid).disconnect()


def test_connect_error_data_is_the_pulse_profile(served):
	drain(served)
	errors: list = []
	sio = socketio.Client()

	@sio.event
	def connect_error(data):
		errors.append(data)

	with pytest.raises(socketio.exceptions.ConnectionError):
		sio.connect(served.base, transports=["websocket"], auth={"render_id": "unknown"}, wait_timeout=10)
	wait_for(lambda: errors, "the CONNECT_ERROR")
	assert errors[0]["data"] == {"code": "render_id_collision", "reason": "stale_affinity", "version": "v-test"} or errors[0] == {
		"message": "stale_affinity",
		"data": {"code": "render_id_collision", "reason": "stale_affinity", "version": "v-test"},
	}


def test_sigterm_closes_sockets_runs_shutdown_exits_0(served):
	client = httpx.Client()
	rid = render_id(served.page_load(client))
	disconnects: list[str] = []
	sio = socketio.Client(reconnection=False)

	@sio.event
	def disconnect(reason=None):
		disconnects.append(str(reason))

	cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
	sio.connect(served.base, transports=["websocket"], headers={"cookie": cookie}, auth={"render_id": rid}, wait_timeout=10)
	served.process.send_signal(signal.SIGTERM)
	assert served.process.wait(timeout=30) == 0
	wait_for(lambda: disconnects, "the client to see the disconnect")
	assert served.marker.read_text() == "ran"
	assert disconnects[0] == "server disconnect", disconnects


def test_sigterm_closes_the_websocket_with_1001(served):
	import json

	import websocket

	client = httpx.Client()
	rid = render_id(served.page_load(client))
	cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
	ws = websocket.create_connection(
		served.base.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", header=[f"cookie: {cookie}"], timeout=20
	)
	assert ws.recv().startswith("0")  # Engine.IO OPEN
	ws.send("40" + json.dumps({"render_id": rid}))
	assert ws.recv().startswith("40")  # Socket.IO CONNECT accepted
	served.process.send_signal(signal.SIGTERM)
	frames = []
	while True:
		opcode, data = ws.recv_data(control_frame=True)
		if opcode == websocket.ABNF.OPCODE_CLOSE:
			code = int.from_bytes(data[:2], "big")
			break
		frames.append(data)
	assert code == 1001, (code, data)
	assert data[2:] == b"server shutting down; reconnect"
	assert served.process.wait(timeout=30) == 0
