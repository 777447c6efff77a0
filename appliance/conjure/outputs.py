"""The result folder of `sosie conjure`: the doubles, their latents, the curve, a sheet, a summary.

    DIR/conjured.png      the best double at the ticket's face size (the network's 64 px
                          resampled with Lanczos): the picture to print or exhibit
    DIR/conjured-64.png   the network's own 64x64 output of it
    DIR/conjured.npy      its float32 latent: `DCGAN.render` of it gives the face again
    DIR/conjured-K.png, conjured-K-64.png, conjured-K.npy
                          the K-th best of `--doubles N` distinct doubles (K = 2..N)
    DIR/sheet.png         the photo's face (only with `--sheet-photo`), the nearest corpus face
                          and the doubles side by side, with their distances and likeness
    DIR/curve.png         distance against evaluations, with the nearest corpus face's distance
    DIR/summary.json      distances, likeness, evaluations, seconds, nearest corpus distance, ...

Nothing of the visitor is written unless asked (`--sheet-photo`): no photo, no descriptor.
Each file is written atomically.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from appliance.conjure.objective import NO_FACE_DISTANCE
from appliance.conjure.plot import distance_curve
from appliance.conjure.search import Conjured
from appliance.conjure.starts import CorpusStart
from appliance.files import atomic_write_bytes
from appliance.likeness import SAME_PERSON_DISTANCE, likeness

CURVE, SUMMARY, SHEET = "curve.png", "summary.json", "sheet.png"
#: What the distance and likeness measure, written into every summary.
MEASURE = (f"distance: Euclidean distance between dlib's 128-D face descriptors (0: the same "
           f"descriptor; dlib calls two faces under {SAME_PERSON_DISTANCE} the same person); "
           f"likeness: a logistic curve of it, 50 % at {SAME_PERSON_DISTANCE}. A machine's "
           "measure, not a human judgement of resemblance.")
SHEET_CELL = 256  # px per face on the sheet


def face_names(rank: int) -> tuple[str, str, str]:
    """(face at ticket size, network's 64-px face, latent) file names of the rank-th double."""
    stem = "conjured" if rank == 1 else f"conjured-{rank}"
    return f"{stem}.png", f"{stem}-64.png", f"{stem}.npy"


@dataclass(frozen=True)
class Double:
    """One conjured double: the search that made it and the network's own 64x64 face."""

    result: Conjured
    raw: np.ndarray  # (64, 64, 3) uint8, the generator's output for result.latent

    @property
    def found(self) -> bool:
        return self.result.distance < NO_FACE_DISTANCE


def at_size(raw: np.ndarray, side: int) -> np.ndarray:
    """The network's face resampled to `side` x `side` with Lanczos (the ticket's face size)."""
    image = Image.fromarray(np.asarray(raw, np.uint8))
    return np.asarray(image.resize((side, side), Image.Resampling.LANCZOS))


def summary(doubles: Sequence[Double], corpus: CorpusStart | None, *, photo: str, seed: int,
            budget: dict[str, Any], corpus_path: str | None, weights_sha256: str,
            face_size: int, scored_size: int) -> dict[str, Any]:
    """The JSON summary of a conjuring (plain types only); `doubles` best first."""
    best = doubles[0].result
    nearest = corpus.nearest_distance if corpus is not None and len(corpus.distances) else None
    found = doubles[0].found

    def rounded(distance: float) -> float | None:
        return round(distance, 6) if distance < NO_FACE_DISTANCE else None

    face, raw, latent = face_names(1)
    return {
        "photo": photo,
        "distance": rounded(best.distance),
        "likeness": round(likeness(best.distance), 2) if found else None,
        "measure": MEASURE,
        "evaluations": sum(d.result.evaluations for d in doubles),
        "generations": sum(d.result.generations for d in doubles),
        "seconds": round(sum(d.result.seconds for d in doubles), 3),
        "nearest_corpus_distance": None if nearest is None else round(nearest, 6),
        "closer_than_corpus": None if nearest is None or not found else best.distance < nearest,
        "start": best.start,
        "start_distance": rounded(best.start_distance),
        "faces_found": int(sum(np.count_nonzero(d.result.history < NO_FACE_DISTANCE)
                               for d in doubles)),
        "doubles": [{
            "rank": rank,
            "distance": rounded(d.result.distance),
            "likeness": round(likeness(d.result.distance), 2) if d.found else None,
            "start": d.result.start,
            "start_distance": rounded(d.result.start_distance),
            "evaluations": d.result.evaluations,
            "files": dict(zip(("face", "raw", "latent"), face_names(rank), strict=True)),
        } for rank, d in enumerate(doubles, 1)],
        "face_size": face_size,
        "scored_size": scored_size,
        "seed": seed,
        "budget": budget,
        "corpus": None if corpus is None else {
            "path": corpus_path,
            "count": corpus.count,
            "nearest_row": int(corpus.rows[0]) if len(corpus.rows) else None,
            "nearest_source": corpus.sources[0] if corpus.sources else None,
            "latents_started_from": len(corpus.latents),
        },
        "generator": {"engine": "dcgan", "weights_sha256": weights_sha256},
        "files": {"face": face, "raw": raw, "latent": latent, "curve": CURVE, "sheet": SHEET},
    }


@dataclass(frozen=True)
class SheetFace:
    """A face on the sheet with its caption lines."""

    pixels: np.ndarray  # RGB or gray uint8, any size
    lines: tuple[str, ...]


def sheet(faces: Sequence[SheetFace]) -> Image.Image:
    """The faces side by side, each resized to SHEET_CELL with its caption below."""
    from appliance.fonts import font

    text = font("text", 15)
    line_height = 20
    lines = max(len(f.lines) for f in faces)
    pad = 12
    width = len(faces) * (SHEET_CELL + pad) + pad
    height = pad + SHEET_CELL + 6 + lines * line_height + pad
    page = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(page)
    for i, face in enumerate(faces):
        x = pad + i * (SHEET_CELL + pad)
        image = Image.fromarray(np.asarray(face.pixels, np.uint8)).convert("RGB")
        page.paste(image.resize((SHEET_CELL, SHEET_CELL), Image.Resampling.LANCZOS), (x, pad))
        for j, line in enumerate(face.lines):
            draw.text((x, pad + SHEET_CELL + 6 + j * line_height), line, font=text, fill="black")
    return page


def placeholder(lines: Sequence[str]) -> np.ndarray:
    """A light gray square saying why a face is not shown."""
    from appliance.fonts import font

    image = Image.new("RGB", (SHEET_CELL, SHEET_CELL), (225, 225, 225))
    draw = ImageDraw.Draw(image)
    f = font("note", 16)
    for i, line in enumerate(lines):
        draw.text((14, 100 + i * 22), line, font=f, fill=(60, 60, 60))
    return np.asarray(image)


def distance_line(distance: float) -> str:
    if distance >= NO_FACE_DISTANCE or not math.isfinite(distance):
        return "no face found"
    return f"distance {distance:.3f} ({likeness(distance):.0f} % alike)"


def write(out: Path, doubles: Sequence[Double], info: dict[str, Any], *,
          face_size: int, sheet_faces: Sequence[SheetFace]) -> list[Path]:
    """Write every file into `out` (created); returns their paths, the best double's face
    first."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for rank, double in enumerate(doubles, 1):
        face, raw, latent = (out / name for name in face_names(rank))
        atomic_write_bytes(face, _png(Image.fromarray(at_size(double.raw, face_size))))
        atomic_write_bytes(raw, _png(Image.fromarray(np.asarray(double.raw, np.uint8))))
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(double.result.latent, np.float32))
        atomic_write_bytes(latent, buffer.getvalue())
        written += [face, raw, latent]
    nearest = info.get("nearest_corpus_distance")
    history = np.concatenate([d.result.history for d in doubles])
    curve = distance_curve(history, nearest if nearest is not None else math.nan,
                           NO_FACE_DISTANCE)
    atomic_write_bytes(out / CURVE, _png(curve))
    atomic_write_bytes(out / SHEET, _png(sheet(sheet_faces)))
    text = json.dumps(info, indent=2, allow_nan=False) + "\n"
    atomic_write_bytes(out / SUMMARY, text.encode())
    return [*written, out / CURVE, out / SHEET, out / SUMMARY]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
