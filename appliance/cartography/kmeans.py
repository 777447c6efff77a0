"""k-means in numpy: k-means++ seeding on a sample, then blocked Lloyd iterations."""

from __future__ import annotations

import numpy as np

BLOCK = 16384


def sq_norms(x: np.ndarray) -> np.ndarray:
    """Squared Euclidean norm of every row, float32."""
    return np.einsum("ij,ij->i", x, x, dtype=np.float32)


def assign(x: np.ndarray, centroids: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Index of the nearest centroid for every row of `x` (ties: lowest index)."""
    c = np.asarray(centroids, dtype=np.float32)
    c_sq = sq_norms(c)
    labels = np.empty(len(x), dtype=np.int32)
    for start in range(0, len(x), block):
        rows = np.asarray(x[start : start + block], dtype=np.float32)
        # ||x||^2 is the same for every centroid of a row, so it does not change the argmin.
        labels[start : start + len(rows)] = np.argmin(c_sq[None, :] - 2.0 * rows @ c.T, axis=1)
    return labels


def kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeds (greedy variant: best of a few candidates per step)."""
    n = len(x)
    first = int(rng.integers(n))
    centroids = [x[first]]
    closest = ((x - x[first]) ** 2).sum(axis=1)
    trials = 2 + int(np.log(k))
    for _ in range(1, k):
        total = float(closest.sum())
        if total <= 0:  # fewer distinct points than k: repeat one
            centroids.append(x[int(rng.integers(n))])
            continue
        candidates = np.searchsorted(np.cumsum(closest), rng.random(trials) * total)
        candidates = np.minimum(candidates, n - 1)
        dists = ((x[None, :, :] - x[candidates][:, None, :]) ** 2).sum(axis=2)
        best = np.minimum(closest[None, :], dists).sum(axis=1).argmin()
        centroids.append(x[candidates[best]])
        closest = np.minimum(closest, dists[best])
    return np.array(centroids, dtype=np.float32)


def kmeans(
    x: np.ndarray,
    k: int,
    *,
    iterations: int = 25,
    seed: int = 0,
    sample: int = 50_000,
    tolerance: float = 1e-5,
    plus_plus: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the rows of `x` (n, d) into `k` groups: (centroids (k, d) float32, labels (n,)).

    Centroids are fitted on a random sample of at most `sample` rows (seeded with k-means++),
    then every row is assigned to its nearest centroid. An emptied cluster is re-seeded with the
    point farthest from its centroid. Deterministic for a given seed.
    """
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k = {k}: expected 1 <= k <= number of points ({n})")
    rng = np.random.default_rng(seed)
    if n > sample:
        pick = np.sort(rng.choice(n, size=sample, replace=False))
        fit = np.asarray(x[pick], dtype=np.float32)
    else:
        fit = np.asarray(x, dtype=np.float32)
    seed_rows = fit if len(fit) <= 4096 else fit[rng.choice(len(fit), 4096, replace=False)]
    if plus_plus and k <= len(seed_rows):
        centroids = kmeans_pp(seed_rows, k, rng)
    else:
        centroids = fit[rng.choice(len(fit), size=k, replace=False)].copy()
    previous = np.inf
    for _ in range(iterations):
        labels = assign(fit, centroids)
        sums = np.stack(
            [np.bincount(labels, weights=fit[:, j], minlength=k) for j in range(fit.shape[1])], 1
        )
        counts = np.bincount(labels, minlength=k)
        empty = np.flatnonzero(counts == 0)
        centroids = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        errors = ((fit - centroids[labels]) ** 2).sum(axis=1)
        for j, far in zip(empty, np.argsort(errors)[::-1], strict=False):
            centroids[j] = fit[far]
        inertia = float(errors.sum())
        if not len(empty) and previous - inertia <= tolerance * max(previous, 1e-12):
            break
        previous = inertia
    return centroids, assign(x, centroids)
