"""What a part says about itself when asked `diagnose()`: findings in plain words.

`sosie doctor` lists every part's findings; the service's start-up and recovery refuse a part
whose findings hold a problem. A diagnosis only looks: it never writes to a file or a device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["ok", "note", "problem"]


@dataclass(frozen=True)
class Finding:
    level: Level
    message: str  # one line, naming the device and what to do


def ok(message: str) -> Finding:
    return Finding("ok", message)


def note(message: str) -> Finding:
    return Finding("note", message)


def problem(message: str) -> Finding:
    return Finding("problem", message)


def first_problem(findings: list[Finding]) -> str | None:
    """The first problem's message, or None when there is none."""
    return next((f.message for f in findings if f.level == "problem"), None)
