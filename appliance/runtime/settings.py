"""The settings of the machine and of the service loop (config sections `machine`, `service`).

A leaf module (it imports only the config's `setting`), so that `appliance.settings` composes
every section without importing the running appliance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from appliance.config import setting


@dataclass(frozen=True)
class MachineSettings:
    """Timers and behaviour of the appliance (config section `machine`)."""

    cooldown_seconds: float = setting(3.0, min=0, max=600)
    no_face: Literal["ticket", "blink"] = "ticket"
    no_face_blink_seconds: float = setting(2.0, min=0, max=60)
    capture_timeout: float = setting(10.0, min=0.1, max=600)
    search_timeout: float = setting(30.0, min=0.1, max=600)
    print_timeout: float = setting(60.0, min=0.1, max=600)
    retry_seconds: float = setting(5.0, min=0.1, max=3600)
    retry_max_seconds: float = setting(60.0, min=0.1, max=3600)


@dataclass(frozen=True)
class ServiceSettings:
    """Config section `service`."""

    socket: Path | None = None  # control socket; default $RUNTIME_DIRECTORY or /run/sosie
    keep_captures: bool = False  # opt-in: keep visitors' photos (GDPR notice needed!)
    captures_dir: Path | None = None  # where kept photos go (required with keep_captures)
    stuck_seconds: float = setting(120.0, min=5, max=3600)  # worker busy longer: stop watchdog
    start_seconds: float = setting(900.0, min=5, max=7200)  # the same for start-up/recovery
    stop_timeout: float = setting(15.0, min=0, max=300)  # wait this long for a ticket in progress
    poweroff_command: list[str] = field(default_factory=lambda: ["systemctl", "poweroff"])
