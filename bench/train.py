"""Benchmark `sosie train`: proxy training sets, the speed of a step, and what a generator makes.

    .venv/bin/python bench/train.py proxy OUT_DIR [--count 240]     # one person, from visitor.jpg
    .venv/bin/python bench/train.py generated OUT_DIR [--count 300 --seed 7]
    .venv/bin/python bench/train.py speed [--batch 16 --steps 6 --d-width 64 --train-layers 5
                                          --from shipped]         # steps/s, images/s
    .venv/bin/python bench/train.py measure --person PHOTO [--weights W] [--faces 500]
    .venv/bin/python bench/train.py framing [--faces 150]           # the generator's framing
    .venv/bin/python bench/train.py before-after RUN_DIR OUT.png    # README figure

No photo collection of one person ships offline here, so the one-person set is a stated proxy:
`proxy` writes COUNT photos made from the demo visitor's photo (appliance/data/visitor.jpg) by
realistic variation: a random crop around the face (the face 12-35 % of the width), rotation
+-10 degrees, lighting (exposure, contrast, gamma, colour cast), Gaussian blur up to sigma 1.5 and
JPEG quality 35-95. `generated` writes COUNT faces of another generator seed (256 px PNG) - a
set of many people the shipped generator already knows how to draw. Any folder works with
`sosie train`; `measure` takes any weights and any photo of the person.

`measure` draws FACES faces (seed 1000, at 256 px as the build does), and reports: the share in
which dlib finds a face; the median dlib descriptor distance from those faces to the person
(the goal: <= 0.45, from the shipped generator's figure); the share under 0.6 (dlib's "same
person"); diversity: the median pairwise distance between the faces (a generator that memorised
one photo draws it again and again: that median falls towards 0).

`speed` times training steps (after the first, which compiles) at --batch on this machine's JAX
device, against the numpy forward pass of the appliance (faces/s, one BLAS thread) measured in
the same run; the CPU is named. Medians of the step times.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from figures import cpu_name  # bench/ is the script's folder

from appliance.corpus.demo import visitor_photo

# -- proxy sets ---------------------------------------------------------------------------------


def make_proxy(out_dir: Path, count: int, seed: int = 0) -> None:
    """COUNT realistic variations of the visitor's photo (see the module docstring)."""
    import cv2
    from PIL import Image

    from appliance.faces.analyzer import FaceAnalyzer
    from appliance.images import load_image

    photo = load_image(visitor_photo())
    face = FaceAnalyzer().faces(photo)[0]
    left, top, right, bottom = face.box
    cx, cy, width = (left + right) / 2, (top + bottom) / 2, right - left
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    height_px, width_px = photo.shape[:2]
    for i in range(count):
        angle = rng.uniform(-10, 10)
        share = rng.uniform(0.12, 0.35)  # face width / crop width
        side = min(width / share, min(height_px, width_px))
        centre = (cx + rng.uniform(-0.25, 0.25) * side * 0.5,
                  cy + rng.uniform(-0.2, 0.2) * side * 0.5)
        rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)
        rotated = cv2.warpAffine(photo, rotation, (width_px, height_px),
                                 borderMode=cv2.BORDER_REFLECT101)
        x0 = int(np.clip(centre[0] - side / 2, 0, width_px - side))
        y0 = int(np.clip(centre[1] - side / 2, 0, height_px - side))
        crop = rotated[y0:y0 + int(side), x0:x0 + int(side)].astype(np.float32) / 255
        exposure = 2 ** rng.uniform(-0.8, 0.6)
        contrast = rng.uniform(0.7, 1.3)
        gamma = rng.uniform(0.75, 1.35)
        cast = 1 + rng.uniform(-0.08, 0.08, 3)
        crop = np.clip(crop * exposure * cast, 0, 1) ** gamma
        crop = np.clip((crop - crop.mean()) * contrast + crop.mean(), 0, 1)
        sigma = rng.uniform(0, 1.5)
        if sigma > 0.3:
            crop = cv2.GaussianBlur(crop, (0, 0), sigma)
        out_side = int(rng.choice([256, 320, 400, 480]))
        image = Image.fromarray((crop * 255 + 0.5).astype(np.uint8)).resize(
            (out_side, out_side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=int(rng.integers(35, 96)))
        (out_dir / f"person-{i:04d}.jpg").write_bytes(buffer.getvalue())
    print(f"{count} variations of {visitor_photo().name} written to {out_dir}")


def make_generated(out_dir: Path, count: int, seed: int) -> None:
    from PIL import Image

    from appliance.generator.dcgan import DCGAN

    net = DCGAN.load()
    out_dir.mkdir(parents=True, exist_ok=True)
    for start in range(0, count, 50):
        indices = list(range(start, min(count, start + 50)))
        for i, face in zip(indices, net.faces(seed, indices, 256), strict=True):
            Image.fromarray(face).save(out_dir / f"dcgan-{seed}-{i:05d}.png")
    print(f"{count} faces of generator seed {seed} written to {out_dir}")


# -- what a generator makes ------------------------------------------------------------------


def measure(person: Path, weights: Path | None, faces: int, seed: int = 1000) -> dict[str, Any]:
    from appliance.faces.analyzer import FaceAnalyzer
    from appliance.generator.dcgan import DCGAN
    from appliance.train.track import descriptors

    analyzer = FaceAnalyzer()
    target = analyzer.analyze(person)
    if not hasattr(target, "descriptor"):
        raise SystemExit(f"{person}: no face ({target.reason})")
    net = DCGAN.load(weights)
    d = np.concatenate([descriptors(analyzer, list(net.faces(
        seed, list(range(start, min(faces, start + 50))), 256))) for start in range(0, faces, 50)])
    to_person = np.linalg.norm(d - target.descriptor, axis=1) if len(d) else np.array([np.nan])
    pairs = (np.linalg.norm(d[:, None] - d[None], axis=2)[np.triu_indices(len(d), 1)]
             if len(d) > 1 else np.array([np.nan]))
    return {"weights": str(weights or "shipped"), "sha256": net.checksum, "faces": faces,
            "detected_share": round(len(d) / faces, 3),
            "median_distance_to_person": round(float(np.median(to_person)), 4),
            "share_under_0.6": round(float((to_person < 0.6).mean()), 3),
            "diversity_median_pairwise": round(float(np.median(pairs)), 4)}


# -- speed -----------------------------------------------------------------------------------


def speed(batch: int, steps: int, d_width: int = 64, train_layers: int = 5,
          start: str = "shipped") -> dict[str, Any]:
    """Training steps (wall and CPU time, the compiling first step left out) against the numpy
    forward pass of the appliance, measured in the same run; with the discriminator's width,
    the generator's learning layers and the starting point of `sosie train`'s options."""
    import jax

    from appliance.generator.dcgan import DCGAN
    from appliance.train.dataset import Dataset
    from appliance.train.loop import TrainOptions, train

    net = DCGAN.load()
    faces = net.faces(7, list(range(64)), 64)
    dataset = Dataset(faces, [str(i) for i in range(64)], [])

    def numpy_forward() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        net.faces(3, list(range(50)), 64)
        return (time.perf_counter() - wall) / 50, (time.process_time() - cpu) / 50

    forward = [numpy_forward() for _ in range(3)]
    with tempfile.TemporaryDirectory() as tmp:
        every = 10**6
        options = {"batch": batch, "checkpoint_every": every, "sample_every": every,
                   "d_width": d_width, "train_layers": train_layers, "start": start}
        train(dataset, Path(tmp), TrainOptions(steps=1, **options), progress=False)
        cpu = time.process_time()
        session = train(dataset, Path(tmp), TrainOptions(steps=steps + 1, **options),
                        progress=False)["this_session"]
        cpu_step = (time.process_time() - cpu) / steps
    forward += [numpy_forward() for _ in range(3)]
    step = session["median_step_seconds"]
    face_wall = statistics.median(w for w, _ in forward)
    face_cpu = statistics.median(c for _, c in forward)
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "load_average": os.getloadavg()[0],
            "device": jax.devices()[0].device_kind, "batch": batch, "d_width": d_width,
            "train_layers": train_layers, "start": start, "steps_timed": steps,
            "median_step_s": step, "steps_per_s": round(1 / step, 4),
            "images_per_s": round(batch / step, 2), "cpu_s_per_step": round(cpu_step, 3),
            "cpu_s_per_image": round(cpu_step / batch, 3),
            "numpy_forward_ms_per_face": round(1000 * face_wall, 2),
            "numpy_forward_cpu_ms_per_face": round(1000 * face_cpu, 2),
            "step_in_numpy_faces_cpu": round(cpu_step / face_cpu)}


def framing(count: int) -> dict[str, Any]:
    """Where dlib's aligned chip sits in the generator's own square (see train/dataset.py)."""
    import dlib

    from appliance.faces.analyzer import FaceAnalyzer
    from appliance.generator.dcgan import DCGAN

    net, analyzer = DCGAN.load(), FaceAnalyzer()
    paddings, raises = [], []
    for i in range(count):
        image = net.faces(3, [i], 256)[0]
        found = analyzer.faces(image)
        if not found:
            continue
        face = found[0]
        shape = dlib.full_object_detection(
            dlib.rectangle(*map(int, face.box)),
            [dlib.point(round(x), round(y)) for x, y in face.landmarks])
        rect = dlib.get_face_chip_details(shape, size=256, padding=0.0).rect
        width = rect.width()
        paddings.append((256 / width - 1) / 2)
        raises.append(((rect.top() + rect.bottom() + 1) / 2 - 128) / width)
    return {"faces_found": len(paddings), "of": count,
            "padding_median": round(float(np.median(paddings)), 3),
            "padding_p10_p90": [round(float(v), 3) for v in np.percentile(paddings, [10, 90])],
            "chip_centre_below_frame_centre_face_widths": round(float(np.median(raises)), 3)}


def before_after(run_dir: Path, out: Path, columns: int = 8) -> None:
    """Three rows of `columns` 64-px faces: training photos (aligned), the shipped generator's
    faces of the run's fixed latents (its step 0 when fine-tuning; a scratch run starts from
    noise), the last sample grid (same latents)."""
    from PIL import Image, ImageDraw

    from appliance.generator.dcgan import DCGAN
    from appliance.train.pictures import grid

    def row(image: Image.Image) -> Image.Image:
        return image.convert("RGB").crop((0, 0, 2 + columns * 66, 68))

    seed = json.loads((run_dir / "summary.json").read_text())["seed"]
    shipped = grid(DCGAN.load().faces(seed, list(range(columns)), 64), columns)
    samples = sorted((run_dir / "samples").glob("step-*.png"))
    rows = [("photos", row(Image.open(run_dir / "faces.png"))), ("shipped", row(shipped)),
            (f"step {int(samples[-1].stem[5:])}", row(Image.open(samples[-1])))]
    label = 64
    canvas = Image.new("RGB", (label + rows[0][1].width, 68 * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (text, image) in enumerate(rows):
        canvas.paste(image, (label, 68 * i))
        draw.text((4, 68 * i + 28), text, fill=(0, 0, 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.quantize(colors=128).save(out, optimize=True)  # a small file for the README
    print(f"{out}: {', '.join(t for t, _ in rows)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("proxy")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--count", type=int, default=240)
    p = sub.add_parser("generated")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--seed", type=int, default=7)
    p = sub.add_parser("speed")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--d-width", type=int, default=64)
    p.add_argument("--train-layers", type=int, default=5)
    p.add_argument("--from", dest="start", default="shipped")
    p = sub.add_parser("measure")
    p.add_argument("--person", type=Path, default=visitor_photo())
    p.add_argument("--weights", type=Path)
    p.add_argument("--faces", type=int, default=500)
    p = sub.add_parser("before-after")
    p.add_argument("run_dir", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("framing")
    p.add_argument("--faces", type=int, default=150)
    for name in ("speed", "measure", "framing"):
        sub.choices[name].add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.what == "proxy":
        make_proxy(args.out_dir, args.count)
        return 0
    if args.what == "before-after":
        before_after(args.run_dir, args.out)
        return 0
    if args.what == "generated":
        make_generated(args.out_dir, args.count, args.seed)
        return 0
    if args.what == "speed":
        figures = speed(args.batch, args.steps, args.d_width, args.train_layers, args.start)
    elif args.what == "measure":
        figures = measure(args.person, args.weights, args.faces)
    else:
        figures = framing(args.faces)
    print(json.dumps(figures, indent=2))
    if args.json:
        from figures import write_json

        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
