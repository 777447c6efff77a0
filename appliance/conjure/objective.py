"""What conjuring minimises: the descriptor distance from a generated face to the visitor's.

A latent is rendered by the generator (64x64), upscaled with Lanczos to `size` pixels exactly
as `DCGAN.faces` does (so a corpus built from generated faces and a conjured face are the same
kind of image), and given to the face analyzer. A draw in which no face is found scores
`NO_FACE_DISTANCE`, worse than any real distance, so the optimiser ranks it last. The visitor's
descriptor is held in memory only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The score of a draw without a face: above any distance between two dlib descriptors seen in
#: practice (norms are ~1.46; different people are ~0.6-1.1 apart).
NO_FACE_DISTANCE = 2.0

#: The side the generated faces are upscaled to before analysis (as `sosie generate`'s default).
FACE_SIZE = 256


def upscale(small: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """(n, size, size, 3) uint8: each 64x64 face resized with Lanczos (as `DCGAN.faces`)."""
    from PIL import Image

    if small.shape[1] == size:
        return small
    out = np.empty((len(small), size, size, 3), dtype=np.uint8)
    for row, face in enumerate(small):
        out[row] = np.asarray(Image.fromarray(face).resize((size, size),
                                                           Image.Resampling.LANCZOS))
    return out


class LikenessObjective:
    """Scores latents by how far their face's descriptor is from `target` (lower is closer).

    `generator` renders (n, 100) latents to (n, 64, 64, 3) uint8 faces (`DCGAN.render`);
    `analyzer` is a `FaceAnalyzer` (or anything whose `analyze(rgb)` returns an object with a
    `descriptor`, or one without for "no face").
    """

    def __init__(self, generator: Any, analyzer: Any, target: np.ndarray,
                 size: int = FACE_SIZE) -> None:
        target = np.asarray(target, dtype=np.float64).reshape(-1)
        if not np.isfinite(target).all():
            raise ValueError("the target descriptor holds values that are not finite")
        self.generator = generator
        self.analyzer = analyzer
        self.size = size
        self._target = target
        self.evaluations = 0

    @property
    def dim(self) -> int:
        """Latent dimensions the generator takes."""
        return int(self.generator.layers[0].weights.shape[0])

    def images(self, latents: np.ndarray) -> np.ndarray:
        """(n, size, size, 3) uint8 faces of (n, dim) latents, as they are scored."""
        return upscale(self.generator.render(np.asarray(latents, np.float32)), self.size)

    def descriptors(self, images: np.ndarray) -> list[np.ndarray | None]:
        """Each image's descriptor, None where the analyzer finds no face."""
        out: list[np.ndarray | None] = []
        for image in images:
            face = self.analyzer.analyze(image)
            descriptor = getattr(face, "descriptor", None)
            out.append(None if descriptor is None else np.asarray(descriptor, np.float64))
        return out

    def distance(self, descriptor: np.ndarray | None) -> float:
        """Euclidean distance to the target; NO_FACE_DISTANCE for None."""
        if descriptor is None:
            return NO_FACE_DISTANCE
        return float(np.linalg.norm(descriptor - self._target))

    def __call__(self, latents: np.ndarray) -> np.ndarray:
        """(n,) float64 distances of (n, dim) latents, NO_FACE_DISTANCE where no face."""
        latents = np.atleast_2d(np.asarray(latents, np.float32))
        if not np.isfinite(latents).all():
            raise ValueError("latents hold values that are not finite")
        distances = np.array([self.distance(d) for d in self.descriptors(self.images(latents))])
        self.evaluations += len(latents)
        return distances
