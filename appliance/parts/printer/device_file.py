"""The `file` printer backend's device: a character device (usblp) or a FIFO, never a file
it would destroy by mistake.

A typo in `printer.file.device` (or a hostile config run as root) must not overwrite a regular
file: it is refused unless the installer sets `printer.file.allow_regular_file`, and then
tickets are appended to it, never truncated. Nothing is created, truncated or followed past a
dangling link; `inspect` only looks (for `sosie doctor`).
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import BinaryIO

from appliance.parts.diagnosis import Finding, ok, problem
from appliance.parts.printer.settings import FileSettings

ALLOW_KEY = "printer.file.allow_regular_file"


class DeviceRefused(OSError):
    """The configured path is not something the file backend may write to (one line)."""


def _refusal(path: str, mode: int) -> str | None:
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return None
    kind = "a regular file" if stat.S_ISREG(mode) else "not a device"
    return (f"printer device {path} is {kind}, not a printer (a character device such as "
            f"/dev/usb/lp0, or a FIFO); set {ALLOW_KEY}: true to append tickets to a file")


def open_device(settings: FileSettings) -> BinaryIO:
    """Open the device for writing, checked on the opened descriptor (no race with a rename)."""
    path = settings.device
    flags = os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO without reader
    if settings.allow_regular_file:
        flags |= os.O_APPEND | os.O_CREAT
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such device {path} (printer unplugged?)") from None
    try:
        mode = os.fstat(fd).st_mode
        refusal = None if settings.allow_regular_file and stat.S_ISREG(mode) else _refusal(path,
                                                                                           mode)
        if refusal:
            raise DeviceRefused(refusal)
        os.set_blocking(fd, True)  # writes wait for the printer (under our own deadline)
        return os.fdopen(fd, "wb", buffering=0)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise


def inspect(settings: FileSettings) -> Finding:
    """Whether the device could be printed to, from its metadata alone (nothing is opened)."""
    path = settings.device
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if settings.allow_regular_file:
            return ok(f"printer file {path} will be created")
        return problem(f"no such device {path} (printer unplugged or switched off?)")
    except OSError as exc:
        return problem(f"printer device {path}: {exc.strerror or exc}")
    allowed = settings.allow_regular_file and stat.S_ISREG(mode)
    refusal = None if allowed else _refusal(path, mode)
    if refusal:
        return problem(refusal)
    if not os.access(path, os.W_OK):
        return problem(f"printer device {path} is not writable by this user (add it to the lp "
                       "group)")
    kind = "file (tickets appended)" if allowed else (
        "FIFO" if stat.S_ISFIFO(mode) else "character device")
    return ok(f"printer device {path}: writable {kind}")
