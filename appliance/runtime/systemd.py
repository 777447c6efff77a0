"""systemd service notifications (sd_notify) without a dependency.

`notify("READY=1")` sends a datagram to `$NOTIFY_SOCKET` (a path, or an abstract socket written
`@name`); outside systemd it does nothing. With `WatchdogSec=` in the unit, systemd sets
`$WATCHDOG_USEC` (and `$WATCHDOG_PID`); `watchdog_interval()` says how often to send
`WATCHDOG=1` (half the timeout, as sd_watchdog_enabled(3) recommends).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

SEND_SECONDS = 0.5  # a notification not taken by then is dropped (logged)


def notify(*lines: str) -> bool:
    """Send `lines` (e.g. "READY=1", "STATUS=...") to systemd; False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        log.debug("ignoring NOTIFY_SOCKET=%r (unsupported address)", address)
        return False
    message = "\n".join(lines).encode("utf-8", "replace")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(SEND_SECONDS)  # a full queue must never freeze the service loop
            sock.connect(address)
            sock.sendall(message)
    except OSError as exc:
        log.debug("sd_notify failed: %s", exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings, or None when systemd's watchdog is off for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.strip().isdigit() and int(pid) != os.getpid():
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 / 2 if value > 0 else None


def ready(status: str = "") -> bool:
    return notify("READY=1", *([f"STATUS={status}"] if status else []))


def status(text: str) -> bool:
    return notify(f"STATUS={text}")


def watchdog() -> bool:
    return notify("WATCHDOG=1")


def stopping() -> bool:
    return notify("STOPPING=1")


class Watchdog:
    """systemd's watchdog, fed only while every health check passes (None: healthy).

    The service registers its worker (not stuck on a device) and its control socket
    (accepting); a failing check stops the pings, and systemd restarts the service.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.interval = watchdog_interval()
        self.next_ping = clock()
        self.checks: list[Callable[[], str | None]] = []

    def watch(self, check: Callable[[], str | None]) -> None:
        self.checks.append(check)

    def problem(self) -> str | None:
        """The first failing check's reason, or None."""
        for check in self.checks:
            try:
                problem = check()
            except Exception as exc:
                problem = f"health check failed: {exc!r}"
            if problem is not None:
                return problem
        return None

    def next_deadline(self) -> float | None:
        return self.next_ping if self.interval is not None else None

    def tick(self) -> None:
        """Ping if a ping is due and every check passes."""
        if self.interval is None or self.clock() < self.next_ping:
            return
        problem = self.problem()
        if problem is None:
            watchdog()
        else:
            log.error("%s: letting the watchdog restart the service", problem)
        self.next_ping = self.clock() + self.interval
