"""The k nearest neighbours of every face in a corpus (excluding itself), for the map's panel.

The neighbours are exact: a blocked float32 GEMM selects them, and their distances are then
recomputed from differences. The cost grows as n^2, so the site precomputes them only up to
`EXACT_LIMIT` faces; beyond, the page finds them on click from 8-bit descriptors (`quantize`).
(An inverted file over k-means cells reached only ~30 % recall at 200k synthetic descriptors
for a tenth of the exact cost: their intrinsic dimension is too high for it.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.cartography.kmeans import sq_norms

EXACT_LIMIT = 20_000
BLOCK = 1024


@dataclass(frozen=True)
class Neighbours:
    """`indices` (n, k) int32 and `distances` (n, k) float32, nearest first."""

    indices: np.ndarray
    distances: np.ndarray
    method: str  # "exact"


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


def _refine(x: np.ndarray, rows: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recompute the chosen neighbours' distances from differences (the norm trick cancels for
    near-duplicates) and re-sort them (ties: lower index)."""
    diff = x[idx].astype(np.float64) - x[rows][:, None, :].astype(np.float64)
    dist = np.sqrt(np.einsum("qkd,qkd->qk", diff, diff))
    order = np.lexsort((idx, dist), axis=1)
    return (np.take_along_axis(idx, order, axis=1).astype(np.int32),
            np.take_along_axis(dist, order, axis=1).astype(np.float32))


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
        idx, _ = _top_k(d2, k)
        out_i[start : start + len(q)], out_d[start : start + len(q)] = _refine(x, q, idx)
    return out_i, out_d


def quantize(x: np.ndarray, block: int = 65536) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-bit descriptors for the page: (codes int8 (n, d), mean (d,), scale (d,)) with
    x ~= mean + codes * scale; one scale per dimension so each uses the full range."""
    n, d = x.shape
    mean = np.zeros(d, dtype=np.float64)
    for start in range(0, n, block):
        mean += np.asarray(x[start : start + block], dtype=np.float64).sum(axis=0)
    mean /= max(n, 1)
    spread = np.zeros(d, dtype=np.float64)
    for start in range(0, n, block):
        rows = np.asarray(x[start : start + block], dtype=np.float64) - mean
        spread = np.maximum(spread, np.abs(rows).max(axis=0))
    scale = np.where(spread > 0, spread / 127.0, 1.0)
    codes = np.empty((n, d), dtype=np.int8)
    for start in range(0, n, block):
        rows = np.asarray(x[start : start + block], dtype=np.float64) - mean
        codes[start : start + len(rows)] = np.clip(np.rint(rows / scale), -127, 127)
    return codes, mean.astype(np.float32), scale.astype(np.float32)


def neighbours(x: np.ndarray, k: int) -> Neighbours:
    """Exact k nearest neighbours of every row of `x`."""
    n = len(x)
    if n < 2 or k < 1:
        empty = np.zeros((n, 0), dtype=np.int32)
        return Neighbours(empty, empty.astype(np.float32), "exact")
    idx, dist = exact_neighbours(x, k)
    return Neighbours(idx, dist, "exact")


__all__ = ["EXACT_LIMIT", "Neighbours", "exact_neighbours", "neighbours", "quantize"]
