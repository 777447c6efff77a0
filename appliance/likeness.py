"""How alike two faces look, as a percentage derived from dlib descriptor distance.

dlib's own rule of thumb: two descriptors closer than 0.6 are probably the same person. The
likeness is a logistic curve centred there: 0.6 -> 50 %, 0.4 -> ~92 %, 0.8 -> ~8 %, 0 -> ~100 %.
"""

from __future__ import annotations

import math

SAME_PERSON_DISTANCE = 0.6
LIKENESS_SLOPE = 0.08  # distance units per e-fold of the logistic curve


def likeness(distance: float) -> float:
    """Percentage in [0, 100] for a Euclidean descriptor distance (>= 0)."""
    if not math.isfinite(distance) or distance < 0:
        raise ValueError(f"distance must be a finite number >= 0, got {distance!r}")
    z = (distance - SAME_PERSON_DISTANCE) / LIKENESS_SLOPE
    if z > 700:
        return 0.0
    return 100.0 / (1.0 + math.exp(z))
