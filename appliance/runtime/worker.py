"""The worker thread: slow device work (start-up, capture, search, print, recovery), one job at
a time, each with a time limit past which it counts as stuck (and the watchdog stops)."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Job = Callable[[], None]


class Worker:
    """Runs submitted jobs in order on one daemon thread."""

    def __init__(self, clock: Callable[[], float], name: str = "sosie-worker") -> None:
        self.clock = clock
        self._jobs: queue.Queue[tuple[Job, float] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._started_at: float | None = None  # of the job in progress
        self._limit = 0.0

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job, limit: float) -> None:
        """Queue `job`; it is stuck once it has run for `limit` seconds."""
        self._jobs.put((job, limit))

    def problem(self) -> str | None:
        """Why the worker is not healthy (a job past its limit), or None."""
        started = self._started_at
        if started is None or self.clock() - started < self._limit:
            return None
        return f"a device has been busy for over {self._limit:.0f} s"

    def stop(self, timeout: float) -> bool:
        """Drop jobs not yet begun, let the one in progress finish; False if it did not."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._jobs.get_nowait()
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, self._limit = item
            del item
            self._started_at = self.clock()
            try:
                job()
            except Exception:  # jobs post their own failures; this is a last resort
                log.exception("worker job failed")
            finally:
                self._started_at = None
                del job  # a job's closure may hold the visitor's photo
