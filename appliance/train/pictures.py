"""What a training run shows: a grid of faces and the loss curves, as small PNG files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from appliance.files import atomic_write_bytes

CURVE_SIZE = (640, 280)
MARGIN = 36
COLOURS = {"discriminator": (200, 40, 40), "generator": (30, 90, 200)}
SMOOTHING = 10  # steps in the running mean drawn over each curve


def grid(faces: np.ndarray, columns: int = 8) -> Image.Image:
    """(n, h, w, 3) uint8 faces in rows of `columns`, 2-pixel white gutters."""
    n, h, w, _ = faces.shape
    rows = -(-n // columns)
    canvas = Image.new("RGB", (columns * (w + 2) + 2, rows * (h + 2) + 2), "white")
    for i, face in enumerate(faces):
        corner = (2 + (i % columns) * (w + 2), 2 + (i // columns) * (h + 2))
        canvas.paste(Image.fromarray(face), corner)
    return canvas


def loss_curves(losses: np.ndarray, first_step: int = 1) -> Image.Image:
    """The discriminator's and the generator's loss per step (faint) and their running mean."""
    width, height = CURVE_SIZE
    image = Image.new("RGB", CURVE_SIZE, "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = MARGIN, 12, width - 12, height - MARGIN
    draw.rectangle((left, top, right, bottom), outline=(120, 120, 120))
    steps = len(losses)
    finite = losses[np.isfinite(losses)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high - low < 1e-6:
        low, high = low - 0.5, high + 0.5

    def point(i: int, value: float) -> tuple[float, float]:
        x = left + (right - left) * (i / max(steps - 1, 1))
        y = bottom - (bottom - top) * ((value - low) / (high - low))
        return x, y

    for column, (label, colour) in enumerate(COLOURS.items()):
        values = losses[:, column]
        faint = tuple(255 - (255 - c) // 3 for c in colour)
        if steps > 1:
            draw.line([point(i, v) for i, v in enumerate(values)], fill=faint, width=1)
            kernel = np.ones(min(SMOOTHING, steps)) / min(SMOOTHING, steps)
            smooth = np.convolve(values, kernel, mode="valid")
            offset = steps - len(smooth)
            draw.line([point(i + offset, v) for i, v in enumerate(smooth)], fill=colour, width=2)
        draw.text((left + 8 + 150 * column, top + 4), f"{label} loss", fill=colour)
    draw.text((4, top), f"{high:.2f}", fill=(0, 0, 0))
    draw.text((4, bottom - 10), f"{low:.2f}", fill=(0, 0, 0))
    draw.text((left, bottom + 6), f"step {first_step}", fill=(0, 0, 0))
    last = f"step {first_step + steps - 1}"
    draw.text((right - 7 * len(last), bottom + 6), last, fill=(0, 0, 0))
    return image


def save_png(image: Image.Image, path: Path) -> None:
    """Write `image` as PNG atomically."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    atomic_write_bytes(path, buffer.getvalue())
