"""Bearer parsing, constant-time comparison, secret rotation and per-peer throttling of the admin paths.

Not for: anything outside `/_pulse/admin/*`.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

MAX_FAILURES = 5
WINDOW_SECS = 10.0
MAX_PEERS = 4096
SHARED = "*"


def bearer_token(values: list[bytes]) -> tuple[str | None, bool]:
	"""(token, sent): the token of exactly one `Authorization: Bearer <token>` header, else None."""
	if not values:
		return None, False
	if len(values) != 1:
		return None, True
	raw = values[0].decode("latin-1").rstrip(" \t")
	scheme, _, rest = raw.partition(" ")
	token = rest.lstrip(" ")
	if scheme.lower() != "bearer" or not token or " " in token or "\t" in token:
		return None, True
	return token, True


class SecretSource:
	"""The current secret: a string, a callable or a file; re-read at most once per second on a mismatch."""

	def __init__(self, source: str | Callable[[], str] | Path) -> None:
		self._source = source
		self._last_read = 0.0
		self._secret = self._read()

	def _read(self) -> bytes:
		self._last_read = time.monotonic()
		if isinstance(self._source, Path):
			return self._source.read_text().strip().encode()
		if callable(self._source):
			return str(self._source()).strip().encode()
		return self._source.encode()

	def matches_cached(self, token: str) -> bool:
		"""Constant-time compare with the cached secret only (for a throttled peer: never re-reads the source)."""
		return hmac.compare_digest(token.encode("latin-1"), self._secret)

	def matches(self, token: str) -> bool:
		presented = token.encode("latin-1")
		if hmac.compare_digest(presented, self._secret):
			return True
		if isinstance(self._source, str) or time.monotonic() - self._last_read < 1.0:
			return False
		try:
			self._secret = self._read()
		except Exception:
			return False
		return hmac.compare_digest(presented, self._secret)


def peer_key(host: str | None) -> str:
	"""IPv4 address as is, IPv6 by its /64 prefix; unknown peers share one key."""
	if not host:
		return SHARED
	try:
		address = ipaddress.ip_address(host)
	except ValueError:
		return SHARED
	if address.version == 6:
		mapped = address.ipv4_mapped
		if mapped is not None:
			return str(mapped)
		return str(ipaddress.ip_network(f"{address}/64", strict=False))
	return str(address)


class Throttle:
	"""Failures per peer within 10 s; the 6th failure on is answered 429 until 10 s after the first.

	Only failures are counted and throttled: a request with the exact secret always passes (`plugin.py`), so
	a success resets nothing (a reset would hand an attacker sharing the deployer's address fresh attempts).

	At most `MAX_PEERS` peers are tracked one by one; the failures of peers the table cannot hold are
	counted in one shared entry that those same peers are checked against, so a full table still throttles.
	"""

	def __init__(self, max_peers: int = MAX_PEERS) -> None:
		self._max = max_peers
		self._table: OrderedDict[str, tuple[float, int]] = OrderedDict()

	def _live(self, key: str, now: float) -> tuple[float, int] | None:
		entry = self._table.get(key)
		if entry is not None and now - entry[0] >= WINDOW_SECS:
			del self._table[key]
			return None
		return entry

	def retry_after(self, key: str) -> int | None:
		"""Seconds until the peer may try again, or None when it is not throttled."""
		now = time.monotonic()
		keys = [key] if key in self._table else [key, SHARED]
		for k in keys:
			entry = self._live(k, now)
			if entry is not None and entry[1] >= MAX_FAILURES:
				return max(1, int(WINDOW_SECS - (now - entry[0]) + 0.999))
		return None

	def fail(self, key: str) -> None:
		now = time.monotonic()
		if key not in self._table:
			for k in [k for k, (first, _) in self._table.items() if now - first >= WINDOW_SECS]:
				del self._table[k]
			if len(self._table) >= self._max - 1 and key != SHARED:
				key = SHARED
		entry = self._live(key, now)
		self._table[key] = (now, 1) if entry is None else (entry[0], entry[1] + 1)
