"""The Pulse plugin: drain/status/undrain endpoints, health, stale-affinity answers (docs/drain-protocol.md).

It wraps the app's ASGI callable in `on_setup` (outermost, so it answers before Pulse creates a render on
prerender) and Pulse's Socket.IO connect handler in `on_startup`. Not for: signal handling (see `serve`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pulse as ps
from socketio.exceptions import ConnectionRefusedError

from pulse_deploy.auth import SecretSource, Throttle, bearer_token, peer_key
from pulse_deploy.settings import MAX_DEADLINE_SECS, Settings, check_secret

ADMIN = "/_pulse/admin/"
ALLOW = {"drain": "POST", "undrain": "POST", "status": "GET, HEAD"}
STALE = {"code": "render_id_collision", "reason": "stale_affinity"}
GOING_AWAY = 1001
CLOSE_REASON = "server shutting down; reconnect"
CHALLENGE = 'Bearer realm="pulse-admin"'


def _ts(moment: datetime) -> str:
	return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class DrainPlugin(ps.Plugin):
	"""Implements the drain protocol on an unmodified Pulse app (provider-neutral name)."""

	priority = 1000

	def __init__(
		self,
		secret: str | Callable[[], str] | None = None,
		timeout: int | float | timedelta | None = None,
		*,
		settings: Settings | None = None,
	) -> None:
		self.settings = settings or Settings.from_env(need_secret=secret is None)
		if secret is None:
			source: Any = self.settings.secret_file or self.settings.secret
		else:
			source = check_secret(secret) if isinstance(secret, str) else secret
		self.secrets = SecretSource(source)
		if isinstance(timeout, timedelta):
			timeout = timeout.total_seconds()
		self.default_deadline = int(timeout) if timeout is not None else self.settings.drain_deadline_secs
		if not 0 <= self.default_deadline <= MAX_DEADLINE_SECS:
			raise ValueError(f"timeout: {self.default_deadline} s is out of range 0..={MAX_DEADLINE_SECS}")
		self.throttle = Throttle()
		self.state = "serving"
		self.draining_since: datetime | None = None
		self.deadline: datetime | None = None
		self.seen_drained = False
		self.app: ps.App | None = None
		self.shutdown_ran = False
		self.open_websockets = 0

	# -- state -----------------------------------------------------------------------------------------
	def active_sessions(self) -> int:
		return len(self.app.render_sessions) if self.app is not None else 0

	def current_state(self) -> str:
		if self.state == "draining" and not self.seen_drained:
			if self.active_sessions() == 0 or (self.deadline and datetime.now(UTC) >= self.deadline):
				self.seen_drained = True
		if self.state == "draining" and self.seen_drained:
			return "drained"
		return self.state

	def status(self) -> dict[str, Any]:
		body: dict[str, Any] = {
			"version": self.settings.version,
			"instance_id": self.settings.instance_id,
			"state": self.current_state(),
			"active_sessions": self.active_sessions(),
		}
		if self.draining_since is not None and self.state != "serving":
			body["draining_since"] = _ts(self.draining_since)
			body["deadline"] = _ts(self.deadline)  # type: ignore[arg-type]
		return body

	def begin_shutdown(self) -> None:
		self.state = "shutting_down"

	# -- Pulse hooks -----------------------------------------------------------------------------------
	def on_setup(self, app: ps.App) -> None:
		self.app = app
		inner = app.asgi
		plugin = self

		async def outermost(scope: dict, receive: Callable, send: Callable) -> None:
			await plugin.asgi(inner, scope, receive, send)

		app.asgi = outermost  # type: ignore[assignment]

	def on_startup(self, app: ps.App) -> None:
		handlers = app.sio.handlers.setdefault("/", {})
		original = handlers.get("connect")
		plugin = self

		async def connect(sid: str, environ: dict, auth: dict | None = None) -> Any:
			rid = auth.get("render_id") if isinstance(auth, dict) else None
			if plugin.current_state() != "serving" and (not rid or rid not in app.render_sessions):
				raise ConnectionRefusedError("stale_affinity", {**STALE, "version": plugin.settings.version})
			return await original(sid, environ, auth)

		handlers["connect"] = connect

	def on_shutdown(self, app: ps.App) -> None:
		self.shutdown_ran = True

	# -- HTTP ------------------------------------------------------------------------------------------
	def _headers(self, extra: list[tuple[bytes, bytes]] | None = None) -> list[tuple[bytes, bytes]]:
		return [
			(b"x-pulse-version", self.settings.version.encode()),
			(b"x-pulse-instance", self.settings.instance_id.encode()),
			(b"cache-control", b"no-store"),
			*(extra or []),
		]

	async def _answer(self, send: Callable, status: int, body: Any, extra=None, head=False) -> None:
		data = json.dumps(body, separators=(",", ":")).encode()
		headers = self._headers([(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *(extra or [])])
		await send({"type": "http.response.start", "status": status, "headers": headers})
		await send({"type": "http.response.body", "body": b"" if head else data})

	async def asgi(self, inner: Callable, scope: dict, receive: Callable, send: Callable) -> None:
		if scope["type"] == "websocket":
			self.open_websockets += 1
			try:
				return await inner(scope, receive, self._closing(send))
			finally:
				self.open_websockets -= 1
		if scope["type"] != "http":
			return await inner(scope, receive, send)
		path, method = scope["path"], scope["method"]
		# `path` is already percent-decoded by the server, as Starlette routes on it.
		if path.startswith(ADMIN) and path[len(ADMIN) :] in ALLOW:
			return await self._admin(path[len(ADMIN) :], scope, receive, send)
		if path == self.settings.health_path:
			if method not in ("GET", "HEAD"):
				return await self._answer(send, 405, self._err("method_not_allowed"), [(b"allow", b"GET, HEAD")])
			state = self.current_state()
			code = 503 if state in ("drained", "shutting_down") else 200
			return await self._answer(send, code, {"state": state, "active_sessions": self.active_sessions()}, head=method == "HEAD")
		if path == "/_pulse/prerender" and method == "POST" and self.current_state() != "serving":
			headers = dict((k.lower(), v) for k, v in scope["headers"])
			rid = headers.get(b"x-pulse-render-id", b"").decode("latin-1")
			if not (rid and self.app is not None and rid in self.app.render_sessions):
				return await self._stale_prerender(headers, send)
		return await inner(scope, receive, send)

	async def _stale_prerender(self, headers: dict, send: Callable) -> None:
		location = headers.get(b"x-pulse-client-loader-location", b"/").decode("latin-1") or "/"
		version = self.settings.version
		body = {"error": "stale_affinity", "message": "this version is draining; reloading on the newest version", "reload": True, "version": version}
		await self._answer(send, 303, body, [
			(b"location", location.encode("latin-1")),
			(b"x-pulse-stale-affinity", version.encode()),
			(b"set-cookie", b"pulse-version=; Max-Age=0; Path=/"),
			(b"set-cookie", b"pulse-instance=; Max-Age=0; Path=/"),
		])

	def _closing(self, send: Callable) -> Callable:
		"""While shutting down, a WebSocket close from Engine.IO goes out as 1001 with the protocol's reason."""

		async def wrapped(message: dict) -> None:
			if message.get("type") == "websocket.close" and self.state == "shutting_down":
				message = {**message, "code": GOING_AWAY, "reason": CLOSE_REASON}
			await send(message)

		return wrapped

	@staticmethod
	def _err(kind: str, message: str | None = None) -> dict[str, str]:
		messages = {
			"unauthorized": "send `Authorization: Bearer <drain secret>` with the instance's drain secret",
			"method_not_allowed": "this path does not take that method",
			"too_many_requests": "too many failed attempts; retry later",
		}
		return {"error": kind, "message": message or messages.get(kind, kind)}

	async def _admin(self, name: str, scope: dict, receive: Callable, send: Callable) -> None:
		method = scope["method"]
		allowed = ALLOW[name]
		if method not in allowed.split(", "):
			return await self._answer(send, 405, self._err("method_not_allowed"), [(b"allow", allowed.encode())])
		client = scope.get("client")
		key = peer_key(client[0] if client else None)
		# A valid token is never throttled (the deployer is never locked out, even behind a proxy where an
		# attacker shares its address): the token is compared in constant time first; throttling applies to
		# failures only. While throttled, only the cached secret is compared (no re-read of its source).
		wait = self.throttle.retry_after(key)
		token, sent = bearer_token([v for k, v in scope["headers"] if k.lower() == b"authorization"])
		valid = token is not None and (self.secrets.matches(token) if wait is None else self.secrets.matches_cached(token))
		if not valid:
			if wait is not None:
				return await self._answer(send, 429, self._err("too_many_requests"), [(b"retry-after", str(wait).encode())])
			self.throttle.fail(key)
			challenge = CHALLENGE if not sent else CHALLENGE + ', error="invalid_token"'
			return await self._answer(send, 401, self._err("unauthorized"), [(b"www-authenticate", challenge.encode())])
		body = b""
		while True:
			message = await receive()
			body += message.get("body", b"")
			if len(body) > 4096:
				return await self._answer(send, 400, self._err("bad_request", "the body is larger than 4096 bytes"))
			if not message.get("more_body"):
				break
		if name == "status":
			return await self._answer(send, 200, self.status(), head=method == "HEAD")
		request: Any = {}
		if body.strip():
			try:
				request = json.loads(body)
			except ValueError:
				return await self._answer(send, 400, self._err("bad_request", "the body is not JSON; send a JSON object"))
			if not isinstance(request, dict):
				return await self._answer(send, 400, self._err("bad_request", "the body must be a JSON object"))
		if name == "undrain":
			if request:
				return await self._answer(send, 400, self._err("bad_request", "undrain takes an empty body or {}"))
			state = self.current_state()
			if state in ("drained", "shutting_down"):
				return await self._answer(send, 409, self._err("conflict", f"the instance is {state}; it cannot serve again"))
			self.state, self.draining_since, self.deadline = "serving", None, None
			return await self._answer(send, 200, self.status())
		secs = request.get("deadline_secs", self.default_deadline)
		if type(secs) is not int or not 0 <= secs <= MAX_DEADLINE_SECS:
			return await self._answer(send, 400, self._err("bad_request", f"deadline_secs must be an integer 0..={MAX_DEADLINE_SECS}"))
		if self.state == "shutting_down":
			return await self._answer(send, 200, self.status())
		now = datetime.now(UTC)
		wanted = now + timedelta(seconds=secs)
		if self.state == "serving":
			self.state, self.draining_since, self.deadline, self.seen_drained = "draining", now, wanted, False
		elif self.deadline is None or wanted < self.deadline:
			self.deadline = wanted
		return await self._answer(send, 200, self.status())


DeployToECS = DrainPlugin
"""The plan's name for the same plugin (`DeployToECS(secret=..., timeout=...)`)."""
