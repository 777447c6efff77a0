"""The k nearest neighbours of every face in a corpus (excluding itself), for the map's panel.

Up to `EXACT_LIMIT` faces the neighbours are exact (blocked float32 GEMM). Beyond, an inverted
file over k-means cells is searched: the queries of one cell are compared with the members of
the `probe` cells nearest to it, so the cost grows as n * probe * n / cells instead of n^2.
Its recall is measured against the exact answer on a random sample and reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.cartography.kmeans import assign, kmeans, sq_norms

EXACT_LIMIT = 25_000
BLOCK = 1024


@dataclass(frozen=True)
class Neighbours:
    """`indices` (n, k) int32 and `distances` (n, k) float32, nearest first; how they were found."""

    indices: np.ndarray
    distances: np.ndarray
    method: str  # "exact" or "ivf"
    recall: float  # 1.0 for exact; measured on a sample for ivf


def _top_k(d2: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the k smallest entries of each row, ascending (ties: index)."""
    m = d2.shape[1]
    if k < m:
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(m), d2.shape).copy()
    values = np.take_along_axis(d2, part, axis=1)
    order = np.lexsort((part, values), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(values, order, axis=1)


def exact_neighbours(
    x: np.ndarray, k: int, queries: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of `x` for each row index in `queries` (default: all), self excluded."""
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    rows = np.arange(n) if queries is None else np.asarray(queries)
    k = min(k, n - 1)
    sq = sq_norms(x)
    out_i = np.empty((len(rows), k), dtype=np.int32)
    out_d = np.empty((len(rows), k), dtype=np.float32)
    for start in range(0, len(rows), BLOCK):
        q = rows[start : start + BLOCK]
        d2 = sq[q, None] + sq[None, :] - 2.0 * (x[q] @ x.T)
        d2[np.arange(len(q)), q] = np.inf
        idx, val = _top_k(d2, k)
        out_i[start : start + len(q)] = idx
        out_d[start : start + len(q)] = np.sqrt(np.maximum(val, 0.0))
    return out_i, out_d


def ivf_neighbours(
    x: np.ndarray, k: int, *, cells: int | None = None, probe: int = 12, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate k nearest rows of every row of `x` through k-means cells, self excluded."""
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    k = min(k, n - 1)
    cells = cells or max(1, int(2 * np.sqrt(n)))
    centroids, labels = kmeans(x, cells, iterations=8, seed=seed, sample=40_000, plus_plus=False)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(cells + 1))
    sq = sq_norms(x)
    c_sq = sq_norms(centroids)
    probe = min(probe, cells)
    near_cells = np.argsort(c_sq[None, :] - 2.0 * centroids @ centroids.T, axis=1)[:, :probe]
    out_i = np.empty((n, k), dtype=np.int32)
    out_d = np.empty((n, k), dtype=np.float32)
    for c in range(cells):
        q = order[bounds[c] : bounds[c + 1]]
        if not len(q):
            continue
        cand = np.concatenate([order[bounds[j] : bounds[j + 1]] for j in near_cells[c]])
        while len(cand) <= k:  # tiny cells: widen to everything
            cand = np.arange(n)
        d2 = sq[q, None] + sq[None, cand] - 2.0 * (x[q] @ x[cand].T)
        d2[q[:, None] == cand[None, :]] = np.inf
        idx, val = _top_k(d2, k)
        out_i[q] = cand[idx]
        out_d[q] = np.sqrt(np.maximum(val, 0.0))
    return out_i, out_d


def neighbours(
    x: np.ndarray, k: int, *, exact_limit: int = EXACT_LIMIT, seed: int = 0, sample: int = 256
) -> Neighbours:
    """k nearest neighbours of every row (exact when n <= exact_limit, else IVF + recall)."""
    n = len(x)
    if n < 2 or k < 1:
        empty = np.zeros((n, 0), dtype=np.int32)
        return Neighbours(empty, empty.astype(np.float32), "exact", 1.0)
    if n <= exact_limit:
        idx, dist = exact_neighbours(x, k)
        return Neighbours(idx, dist, "exact", 1.0)
    idx, dist = ivf_neighbours(x, k, seed=seed)
    rng = np.random.default_rng(seed)
    probe_rows = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    truth, _ = exact_neighbours(x, idx.shape[1], probe_rows)
    hits = sum(len(np.intersect1d(a, b)) for a, b in zip(idx[probe_rows], truth, strict=True))
    return Neighbours(idx, dist, "ivf", hits / truth.size)


__all__ = ["Neighbours", "assign", "exact_neighbours", "ivf_neighbours", "neighbours"]
