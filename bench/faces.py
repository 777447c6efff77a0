"""Time each stage of the face pipeline at 640x480 and at a 12 MP camera frame.

    .venv/bin/python bench/faces.py [--repeat 7] [--json PATH]

Stages (medians over --repeat runs): decode (JPEG q90 bytes -> RGB at full size), downscale (to
the detector's copy), detect (dlib HOG), landmarks (5 points on full-resolution pixels), chip
(dlib's aligned 150 px chip), descriptor (ResNet, no BLAS in dlib-bin), and the whole
`FaceAnalyzer.analyze` call. Also "decode to <=640": JPEG DCT scaling (1/2, 1/4 or 1/8) then
area resampling via `load_image(max_side=640)`, the cheapest way to a detector-sized copy when
the full-size pixels are not needed.

Anchors, measured in the same run: dlib's HOG detector run directly on the full-resolution frame
(upsample 0), and at 640x480 with upsample 1 (face_recognition's default), which is what a
pipeline without a downscaled detection copy pays.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.faces import Face, FaceAnalyzer, FaceSettings
from appliance.images import load_image

SIZES = {"640x480": (640, 480), "12MP": (4056, 3040)}
STAGES = ("decode", "downscale", "detect", "landmarks", "chip", "descriptor")


def frame(size: tuple[int, int]) -> np.ndarray:
    """skimage's astronaut portrait scaled to the frame height, centred on mid-gray."""
    from skimage import data

    width, height = size
    photo = Image.fromarray(data.astronaut())
    side = height
    scaled = np.asarray(photo.resize((side, side), Image.Resampling.BICUBIC))
    out = np.full((height, width, 3), 128, np.uint8)
    x0 = (width - side) // 2
    out[:, x0:x0 + side] = scaled
    return out


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(size: tuple[int, int], repeat: int, analyzer: FaceAnalyzer) -> dict[str, float]:
    rgb = frame(size)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    jpeg = buf.getvalue()
    out = {"decode": median_ms(lambda: load_image(jpeg), repeat)}
    stage_times: dict[str, list[float]] = {s: [] for s in STAGES[1:]}
    totals = []
    for _ in range(repeat):
        start = time.perf_counter()
        face = analyzer.analyze(rgb)
        totals.append(time.perf_counter() - start)
        if not isinstance(face, Face):
            raise SystemExit(f"bench: no face found in the {size[0]}x{size[1]} frame: {face}")
        for stage in stage_times:
            stage_times[stage].append(face.timings[stage])
    out.update({s: statistics.median(v) * 1000 for s, v in stage_times.items()})
    out["analyze"] = statistics.median(totals) * 1000
    out["decode_640"] = median_ms(lambda: load_image(jpeg, max_side=640), repeat)
    return out


def anchors(repeat: int) -> dict[str, float]:
    import dlib

    detector = dlib.get_frontal_face_detector()
    small, big = frame(SIZES["640x480"]), frame(SIZES["12MP"])
    return {
        "hog_640x480_up0": median_ms(lambda: detector.run(small, 0, 0.0), repeat),
        "hog_640x480_up1": median_ms(lambda: detector.run(small, 1, 0.0), repeat),
        "hog_12MP_up0": median_ms(lambda: detector.run(big, 0, 0.0), max(3, repeat // 2)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (median)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    import dlib

    analyzer = FaceAnalyzer(FaceSettings())
    analyzer.analyze(frame(SIZES["640x480"]))  # warm up: models loaded, caches hot
    results = {name: measure(size, args.repeat, analyzer) for name, size in SIZES.items()}
    anchor = anchors(args.repeat)

    print(f"face pipeline, median ms of {args.repeat} runs "
          f"(dlib {dlib.__version__}, BLAS {dlib.DLIB_USE_BLAS}, {platform.machine()})")
    print(f"{'stage':<22}{'640x480':>10}{'12MP':>10}")
    for stage in (*STAGES, "analyze", "decode_640"):
        label = {"analyze": "analyze() total", "decode_640": "decode to <=640 (DCT)"}.get(
            stage, stage)
        print(f"{label:<22}{results['640x480'][stage]:>10.1f}{results['12MP'][stage]:>10.1f}")
    print()
    ours_small = results["640x480"]["downscale"] + results["640x480"]["detect"]
    ours_big = results["12MP"]["downscale"] + results["12MP"]["detect"]
    print(f"{'anchor':<40}{'ms':>9}{'ours (downscale+detect)':>26}")
    rows = [
        ("dlib HOG 640x480, upsample 0", anchor["hog_640x480_up0"], ours_small),
        ("dlib HOG 640x480, upsample 1 (f_r)", anchor["hog_640x480_up1"], ours_small),
        ("dlib HOG 12 MP full res, upsample 0", anchor["hog_12MP_up0"], ours_big),
    ]
    for label, ms, ours in rows:
        print(f"{label:<40}{ms:>9.1f}{f'{ours:.1f} ms = {ours / ms:.2f}x':>26}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "repeat": args.repeat,
            "dlib": dlib.__version__,
            "blas": bool(dlib.DLIB_USE_BLAS),
            "machine": platform.machine(),
            "median_ms": results,
            "anchors_ms": anchor,
        }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
