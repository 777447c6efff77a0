"""Connection calls with deadlines, so a printer that stops answering cannot block us."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from appliance.parts.printer.faults import PrinterTimeout


def call_with_deadline(fn: Callable[[], Any], timeout: float, what: str) -> Any:
    """Run `fn` in a daemon thread; its result, its exception, or PrinterTimeout after `timeout`."""
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=call, name=f"printer: {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise PrinterTimeout(f"printer did not answer ({what}) within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")
