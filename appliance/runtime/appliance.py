"""The appliance's parts behind the service loop: camera, face models, corpus and search, the
ticket and the printer; `make_appliance` builds them from the settings (for the whole
installation around them: `appliance.runtime.installation.assemble`).

`Appliance.start()` loads the dlib models, opens the corpus (its passes over every row and the
SD-card reads run on a thread the first search waits for; a problem they find is reported at
once through `watch_corpus_check`), opens the camera and asks the printer's own `diagnose()`
whether it can print. Each failure is a `PartFault` naming the part, so the
machine shows the right fault and retries. The visitor's frame and descriptor only ever live in
local variables here, unless the installer opted in to `service.keep_captures`.

    >>> appliance = make_appliance(load_settings())  # through assemble(), or `sosie ticket`
    >>> appliance.start()
    >>> result = appliance.look_up(appliance.capture())
    >>> appliance.print_visit(result)
    >>> appliance.print_double(result, spent=0.0)  # ticket.conjure: after; drops the descriptor
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from appliance.errors import one_line
from appliance.faults import Fault, PartFault, TicketError
from appliance.parts.camera import Camera, CameraError, Frame, make_camera
from appliance.parts.diagnosis import first_problem
from appliance.parts.printer import Paper, Printer, make_printer
from appliance.runtime.counter import FixedCounter, TicketCounter, ticket_counter_file
from appliance.runtime.lookup import Lookup, VisitResult, check_fonts
from appliance.settings import AppSettings
from appliance.ticket.plain import NO_FACE_TEXT, simple_text_ticket

if TYPE_CHECKING:  # imported when first used: the models and the corpus load at start
    from PIL import Image

    from appliance.conjure.double import Conjurer
    from appliance.corpus import Corpus
    from appliance.faces.analyzer import FaceAnalyzer
    from appliance.faces.settings import FaceSettings
    from appliance.parts.printer import Printable, PrintReceipt
    from appliance.search import Scanner, SearchSettings
    from appliance.ticket import Ticket

log = logging.getLogger(__name__)

#: Seconds of the print stage kept free after the conjured double's search.
DOUBLE_MARGIN_SECONDS = 5.0
#: The longest a corpus fault's recovery waits for the reopened corpus's check (every row read
#: from a cold card: a minute for millions of faces on a Pi) before it stays a fault and retries.
RECOVERY_CHECK_SECONDS = 300.0


class Appliance:
    """The real parts (or given stand-ins) behind the machine; implements `jobs.Parts`.

    Built by `make_appliance`, which chooses the printer up front; the camera may be given
    (demo, simulation, tests), else the configured one is made when it is first opened (a
    camera that cannot be made is a camera fault, retried). `paper` is the printer's.
    """

    def __init__(self, settings: AppSettings, *, printer: Printer, camera: Camera | None = None,
                 corpus_path: Path | None = None, counter: TicketCounter | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.settings = settings
        self.camera = camera  # None: the configured one, made when it is first opened
        self.printer = printer
        self.paper: Paper = self.printer.paper
        self.corpus_path = corpus_path
        self.counter = counter or TicketCounter(ticket_counter_file())
        self.clock = clock
        self.analyzer: FaceAnalyzer | None = None  # once the models are loaded
        self.corpus: Corpus | None = None
        self.scanner: Scanner | None = None  # over the corpus
        self.lookup: Lookup | None = None
        self.startup_seconds: dict[str, float] = {}
        self.last_receipt: PrintReceipt | None = None  # the printer's, of the last ticket
        self.conjurer: Conjurer | None = None  # with ticket.conjure: after
        self._corpus_report: Callable[[str], None] | None = None  # watch_corpus_check's
        self._corpus_opening = 0  # which opening of the corpus a check's late report is about

    # -- start-up and recovery -----------------------------------------------------------------

    def start(self, *, check_corpus: bool = False) -> None:
        """Load or open every part not ready yet (again after a fault: `probe`); the seconds
        each took stay those of the last time it really loaded. The corpus's passes over
        every row run on a thread (`watch_corpus_check`), unless `check_corpus` (a corpus
        fault's recovery) waits for them."""
        self._timed(Fault.MODELS, self._load_models, again=self.analyzer is None)
        self._timed(Fault.CORPUS, self._open_corpus, again=self.lookup is None)
        if check_corpus:
            self._check_corpus()
        self._timed(Fault.CAMERA, self._open_camera)
        self._timed(Fault.PRINTER, self._check_printer)

    def start_search(self) -> None:
        """Only what a lookup needs: models and corpus (`sosie ticket`)."""
        self._load_models()
        self._open_corpus()
    def _timed(self, part: Fault, step: Callable[[], None], *, again: bool = True) -> None:
        """Run `step`, the start-up of `part` (its fault, whatever fails in it), recording its
        seconds unless it had nothing to do (`again` false) and a time is on record already."""
        name = part.value
        start = self.clock()
        try:
            step()
        except PartFault:
            raise
        except Exception as exc:
            log.exception("starting the %s failed", name)
            raise PartFault(part, f"{name}: {one_line(exc)}") from None
        if again or name not in self.startup_seconds:
            self.startup_seconds[name] = self.clock() - start

    def _load_models(self) -> None:
        if self.analyzer is not None:
            return
        from appliance.faces.analyzer import FaceAnalyzer

        try:
            analyzer = FaceAnalyzer(self.settings.faces)
            analyzer.analyze(np.zeros((64, 64, 3), np.uint8))  # loads every model now
        except Exception as exc:
            raise PartFault(Fault.MODELS, f"face models: {one_line(exc)}") from None
        log.info("face models loaded; descriptor engine: %s", analyzer.descriptor_engine)
        self.analyzer = analyzer

    def corpus_location(self) -> Path:
        if self.corpus_path is not None:
            return Path(self.corpus_path)
        if self.settings.corpus.path:
            return Path(self.settings.corpus.path)
        from appliance.corpus import demo_corpus

        return Path(demo_corpus())

    def _open_corpus(self) -> None:
        if self.lookup is not None:
            return
        try:
            path = self.corpus_location()
            corpus = open_corpus(path, self.settings.faces)
        except Exception as exc:
            raise PartFault(Fault.CORPUS, f"corpus: {one_line(exc)}") from None
        self._corpus_opening += 1
        opening = self._corpus_opening
        try:  # the first search waits for the check (Lookup._search); a problem is reported
            corpus.check_in_background(lambda problem: self._corpus_problem(opening, problem))
            scanner = make_scanner(corpus, self.settings.search)
            lookup = Lookup(self.analyzer, corpus, scanner, self.settings.ticket,
                            installation=self.settings.installation, width=self.paper.width,
                            numbers=self.counter.take)
        except Exception as exc:
            corpus.close()
            raise PartFault(Fault.CORPUS, f"corpus {path}: {one_line(exc)}") from None
        self.corpus, self.scanner, self.lookup = corpus, scanner, lookup
        log.info("corpus %s: %d faces, %s kernel", path, corpus.count,
                 getattr(scanner, "kernel", "?"))
        self._load_conjurer()

    def watch_corpus_check(self, report: Callable[[str], None]) -> None:
        """Pass each problem the corpus's background check finds to `report` (one line, from
        the checking thread, as soon as it is found): the service posts it to the machine as
        `CorpusCheckFailed`, so the fault shows before any visitor presses."""
        self._corpus_report = report

    def _corpus_problem(self, opening: int, problem: Exception) -> None:
        report = self._corpus_report
        if report is not None and opening == self._corpus_opening:  # not a closed corpus's
            report(f"corpus check: {one_line(problem)}")

    def _check_corpus(self) -> None:
        """Wait for the corpus's background check: a corpus still damaged stays a corpus fault
        (and is closed, so the next start reopens it) instead of turning ready, then failing."""
        if self.corpus is None:
            return
        try:
            self.corpus.check_rows(timeout=RECOVERY_CHECK_SECONDS)
        except Exception as exc:
            self._drop_corpus()
            raise PartFault(Fault.CORPUS, f"corpus check: {one_line(exc)}") from None

    def _drop_corpus(self) -> None:
        if self.corpus is not None:
            with contextlib.suppress(Exception):
                self.corpus.close()
        self.corpus = self.scanner = self.lookup = None
        self._corpus_opening += 1  # a report still on its way is about a corpus gone

    def _load_conjurer(self) -> None:
        """The generator for `ticket.conjure: after` (an optional extra: missing, it is off),
        loaded once; a reopened corpus replaces the closed one it starts its searches from."""
        if self.conjurer is not None:
            self.conjurer.corpus = self.corpus
            return
        if self.settings.ticket.conjure != "after":
            return
        try:
            from appliance.conjure.double import Conjurer
            from appliance.conjure.search import Budget

            budget = Budget(seconds=self.settings.ticket.conjure_seconds)
            self.conjurer = Conjurer(self.analyzer, self.corpus, budget=budget,
                                     weights=self.settings.generator.weights)
        except Exception as exc:
            log.warning("ticket.conjure: after is off: %s", one_line(exc))

    def _open_camera(self) -> None:
        try:
            if self.camera is None:
                self.camera = make_camera(self.settings.camera)
            self.camera.open()
        except CameraError as exc:
            raise PartFault(Fault.CAMERA, str(exc)) from None

    def _check_printer(self) -> None:
        """The printer's own diagnosis, as `sosie doctor` shows it: any problem is a fault."""
        try:
            problem = first_problem(self.printer.diagnose())
        except Exception as exc:
            problem = one_line(exc)
        if problem is not None:
            raise PartFault(Fault.PRINTER, problem)

    def probe(self, fault: Fault) -> None:
        """Recover `fault`'s part; any part still missing from start-up is opened too."""
        if fault is Fault.CAMERA and self.camera is not None:
            self.camera.close()
        elif fault is Fault.PRINTER:
            with contextlib.suppress(Exception):
                self.printer.close()
        elif fault is Fault.CORPUS:  # reopen from the files, checked before it is ready
            self._drop_corpus()
        elif fault is Fault.TICKET:  # a font file replaced, a thumbnail restored...
            try:
                check_fonts(self.settings.ticket)
            except Exception as exc:
                raise PartFault(Fault.TICKET, one_line(exc)) from None
        self.start(check_corpus=fault is Fault.CORPUS)

    # -- a visit ---------------------------------------------------------------------------------

    def capture(self) -> Frame:
        if self.camera is None:
            raise PartFault(Fault.CAMERA, "no camera")
        try:
            frame = self.camera.capture()
        except CameraError as exc:
            raise PartFault(Fault.CAMERA, str(exc)) from None
        service = self.settings.service
        if service.keep_captures and service.captures_dir is not None:
            keep_capture(frame, service.captures_dir)
        return frame

    def look_up(self, frame: Frame | Path) -> VisitResult:
        """The visit's result: the lazy ticket and matches, or why there is no face."""
        if self.lookup is None:
            raise PartFault(Fault.CORPUS, "the corpus is not open")
        return self.lookup.look_up(frame)

    def print_visit(self, result: VisitResult) -> dict[str, float]:
        """Print the visit's ticket; its bands stream to the printer as they are composed.
        `result.descriptor` stays held only when the conjured double follows (`print_double`).
        Returns the seconds of the ticket's stages (`print_stages`) for the visit's record."""
        if result.ticket is None:
            raise ValueError("a visit without a face has no ticket (print_no_face)")
        if self.conjurer is None:
            result.descriptor.drop()
        receipt = self._print(result.ticket)
        self.counter.save()
        return print_stages(result.ticket, receipt)

    def print_double(self, result: VisitResult, spent: float) -> None:
        """`ticket.conjure: after`: the visitor's conjured double on a second, short ticket,
        within the print stage's timeout (what the first ticket took, `spent` seconds, is left
        for the second). The descriptor is dropped here, whatever happens."""
        from appliance.conjure.search import Budget

        descriptor = result.descriptor.take()
        if descriptor is None or self.conjurer is None:
            return
        number = result.number
        left = self.settings.machine.print_timeout - 2 * spent - DOUBLE_MARGIN_SECONDS
        seconds = min(self.settings.ticket.conjure_seconds, left)
        if seconds < 1.0:
            log.info("no time left for the conjured double (machine.print_timeout)")
            return
        try:
            double = self.conjurer.conjure(descriptor, Budget(seconds=seconds))
            del descriptor
            if not double.found:
                return
            ticket = double.ticket(number=number, layout=self.settings.ticket,
                                   width=self.paper.width)
        except Exception as exc:  # the visitor has their ticket: never fault over the extra
            log.warning("conjured double failed: %s", one_line(exc))
            return
        self._print(ticket)

    def _print(self, ticket: Printable) -> PrintReceipt:
        try:
            self.last_receipt = self.printer.print_ticket(ticket)
            return self.last_receipt
        except TicketError:  # the ticket's own fault (a ticket fault): the printer is fine
            raise
        except Exception as exc:
            raise PartFault(Fault.PRINTER, one_line(exc)) from None

    def print_no_face(self, reason: str) -> None:
        self._print(self.no_face_ticket(reason))

    def no_face_ticket(self, reason: str) -> Image.Image:
        """The short ticket for a photo without a usable face (plain text if that fails)."""
        try:
            if self.lookup is None:
                raise RuntimeError("no lookup")
            return self.lookup.no_face_ticket(reason)
        except Exception as exc:  # never leave a visitor without an answer
            log.warning("no-face ticket layout failed (%s); printing plain text", one_line(exc))
            return simple_text_ticket(NO_FACE_TEXT, self.paper.width)

    # -- the presence trigger's look -----------------------------------------------------------

    def glance(self) -> Frame:
        """A frame for the presence trigger (only while the camera is open)."""
        if self.camera is None or not self.camera.is_open:
            raise RuntimeError("camera not open")
        return self.camera.capture()

    def faces_in(self, frame: Frame) -> list:
        """Face detections in `frame` (none before the models are loaded)."""
        return self.analyzer.detect(frame) if self.analyzer is not None else []

    # -- status and shutdown ---------------------------------------------------------------------

    def facts(self) -> dict[str, Any]:
        """What the parts say about themselves, for `sosie status` and the demo."""
        info: dict[str, Any] = {}
        if self.corpus is not None:
            info["corpus"] = str(getattr(self.corpus, "path", ""))
            info["corpus_faces"] = int(self.corpus.count)
            check_state = getattr(self.corpus, "check_state", None)
            if check_state is not None:  # the passes over every row, on a thread after start
                info["corpus_check"] = check_state()
                seconds = self.corpus.check_seconds
                info["corpus_check_seconds"] = None if seconds is None else round(seconds, 2)
        if self.scanner is not None:
            info["kernel"] = getattr(self.scanner, "kernel", None)
        if self.camera is not None:
            info["camera"] = self.camera.name
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


def make_appliance(settings: AppSettings, *, corpus_path: Path | None = None,
                   camera: Camera | None = None, printer: Printer | None = None,
                   out_dir: Path | None = None, first_number: int | None = None) -> Appliance:
    """The appliance's parts `settings` describe (for `assemble`, and `sosie ticket` alone).

    `camera`/`printer` replace the configured ones (demo, simulation, tests); `out_dir` makes
    the printer the virtual one writing there (demo, `sosie ticket`). The paper is settled
    here, once: the printer's, handed to the lookup and the ticket through the appliance.
    """
    if printer is None and out_dir is not None:
        from appliance.parts.printer import VirtualPrinter

        printer = VirtualPrinter(out_dir, settings.printer)
    elif printer is None:
        printer = make_printer(settings.printer)
    counter = FixedCounter(first_number) if first_number is not None else None
    return Appliance(settings, camera=camera, printer=printer, corpus_path=corpus_path,
                     counter=counter)


def keep_capture(frame: Frame, folder: Path) -> None:
    """The installer's opt-in (`service.keep_captures`): the photo as a JPEG in `folder`."""
    from PIL import Image

    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"capture-{datetime.now():%Y%m%d-%H%M%S-%f}.jpg"
        tmp = path.with_suffix(".part")
        # readable by the service's user only, whatever the umask (a visitor's face)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            Image.fromarray(frame).save(handle, format="JPEG", quality=92)
        os.replace(tmp, path)
    except OSError as exc:  # keeping is optional: never fail a visit over it
        log.warning("cannot keep the capture in %s: %s", folder, exc)


def make_scanner(corpus: Corpus, search: SearchSettings) -> Scanner:
    """The corpus's Scanner (its sketch first, then the float16 rows that can still rank) with
    the `search` section's threads and kernel, made without waiting for the corpus's background
    checks (each search through `Lookup` waits for them)."""
    return corpus.scanner(threads=search.threads, kernel=search.kernel, wait=False)


def open_corpus(path: Path, face_settings: FaceSettings) -> Corpus:
    """`Corpus.open` (appliance.corpus), checked against the face models in use; the passes
    over every row are left to `Corpus.check_in_background` or `warm`."""
    from appliance.corpus import Corpus

    return Corpus.open(path, face_settings=face_settings, defer_checks=True)


def print_stages(ticket: Ticket | Image.Image, receipt: PrintReceipt) -> dict[str, float]:
    """Seconds of a streamed ticket's stages, before its first byte (its first band: composed,
    then encoded) and after it (the thumbnails, the layout and dithering of the other bands,
    their encoding), from the ticket's own timings and the printer's receipt."""
    bands = list(getattr(ticket, "band_seconds", ()))
    encodes = list(getattr(receipt, "encode_seconds", ()))
    timings = getattr(ticket, "timings", {})
    if not bands or not encodes:
        return {}
    dither = timings.get("dither", 0.0)  # photos; the first band (header art) has none
    thumbnails = timings.get("thumbnails", 0.0)  # read once the header is out
    return {"first band: compose": bands[0], "first band: encode": encodes[0],
            "rest: thumbnails": thumbnails,
            "rest: layout": max(0.0, sum(bands[1:]) - dither - thumbnails),
            "rest: dither": dither, "rest: encode": sum(encodes[1:])}
