"""The throttle table in-process: a full table still throttles, IPv6 counted per /64."""

from pulse_deploy.auth import MAX_FAILURES, Throttle, bearer_token, peer_key


def test_full_table_still_throttles_new_peers():
	throttle = Throttle(max_peers=8)
	for i in range(7):  # the table is full: 7 peers one by one, the eighth slot is the shared count
		throttle.fail(f"10.0.0.{i}")
	attacker = "10.0.1.1"
	for _ in range(MAX_FAILURES):
		assert throttle.retry_after(attacker) is None
		throttle.fail(attacker)
	assert throttle.retry_after(attacker) is not None
	# Another untracked peer shares the overflow count (never an unthrottled bypass).
	assert throttle.retry_after("10.0.2.2") is not None
	# Tracked peers keep their own counts.
	assert throttle.retry_after("10.0.0.1") is None


def test_ipv6_per_64_and_mapped_ipv4():
	assert peer_key("2001:db8:1:2::1") == peer_key("2001:db8:1:2:ffff::9")
	assert peer_key("2001:db8:1:2::1") != peer_key("2001:db8:1:3::1")
	assert peer_key("::ffff:10.0.0.1") == "10.0.0.1"
	throttle = Throttle()
	for i in range(MAX_FAILURES):
		throttle.fail(peer_key(f"2001:db8::{i + 1}"))
	assert throttle.retry_after(peer_key("2001:db8::ffff")) is not None


def test_bearer_parsing():
	assert bearer_token([b"bearer abc"]) == ("abc", True)
	assert bearer_token([b"Bearer    abc \t"]) == ("abc", True)
	assert bearer_token([]) == (None, False)
	assert bearer_token([b"Bearer a b"]) == (None, True)
	assert bearer_token([b"Bearer a", b"Bearer a"]) == (None, True)
	assert bearer_token([b"Token abc"]) == (None, True)
