"""A visitor's conjured double, for the running appliance (`ticket.conjure: after`).

`Conjurer` is made once when the service starts (it loads the generator and checks that the
optimiser is installed, so a missing part is reported at start, not at a visit); `conjure`
takes the visitor's descriptor, which stays in memory, and returns the double and its ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from appliance.conjure.objective import FACE_SIZE, NO_FACE_DISTANCE, LikenessObjective
from appliance.conjure.search import Budget, Conjured, conjure, require_cma
from appliance.conjure.starts import corpus_start


@dataclass(frozen=True)
class Double:
    """The conjured face (RGB uint8) with the search that made it and the corpus's nearest."""

    face: np.ndarray
    result: Conjured
    nearest: float | None
    corpus_count: int

    @property
    def found(self) -> bool:
        return self.result.distance < NO_FACE_DISTANCE

    def ticket(self, *, number: int | None = None, layout: Any = None,
               width: int | None = None) -> Image.Image:
        """The short second ticket (mode "1")."""
        from appliance.ticket import compose_conjured

        return compose_conjured(self.face, self.result.distance, nearest=self.nearest,
                                corpus_count=self.corpus_count, seconds=self.result.seconds,
                                number=number, layout=layout, width=width)


class Conjurer:
    """Conjures doubles within `budget` against an open corpus (or none)."""

    def __init__(self, analyzer: Any, corpus: Any = None, *, budget: Budget,
                 weights: Path | None = None, starts: int = 8, seed: int = 0) -> None:
        from appliance.generator.dcgan import DCGAN

        require_cma()  # MissingOptimiser now rather than at the first visit
        self.generator = DCGAN.load(weights)
        self.analyzer = analyzer
        self.corpus = corpus
        self.budget = budget
        self.starts = starts
        self.seed = seed

    def conjure(self, descriptor: np.ndarray, budget: Budget | None = None) -> Double:
        """The double of the face with this descriptor (kept in memory only), within `budget`
        (default: the conjurer's)."""
        start = None
        if self.corpus is not None and self.corpus.count:
            start = corpus_start(self.corpus, descriptor, self.starts, self.generator.checksum)
        size = (start.face_size if start is not None else None) or FACE_SIZE
        objective = LikenessObjective(self.generator, self.analyzer, descriptor, size)
        latents = start.latents if start is not None else np.zeros((0, objective.dim),
                                                                   np.float32)
        result = conjure(objective, latents, budget=budget or self.budget, seed=self.seed,
                         dim=objective.dim)
        face = objective.images(result.latent[None])[0]
        nearest = start.nearest_distance if start is not None else None
        return Double(face, result, nearest, start.count if start is not None else 0)
