"""The visit counter: the one owner of ticket numbers, kept across restarts."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from appliance.files import atomic_write_bytes

log = logging.getLogger(__name__)


def ticket_counter_file() -> Path:
    """Where the next ticket number is kept across restarts (not visitor data)."""
    from appliance.paths import cache_dir

    return cache_dir() / "ticket-number"


class TicketCounter:
    """The visit counter, the one owner of ticket numbers (the lookup takes them from here).
    They continue after a restart: the next number, in a one-line file, saved after each
    printed ticket (a number taken by a visit whose ticket failed is given again after a
    restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._next: int | None = None

    def next(self) -> int:
        """The number the next ticket gets."""
        if self._next is None:
            self._next = self._read()
        return self._next

    def take(self) -> int:
        """The next ticket's number; the one after it is next."""
        number = self.next()
        self._next = number + 1
        return number

    def _read(self) -> int:
        try:
            value = int(self.path.read_text().strip())
        except (OSError, ValueError):
            return 1
        return max(1, value)

    def save(self, next_number: int | None = None) -> None:
        """Keep the next number (`next_number` if given) across restarts."""
        if next_number is not None:
            self._next = int(next_number)
        try:
            atomic_write_bytes(self.path, f"{self.next()}\n".encode())
        except OSError as exc:  # a read-only card must not stop the printing
            log.debug("cannot save the ticket number: %s", exc)


class FixedCounter(TicketCounter):
    """Numbers from `first`, never saved (`sosie ticket --number N`)."""

    def __init__(self, first: int) -> None:
        super().__init__(Path(os.devnull))
        self._next = first

    def save(self, next_number: int | None = None) -> None:
        if next_number is not None:
            self._next = int(next_number)
