"""The real devices behind the service loop: camera, face models, corpus, search, printer.

`Appliance.start()` loads the dlib models, opens the corpus and touches every page of it
(so the first visitor does not pay for SD-card reads), opens the camera and the printer. Each
failure is a `PartFault` naming the part, so the machine shows the right fault and retries.
The visitor's frame and descriptor only ever live in local variables here, unless the installer
opted in to `service.keep_captures`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from appliance.parts.camera import Camera, CameraError, make_camera
from appliance.runtime.machine import Fault
from appliance.runtime.service import Outcome, PartFault
from appliance.settings import AppSettings

log = logging.getLogger(__name__)

NO_FACE_TEXT = ("No face found", "Stand in front of the camera,", "look at it, and press again.")


class Appliance:
    """Implements `appliance.runtime.service.Backend` with the real parts (or given stand-ins)."""

    def __init__(
        self,
        settings: AppSettings,
        *,
        camera: Camera | None = None,
        printer: Any = None,
        corpus_path: Path | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.settings = settings
        self.camera = camera
        self.printer = printer
        self.corpus_path = corpus_path
        self.clock = clock
        self.analyzer: Any = None
        self.corpus: Any = None
        self.scanner: Any = None
        self.lookup_impl: Any = None
        self.startup_seconds: dict[str, float] = {}
        self.last_receipt: Any = None
        self.counter = TicketCounter(ticket_counter_file())

    # -- start-up and recovery -----------------------------------------------------------------

    def start(self) -> None:
        self._timed("models", self._load_models)
        self._timed("corpus", self._open_corpus)
        self._timed("camera", self._open_camera)
        self._timed("printer", self._open_printer)

    def _timed(self, name: str, step: Callable[[], None]) -> None:
        start = self.clock()
        step()
        self.startup_seconds[name] = self.clock() - start

    def _load_models(self) -> None:
        if self.analyzer is not None:
            return
        from appliance.faces.analyzer import FaceAnalyzer

        try:
            analyzer = FaceAnalyzer(self.settings.faces)
            analyzer.analyze(np.zeros((64, 64, 3), np.uint8))  # loads every model now
        except Exception as exc:
            raise PartFault(Fault.CORPUS, f"face models: {_one_line(exc)}") from None
        log.info("face models loaded; descriptor engine: %s", analyzer.descriptor_engine)
        self.analyzer = analyzer

    def _corpus_location(self) -> Path:
        if self.corpus_path is not None:
            return Path(self.corpus_path)
        configured = getattr(self.settings.corpus, "path", None)
        if configured:
            return Path(configured)
        from appliance.corpus import demo_corpus

        return Path(demo_corpus())

    def _open_corpus(self) -> None:
        if self.lookup_impl is not None:
            return
        try:
            path = self._corpus_location()
            corpus = open_corpus(path, self.settings.faces)
        except Exception as exc:
            raise PartFault(Fault.CORPUS, f"corpus: {_one_line(exc)}") from None
        try:
            corpus.warm()
            scanner = make_scanner(corpus, self.settings.search)
            lookup = self._make_lookup(corpus, scanner)
        except Exception as exc:
            corpus.close()
            raise PartFault(Fault.CORPUS, f"corpus {path}: {_one_line(exc)}") from None
        self.corpus, self.scanner, self.lookup_impl = corpus, scanner, lookup
        log.info("corpus %s: %d faces, %s kernel", path, corpus.count,
                 getattr(scanner, "kernel", "?"))

    def _make_lookup(self, corpus: Any, scanner: Any) -> Any:
        from appliance.parts.printer import printer_width
        from appliance.runtime.lookup import Lookup

        width = getattr(self.printer, "width", None) or printer_width(self.settings.printer)
        return Lookup(self.analyzer, corpus, scanner, self.settings.ticket,
                      installation=self.settings.installation, width=width,
                      first_number=self.counter.next())

    def _open_camera(self) -> None:
        if self.camera is None:
            try:
                self.camera = make_camera(self.settings.camera)
            except CameraError as exc:
                raise PartFault(Fault.CAMERA, str(exc)) from None
        try:
            self.camera.open()
        except CameraError as exc:
            raise PartFault(Fault.CAMERA, str(exc)) from None

    def _open_printer(self) -> None:
        if self.printer is None:
            from appliance.parts.printer import make_printer

            try:
                self.printer = make_printer(self.settings.printer)
            except Exception as exc:
                raise PartFault(Fault.PRINTER, f"printer: {_one_line(exc)}") from None
        self._check_printer()

    def _check_printer(self) -> None:
        try:
            status = self.printer.status()
        except Exception as exc:
            raise PartFault(Fault.PRINTER, _one_line(exc)) from None
        if getattr(status, "paper", None) == "out":
            raise PartFault(Fault.PRINTER, "printer: out of paper")
        if getattr(status, "online", None) is False:
            raise PartFault(Fault.PRINTER, "printer: offline (cover open or error)")

    def probe(self, fault: Fault) -> None:
        """Recover `fault`'s part; any part still missing from start-up is opened too."""
        if fault is Fault.CAMERA and self.camera is not None:
            self.camera.close()
        elif fault is Fault.PRINTER and self.printer is not None:
            with contextlib.suppress(Exception):
                self.printer.close()
        elif fault is Fault.CORPUS and self.corpus is not None:  # reopen from the files
            with contextlib.suppress(Exception):
                self.corpus.close()
            self.corpus = self.scanner = self.lookup_impl = None
        self.start()

    # -- a visit ---------------------------------------------------------------------------------

    def capture(self) -> np.ndarray:
        if self.camera is None:
            raise PartFault(Fault.CAMERA, "no camera")
        try:
            frame = self.camera.capture()
        except CameraError as exc:
            raise PartFault(Fault.CAMERA, str(exc)) from None
        if self.settings.service.keep_captures:
            self._keep(frame)
        return frame

    def _keep(self, frame: np.ndarray) -> None:
        from PIL import Image

        folder = self.settings.service.captures_dir
        assert folder is not None  # enforced by load_settings
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"capture-{datetime.now():%Y%m%d-%H%M%S-%f}.jpg"
            tmp = path.with_suffix(".part")
            Image.fromarray(frame).save(tmp, format="JPEG", quality=92)
            os.replace(tmp, path)
        except OSError as exc:  # keeping is optional: never fail a visit over it
            log.warning("cannot keep the capture in %s: %s", folder, exc)

    def lookup(self, frame: np.ndarray) -> Outcome:
        if self.lookup_impl is None:
            raise PartFault(Fault.CORPUS, "the corpus is not open")
        result = self.lookup_impl.run(frame)
        timings = dict(getattr(result, "timings", {}) or {})
        ticket = getattr(result, "stream", None)  # composed band by band while it prints
        if ticket is None:
            reason = getattr(result, "no_face", None) or getattr(result, "reason", None)
            return Outcome(no_face=str(reason or "no face found"), timings=timings)
        details: dict[str, Any] = {}
        matches = getattr(result, "matches", None)
        if matches:
            with contextlib.suppress(Exception):
                details["best_distance"] = round(float(matches[0].distance), 4)
        return Outcome(ticket=ticket, timings=timings, details=details)

    def print_ticket(self, ticket: Any) -> None:
        """Print a ticket image or a lazy `Ticket` (its bands stream to the printer)."""
        if self.printer is None:
            raise PartFault(Fault.PRINTER, "no printer")
        try:
            self.last_receipt = self.printer.print_ticket(ticket)
        except Exception as exc:
            raise PartFault(Fault.PRINTER, _one_line(exc)) from None
        if self.lookup_impl is not None:
            self.counter.save(getattr(self.lookup_impl, "next_number", 1))

    def print_no_face(self, reason: str) -> None:
        self.print_ticket(self.no_face_ticket(reason))

    def no_face_ticket(self, reason: str) -> Any:
        """The short ticket for a photo without a usable face."""
        width = getattr(self.printer, "width", None)
        try:
            if self.lookup_impl is None:
                raise RuntimeError("no lookup")
            return self.lookup_impl.no_face_ticket(reason)
        except Exception as exc:  # never leave a visitor without an answer
            log.warning("no-face ticket layout failed (%s); printing plain text", _one_line(exc))
            return simple_text_ticket(NO_FACE_TEXT, width or 576)

    # -- status and shutdown ---------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if self.corpus is not None:
            info["corpus"] = str(getattr(self.corpus, "path", ""))
            info["corpus_faces"] = int(self.corpus.count)
        if self.scanner is not None:
            info["kernel"] = getattr(self.scanner, "kernel", None)
        if self.camera is not None:
            info["camera"] = self.camera.name
        if self.printer is not None:
            info["printer"] = type(self.printer).__name__
            out_dir = getattr(self.printer, "out_dir", None)
            if out_dir is not None:
                info["tickets_dir"] = str(out_dir)
        if self.startup_seconds:
            info["startup_seconds"] = {k: round(v, 2) for k, v in self.startup_seconds.items()}
        return info

    def close(self) -> None:
        for part in (self.camera, self.printer, self.corpus):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()


def make_scanner(corpus: Any, search: Any) -> Any:
    """The corpus's Scanner with the `search` section's threads and kernel."""
    from appliance.search import Scanner

    threads = int(getattr(search, "threads", 1) or 1)
    kernel = getattr(search, "kernel", "auto")
    return Scanner(corpus.vectors, corpus.norms, threads=threads,
                   kernel=None if kernel in (None, "", "auto") else kernel)


def open_corpus(path: Path, face_settings: Any) -> Any:
    """`Corpus.open` (appliance.corpus), checked against the face models in use."""
    from appliance.corpus import Corpus

    return Corpus.open(path, face_settings=face_settings)


def ticket_counter_file() -> Path:
    """Where the next ticket number is kept across restarts (not visitor data)."""
    from appliance.paths import cache_dir

    return cache_dir() / "ticket-number"


class TicketCounter:
    """Ticket numbers continue after a restart: the next number, in a one-line file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def next(self) -> int:
        try:
            value = int(self.path.read_text().strip())
        except (OSError, ValueError):
            return 1
        return max(1, value)

    def save(self, next_number: int) -> None:
        try:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(f"{int(next_number)}\n")
            os.replace(tmp, self.path)
        except OSError as exc:  # a read-only card must not stop the printing
            log.debug("cannot save the ticket number: %s", exc)


def simple_text_ticket(lines: tuple[str, ...], width: int) -> Any:
    """A plain 1-bit ticket with a few centred lines of text."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=max(16, width // 18))
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    line_height = int(font.size * 1.5) if hasattr(font, "size") else 24
    height = line_height * (len(lines) + 2)
    image = Image.new("1", (width, height), 1)
    draw = ImageDraw.Draw(image)
    for i, text in enumerate(lines):
        w = draw.textlength(text, font=font)
        draw.text(((width - w) / 2, line_height * (i + 1)), text, font=font, fill=0)
    return image


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
