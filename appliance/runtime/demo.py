"""`sosie demo`: the real appliance loop with a simulated button, an image for a camera and the
virtual printer writing PNG tickets.

Interactive (a terminal): Enter presses the button, `q` + Enter (or Ctrl-D) quits.
Otherwise `presses` visits run one after the other and the demo ends by itself.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np

from appliance.faults import Fault
from appliance.parts.camera import FileCamera
from appliance.parts.controls import VirtualControls
from appliance.runtime.installation import Overrides, assemble
from appliance.runtime.states import State
from appliance.runtime.visits import VisitRecord
from appliance.settings import AppSettings
from appliance.words import plural

log = logging.getLogger(__name__)

START_TIMEOUT = 900.0  # first run builds the demo corpus
VISIT_TIMEOUT = 120.0


def default_photo() -> np.ndarray:
    """The demo's visitor: NASA's public-domain portrait of Eileen Collins (package data; she
    is not in the demo corpus of generated faces)."""
    from appliance.corpus.demo import visitor_photo
    from appliance.images import load_image

    return load_image(visitor_photo())


class Demo:
    """Runs a Service on the demo parts and reports each visit."""

    def __init__(
        self,
        settings: AppSettings,
        *,
        image: Path | np.ndarray | None,
        out_dir: Path,
        echo: Callable[[str], None] = print,
        corpus_path: Path | None = None,
    ) -> None:
        self.echo = echo
        self.tickets: list[Path] = []
        self.outcomes: list[str] = []
        source = image if image is not None else default_photo()
        # the photo as it is (not fitted into camera.width x height, rotated or mirrored as a
        # mounted camera's frames are): the same photo gives the same likeness, and the same
        # size on a no-face ticket, as `sosie ticket --image` of it
        self.camera = FileCamera(source)
        self.controls = VirtualControls()
        machine = dataclasses.replace(settings.machine,
                                      cooldown_seconds=min(settings.machine.cooldown_seconds, 0.5))
        self.installation = assemble(settings, Overrides(
            camera=self.camera, out_dir=out_dir, corpus_path=corpus_path,
            controls=self.controls, machine=machine, on_visit=self._on_visit,
            on_state=self._on_state))
        self.appliance = self.installation.appliance
        self.printer = self.appliance.printer
        self.service = self.installation.service
        self.fault: str | None = None

    # -- reporting -------------------------------------------------------------------------------

    def _on_state(self, state: State, fault: Fault | None) -> None:
        if state is State.FAULT:
            reason = self.service.machine.last_fault[1] if self.service.machine.last_fault else ""
            self.fault = f"{fault.value if fault else '?'}: {reason}"
            self.echo(f"fault ({self.fault}); retrying")

    def _on_visit(self, record: VisitRecord) -> None:
        ms = record.timings
        total = 1000 * ms.get("total", 0.0)
        receipt = self.appliance.last_receipt
        files = [Path(p) for p in getattr(receipt, "files", ()) if str(p).endswith(".png")]
        self.outcomes.append(record.outcome)
        if record.outcome == "printed" and files:
            self.tickets.extend(files)
            extra = ""
            if record.matches:
                extra = f", closest face {record.matches[0].likeness:.0f} % alike"
            self.echo(f"visit {record.visit}: ticket {files[0]} ({total:.0f} ms{extra})")
        else:
            self.echo(f"visit {record.visit}: {record.outcome} ({total:.0f} ms)")
        self.appliance.last_receipt = None

    # -- running ---------------------------------------------------------------------------------

    def run(self, presses: int | None, stdin: TextIO | None = None) -> int:
        thread = threading.Thread(target=self._serve, name="sosie-demo", daemon=True)
        thread.start()
        self.echo("starting: loading face models, opening the corpus...")
        try:
            if not self._wait_ready(START_TIMEOUT):
                self.echo(f"the appliance did not become ready: {self.fault or 'timeout'}")
                return 1
            corpus = self.appliance.facts()
            self.echo(f"ready: {corpus.get('corpus_faces', '?')} faces in {corpus.get('corpus')}"
                      f" ({corpus.get('kernel')} scan kernel)")
            if presses is None:
                self._interactive(stdin or sys.stdin)
            else:
                for _ in range(presses):
                    if not self._visit():
                        return 1
        finally:
            self.service.shutdown()
            thread.join(30)
            self.installation.close()
        self._summary()
        failed = [o for o in self.outcomes if o not in {"printed", "no face"}]
        if presses is not None and len(self.outcomes) < presses:
            return 1
        return 1 if failed else 0

    def _serve(self) -> None:
        self.service.run(install_signals=False)

    def _wait_ready(self, timeout: float) -> bool:
        ok = self.service.wait_for(
            lambda s: s.state is State.READY or (s.state is State.FAULT and self.fault is not None),
            timeout,
        )
        return ok and self.service.state is State.READY

    def _visit(self) -> bool:
        done = len(self.outcomes)
        if not self._wait_ready(VISIT_TIMEOUT):
            self.echo(f"not ready for a visit: {self.fault or 'timeout'}")
            return False
        self.service.press("demo")
        ended = self.service.wait_for(lambda s: len(self.outcomes) > done, VISIT_TIMEOUT)
        return ended and self.outcomes[-1] in {"printed", "no face"}

    def _interactive(self, stdin: TextIO) -> None:
        self.echo("press Enter for a visit, q + Enter to quit")
        sent = 0
        for line in stdin:
            if line.strip().lower() in {"q", "quit", "exit"}:
                break
            if self.service.state is not State.READY:
                self.echo(f"(busy: {self.service.state.value}; press ignored)")
            self.service.press("keyboard")
            sent += 1
        # quitting never cuts a ticket in half: let the visit in progress finish
        self.service.wait_for(
            lambda s: s.machine.counters.presses >= sent
            and len(self.outcomes) >= s.machine.counters.visits, VISIT_TIMEOUT)

    def _summary(self) -> None:
        if self.tickets:
            self.echo(f"{plural(len(self.tickets), 'ticket')} in {self.printer.out_dir}:")
            for path in self.tickets:
                self.echo(f"  {path}")
        else:
            self.echo(f"no tickets printed (tickets go to {self.printer.out_dir})")
