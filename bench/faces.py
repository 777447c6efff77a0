"""Time each stage of the face pipeline at 640x480 (face far / at arm's length) and at 12 MP.

    .venv/bin/python bench/faces.py [--repeat 7] [--json PATH]

Stages (medians over --repeat runs): decode (JPEG q90 bytes -> RGB at full size), downscale (to
the detector's copy), detect (dlib HOG), landmarks (5 points on full-resolution pixels), chip
(dlib's aligned 150 px chip), descriptor (dlib's ResNet run by `faces.descriptor_engine`), and the
whole
`FaceAnalyzer.analyze` call. Also "decode to <=640": JPEG DCT scaling (1/2, 1/4 or 1/8) then
area resampling via `load_image(max_side=640)`, the cheapest way to a detector-sized copy when
the full-size pixels are not needed.

Frames: "640x480" is the whole astronaut portrait (face ~80 px: the 320 px first look misses it
and the detector looks again at 640), "640x480 close" a visitor at arm's length (face ~40 % of
the width: found by the first look), "12MP" the whole portrait in a Pi HQ camera frame.

Anchors, measured in the same run: dlib's HOG detector run directly on the full-resolution frame
(upsample 0), and at 640x480 with upsample 1 (face_recognition's default), which is what a
pipeline without a downscaled detection copy pays; and dlib's own `compute_face_descriptor` on the
same chip (dlib-bin has no BLAS) against the numpy engine.
"""

from __future__ import annotations

import argparse
import io
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from figures import median_ms, write_json

from appliance.faces.analyzer import Face, FaceAnalyzer, FaceSettings
from appliance.images import load_image

SIZES = {"640x480": (640, 480), "640x480 close": (640, 480), "12MP": (4056, 3040)}
STAGES = ("decode", "downscale", "detect", "landmarks", "chip", "descriptor")


def frame(size: tuple[int, int], close: bool = False) -> np.ndarray:
    """skimage's astronaut portrait (or with `close` her head and shoulders) scaled to the frame
    height, centred on mid-gray."""
    from skimage import data

    width, height = size
    pixels = data.astronaut()
    photo = Image.fromarray(np.ascontiguousarray(pixels[0:300, 80:380] if close else pixels))
    side = height
    scaled = np.asarray(photo.resize((side, side), Image.Resampling.BICUBIC))
    out = np.full((height, width, 3), 128, np.uint8)
    x0 = (width - side) // 2
    out[:, x0:x0 + side] = scaled
    return out


def timed_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of `repeat` calls of `fn`."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return median_ms(times)


def measure(name: str, repeat: int, analyzer: FaceAnalyzer) -> dict[str, float]:
    size = SIZES[name]
    rgb = frame(size, close="close" in name)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    jpeg = buf.getvalue()
    out = {"decode": timed_ms(lambda: load_image(jpeg), repeat)}
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
    out.update({s: median_ms(v) for s, v in stage_times.items()})
    out["analyze"] = median_ms(totals)
    out["decode_640"] = timed_ms(lambda: load_image(jpeg, max_side=640), repeat)
    return out


def anchors(repeat: int, face: Face) -> dict[str, float]:
    import dlib

    from appliance.faces.analyzer import model_paths

    detector = dlib.get_frontal_face_detector()
    small, big = frame(SIZES["640x480 close"], close=True), frame(SIZES["12MP"])
    recognizer = dlib.face_recognition_model_v1(str(model_paths(FaceSettings())["descriptor"]))
    theirs = np.asarray(recognizer.compute_face_descriptor(face.chip, 0), np.float32)
    return {
        "hog_640x480_up0": timed_ms(lambda: detector.run(small, 0, 0.0), repeat),
        "hog_640x480_up1": timed_ms(lambda: detector.run(small, 1, 0.0), repeat),
        "hog_12MP_up0": timed_ms(lambda: detector.run(big, 0, 0.0), max(3, repeat // 2)),
        "descriptor_dlib": timed_ms(lambda: recognizer.compute_face_descriptor(face.chip, 0),
                                     repeat),
        "descriptor_max_difference": float(np.abs(theirs - face.descriptor).max()),
    }


def variant_distances(analyzer: FaceAnalyzer) -> dict[str, dict[str, float]]:
    """Descriptor distance between a face and variants of its photo, over the astronaut and
    every LFW crop dlib finds (200 px upscales); and between different LFW crops."""
    import itertools

    from skimage import data

    def encoded(pixels: np.ndarray, orientation: int | None = None, **save: object) -> bytes:
        image = Image.fromarray(np.ascontiguousarray(
            np.rot90(pixels, 1) if orientation == 6 else pixels))
        if orientation:
            exif = Image.Exif()
            exif[0x0112] = orientation
            save["exif"] = exif
        out = io.BytesIO()
        image.save(out, "JPEG", **save)
        return out.getvalue()

    def scaled(pixels: np.ndarray, factor: float) -> np.ndarray:
        image = Image.fromarray(pixels)
        size = (round(image.width * factor), round(image.height * factor))
        return np.asarray(image.resize(size, Image.Resampling.LANCZOS))

    variants: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "jpeg q90": lambda p: load_image(encoded(p, quality=90)),
        "jpeg q50": lambda p: load_image(encoded(p, quality=50)),
        "exif-rotated jpeg q90": lambda p: load_image(encoded(p, 6, quality=90)),
        "half size": lambda p: scaled(p, 0.5),
        "double size": lambda p: scaled(p, 2.0),
        "mirrored": lambda p: np.ascontiguousarray(p[:, ::-1]),
    }
    lfw = (data.lfw_subset()[:100] * 255).round().astype(np.uint8)
    sources = {"astronaut": data.astronaut()}
    for i, crop in enumerate(lfw):
        gray = np.asarray(Image.fromarray(crop).resize((200, 200), Image.Resampling.BICUBIC))
        sources[f"lfw{i}"] = np.repeat(gray[:, :, None], 3, axis=2)
    originals: dict[str, np.ndarray] = {}
    same: dict[str, list[float]] = {name: [] for name in variants}
    missed: dict[str, int] = dict.fromkeys(variants, 0)
    for key, pixels in sources.items():
        face = analyzer.analyze(pixels)
        if not isinstance(face, Face):
            continue
        originals[key] = face.descriptor
        for name, make in variants.items():
            other = analyzer.analyze(make(pixels))
            if isinstance(other, Face):
                same[name].append(float(np.linalg.norm(other.descriptor - face.descriptor)))
            else:
                missed[name] += 1
    lfw_keys = [k for k in originals if k.startswith("lfw")]
    different = [float(np.linalg.norm(originals[a] - originals[b]))
                 for a, b in itertools.combinations(lfw_keys, 2)]
    out = {}
    for name, values in same.items():
        v = np.array(values)
        out[name] = {"n": len(v), "missed": missed[name], "median": float(np.median(v)),
                     "p95": float(np.percentile(v, 95)), "max": float(v.max())}
    d = np.array(different)
    worst_same = max(s["max"] for s in out.values())
    out["different LFW crops"] = {
        "n": len(d), "missed": 100 - len(lfw_keys), "median": float(np.median(d)),
        "p5": float(np.percentile(d, 5)), "min": float(d.min()),
        "above_worst_variant": float(np.mean(d > worst_same)),
    }
    return out


def print_variants(table: dict[str, dict[str, float]]) -> None:
    print(f"{'descriptor distance':<26}{'n':>6}{'missed':>8}{'median':>9}{'p95':>8}{'max':>8}")
    for name, row in table.items():
        if name == "different LFW crops":
            print(f"{name:<26}{row['n']:>6}{row['missed']:>8}{row['median']:>9.3f}"
                  f"{row['p5']:>8.3f}{row['min']:>8.3f}   (p5, min)")
            print(f"  {row['above_worst_variant']:.1%} of different-crop pairs are farther apart "
                  "than the worst variant")
        else:
            print(f"{name:<26}{row['n']:>6}{row['missed']:>8}{row['median']:>9.3f}"
                  f"{row['p95']:>8.3f}{row['max']:>8.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (median)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the figures here")
    parser.add_argument("--variants", action="store_true",
                        help="instead: descriptor distances between photos and their variants "
                        "(JPEG, EXIF rotation, rescaling, mirroring) and between LFW crops")
    args = parser.parse_args(argv)
    import dlib

    analyzer = FaceAnalyzer(FaceSettings())
    if args.variants:
        table = variant_distances(analyzer)
        print_variants(table)
        if args.json:
            write_json(args.json, table)
        return 0
    face = analyzer.analyze(frame(SIZES["640x480"]))  # warm up: models loaded, caches hot
    if not isinstance(face, Face):
        raise SystemExit(f"bench: no face found in the 640x480 frame: {face}")
    results = {name: measure(name, args.repeat, analyzer) for name in SIZES}
    anchor = anchors(args.repeat, face)

    print(f"face pipeline, median ms of {args.repeat} runs "
          f"(dlib {dlib.__version__}, BLAS {dlib.DLIB_USE_BLAS}, {platform.machine()})")
    print(f"descriptor engine: {analyzer.descriptor_engine}")
    print(f"{'stage':<22}" + "".join(f"{name:>15}" for name in SIZES))
    for stage in (*STAGES, "analyze", "decode_640"):
        label = {"analyze": "analyze() total", "decode_640": "decode to <=640 (DCT)"}.get(
            stage, stage)
        print(f"{label:<22}" + "".join(f"{results[name][stage]:>15.1f}" for name in SIZES))
    print()
    ours_small = results["640x480 close"]["downscale"] + results["640x480 close"]["detect"]
    ours_big = results["12MP"]["downscale"] + results["12MP"]["detect"]
    print(f"{'anchor':<40}{'ms':>9}{'ours: downscale+detect':>32}")
    rows = [
        ("dlib HOG 640x480, upsample 0 (close)", anchor["hog_640x480_up0"], ours_small),
        ("dlib HOG 640x480, upsample 1 (close)", anchor["hog_640x480_up1"], ours_small),
        ("dlib HOG 12 MP full res, upsample 0", anchor["hog_12MP_up0"], ours_big),
    ]
    for label, ms, ours in rows:
        print(f"{label:<40}{ms:>9.1f}{f'{ours:.1f} ms = {ours / ms:.2f}x':>32}")
    ours = results["640x480"]["descriptor"]
    dlib_ms = anchor["descriptor_dlib"]
    print(f"{'dlib compute_face_descriptor (same chip)':<40}{dlib_ms:>9.1f}"
          f"{f'ours {ours:.1f} ms = {ours / dlib_ms:.2f}x':>32}")
    print(f"largest descriptor difference, ours vs dlib: {anchor['descriptor_max_difference']:.2e}")
    if args.json:
        write_json(args.json, {
            "repeat": args.repeat,
            "dlib": dlib.__version__,
            "blas": bool(dlib.DLIB_USE_BLAS),
            "machine": platform.machine(),
            "median_ms": results,
            "anchors_ms": anchor,
        })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
