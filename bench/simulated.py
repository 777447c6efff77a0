"""The real appliance on simulated hardware, for benchmarks and soak runs.

Everything between the button and the printer's cable is the production code: the service loop,
state machine, camera interface, faces, search, ticket layout, dithering, ESC/POS encoding and
the `EscposPrinter` with its deadlines. Only the ends are simulated: the button is
`VirtualControls.press`, the camera serves a fixed frame, and the printer connection swallows
the bytes while noting when the first one arrived.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from appliance.parts.camera import FileCamera
from appliance.parts.controls import VirtualControls
from appliance.runtime.installation import Overrides, assemble
from appliance.runtime.states import State
from appliance.runtime.visits import VisitRecord
from appliance.settings import AppSettings


class NullConnection:
    """An escpos-like connection that accepts bytes and remembers when the first and last came."""

    def __init__(self) -> None:
        self.first_byte: float | None = None
        self.last_byte: float | None = None
        self.bytes = 0

    def open(self) -> None:
        pass

    def _raw(self, data: bytes) -> None:
        if not data:
            return
        self.last_byte = time.perf_counter()
        if self.first_byte is None:
            self.first_byte = self.last_byte
        self.bytes += len(data)

    def close(self) -> None:
        pass


class SimulatedAppliance:
    """A running service on `frame`, searching `corpus_path`; `visit()` presses and measures."""

    def __init__(self, settings: AppSettings, frame: np.ndarray | list[np.ndarray],
                 corpus_path: Path,
                 *, printer_settings: Any = None) -> None:
        from appliance.parts.printer import EscposPrinter

        self.connection = NullConnection()
        psettings = printer_settings or dataclasses.replace(
            settings.printer, backend="file", check_status=False, retries=0)
        self.printer = EscposPrinter(psettings, lambda: self.connection, label="simulated")
        self.camera = FileCamera(frame)
        machine = dataclasses.replace(settings.machine, cooldown_seconds=0.0)
        self.records: list[VisitRecord] = []
        self.installation = assemble(settings, Overrides(
            camera=self.camera, printer=self.printer, corpus_path=corpus_path,
            controls=VirtualControls(), machine=machine, on_visit=self.records.append))
        self.appliance = self.installation.appliance
        self.service = self.installation.service
        self.last_byte_latency = float("nan")  # seconds from the last press to its last byte
        self._thread = threading.Thread(target=self.service.run,
                                        kwargs={"install_signals": False}, daemon=True)

    def start(self, timeout: float = 900) -> None:
        self._thread.start()
        if not self.service.wait_for(lambda s: s.state in (State.READY, State.FAULT), timeout):
            raise RuntimeError("the appliance did not start in time")
        if self.service.state is not State.READY:
            raise RuntimeError(f"the appliance did not start: {self.service.machine.last_fault}")

    def visit(self, timeout: float = 120) -> tuple[float, VisitRecord]:
        """Press once; (seconds from press to first printer byte, the visit's record)."""
        if not self.service.wait_for(lambda s: s.state is State.READY, timeout):
            raise RuntimeError(f"not ready: {self.service.state.value}")
        done = len(self.records)
        self.connection.first_byte = None
        pressed = time.perf_counter()
        self.service.press("simulated")
        if not self.service.wait_for(lambda s: len(self.records) > done, timeout):
            raise RuntimeError("the visit did not end in time")
        record = self.records[-1]
        del self.records[:-1]  # keep memory flat over long soaks
        if record.outcome != "printed" or self.connection.first_byte is None:
            raise RuntimeError(f"visit ended with {record.outcome!r}: "
                               f"{self.service.machine.last_fault}")
        self.last_byte_latency = (self.connection.last_byte or pressed) - pressed
        return self.connection.first_byte - pressed, record

    def stop(self) -> None:
        self.service.shutdown()
        self._thread.join(30)
        self.installation.close()
