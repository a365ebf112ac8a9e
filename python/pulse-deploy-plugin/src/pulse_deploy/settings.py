"""Settings of the plugin and launcher, read from the environment and range-checked at start.

Names and defaults mirror the Rust demo's (docs/drain-protocol.md, "Environment").
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MAX_DEADLINE_SECS = 2_592_000
DEFAULT_DEADLINE_SECS = 21_600
"""The protocol's one default drain deadline (6 h), as `pulse_deploy_core::drain::wire::deadline`."""
MAX_SHUTDOWN_SECS = 3_600
MAX_GRACE_SECS = 86_400


class SettingsError(ValueError):
	"""A setting is missing or out of range; the message names the variable and the fix."""


def _printable(value: str) -> bool:
	return bool(value) and all(0x21 <= ord(c) <= 0x7E for c in value)


def check_secret(secret: str, name: str = "PULSE_DRAIN_SECRET") -> str:
	"""Refuse a secret shorter than 16 or with characters outside 0x21-0x7e (the message never shows it)."""
	if len(secret) < 16 or not _printable(secret):
		raise SettingsError(f"{name}: the drain secret must be at least 16 printable ASCII characters without spaces")
	return secret


def _int(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
	raw = env.get(name, "").strip()
	if not raw:
		return default
	try:
		value = int(raw)
	except ValueError:
		raise SettingsError(f"{name}: {raw!r} is not a whole number; set it to {low}..={high}") from None
	if not low <= value <= high:
		raise SettingsError(f"{name}: {value} is out of range; set it to {low}..={high}")
	return value


def _ident(name: str, value: str) -> str:
	if not _printable(value) or len(value) > 255:
		raise SettingsError(f"{name}: {value!r} must be 1..=255 printable ASCII characters without spaces")
	return value


def instance_id_from(env: dict[str, str]) -> str:
	"""`PULSE_INSTANCE_ID`, else ECS metadata `TaskARN`, else the host name; validated."""
	explicit = env.get("PULSE_INSTANCE_ID", "").strip()
	if explicit:
		return _ident("PULSE_INSTANCE_ID", explicit)
	uri = env.get("ECS_CONTAINER_METADATA_URI_V4", "").strip()
	if uri:
		try:
			with urllib.request.urlopen(f"{uri}/task", timeout=2) as answer:
				arn = json.load(answer)["TaskARN"]
		except Exception as error:
			raise SettingsError(
				f"ECS_CONTAINER_METADATA_URI_V4: could not read TaskARN ({type(error).__name__}); set PULSE_INSTANCE_ID"
			) from None
		return _ident("TaskARN (ECS_CONTAINER_METADATA_URI_V4)", str(arn))
	host = env.get("HOSTNAME", "").strip() or socket.gethostname()
	return _ident("HOSTNAME", host)


@dataclass(frozen=True)
class Settings:
	"""Everything the plugin and launcher read from the environment."""

	version: str
	instance_id: str
	secret_file: Path | None
	secret: str | None
	port: int
	host: str
	drain_deadline_secs: int
	shutdown_timeout_secs: int
	health_path: str

	@classmethod
	def from_env(cls, env: dict[str, str] | None = None, *, need_secret: bool = True) -> Settings:
		env = dict(os.environ if env is None else env)
		version = env.get("PULSE_VERSION", "").strip()
		if not version:
			raise SettingsError("PULSE_VERSION: required; set it to the release's version (printable ASCII)")
		_ident("PULSE_VERSION", version)
		secret_file = env.get("PULSE_DRAIN_SECRET_FILE", "").strip() or None
		secret = env.get("PULSE_DRAIN_SECRET") or None
		if secret_file:
			try:
				check_secret(Path(secret_file).read_text().strip(), "PULSE_DRAIN_SECRET_FILE")
			except OSError as error:
				raise SettingsError(f"PULSE_DRAIN_SECRET_FILE: cannot read {secret_file!r} ({error.strerror})") from None
		elif secret is not None:
			check_secret(secret)
		elif need_secret:
			raise SettingsError("PULSE_DRAIN_SECRET: set it or PULSE_DRAIN_SECRET_FILE to the drain secret")
		health = env.get("PULSE_HEALTH_PATH", "/_pulse/health").strip()
		if not health.startswith("/") or health.startswith("/_pulse/admin") or not _printable(health) or "?" in health:
			raise SettingsError("PULSE_HEALTH_PATH: must be an absolute path without query, not under /_pulse/admin")
		return cls(
			version=version,
			instance_id=instance_id_from(env),
			secret_file=Path(secret_file) if secret_file else None,
			secret=secret if not secret_file else None,
			port=_int(env, "PORT", 8000, 0, 65535),
			host=env.get("PULSE_HOST", "0.0.0.0").strip() or "0.0.0.0",
			drain_deadline_secs=_int(env, "PULSE_DRAIN_DEADLINE_SECS", DEFAULT_DEADLINE_SECS, 0, MAX_DEADLINE_SECS),
			shutdown_timeout_secs=_int(env, "PULSE_SHUTDOWN_TIMEOUT_SECS", 8, 1, MAX_SHUTDOWN_SECS),
			health_path=health,
		)
