"""Where conjuring begins: the nearest corpus faces, and their latents when the generator made them.

A corpus row made by the DCGAN engine names its draw in `sources.tsv`: `dcgan:SEED:INDEX` (a
`sosie build dcgan:COUNT[:SEED]` corpus, whose manifest also records the weights' sha256 and the
face size) or a file `dcgan-SEED-INDEX.png|.jpg` (a folder that `sosie generate` wrote, built
with `sosie build`). Its latent is `DCGAN.latent(SEED, INDEX)`. Rows of any other origin, or of
a generator with other weights, still give the nearest corpus distance, but no latent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from appliance.generator.dcgan import LATENT

#: Seeds and indices above this are not taken for draws (numbers from a file stay bounded).
MAX_NUMBER = 2**63 - 1

_SOURCE = re.compile(r"dcgan:(\d{1,19}):(\d{1,19})")
_FILE = re.compile(r"(?:.*/)?dcgan-(\d{1,19})-(\d{1,19})\.(?:png|jpe?g)", re.IGNORECASE)


def latent_source(source: str) -> tuple[int, int] | None:
    """(seed, index) of a DCGAN draw named by a corpus source, or None for anything else."""
    match = _SOURCE.fullmatch(source) or _FILE.fullmatch(source)
    if match is None:
        return None
    seed, index = int(match.group(1)), int(match.group(2))
    if seed > MAX_NUMBER or index > MAX_NUMBER:
        return None
    return seed, index


@dataclass(frozen=True)
class CorpusStart:
    """The nearest faces of a corpus to the visitor, and the latents of those that are draws."""

    count: int  # rows in the corpus
    rows: np.ndarray  # (k,) nearest rows, closest first
    distances: np.ndarray  # (k,) their distances to the visitor
    sources: tuple[str, ...]  # (k,) their sources
    latents: np.ndarray  # (m, dim) float32 latents of the draws among them, closest first
    #: The side the corpus's generated faces were analysed at (its manifest), None if unknown.
    face_size: int | None = None

    @property
    def nearest_distance(self) -> float:
        """Distance to the visitor of the corpus's nearest face (inf for an empty corpus)."""
        return float(self.distances[0]) if len(self.distances) else float("inf")


def generator_record(manifest: Any) -> dict[str, Any] | None:
    """The manifest's `source` when a DCGAN build made the corpus, else None."""
    source = manifest.get("source") if isinstance(manifest, dict) else None
    if isinstance(source, dict) and source.get("generator") == "dcgan":
        return source
    return None


def corpus_start(corpus: Any, descriptor: np.ndarray, k: int = 8, weights_sha256: str = "",
                 latent: Callable[[int, int], np.ndarray] | None = None) -> CorpusStart:
    """The `k` nearest rows of an open `Corpus` to `descriptor`, with the latents of the draws.

    A corpus whose manifest names other DCGAN weights than `weights_sha256` gives no latents.
    `latent(seed, index)` defaults to `DCGAN.latent`.
    """
    if latent is None:
        from appliance.generator.dcgan import DCGAN

        latent = DCGAN.latent
    record = generator_record(corpus.manifest)
    same = record is None or not weights_sha256 or record.get("weights") == weights_sha256
    size = record.get("size") if record is not None else None
    face_size = size if type(size) is int and 16 <= size <= 4096 else None
    k = min(k, corpus.count)
    if k <= 0:
        return CorpusStart(corpus.count, np.zeros(0, np.int64), np.zeros(0), (),
                           np.zeros((0, LATENT), np.float32), face_size)
    rows, distances = corpus.scanner().topk(np.asarray(descriptor, np.float32), k)
    sources = tuple(corpus.source(int(row)) for row in rows)
    pairs = [latent_source(source) for source in sources] if same else []
    draws = [latent(*pair) for pair in pairs if pair is not None]
    latents = (np.stack(draws).astype(np.float32) if draws
               else np.zeros((0, LATENT), np.float32))
    return CorpusStart(corpus.count, np.asarray(rows, np.int64),
                       np.asarray(distances, np.float64), sources, latents, face_size)
