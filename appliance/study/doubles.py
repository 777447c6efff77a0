"""Distances from the references to every face of a set, and each reference's best doubles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from appliance.likeness import likeness

BLOCK = 65536


def distance_matrix(references: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """(R, N) float32 Euclidean distances from each reference to each row of `vectors`
    (float16 memory maps are read block by block)."""
    q = np.asarray(references, dtype=np.float32)
    qq = (q.astype(np.float64) ** 2).sum(axis=1)[:, None]
    out = np.empty((len(q), len(vectors)), dtype=np.float32)
    for start in range(0, len(vectors), BLOCK):
        x = np.asarray(vectors[start : start + BLOCK], dtype=np.float32)
        xx = (x.astype(np.float64) ** 2).sum(axis=1)[None, :]
        squared = qq + xx - 2.0 * (q @ x.T).astype(np.float64)
        out[:, start : start + len(x)] = np.sqrt(np.maximum(squared, 0.0))
    return out


@dataclass(frozen=True)
class Double:
    """One of a reference's nearest faces, in any set."""

    reference: str
    rank: int
    set: str
    row: int
    file: str
    distance: float

    @property
    def likeness(self) -> float:
        return likeness(self.distance)


def nearest_rows(distances: np.ndarray, k: int) -> np.ndarray:
    """(R, k) column indices of each row's k smallest values, nearest first (ties by index)."""
    k = min(k, distances.shape[1])
    part = np.argpartition(distances, k - 1, axis=1)[:, :k] if k < distances.shape[1] else \
        np.tile(np.arange(distances.shape[1]), (len(distances), 1))
    picked = np.take_along_axis(distances, part, axis=1)
    order = np.lexsort((part, picked), axis=1)
    return np.take_along_axis(part, order, axis=1)


def best_doubles(names: list[str], per_set: dict[str, np.ndarray],
                 sources: dict[str, Callable[[int], str]], k: int) -> list[list[Double]]:
    """For each reference, its k nearest faces over all sets, nearest first.

    `per_set[name]` is that set's (R, N) distance matrix, `sources[name]` names its rows."""
    out: list[list[Double]] = []
    tops = {name: nearest_rows(d, k) for name, d in per_set.items()}
    for r, reference in enumerate(names):
        candidates = []
        for name, d in per_set.items():
            for row in tops[name][r]:
                candidates.append((float(d[r, row]), name, int(row)))
        candidates.sort()
        out.append([Double(reference, rank + 1, s, row, sources[s](row), dist)
                     for rank, (dist, s, row) in enumerate(candidates[:k])])
    return out
