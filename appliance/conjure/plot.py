"""The distance curve of a conjuring, drawn with Pillow: distance against evaluations.

Grey dots are the evaluations (draws without a face are left out), the black line the best
distance so far, and a dashed line the nearest corpus face's distance when there is a corpus.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from PIL import Image, ImageDraw

from appliance.fonts import font

WIDTH, HEIGHT = 800, 480
MARGIN = (70, 30, 20, 55)  # left, top, right, bottom
INK, GREY, ACCENT = (20, 20, 20), (175, 175, 175), (200, 40, 40)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values covering [low, high] (steps of 1, 2 or 5 times 10^k)."""
    span = max(high - low, 1e-9)
    raw = span / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def distance_curve(history: np.ndarray, corpus_distance: float | None = None,
                   no_face: float = math.inf, title: str = "") -> Image.Image:
    """An RGB plot of a search's distances (`history`, one per evaluation, in order)."""
    history = np.asarray(history, np.float64)
    found = history < no_face
    best = np.minimum.accumulate(history) if len(history) else history
    values = [*history[found].tolist()]
    if corpus_distance is not None and math.isfinite(corpus_distance):
        values.append(corpus_distance)
    low = min(values) if values else 0.0
    high = max(values) if values else 1.0
    pad = max(0.02, 0.05 * (high - low))
    low, high = max(0.0, low - pad), high + pad
    count = max(1, len(history))

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = MARGIN[0], MARGIN[1], WIDTH - MARGIN[2], HEIGHT - MARGIN[3]
    small, label = font("text", 13), font("text", 15)

    def x_at(evaluation: float) -> float:
        return left + (right - left) * evaluation / count

    def y_at(distance: float) -> float:
        return bottom - (bottom - top) * (distance - low) / (high - low)

    for tick in nice_ticks(low, high):
        y = y_at(tick)
        draw.line([(left - 5, y), (right, y)], fill=(235, 235, 235))
        draw.text((left - 8, y), f"{tick:.2f}", fill=INK, font=small, anchor="rm")
    for tick in nice_ticks(0, count):
        x = x_at(tick)
        draw.line([(x, bottom), (x, bottom + 5)], fill=INK)
        draw.text((x, bottom + 8), f"{tick:g}", fill=INK, font=small, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=INK)
    for i in np.flatnonzero(found):
        x, y = x_at(i + 1), y_at(history[i])
        draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=GREY)
    steps = [(x_at(i + 1), y_at(d)) for i, d in enumerate(best) if d < no_face]
    if len(steps) > 1:
        path = [steps[0]]
        for (_, y0), (x1, y1) in itertools.pairwise(steps):
            path += [(x1, y0), (x1, y1)] if y1 != y0 else [(x1, y1)]
        draw.line(path, fill=INK, width=2)
    if corpus_distance is not None and math.isfinite(corpus_distance):
        y = y_at(corpus_distance)
        for x in range(left, right, 12):
            draw.line([(x, y), (min(x + 6, right), y)], fill=ACCENT, width=2)
        draw.text((right - 4, y - 3), f"nearest corpus face {corpus_distance:.3f}", fill=ACCENT,
                  font=small, anchor="rb")
    if len(best) and best[-1] < no_face:
        draw.text((right - 4, top + 4), f"conjured {best[-1]:.3f}", fill=INK, font=label,
                  anchor="rt")
    draw.text((left, top - 6), title or "distance to the photo (lower is closer)", fill=INK,
              font=label, anchor="ls")
    draw.text(((left + right) / 2, HEIGHT - 6), "evaluations", fill=INK, font=label, anchor="ms")
    return image
