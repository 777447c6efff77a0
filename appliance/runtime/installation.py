"""The composition root: `assemble(settings, overrides)` builds the whole installation.

Every running appliance (`sosie run`, `sosie demo`, the benches' simulation) is wired here and
only here: the parts (`make_appliance`: camera, models, corpus, ticket, printer), the state
machine, the service loop, the button and LED, the presence sensor and the control socket's
handler::

    >>> installation = assemble(load_settings())
    >>> server = ControlServer(path, installation.handler)
    >>> installation.service.run()                  # until SIGTERM or a shutdown press
    >>> installation.close()

`Overrides` puts given parts in place of the configured ones (a photo for a camera, the virtual
printer, on-screen controls, a shorter cooldown, callbacks that watch the visits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from appliance.faults import Fault
from appliance.parts.camera import Camera
from appliance.parts.controls import Controls, make_controls
from appliance.parts.printer import Printer
from appliance.runtime.appliance import Appliance, make_appliance
from appliance.runtime.control import ControlHandler
from appliance.runtime.machine import Machine
from appliance.runtime.presence import PresenceSensor, presence_sensor
from appliance.runtime.service import Service
from appliance.runtime.settings import MachineSettings
from appliance.runtime.states import State
from appliance.runtime.visits import VisitRecord
from appliance.settings import AppSettings


@dataclass(frozen=True)
class Overrides:
    """What replaces the configured parts; None keeps the configured one."""

    corpus_path: Path | None = None
    camera: Camera | None = None
    printer: Printer | None = None
    out_dir: Path | None = None  # the virtual printer, writing there
    first_number: int | None = None  # ticket numbers from here, never saved
    controls: Controls | None = None
    machine: MachineSettings | None = None
    on_visit: Callable[[VisitRecord], None] | None = field(default=None, compare=False)
    on_state: Callable[[State, Fault | None], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Installation:
    """The assembled appliance: run `service`; the socket serves `handler`."""

    settings: AppSettings
    appliance: Appliance
    machine: Machine
    service: Service
    controls: Controls
    presence: PresenceSensor | None  # polling while the appliance is ready, if enabled
    handler: ControlHandler

    def close(self) -> None:
        """Stop what runs beside the service (the presence sensor's polling)."""
        if self.presence is not None:
            self.presence.close()


def assemble(settings: AppSettings, overrides: Overrides | None = None) -> Installation:
    """The installation `settings` describe, with `overrides` in place of configured parts.

    Raises ControlsError (GPIO asked for and unusable) or ConfigError before anything starts;
    the parts themselves are opened by the service (`Appliance.start`), so a missing camera or
    corpus is a fault it shows and retries, not a failure to start.
    """
    o = overrides or Overrides()
    appliance = make_appliance(settings, corpus_path=o.corpus_path, camera=o.camera,
                               printer=o.printer, out_dir=o.out_dir, first_number=o.first_number)
    controls = o.controls if o.controls is not None else make_controls(settings.controls)
    machine = Machine(o.machine or settings.machine)
    service = Service(machine, appliance, controls, settings.service, on_visit=o.on_visit,
                      on_state=o.on_state)
    handler = ControlHandler(service.status, service.press_and_wait)
    presence = None
    if settings.controls.presence.enabled:
        presence = presence_sensor(settings.controls.presence, appliance.glance,
                                   appliance.faces_in, lambda: service.state is State.READY,
                                   lambda: service.press("presence"))
    return Installation(settings, appliance, machine, service, controls, presence, handler)
