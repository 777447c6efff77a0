"""The state machine's timers: deadlines in a heap, fired as `TimerExpired` events.

Cancelling is the machine's business (it ignores a timer whose token is no longer current), so
a timer here is only ever started and, when due, handed back.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from appliance.runtime.events import (
    TimerExpired,
)


class Timers:
    """Pending timers against `clock`; `due()` pops the expired ones, earliest first."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, str]] = []  # (deadline, token, name)

    def start(self, name: str, seconds: float, token: int) -> None:
        heapq.heappush(self._heap, (self.clock() + seconds, token, name))

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def due(self) -> list[TimerExpired]:
        now = self.clock()
        expired = []
        while self._heap and self._heap[0][0] <= now:
            _, token, name = heapq.heappop(self._heap)
            expired.append(TimerExpired(name, token))
        return expired
