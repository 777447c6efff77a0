"""What the generator draws, measured while it trains (`sosie train --track N`).

Every N steps the moving average's faces of fixed latents (faces 0-99 of seed 1000, the first
of those `bench/train.py measure` draws) are upscaled to 256 pixels as `sosie build` does and
described with dlib: the share in which a face is found, the median distance from those faces
to the reference (a photo of the person, or the nearest of the training faces), and their
diversity (median pairwise distance: a generator that memorises one photo draws it again and
again, and that median falls). A run going nowhere is seen, and stopped, early.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from appliance.generator.dcgan import SIDE
from appliance.images import ImageError

DRAWN_SIDE = 256  # the side `sosie build` describes generated faces at
SAME_PERSON = 0.6  # dlib's threshold


def upscaled(faces: np.ndarray, side: int = DRAWN_SIDE) -> list[np.ndarray]:
    """Each (64, 64, 3) face resized to `side` with Lanczos, as DCGAN.faces does."""
    return [np.asarray(Image.fromarray(face).resize((side, side), Image.Resampling.LANCZOS))
            for face in faces]


def descriptors(analyzer: Any, images: list[np.ndarray]) -> np.ndarray:
    """(k, 128) float64 descriptors of the images in which the analyzer finds a face."""
    found = [f.descriptor for f in analyzer.analyze_many(images) if hasattr(f, "descriptor")]
    return np.array(found, np.float64).reshape(len(found), -1) if found else np.zeros((0, 128))


def photo_reference(analyzer: Any, photo: Any) -> np.ndarray:
    """(1, 128): the descriptor of the face in a photo (ImageError if it has none)."""
    outcome = analyzer.analyze(photo)
    if not hasattr(outcome, "descriptor"):
        raise ImageError(f"{photo}: no face to track the generator against "
                         f"({getattr(outcome, 'reason', 'none found')})")
    return np.asarray(outcome.descriptor, np.float64)[None]


def faces_reference(analyzer: Any, faces: np.ndarray) -> np.ndarray:
    """(k, 128): the descriptors of the training faces ((n, 64, 64, 3) aligned crops)."""
    if faces.shape[1:3] != (SIDE, SIDE):
        raise ValueError(f"faces of shape {faces.shape}: expected (n, {SIDE}, {SIDE}, 3)")
    return descriptors(analyzer, upscaled(faces))


class Tracker:
    """Measures (n, 64, 64, 3) uint8 faces against a reference's (k, 128) descriptors."""

    def __init__(self, analyzer: Any, reference: np.ndarray) -> None:
        if reference.ndim != 2 or not len(reference):
            raise ValueError("no reference face to track the generator against")
        self.analyzer = analyzer
        self.reference = reference

    def __call__(self, faces: np.ndarray) -> dict[str, Any]:
        found = descriptors(self.analyzer, upscaled(faces))
        figures: dict[str, Any] = {"faces": len(faces),
                                   "detected_share": round(len(found) / max(len(faces), 1), 3)}
        if len(found):
            nearest = np.linalg.norm(found[:, None] - self.reference[None], axis=2).min(axis=1)
            figures["median_distance"] = round(float(np.median(nearest)), 4)
            figures["share_under_0.6"] = round(float((nearest < SAME_PERSON).mean()), 3)
        if len(found) > 1:
            pairs = np.linalg.norm(found[:, None] - found[None], axis=2)
            figures["diversity"] = round(float(np.median(pairs[np.triu_indices(len(found), 1)])),
                                         4)
        return figures
