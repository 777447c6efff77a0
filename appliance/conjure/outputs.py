"""The result folder of `sosie conjure`: the face, its latent, the distance curve, a summary.

    DIR/conjured.png    the conjured face, exactly the pixels that were scored (so describing
                        it again, e.g. `sosie map ... --mark DIR/conjured.png`, gives the same
                        descriptor)
    DIR/conjured.npy    its float32 latent: `DCGAN.render` of it gives the face again
    DIR/curve.png       distance against evaluations, with the nearest corpus face's distance
    DIR/summary.json    distance, evaluations, seconds, nearest corpus distance, ...

Nothing of the visitor is written: no photo, no descriptor. Each file is written atomically.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from appliance.conjure.objective import NO_FACE_DISTANCE
from appliance.conjure.plot import distance_curve
from appliance.conjure.search import Conjured
from appliance.conjure.starts import CorpusStart
from appliance.files import atomic_write_bytes
from appliance.likeness import likeness

FACE, LATENT, CURVE, SUMMARY = "conjured.png", "conjured.npy", "curve.png", "summary.json"


@dataclass(frozen=True)
class Written:
    face: Path
    latent: Path
    curve: Path
    summary: Path


def summary(result: Conjured, corpus: CorpusStart | None, *, photo: str, seed: int,
            budget: dict[str, Any], corpus_path: str | None,
            weights_sha256: str) -> dict[str, Any]:
    """The JSON summary of a conjuring (plain types only)."""
    nearest = corpus.nearest_distance if corpus is not None and len(corpus.distances) else None
    found = result.distance < NO_FACE_DISTANCE
    return {
        "photo": photo,
        "distance": round(result.distance, 6) if found else None,
        "likeness": round(likeness(result.distance), 2) if found else None,
        "evaluations": result.evaluations,
        "generations": result.generations,
        "seconds": round(result.seconds, 3),
        "nearest_corpus_distance": None if nearest is None else round(nearest, 6),
        "closer_than_corpus": None if nearest is None or not found else result.distance < nearest,
        "start": result.start,
        "start_distance": (round(result.start_distance, 6)
                           if result.start_distance < NO_FACE_DISTANCE else None),
        "faces_found": int(np.count_nonzero(result.history < NO_FACE_DISTANCE)),
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
        "files": {"face": FACE, "latent": LATENT, "curve": CURVE},
    }


def write(out: Path, face: np.ndarray, result: Conjured, info: dict[str, Any]) -> Written:
    """Write the four files into `out` (created); returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = Written(out / FACE, out / LATENT, out / CURVE, out / SUMMARY)
    atomic_write_bytes(paths.face, _png(Image.fromarray(face)))
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(result.latent, np.float32))
    atomic_write_bytes(paths.latent, buffer.getvalue())
    nearest = info.get("nearest_corpus_distance")
    curve = distance_curve(result.history, nearest if nearest is not None else math.nan,
                           NO_FACE_DISTANCE)
    atomic_write_bytes(paths.curve, _png(curve))
    text = json.dumps(info, indent=2, allow_nan=False) + "\n"
    atomic_write_bytes(paths.summary, text.encode())
    return paths


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
