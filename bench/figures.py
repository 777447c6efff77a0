"""What every benchmark shares: medians in milliseconds, and its figures written as JSON."""

from __future__ import annotations

import json
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
