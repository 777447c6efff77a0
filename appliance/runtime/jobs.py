"""The device work of a visit, as the worker runs it: call the parts, post what happened.

Each job calls one method of the `Parts` (the appliance's camera, models, corpus, ticket and
printer) and posts the machine event that says how it went: `Captured` or `CaptureFailed`,
`Found` / `NoFace` or `SearchFailed`, (`Conjuring`, then) `Printed` or `PrintFailed`, ...;
and what the corpus's background check finds, whenever it does (`CorpusCheckFailed`).
Every failure event names the part at fault: the `PartFault` each part raises at its own
boundary (`appliance.faults`), else the stage's own part (capture: camera, search: corpus,
print: printer), in one line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from appliance.errors import one_line
from appliance.faults import Fault, PartFault
from appliance.parts.camera import Frame
from appliance.runtime.events import (
    Captured,
    CaptureFailed,
    Conjuring,
    CorpusCheckFailed,
    Event,
    Found,
    NoFace,
    Printed,
    PrintFailed,
    ProbeFailed,
    ProbeOk,
    SearchFailed,
    Started,
    StartFailed,
)
from appliance.runtime.lookup import VisitResult

log = logging.getLogger(__name__)


class Parts(Protocol):
    """The devices behind the machine (`appliance.runtime.appliance.Appliance`, or a test's).

    Methods raise PartFault naming the part (any other exception: the stage's own part).
    """

    def start(self) -> None: ...  # load models, open + warm the corpus, open camera and printer
    def capture(self) -> Frame: ...
    def look_up(self, frame: Frame) -> VisitResult: ...
    # print_visit returns the ticket's stage seconds; it keeps result.descriptor held if a
    # double follows (print_double)
    def print_visit(self, result: VisitResult) -> dict[str, float] | None: ...
    def print_double(self, result: VisitResult, spent: float) -> None: ...
    def print_no_face(self, reason: str) -> None: ...
    def probe(self, fault: Fault) -> None: ...  # recover the part or raise
    # optional: each problem the corpus's background check finds, to `report` (any thread)
    def watch_corpus_check(self, report: Callable[[str], None]) -> None: ...
    def facts(self) -> dict[str, Any]: ...  # what the parts say about themselves (status)
    def close(self) -> None: ...


def reason(exc: BaseException) -> str:
    return exc.reason if isinstance(exc, PartFault) else one_line(exc)


def part(exc: BaseException, stage_part: Fault) -> Fault:
    """The part `exc` names, else the stage's own part."""
    return exc.fault if isinstance(exc, PartFault) else stage_part


class DeviceJobs:
    """The jobs the service submits to its worker; each posts one event back."""

    def __init__(self, parts: Parts, post: Callable[[Event], None],
                 clock: Callable[[], float],
                 timing: Callable[[int, dict[str, float]], None],
                 found: Callable[[int, VisitResult], None]) -> None:
        self.parts = parts
        self.post = post
        self.clock = clock
        self.timing = timing  # (visit, {stage: seconds}) for the visit's record
        self.found = found  # (visit, result): the visit's record keeps the matches
        watch = getattr(parts, "watch_corpus_check", None)
        if watch is not None:  # the corpus found bad after start-up: a fault before any press
            watch(lambda why: post(CorpusCheckFailed(why)))

    def start(self) -> None:
        try:
            self.parts.start()
        except PartFault as exc:
            self.post(StartFailed(exc.fault, exc.reason))
            return
        except Exception as exc:  # a Parts that did not name the part: its first, logged
            log.exception("start-up failed without naming the part; reporting the models")
            self.post(StartFailed(Fault.MODELS, one_line(exc)))
            return
        self.post(Started())

    def capture(self, visit: int) -> None:
        start = self.clock()
        try:
            frame = self.parts.capture()
        except Exception as exc:
            self.post(CaptureFailed(visit, reason(exc), part(exc, Fault.CAMERA)))
            return
        self.timing(visit, {"capture": self.clock() - start})
        self.post(Captured(visit, frame))

    def search(self, visit: int, frame: Frame) -> None:
        try:
            result = self.parts.look_up(frame)
        except Exception as exc:
            if not isinstance(exc, PartFault):
                log.exception("search failed")
            self.post(SearchFailed(visit, reason(exc), part(exc, Fault.CORPUS)))
            return
        finally:
            del frame
        self.timing(visit, result.timings)
        self.found(visit, result)
        if result.no_face is not None:
            self.post(NoFace(visit, result.no_face))
        else:
            self.post(Found(visit, result))

    def print_visit(self, visit: int, result: VisitResult) -> None:
        """The visit's ticket, then (`ticket.conjure: after`: the descriptor is still held)
        its conjured double, announced to the machine (`Conjuring`) so the LED says so. The
        ticket's stage seconds go to the visit's record with the print's."""
        start = self.clock()
        stages: dict[str, float] = {}

        def print_ticket() -> None:
            stages.update(self.parts.print_visit(result) or {})

        try:
            if not self._attempt(visit, print_ticket):
                return
            if result.descriptor:
                self.post(Conjuring(visit))
                if not self._attempt(
                        visit, lambda: self.parts.print_double(result, self.clock() - start)):
                    return
        finally:
            result.descriptor.drop()  # the visitor's descriptor never outlives the print job
        self.timing(visit, {**stages, "print": self.clock() - start})
        self.post(Printed(visit))

    def print_no_face(self, visit: int, why: str) -> None:
        start = self.clock()
        if self._attempt(visit, lambda: self.parts.print_no_face(why)):
            self.timing(visit, {"print": self.clock() - start})
            self.post(Printed(visit))

    def _attempt(self, visit: int, do: Callable[[], None]) -> bool:
        """Run one printing step; on failure post `PrintFailed` and return False."""
        try:
            do()
        except PartFault as exc:
            self.post(PrintFailed(visit, exc.reason, exc.fault))
            return False
        except Exception as exc:
            self.post(PrintFailed(visit, one_line(exc)))
            return False
        return True

    def probe(self, fault: Fault) -> None:
        try:
            self.parts.probe(fault)
        except PartFault as exc:
            self.post(ProbeFailed(exc.fault, exc.reason))
            return
        except Exception as exc:
            self.post(ProbeFailed(fault, one_line(exc)))
            return
        self.post(ProbeOk(fault))
