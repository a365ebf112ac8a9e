"""Admin endpoints over real HTTP: check order, Bearer parsing, bodies, state machine, rotation, throttling."""

from __future__ import annotations

import httpx
import pytest

from conftest import SECRET, wait_for


def test_status_serving_and_headers(served):
	r = httpx.get(f"{served.base}/_pulse/admin/status", headers=served.auth())
	assert r.status_code == 200
	assert r.json() == {"version": "v-test", "instance_id": "instance-1", "state": "serving", "active_sessions": 0}
	assert r.headers["cache-control"] == "no-store"
	assert r.headers["x-pulse-version"] == "v-test" and r.headers["x-pulse-instance"] == "instance-1"
	head = httpx.head(f"{served.base}/_pulse/admin/status", headers=served.auth())
	assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize(
	("path", "method", "allow"),
	[("drain", "GET", "POST"), ("undrain", "PUT", "POST"), ("status", "POST", "GET, HEAD")],
)
def test_405_with_allow_before_auth(served, path, method, allow):
	r = httpx.request(method, f"{served.base}/_pulse/admin/{path}")
	assert r.status_code == 405 and r.headers["allow"] == allow
	assert r.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(
	("headers", "challenge"),
	[
		([], 'Bearer realm="pulse-admin"'),
		([("authorization", "Basic abc")], 'Bearer realm="pulse-admin", error="invalid_token"'),
		([("authorization", "Bearer")], 'Bearer realm="pulse-admin", error="invalid_token"'),
		([("authorization", f"Bearer {SECRET} x")], 'Bearer realm="pulse-admin", error="invalid_token"'),
		([("authorization", "Bearer wrong-secret-0123456789")], 'Bearer realm="pulse-admin", error="invalid_token"'),
		([("authorization", f"Bearer {SECRET}"), ("authorization", f"Bearer {SECRET}")], 'Bearer realm="pulse-admin", error="invalid_token"'),
	],
)
def test_401_challenges_and_no_state_change(served, headers, challenge):
	r = httpx.post(f"{served.base}/_pulse/admin/drain", headers=httpx.Headers(headers))
	assert r.status_code == 401 and r.headers["www-authenticate"] == challenge
	assert SECRET not in r.text
	assert httpx.get(f"{served.base}/_pulse/admin/status", headers=served.auth()).json()["state"] == "serving"


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_scheme_case_insensitive_and_spaces(served, scheme):
	r = httpx.get(f"{served.base}/_pulse/admin/status", headers={"authorization": f"{scheme}   {SECRET}"})
	assert r.status_code == 200


@pytest.mark.parametrize("body", [b"[600]", b"600", b"not json", b'{"deadline_secs": -1}', b'{"deadline_secs": 2592001}', b'{"deadline_secs": 1.5}', b'{"deadline_secs": "60"}', b"x" * 5000])
def test_400_bad_bodies_change_nothing(served, body):
	r = httpx.post(f"{served.base}/_pulse/admin/drain", headers=served.auth(), content=body)
	assert r.status_code == 400 and r.json()["error"] == "bad_request"
	assert httpx.get(f"{served.base}/_pulse/admin/status", headers=served.auth()).json()["state"] == "serving"


def test_drain_idempotent_keeps_earlier_deadline_then_undrain(served):
	client = httpx.Client()
	assert served.page_load(client).status_code == 200  # one render: the drain stays `draining`
	first = httpx.post(f"{served.base}/_pulse/admin/drain", headers=served.auth(), json={"deadline_secs": 600}).json()
	assert first["state"] == "draining" and first["active_sessions"] == 1
	longer = httpx.post(f"{served.base}/_pulse/admin/drain", headers=served.auth(), json={"deadline_secs": 900}).json()
	assert longer["deadline"] == first["deadline"] and longer["draining_since"] == first["draining_since"]
	shorter = httpx.post(f"{served.base}/_pulse/admin/drain", headers=served.auth(), json={"deadline_secs": 300}).json()
	assert shorter["deadline"] < first["deadline"]
	assert httpx.get(f"{served.base}/_pulse/health").status_code == 200
	back = httpx.post(f"{served.base}/_pulse/admin/undrain", headers=served.auth())
	assert back.status_code == 200 and back.json()["state"] == "serving" and "deadline" not in back.json()
	assert httpx.post(f"{served.base}/_pulse/admin/undrain", headers=served.auth(), content=b"[1]").status_code == 400


def test_drained_health_503_and_undrain_conflict(served):
	r = httpx.post(f"{served.base}/_pulse/admin/drain", headers=served.auth(), json={"deadline_secs": 0})
	assert r.json()["state"] == "drained"
	health = httpx.get(f"{served.base}/_pulse/health")
	assert health.status_code == 503 and health.json() == {"state": "drained", "active_sessions": 0}
	assert "set-cookie" not in health.headers
	conflict = httpx.post(f"{served.base}/_pulse/admin/undrain", headers=served.auth())
	assert conflict.status_code == 409 and conflict.json()["error"] == "conflict"
	assert httpx.get(f"{served.base}/_pulse/admin/status", headers=served.auth()).json()["state"] == "drained"


def test_health_serving_mints_no_cookie_and_405(served):
	r = httpx.get(f"{served.base}/_pulse/health")
	assert r.status_code == 200 and "set-cookie" not in r.headers
	post = httpx.post(f"{served.base}/_pulse/health")
	assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"


def test_secret_rotation_without_restart(served):
	new = "rotated-secret-abcdefghijklmnop"
	served.secret_file.write_text(new)
	# Re-read at most once per second on a mismatch: poll until the new secret is accepted.
	wait_for(
		lambda: httpx.get(f"{served.base}/_pulse/admin/status", headers=served.auth(new)).status_code == 200,
		"the rotated secret to be accepted",
	)


def test_failures_are_throttled_but_the_right_token_never_is(served):
	wrong = served.auth("wrong-secret-0123456789")
	for _ in range(5):
		assert httpx.get(f"{served.base}/_pulse/admin/status", headers=wrong).status_code == 401
	for headers in (wrong, {}, {"authorization": "Basic x"}):
		r = httpx.post(f"{served.base}/_pulse/admin/drain", headers=headers)
		assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 10, headers
	assert httpx.get(f"{served.base}/_pulse/admin/status", headers=served.auth()).json()["state"] == "serving"
	# Every peer here is 127.0.0.1, as behind a proxy: the deployer's right token still goes through.
	assert httpx.get(f"{served.base}/_pulse/admin/status", headers=served.auth()).status_code == 200
	assert httpx.get(f"{served.base}/_pulse/admin/status", headers=wrong).status_code == 429, "a success resets nothing"
	assert httpx.post(f"{served.base}/_pulse/admin/drain", headers=served.auth()).status_code == 200


def test_encoded_admin_path_is_the_admin_path(served):
	r = httpx.get(f"{served.base}/_pulse/%61dmin/status")
	assert r.status_code == 401
