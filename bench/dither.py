"""Dithering speed: ms per 576x576 photo, our kernels vs Pillow's convert('1') in the same run.

    .venv/bin/python bench/dither.py [--size 576] [--repeat 31] [--json out.json]

Anchor: Pillow `Image.convert("1")` (Floyd-Steinberg in C). Prints medians and the ratio to it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from figures import write_json
from PIL import Image

from appliance.ticket.dither import Tone, dither, prepare


def photo_like(size: int, seed: int = 0) -> np.ndarray:
    """A face-sized test image: smooth gradients, an ellipse and noise (not flat, not random)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    face = ((x - 0.5) ** 2 / 0.09 + (y - 0.45) ** 2 / 0.16) < 1
    img = 60 + 120 * x + 40 * np.sin(9 * y) + 50 * face + rng.normal(0, 12, (size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


def median_ms(cases: dict, repeat: int) -> dict[str, float]:
    """Median ms per case; the cases take turns (rotating order) so load bursts hit all alike."""
    names = list(cases)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:
        cases[name]()  # warm up
    for r in range(repeat):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t0 = time.perf_counter()
            cases[name]()
            times[name].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=576, help="image side in dots")
    parser.add_argument("--repeat", type=int, default=51, help="timed runs per method")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    gray = photo_like(args.size)
    pil = Image.fromarray(gray)
    cases = {
        "pillow convert('1') (FS)": lambda: pil.convert("1"),
        "floyd-steinberg": lambda: dither(gray, "floyd-steinberg", serpentine=False),
        "floyd-steinberg serpentine": lambda: dither(gray, "floyd-steinberg", serpentine=True),
        "atkinson": lambda: dither(gray, "atkinson", serpentine=False),
        "atkinson serpentine": lambda: dither(gray, "atkinson", serpentine=True),
        "bayer 8x8": lambda: dither(gray, "bayer", bayer_size=8),
        "bayer 4x4": lambda: dither(gray, "bayer", bayer_size=4),
        "tone prepare (levels, gamma, unsharp)": lambda: prepare(gray, Tone()),
    }
    results = median_ms(cases, args.repeat)
    anchor = results["pillow convert('1') (FS)"]

    print(f"dithering {args.size}x{args.size} uint8 -> 1 bit, median of {args.repeat} "
          "interleaved runs")
    print(f"| {'method':<38} | {'ms':>7} | {'vs Pillow FS':>12} |")
    print(f"|{'-' * 40}|{'-' * 9}|{'-' * 14}|")
    for name, ms in results.items():
        print(f"| {name:<38} | {ms:7.3f} | {ms / anchor:11.2f}x |")
    if args.json:
        write_json(args.json, {"size": args.size, "repeat": args.repeat, "median_ms": results,
                               "anchor": "pillow convert('1') (FS)"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
