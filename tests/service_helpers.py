"""Running a `Service` in a test: on its own thread, shut down and joined whatever happens."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def running(service: Any, join_seconds: float = 30) -> Iterator[Any]:
    """`service` running on a thread for the `with` block; after it, shut down and its thread
    asserted ended (a service that hangs on shutdown fails the test)."""
    thread = threading.Thread(target=service.run, kwargs={"install_signals": False})
    thread.start()
    try:
        yield service
    finally:
        service.shutdown()
        thread.join(join_seconds)
    assert not thread.is_alive()


def next_press_prints(service: Any, controls: Any, tickets: int = 1) -> bool:
    """Press the button; whether the service then has printed `tickets` tickets in all."""
    controls.press("test")
    return service.wait_for(lambda s: s.machine.counters.tickets_printed == tickets, 120)
