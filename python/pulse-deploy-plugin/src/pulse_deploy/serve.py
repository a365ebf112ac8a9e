"""The launcher: runs a Pulse app under uvicorn and owns SIGTERM/SIGINT (the container's entrypoint).

`pulse-deploy-serve module:app` (or `python -m pulse_deploy.serve module:app`). On the first signal: state
`shutting_down`, every Socket.IO client disconnected (its WebSocket closed with 1001), the listener closed,
the lifespan run (`App.close()`, plugins' `on_shutdown`), exit 0; bounded by `PULSE_SHUTDOWN_TIMEOUT_SECS`
(exit 1 when cut); a second signal exits at once (130); a bad setting exits 2 naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import sys

import uvicorn

from pulse_deploy.plugin import DrainPlugin
from pulse_deploy.settings import Settings, SettingsError

class _Server(uvicorn.Server):
	"""uvicorn without its own signal handling (it would close sockets with 1012 and re-raise: exit 143)."""

	@contextlib.contextmanager
	def capture_signals(self):  # type: ignore[override]
		yield


def load_app(target: str):
	module_name, _, attr = target.partition(":")
	if not module_name or not attr:
		raise SettingsError(f"app: {target!r} must be module:attribute (e.g. main:app)")
	sys.path.insert(0, os.getcwd())
	return getattr(importlib.import_module(module_name), attr)


async def _run(target: str) -> int:
	settings = Settings.from_env(need_secret=False)
	app = load_app(target)
	plugins = [p for p in getattr(app, "plugins", []) if isinstance(p, DrainPlugin)]
	asgi = app.asgi_factory()
	config = uvicorn.Config(asgi, host=settings.host, port=settings.port, lifespan="on", log_level="info")
	server = _Server(config)
	loop = asyncio.get_running_loop()
	stopping = asyncio.Event()
	signals = {"count": 0}

	def on_signal() -> None:
		signals["count"] += 1
		if signals["count"] > 1:
			os._exit(130)
		stopping.set()

	for sig in (signal.SIGTERM, signal.SIGINT):
		loop.add_signal_handler(sig, on_signal)

	serving = asyncio.create_task(server.serve())
	waiter = asyncio.create_task(stopping.wait())
	done, _ = await asyncio.wait({serving, waiter}, return_when=asyncio.FIRST_COMPLETED)
	if serving in done:
		waiter.cancel()
		return 0 if serving.exception() is None and server.started else 1
	for plugin in plugins:
		plugin.begin_shutdown()
	try:
		async with asyncio.timeout(settings.shutdown_timeout_secs):
			for sid in list(app.sio.eio.sockets.keys()):
				await _disconnect(app, sid)
			# The closes (1001) get the first half of the timeout before uvicorn cuts what is left (1012).
			with contextlib.suppress(TimeoutError):
				async with asyncio.timeout(settings.shutdown_timeout_secs / 2):
					while any(p.open_websockets for p in plugins):
						await asyncio.sleep(0.01)
			server.should_exit = True
			await serving
	except TimeoutError:
		print("pulse-deploy-serve: the shutdown timeout cut the shutdown", file=sys.stderr)
		return 1
	return 0


async def _disconnect(app, eio_sid: str) -> None:
	"""Disconnect one client: Socket.IO DISCONNECT and Engine.IO CLOSE packets, then its WebSocket closed
	(the plugin turns that close into 1001) without waiting for the client to answer."""
	socket = app.sio.eio.sockets.get(eio_sid)
	for namespace in list(app.sio.manager.get_namespaces()):
		sid = app.sio.manager.sid_from_eio_sid(eio_sid, namespace)
		if sid is not None:
			with contextlib.suppress(Exception):
				await app.sio.disconnect(sid, namespace=namespace)
	if socket is not None:
		with contextlib.suppress(Exception):
			await socket.close(wait=False, abort=False)
		# An empty poll ends Engine.IO's writer, which closes the WebSocket.
		socket.queue.put_nowait(None)


def main(argv: list[str] | None = None) -> None:
	args = sys.argv[1:] if argv is None else argv
	if len(args) != 1:
		print("usage: pulse-deploy-serve module:app", file=sys.stderr)
		sys.exit(2)
	try:
		code = asyncio.run(_run(args[0]))
	except SettingsError as error:
		print(f"pulse-deploy-serve: {error}", file=sys.stderr)
		sys.exit(2)
	sys.exit(code)


if __name__ == "__main__":
	main()
