"""Is the system clock right? A Pi without a real-time clock or network boots at a stale time.

The kernel knows: NTP (systemd-timesyncd, chrony, ntpd) clears `STA_UNSYNC` in the kernel's
clock status once the time is disciplined, which is what `timedatectl`'s NTPSynchronized reads.
We ask `adjtimex(2)` in read-only mode (no privileges needed, microseconds), fall back to
systemd-timesyncd's `/run/systemd/timesync/synchronized` flag, and remember the answer for a
minute. Where neither can be asked (not Linux), the clock is trusted::

    >>> synchronized_now()              # datetime.now(), or None while the clock is unsynchronised
    >>> ticket_time("auto")             # the date a ticket prints under `ticket.date`
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Literal

TIME_ERROR = 5  # adjtimex return value: the clock is not synchronised
STA_UNSYNC = 0x0040  # status bit: the clock is not synchronised
TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
CACHE_SECONDS = 60.0

DatePolicy = Literal["auto", "always", "never"]


class _Timex(ctypes.Structure):
    """`struct timex` (linux/timex.h) up to `status`, the field read here; padded generously."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),  # the kernel writes the remaining fields here
    ]


def synced_from_adjtimex(state: int, status: int) -> bool:
    """Whether an `adjtimex` reply (its return value and `status` bits) means synchronised."""
    return state >= 0 and state != TIME_ERROR and not status & STA_UNSYNC


@cache
def _adjtimex() -> Callable[..., int] | None:
    try:
        # the C library already loaded in this process: find_library would fork ldconfig
        return ctypes.CDLL(None).adjtimex
    except (OSError, AttributeError):
        return None


def kernel_synchronized() -> bool | None:
    """The kernel's view via `adjtimex(2)` (modes = 0: read only); None if it cannot be asked."""
    adjtimex = _adjtimex()
    if adjtimex is None:
        return None
    timex = _Timex()
    state = adjtimex(ctypes.byref(timex))
    if state < 0:
        return None
    return synced_from_adjtimex(state, timex.status)


def timesyncd_synchronized(flag: Path = TIMESYNCD_FLAG) -> bool | None:
    """systemd-timesyncd's flag file; None where timesyncd does not run."""
    if flag.exists():
        return True
    return False if flag.parent.is_dir() else None


def clock_synchronized() -> bool:
    """The kernel's answer, else timesyncd's; True when nothing can tell (trust the clock)."""
    for probe in (kernel_synchronized, timesyncd_synchronized):
        answer = probe()
        if answer is not None:
            return answer
    return True


class SyncCheck:
    """`probe()` remembered for `ttl` seconds (thread-safe)."""

    def __init__(self, probe: Callable[[], bool] = clock_synchronized, *,
                 ttl: float = CACHE_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.probe = probe
        self.ttl = ttl
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._answer: tuple[float, bool] | None = None

    def __call__(self) -> bool:
        now = self.monotonic()
        with self._lock:
            if self._answer is None or now - self._answer[0] >= self.ttl:
                self._answer = (now, bool(self.probe()))
            return self._answer[1]


synchronized = SyncCheck()


def synchronized_now(check: Callable[[], bool] | None = None) -> datetime | None:
    """The local time, or None while the system clock is not known to be right.

    `check` defaults to the module's `synchronized` (probed at most once a minute).
    """
    return datetime.now() if (check or synchronized)() else None


def ticket_time(policy: DatePolicy, check: Callable[[], bool] | None = None
                ) -> datetime | None:
    """The date and time a ticket prints under `ticket.date` (None: print none)."""
    if policy == "never":
        return None
    if policy == "always":
        return datetime.now()
    return synchronized_now(check)
