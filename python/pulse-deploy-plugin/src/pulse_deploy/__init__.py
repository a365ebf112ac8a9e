"""pulse-deploy's drain protocol (docs/drain-protocol.md) for unmodified Pulse apps.

`DrainPlugin` (alias `DeployToECS`) is a Pulse plugin; `pulse_deploy.serve` is the launcher that owns the
signals. Not for: routing or orchestration (the Rust SDK does those).
"""

from pulse_deploy.plugin import DeployToECS, DrainPlugin
from pulse_deploy.settings import Settings, SettingsError

__all__ = ["DeployToECS", "DrainPlugin", "Settings", "SettingsError"]
