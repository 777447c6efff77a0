"""Checking what a `Scanner` is handed: vectors, norms, a sketch, threads (ValueError)."""

from __future__ import annotations

import math

import numpy as np

from appliance import _scan
from appliance.search.layout import SketchArrays
from appliance.search.settings import MAX_SKETCH_AXES, MAX_THREADS


def check_vectors(vectors: object, *, finite: bool = False) -> np.ndarray:
    """The vectors as the kernels read them (ValueError if unusable); `finite`: the caller has
    checked every value is finite (else it is counted here, a pass over every row)."""
    if not isinstance(vectors, np.ndarray):
        raise ValueError(f"vectors: expected a float16 numpy array or memmap, got {type(vectors)}")
    if vectors.dtype != np.float16:
        raise ValueError(f"vectors: expected native float16 values, got {vectors.dtype}")
    if vectors.ndim != 2:
        raise ValueError(f"vectors: expected shape (N, d), got {vectors.shape}")
    d = vectors.shape[1]
    if d < 8 or d % 8:
        raise ValueError(f"vectors: dimension d={d} must be a positive multiple of 8")
    if vectors.strides[1] != vectors.itemsize:
        vectors = np.ascontiguousarray(vectors)  # columns strided: the kernels need rows packed
    bad = _scan.count_nonfinite(vectors) if len(vectors) and not finite else 0
    if bad:
        raise ValueError(f"vectors: {bad} row(s) hold NaN or infinity")
    return vectors


def check_sketch(sketch: SketchArrays | None,
                 shape: tuple[int, int]) -> SketchArrays | None:
    """The sketch, after checking it describes (N, d) rows (ValueError otherwise)."""
    if sketch is None:
        return None
    n, d = shape
    m = sketch.scale.shape[0] if sketch.scale.ndim == 1 else -1
    problems = [
        (sketch.mean.shape != (d,), f"mean of shape {sketch.mean.shape}, expected ({d},)"),
        (sketch.rotation.shape != (d, d), f"rotation of shape {sketch.rotation.shape}"),
        (m < 8 or m % 8 or m > min(d, MAX_SKETCH_AXES),
         f"{m} axes: expected a multiple of 8 up to {min(d, MAX_SKETCH_AXES)}"),
        (sketch.scale.dtype != np.float32, "scales must be float32"),
        (sketch.codes.dtype != np.int8 or sketch.codes.shape != (n, m),
         f"codes {sketch.codes.dtype} {sketch.codes.shape}, expected int8 ({n}, {m})"),
        (sketch.tails.dtype != np.float32 or sketch.tails.shape != (n,),
         f"tails {sketch.tails.dtype} {sketch.tails.shape}, expected float32 ({n},)"),
        (not all(math.isfinite(v) and 0 <= v <= 1e30
                 for v in (sketch.error, sketch.radius, sketch.code_norm)),
         "error, radius and code norm must be finite and >= 0"),
    ]
    for bad, what in problems:
        if bad:
            raise ValueError(f"sketch: {what}")
    if sketch.codes.strides[1] != 1 or not sketch.tails.flags.c_contiguous:
        raise ValueError("sketch: codes and tails must be stored row by row (contiguous)")
    return sketch


def check_threads(threads: object) -> int:
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads: expected an integer >= 1, got {threads!r}")
    return int(min(threads, MAX_THREADS))


def check_norms(norms: object, norms2: np.ndarray, n: int, d: int) -> None:
    """ValueError unless `norms` are the rows' Euclidean (or squared) norms, to ~1 %."""
    given = np.asarray(norms)
    if given.dtype.kind != "f" or given.shape != (n,):
        raise ValueError(f"norms: expected float32[{n}], got {given.dtype} {given.shape}")
    given = given.astype(np.float64)
    if not np.all(np.isfinite(given)) or np.any(given < 0):
        raise ValueError("norms: expected finite values >= 0")
    ours = np.sqrt(norms2.astype(np.float64))
    slack = 1e-2 * ours + math.sqrt(d) * 2.0**-23
    euclidean = np.abs(given - ours) <= slack
    if euclidean.all() or (np.abs(np.sqrt(given) - ours) <= slack).all():
        return
    row = int(np.flatnonzero(~euclidean)[0])
    raise ValueError(
        f"norms: do not belong to these vectors (row {row}: {given[row]:.6g}, "
        f"its norm is {ours[row]:.6g})"
    )
