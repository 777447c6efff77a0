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

`--small` instead measures which rule of detector looks finds small faces and at what cost:
the astronaut, LFW crops and generated 64-px DCGAN faces shrunk to 32-100 px faces in 256-640
px photos (on skimage backgrounds), generated faces as made (64x64) and photos without a face;
for each rule (the old "320, then 640"; dlib's upsample 1 on every photo as face_recognition
does; the chosen "320, 640, then 2x" and variants), the % found at the right place and the ms
of the looks taken (each look's cost timed --repeat times per photo size), with the old rule as
the anchor.

Anchors, measured in the same run: dlib's HOG detector run directly on the full-resolution frame
(upsample 0), and at 640x480 with upsample 1 (face_recognition's default), which is what a
pipeline without a downscaled detection copy pays; and dlib's own `compute_face_descriptor` on the
same chip (dlib-bin has no BLAS) against the numpy engine.
"""

from __future__ import annotations

import argparse
import io
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from figures import median_ms, write_json

from appliance.faces.analyzer import FaceAnalyzer
from appliance.faces.face import Detection, Face
from appliance.faces.settings import FaceSettings
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

    from appliance.faces.model_files import model_paths

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


# ---------------------------------------------------------------------------------------------
# Small faces: which rule of detector looks finds them, at what cost

#: Photos (longest side; 4:3) and face sizes (side of dlib's box, px) of the small-face table.
SMALL_PHOTOS = (256, 480, 640)
SMALL_FACES = (32, 40, 48, 56, 64, 80, 100)


def _rules() -> dict[str, Callable[[int, int], list[float]]]:
    """Detection rules: each gives the scales of its successive looks at an h x w photo (a
    look is taken only when the ones before show no confident face)."""
    old = FaceAnalyzer(FaceSettings(small_face_zoom=1.0))
    return {
        "old: 320, then 640": old.detector.looks,
        "2x always (face_recognition)": lambda h, w: [2 * old.detector.detection_scale(h, w)],
        "320, 640, then 1.5x": FaceAnalyzer(FaceSettings(small_face_zoom=1.5)).detector.looks,
        "320, 640, then 2x": FaceAnalyzer(FaceSettings(small_face_zoom=2.0)).detector.looks,
        "320, then 2x": lambda h, w: [*old.detector.looks(h, w)[:-1],
                                      2 * old.detector.detection_scale(h, w)],
    }


def _reflect_pad(pixels: np.ndarray, fraction: float) -> np.ndarray:
    import cv2

    pad = max(1, round(max(pixels.shape[:2]) * fraction))
    return cv2.copyMakeBorder(pixels, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)


def small_face_sources(count: int) -> list[tuple[str, np.ndarray, tuple[float, float, float]]]:
    """Face images with their face: (kind, RGB pixels, (centre x, centre y, box side)).

    The astronaut portrait, then `count` LFW crops and `count` generated 64-px DCGAN faces
    that dlib's HOG finds at a generous size (their box there is the reference face size).
    """
    import dlib
    from skimage import data

    from appliance.generator.dcgan import DCGAN

    detector = dlib.get_frontal_face_detector()

    def reference(pixels: np.ndarray, factor: int) -> tuple[float, float, float] | None:
        big = np.asarray(Image.fromarray(pixels).resize(
            (pixels.shape[1] * factor, pixels.shape[0] * factor), Image.Resampling.BICUBIC))
        rects, scores, _ = detector.run(np.ascontiguousarray(big), 0, 0.0)
        if not len(rects) or scores[0] < 0.5:
            return None
        r = rects[0]
        return ((r.left() + r.right() + 1) / 2 / factor, (r.top() + r.bottom() + 1) / 2 / factor,
                (r.width() + r.height()) / 2 / factor)

    out = [("astronaut", data.astronaut(), reference(data.astronaut(), 1))]
    lfw = (data.lfw_subset()[:100] * 255).round().astype(np.uint8)
    kept = 0
    for crop in lfw:
        rgb = np.repeat(crop[:, :, None], 3, axis=2)
        pad = _reflect_pad(rgb, 0.5)
        found = reference(pad, 8)
        if found and kept < count:
            out.append(("LFW", pad, found))
            kept += 1
    net, kept, index = DCGAN.load(), 0, 0
    while kept < count:
        face = net.faces(0, [index], size=64)[0]
        index += 1
        pad = _reflect_pad(face, 0.25)
        found = reference(pad, 4)
        if found:
            out.append(("DCGAN", pad, found))
            kept += 1
    return out  # type: ignore[return-value]


def _backgrounds() -> list[np.ndarray]:
    from skimage import data

    return [data.coffee(), data.rocket(), data.hubble_deep_field(), data.chelsea()[:, :, :3]]


def place_face(source: np.ndarray, face: tuple[float, float, float], side: float,
               size: tuple[int, int], background: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A `size` (w, h) photo: `background` filling it, and `source` scaled so its face's box
    side is `side`, with the face at a random place fully inside. Returns (photo, face)."""
    width, height = size
    canvas = np.asarray(Image.fromarray(background).resize(size, Image.Resampling.BILINEAR))
    canvas = np.array(canvas)
    k = side / face[2]
    scaled = np.asarray(Image.fromarray(source).resize(
        (max(1, round(source.shape[1] * k)), max(1, round(source.shape[0] * k))),
        Image.Resampling.LANCZOS))
    cx = rng.uniform(side * 0.75, width - side * 0.75)
    cy = rng.uniform(side * 0.75, height - side * 0.75)
    # the scaled source's pixel (sx, sy) lands at (sx + dx, sy + dy)
    dx, dy = round(cx - face[0] * k), round(cy - face[1] * k)
    x0, y0 = max(0, dx), max(0, dy)
    x1, y1 = min(width, dx + scaled.shape[1]), min(height, dy + scaled.shape[0])
    canvas[y0:y1, x0:x1] = scaled[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
    return canvas, (face[0] * k + dx, face[1] * k + dy, side)


def _is_the_face(d: Detection, face: tuple[float, float, float]) -> bool:
    left, top, right, bottom = d.rect
    side = (right - left + bottom - top) / 2
    centre = ((left + right) / 2, (top + bottom) / 2)
    return (math.dist(centre, face[:2]) < 0.35 * face[2]) and 0.5 < side / face[2] < 2.0


class LookCosts:
    """Median milliseconds of one detector look (downscale/upscale + HOG) by (photo size,
    scale): HOG's cost depends on the pixels it scans, not on what they show, so each look is
    timed `repeat` times on one photo of that size and the median is shared by every photo."""

    def __init__(self, analyzer: FaceAnalyzer, repeat: int) -> None:
        self.analyzer, self.repeat = analyzer, repeat
        self.costs: dict[tuple[tuple[int, ...], float], float] = {}

    def __call__(self, rgb: np.ndarray, scale: float) -> float:
        key = (rgb.shape, round(scale, 6))
        if key not in self.costs:
            times = []
            for _ in range(self.repeat):
                timings: dict[str, float] = {}
                self.analyzer.detector.detect_at(rgb, scale, timings)
                times.append(timings["downscale"] + timings["detect"])
            self.costs[key] = median_ms(times)
        return self.costs[key]


def _looks_taken(analyzer: FaceAnalyzer, rgb: np.ndarray, scales: list[float],
                 cache: dict[float, list[Detection]], costs: LookCosts
                 ) -> tuple[list[Detection], float]:
    """What `MultiScaleDetector.detect` returns for these looks (each look run once per photo and
    shared by every rule that takes it), and what they cost in ms."""
    found: list[Detection] = []
    total = 0.0
    for scale in scales:
        if scale not in cache:
            cache[scale] = analyzer.detector.detect_at(rgb, scale, {})
        seen = cache[scale]
        total += costs(rgb, scale)
        usable = analyzer.detector.usable(seen)
        if usable and usable[0].score >= analyzer.settings.weak_score:
            return seen, total
        found = seen or found
    return found, total


def small_faces(count: int, repeat: int, seed: int = 0) -> dict[str, object]:
    """Found % and median detection ms of each rule, by photo size and face size; the same for
    photos without a face (ms, and % where a "face" is found: false positives)."""
    analyzer = FaceAnalyzer()
    costs = LookCosts(analyzer, repeat)
    rules = _rules()
    rng = np.random.default_rng(seed)
    sources = small_face_sources(count)
    backgrounds = _backgrounds()
    cells: dict[str, dict[str, dict[str, float]]] = {}

    def row(photos: list[np.ndarray], is_hit: Callable[[int, list[Detection]], bool]
            ) -> dict[str, dict[str, float]]:
        hits = dict.fromkeys(rules, 0)
        times: dict[str, list[float]] = {name: [] for name in rules}
        for i, photo in enumerate(photos):
            photo = np.ascontiguousarray(photo)
            cache: dict[float, list[Detection]] = {}
            for name, looks in rules.items():
                seen, ms = _looks_taken(analyzer, photo, looks(*photo.shape[:2]), cache, costs)
                hits[name] += is_hit(i, analyzer.detector.usable(seen))
                times[name].append(ms / 1000)
        return {name: {"found": hits[name] / len(photos), "ms": median_ms(times[name])}
                for name in rules}

    for long_side in SMALL_PHOTOS:
        size = (long_side, long_side * 3 // 4)
        for side in SMALL_FACES:
            if side * 1.5 > size[1]:
                continue
            placed = [place_face(pixels, face, side, size, backgrounds[i % len(backgrounds)], rng)
                      for i, (_, pixels, face) in enumerate(sources)]
            cells[f"{size[0]}x{size[1]} face {side}"] = row(
                [photo for photo, _ in placed],
                lambda i, usable, placed=placed: bool(usable) and _is_the_face(usable[0],
                                                                               placed[i][1]))
    # generated faces as the generator makes them: 64x64, no upscaling by the caller
    from appliance.generator.dcgan import DCGAN

    native = DCGAN.load().faces(seed + 1, list(range(4 * count)), size=64)
    lanczos = [np.asarray(Image.fromarray(f).resize((256, 256), Image.Resampling.LANCZOS))
               for f in native]
    cells["DCGAN 64x64 as made"] = row(list(native), lambda i, usable: bool(usable))
    cells["DCGAN 256 (Lanczos)"] = row(lanczos, lambda i, usable: bool(usable))
    # photos without a face: what each rule costs there, and how often it "finds" one anyway
    from skimage import data

    non_faces = [np.repeat(((c * 255).round().astype(np.uint8))[:, :, None], 3, axis=2)
                 for c in data.lfw_subset()[100:100 + 2 * count]]
    for long_side in SMALL_PHOTOS:
        size = (long_side, long_side * 3 // 4)
        photos = [np.asarray(Image.fromarray(p).resize(size, Image.Resampling.BICUBIC))
                  for p in (*non_faces, *backgrounds)]
        cells[f"{size[0]}x{size[1]} no face"] = row(photos, lambda i, usable: bool(usable))
    return {"faces_per_cell": len(sources), "repeat": repeat, "rules": list(rules),
            "cells": cells}


def print_small(table: dict[str, object]) -> None:
    rules: list[str] = table["rules"]  # type: ignore[assignment]
    cells: dict[str, dict[str, dict[str, float]]] = table["cells"]  # type: ignore[assignment]
    print(f"small faces: % found (no-face rows: % false faces) / median ms of the looks taken "
          f"(each look timed {table['repeat']}x); {table['faces_per_cell']} faces per cell "
          "(astronaut, LFW, DCGAN)")
    print(f"ms also as a ratio to the anchor, the old rule '{rules[0]}', in the same run")
    print(f"{'photo, face side':<24}" + "".join(f"{name:>31}" for name in rules))
    for label, row in cells.items():
        anchor = row[rules[0]]["ms"]
        print(f"{label:<24}" + "".join(
            f"{row[n]['found']:>11.0%} {row[n]['ms']:>7.1f} ms {row[n]['ms'] / anchor:>6.2f}x"
            for n in rules))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (median)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the figures here")
    parser.add_argument("--variants", action="store_true",
                        help="instead: descriptor distances between photos and their variants "
                        "(JPEG, EXIF rotation, rescaling, mirroring) and between LFW crops")
    parser.add_argument("--small", action="store_true",
                        help="instead: small faces (40-100 px) in 256-640 px photos, found %% "
                        "and detection ms under each rule of detector looks")
    parser.add_argument("--faces", type=int, default=24,
                        help="--small: LFW and DCGAN faces per cell (each)")
    args = parser.parse_args(argv)
    import dlib

    if args.small:
        table = small_faces(args.faces, args.repeat)
        print_small(table)
        if args.json:
            write_json(args.json, table)
        return 0

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
