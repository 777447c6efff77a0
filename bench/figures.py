"""What every benchmark shares: medians in milliseconds, the CPU's name, and its figures
written as JSON."""

from __future__ import annotations

import json
import platform
import statistics
from pathlib import Path
from typing import Any


def median_ms(seconds: list[float]) -> float:
    """The median of `seconds`, in milliseconds (NaN when nothing was measured)."""
    return 1000 * statistics.median(seconds) if seconds else float("nan")


def write_json(path: str | Path, figures: Any) -> None:
    """Write `figures` to `path` (`--json PATH`), creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), for the tables: machines differ 2-4x."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
