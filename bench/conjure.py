"""Conjured doubles against the nearest face of a generated corpus, on real face photos.

For each photo (scikit-image's astronaut, matplotlib's Grace Hopper and upscaled LFW crops, none
of them in the corpus; photos whose descriptor is within `--apart` (0.6, dlib's "same person") of
an earlier photo's are left out, so every photo shows a different person by dlib's rule, as the
LFW subset has no names):
the distance to the nearest corpus face (the anchor, found by the corpus scan in the same run)
and to the face `sosie conjure` makes within the budget, starting from the latents of the 8
nearest corpus faces. Prints a row per photo, then the medians, how many photos got closer than
the corpus's nearest face, and the budget curve (median best distance after t seconds).

    .venv/bin/python bench/conjure.py --corpus DIR [--photos 20] [--budget 30] [--clock cpu]
        [--workers 2] [--sheet sheet.png] [--json out.json]

`--clock cpu` (default) counts the search's own CPU seconds, so "30 s on one core" means the
same on a busy shared machine; `--clock wall` counts elapsed time. The contact sheet shows each
photo beside its conjured double and its nearest corpus face (it holds the real photos: do not
commit it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tests/photos.py: the real photos, made at run time

from figures import write_json  # noqa: E402

from appliance.conjure import Budget, LikenessObjective, conjure, corpus_start  # noqa: E402
from appliance.conjure.objective import FACE_SIZE  # noqa: E402

CHECKPOINTS = (1, 2, 5, 10, 20, 30, 60)
STARTS = 8
PIXELS = ("latent", "nearest_thumb", "photo_crop")  # kept out of the JSON

_state: dict[str, Any] = {}


def photo_set() -> list[tuple[str, np.ndarray]]:
    """The astronaut, Grace Hopper, then LFW crops upscaled to 200 px, in index order."""
    import matplotlib.cbook
    import photos

    hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg")
    out = [("astronaut", np.asarray(photos.astronaut())),
           ("grace-hopper", np.asarray(Image.open(hopper).convert("RGB")))]
    out += [(f"lfw-{i:03d}", np.asarray(photos.lfw_photo(i))) for i in range(100)]
    return out


def distinct_faces(candidates: list[tuple[str, np.ndarray]], count: int,
                   apart: float) -> list[tuple[str, np.ndarray]]:
    """The first `count` photos with a face whose descriptor is >= `apart` from every kept one."""
    from appliance.faces.analyzer import FaceAnalyzer

    analyzer = FaceAnalyzer()
    kept: list[tuple[str, np.ndarray]] = []
    descriptors: list[np.ndarray] = []
    for name, photo in candidates:
        face = analyzer.analyze(photo)
        if not hasattr(face, "descriptor"):
            continue
        descriptor = np.array(face.descriptor)
        if all(np.linalg.norm(descriptor - d) >= apart for d in descriptors):
            kept.append((name, photo))
            descriptors.append(descriptor)
        if len(kept) == count:
            break
    return kept


def _init(corpus_dir: str) -> None:
    from appliance.corpus import Corpus
    from appliance.faces.analyzer import FaceAnalyzer
    from appliance.generator.dcgan import DCGAN

    _state.update(net=DCGAN.load(), analyzer=FaceAnalyzer(), corpus=Corpus.open(corpus_dir))


def run_one(job: tuple[str, np.ndarray, float, str, int]) -> dict[str, Any] | None:
    """One photo: the corpus anchor and the conjured face (None when the photo shows no face)."""
    name, photo, budget, clock_name, seed = job
    net, analyzer, corpus = _state["net"], _state["analyzer"], _state["corpus"]
    face = analyzer.analyze(photo)
    if not hasattr(face, "descriptor"):
        return None
    target = np.array(face.descriptor)
    crop = face.aligned(128).tolist()
    del face
    start = corpus_start(corpus, target, STARTS, net.checksum)
    objective = LikenessObjective(net, analyzer, target, start.face_size or FACE_SIZE)
    clock = time.process_time if clock_name == "cpu" else time.perf_counter
    curve: list[tuple[float, float, int]] = []
    began = time.perf_counter()
    result = conjure(objective, start.latents, budget=Budget(seconds=budget), seed=seed,
                     clock=clock,
                     progress=lambda s: curve.append((s.seconds, s.distance, s.evaluations)))
    wall = time.perf_counter() - began
    nearest_row = int(start.rows[0])
    return {
        "photo": name,
        "corpus_nearest": start.nearest_distance,
        "corpus_nearest_source": start.sources[0],
        "start_distance": result.start_distance,
        "conjured": result.distance,
        "evaluations": result.evaluations,
        "generations": result.generations,
        "seconds": result.seconds,
        "wall_seconds": wall,
        "faces_found": int(np.count_nonzero(result.history < 2.0)),
        "curve": curve,
        "latent": result.latent.tolist(),
        "photo_crop": crop,
        "nearest_thumb": corpus.thumbnail(nearest_row).tolist() if len(start.rows) else None,
    }


def best_at(curve: list[tuple[float, float, int]], seconds: float) -> float:
    """The best distance reached by `seconds` (NaN if nothing was scored by then)."""
    reached = [d for t, d, _ in curve if t <= seconds]
    return min(reached) if reached else float("nan")


def contact_sheet(rows: list[dict[str, Any]], net: Any, cell: int = 128) -> Image.Image:
    """Per photo: its face (aligned crop), its conjured double, its nearest corpus face."""
    from appliance.conjure.objective import upscale
    from appliance.fonts import font

    label = 28
    sheet = Image.new("RGB", (3 * cell, len(rows) * (cell + label)), "white")
    draw = ImageDraw.Draw(sheet)
    small = font("text", 11)
    for r, row in enumerate(rows):
        y = r * (cell + label)
        conjured = upscale(net.render(np.asarray([row["latent"]], np.float32)), cell)[0]
        nearest = np.asarray(row["nearest_thumb"], np.uint8)
        photo = np.asarray(row["photo_crop"], np.uint8)
        for c, pixels in enumerate((photo, conjured, nearest)):
            image = Image.fromarray(pixels).convert("RGB").resize((cell, cell))
            sheet.paste(image, (c * cell, y))
        draw.text((4, y + cell + 2), row["photo"], fill="black", font=small)
        draw.text((cell + 4, y + cell + 2), f"conjured {row['conjured']:.3f}", fill="black",
                  font=small)
        draw.text((2 * cell + 4, y + cell + 2), f"corpus {row['corpus_nearest']:.3f}",
                  fill="black", font=small)
    return sheet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True,
                        help="a corpus of DCGAN faces (e.g. `sosie build dcgan:20000:1 DIR`)")
    parser.add_argument("--photos", type=int, default=20, help="photos with a face (default 20)")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per photo")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--apart", type=float, default=0.6,
                        help="leave out a photo this close to an earlier one (default 0.6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="photos in parallel")
    parser.add_argument("--sheet", type=Path, help="write the contact sheet here (PNG)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    from appliance.corpus import Corpus

    with Corpus.open(args.corpus) as corpus:
        count, manifest = corpus.count, corpus.manifest
    candidates = distinct_faces(photo_set(), args.photos, args.apart)
    jobs = [(name, photo, args.budget, args.clock, args.seed) for name, photo in candidates]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    context = get_context("spawn")
    with context.Pool(args.workers, _init, (str(args.corpus),)) as pool:
        for row in pool.imap(run_one, jobs):
            if row is None:
                continue
            rows.append(row)
            closer_now = "closer" if row["conjured"] < row["corpus_nearest"] else "not closer"
            print(f"{row['photo']:>12}  corpus {row['corpus_nearest']:.3f}  start "
                  f"{row['start_distance']:.3f}  conjured {row['conjured']:.3f}  "
                  f"{closer_now} ({row['conjured'] / row['corpus_nearest']:.2f})  "
                  f"({row['evaluations']} evaluations, {row['seconds']:.1f} s {args.clock}, "
                  f"{row['wall_seconds']:.0f} s wall)", flush=True)
            if len(rows) == args.photos:
                pool.terminate()
                break
    wall = time.perf_counter() - started

    source = manifest.get("source", {})
    nearest = [r["corpus_nearest"] for r in rows]
    conjured = [r["conjured"] for r in rows]
    closer = sum(c < n for c, n in zip(conjured, nearest, strict=True))
    clearly = sum(c < n - 0.01 for c, n in zip(conjured, nearest, strict=True))
    print()
    print(f"corpus: {count} faces ({source.get('generator', 'folder')} "
          f"{source.get('files', '?')} draws, seed {source.get('seed', '?')}); "
          f"{len(rows)} photos; budget {args.budget:g} s ({args.clock}) per photo; "
          f"total {wall:.0f} s wall")
    print("| | median distance | ratio to the corpus's nearest |")
    print("|---|---|---|")
    med_n, med_c = statistics.median(nearest), statistics.median(conjured)
    print(f"| nearest of the corpus (anchor) | {med_n:.3f} | 1.00 |")
    ratio = statistics.median(c / n for c, n in zip(conjured, nearest, strict=True))
    print(f"| conjured | {med_c:.3f} | {med_c / med_n:.2f} (median of per-photo ratios "
          f"{ratio:.2f}) |")
    print(f"closer than the corpus's nearest: {closer}/{len(rows)} "
          f"({100 * closer / len(rows):.0f} %); by more than 0.01: {clearly}/{len(rows)}")
    evaluations = statistics.median(r["evaluations"] for r in rows)
    each = statistics.median(r["seconds"] for r in rows) / evaluations
    print(f"evaluations per photo: median {evaluations:.0f} ({each * 1e3:.1f} ms {args.clock} "
          "each)")
    checkpoints = [t for t in CHECKPOINTS if t <= args.budget] + (
        [args.budget] if args.budget not in CHECKPOINTS else [])
    print("budget curve (median best distance after t seconds; the corpus's nearest: "
          f"{med_n:.3f}):")
    print("| t (s) | " + " | ".join(f"{t:g}" for t in checkpoints) + " |")
    print("|---|" + "---|" * len(checkpoints))
    medians = [statistics.median(best_at(r["curve"], t) for r in rows) for t in checkpoints]
    print("| median best | " + " | ".join(f"{m:.3f}" for m in medians) + " |")

    if args.sheet:
        from appliance.generator.dcgan import DCGAN

        sheet = contact_sheet(rows, DCGAN.load())
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.sheet)
        print(f"contact sheet: {args.sheet}")
    if args.json:
        write_json(args.json, {
            "corpus": {"path": str(args.corpus), "count": count, "source": source},
            "budget_seconds": args.budget, "clock": args.clock, "seed": args.seed,
            "median_corpus_nearest": med_n, "median_conjured": med_c,
            "median_ratio": ratio, "apart": args.apart,
            "closer": closer, "closer_by_0.01": clearly, "photos": len(rows),
            "budget_curve": dict(zip(map(str, checkpoints), medians, strict=True)),
            "rows": [{k: v for k, v in r.items() if k not in PIXELS} for r in rows],
        })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
