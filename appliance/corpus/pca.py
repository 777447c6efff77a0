"""Principal component analysis of the descriptors, with a deterministic sign convention."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from appliance.corpus.format import PCA_COMPONENTS


@dataclass(frozen=True)
class PCAModel:
    """A fitted PCA: `project(x) = (x - mean) @ components.T`.

    Sign convention: in every component the entry of largest magnitude (lowest index on ties) is
    positive, so two fits of the same data give the same axes, not mirrored ones.
    """

    mean: np.ndarray  # (d,) float64
    components: np.ndarray  # (k, d) float64, orthonormal rows
    explained_variance: np.ndarray  # (k,) float64, sample variance along each axis
    explained_variance_ratio: np.ndarray  # (k,) float64, share of the total variance

    def project(self, x: np.ndarray) -> np.ndarray:
        """Coordinates of rows `x` (n, d) or one vector (d,) on the k axes: (n, k) float64."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if x.shape[1] != self.mean.shape[0]:
            dim = self.mean.shape[0]
            raise ValueError(f"PCA expects vectors of dimension {dim}, got {x.shape[1]}")
        return (x - self.mean) @ self.components.T


def fit_pca(x: np.ndarray, k: int = PCA_COMPONENTS, block: int = 32768) -> PCAModel:
    """Fit `k` principal axes to rows `x` (n, d) in float64.

    The mean and the (d, d) scatter matrix of the centred rows are accumulated block by block in
    float64 (a memory-mapped float16 matrix of 200k rows is never copied whole), then decomposed
    with `numpy.linalg.eigh`: far faster than an SVD of the (n, d) matrix with the same axes.
    BLAS runs single-threaded: reproducible bits, and on small shared machines much faster.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(x, k, block)


def _fit(x: np.ndarray, k: int, block: int) -> PCAModel:
    n, d = x.shape
    if n == 0:
        raise ValueError("cannot fit PCA to zero rows")
    total = np.zeros(d, dtype=np.float64)
    for start in range(0, n, block):
        total += np.asarray(x[start : start + block], dtype=np.float64).sum(axis=0)
    mean = total / n
    scatter = np.zeros((d, d), dtype=np.float64)
    for start in range(0, n, block):
        centred = np.asarray(x[start : start + block], dtype=np.float64) - mean
        scatter += centred.T @ centred
    dof = max(n - 1, 1)
    eigenvalues, eigenvectors = np.linalg.eigh(scatter / dof)
    eigenvalues = np.clip(eigenvalues[::-1], 0.0, None)  # descending
    eigenvectors = eigenvectors[:, ::-1]
    m = min(k, d, n - 1) if n > 1 else 0
    components = np.zeros((k, d), dtype=np.float64)
    variance = np.zeros(k, dtype=np.float64)
    components[:m] = eigenvectors[:, :m].T
    variance[:m] = eigenvalues[:m]
    for row in components[:m]:
        pivot = int(np.argmax(np.abs(row)))
        if row[pivot] < 0:
            row *= -1.0
    total_variance = float(eigenvalues.sum())
    ratio = variance / total_variance if total_variance > 0 else np.zeros(k)
    return PCAModel(mean, components, variance, ratio)
