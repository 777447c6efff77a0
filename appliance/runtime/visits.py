"""The record of each visit (nothing of the visitor): its outcome, the seconds of each stage and
the matches, filled as the jobs report them; what `sosie status`, the demo and the benches read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.runtime.lookup import Match, VisitResult

log = logging.getLogger(__name__)


@dataclass
class VisitRecord:
    """One visit as `sosie status` and the demo report it (nothing of the visitor)."""

    visit: int
    outcome: str = ""
    started: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    matches: tuple[Match, ...] = ()


class VisitLog:
    """The record of the visit in progress (filled from the worker) and of the last one."""

    def __init__(self, clock: Callable[[], float],
                 on_visit: Callable[[VisitRecord], None] | None) -> None:
        self.clock = clock
        self.on_visit = on_visit
        self.current: VisitRecord | None = None
        self.last: VisitRecord | None = None

    def begin(self, visit: int) -> None:
        self.current = VisitRecord(visit, started=self.clock())

    def _of(self, visit: int) -> VisitRecord | None:
        record = self.current
        return record if record is not None and record.visit == visit else None

    def timing(self, visit: int, seconds: dict[str, float]) -> None:
        if (record := self._of(visit)) is not None:
            record.timings.update(seconds)

    def found(self, visit: int, result: VisitResult) -> None:
        if (record := self._of(visit)) is not None:
            record.matches = result.matches

    def end(self, visit: int, outcome: str) -> None:
        record, self.current = self._of(visit), None
        if record is None:
            return
        record.outcome = outcome
        record.timings["total"] = self.clock() - record.started
        self.last = record
        log.info("visit %d: %s in %.0f ms", visit, outcome, 1000 * record.timings["total"])
        if self.on_visit is not None:
            self.on_visit(record)
