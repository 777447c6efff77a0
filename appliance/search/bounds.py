"""The certificate's arithmetic: what a float32 scan value says about a row's true distance."""

from __future__ import annotations

import math


def lower_bound(value: float, rel: float, absolute: float, delta: float) -> float:
    """Least true squared distance of a row whose float32 value is at least `value`."""
    if not math.isfinite(value):
        return 0.0  # overflowed values say nothing useful: take the slow path
    s = max(0.0, (value - absolute) / (1.0 + rel))
    return max(0.0, math.sqrt(s) - delta) ** 2


def upper_bound(exact: float, rel: float, absolute: float, delta: float) -> float:
    """Greatest float32 value of a row whose true squared distance is at most `exact`."""
    return (math.sqrt(exact) + delta) ** 2 * (1.0 + rel) + absolute
