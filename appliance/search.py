"""Exact k-nearest-neighbour search over a (memory-mapped) float16 matrix of descriptors.

`Scanner(vectors, norms=None, *, threads=1)` wraps the SIMD kernels of `ext/` (serial, AVX2,
NEON; the best one this CPU runs, or the one forced by ``SOSIE_KERNEL``)::

    scanner = Scanner(corpus.vectors, corpus.norms)
    rows, distances = scanner.topk(descriptor, k=10)

How the answer stays exact although the kernels add in float32: one fused pass keeps, per
thread, the best ``2k + 8`` rows by their float32 value. Those candidates are rescored in
float64 (numpy's formula and summation order, `_scan.nearest`) and sorted by (distance, row). A
rounding-error bound for the kernel then certifies that no row left out can beat or tie the
k-th: every row left out has a float32 value at or above the heap's worst, hence a true distance
above a known lower bound. When the certificate fails (near-ties, many duplicated rows), a
second pass collects every row whose float32 value could still qualify and rescores those.

With a sketch (`appliance.corpus.sketch`, ``Scanner(..., sketch=corpus_sketch)``) the scan
reads the int8 sketch instead, in two stages (ext/kernels/dispatch.h): the first 40 axes of
every row streamed in 16-row blocks, then one record (the other codes, the norms) for each row
that passes them. Each row gets a certified lower bound of its distance, and only rows whose
bound does not exceed tau (a certified upper bound of the k-th best distance among the rows read
so far) are read in float16, into the same heap and the same certificate. A row never read is
farther than k rows already read, so it cannot rank or tie. The kept rows are rescored in
Cython with numpy's float64 arithmetic (pairwise sums), bit for bit a float64 reference's.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from threadpoolctl import threadpool_limits

from appliance import _scan
from appliance.config import setting
from appliance.corpus.format import MAX_SKETCH_AXES

if TYPE_CHECKING:
    from appliance.corpus.sketch import Sketch

__all__ = ["ENV_KERNEL", "Scanner", "SearchSettings", "kernels"]

ENV_KERNEL = "SOSIE_KERNEL"

#: Software prefetch distance of the fused scan, in rows (tuned with bench/scan.py).
PREFETCH_ROWS = 8
#: Kernels that scan faster with the norm trick than with direct differences (compute-bound:
#: the Cortex-A72 saves a subtraction per 4 lanes; AVX2 is memory-bound either way).
_NORM_TRICK_KERNELS = frozenset({"neon"})
_KNOWN_KERNELS = ("serial", "avx2", "avx512", "neon")
_MAX_THREADS = 64
_MIN_ROWS_PER_THREAD = 64
_U = _scan.FLOAT32_ROUNDOFF  # float32 unit roundoff
_TINY = _scan.FLOAT32_TINY  # smallest normal float32 (covers underflow and flush-to-zero)
_CHUNK_ROWS = 65536
#: Axes of the sketch's first stage, streamed for every row (the rest only for the few rows
#: that pass it): the pass is memory-bound, so fewer bytes per row is less time.
_FIRST_STAGE_AXES = 40
_HUGE_PAGE = 2 << 20
#: Relative margin of the sketch's tail bound over the float32 rounding of the tail norms.
_SKETCH_RHO = 2.0**-12
#: Absolute margin (relative to the data's extent) over the float64 rotation's rounding.
_ROTATION_SLACK = 2.0**-30


@dataclass(frozen=True)
class SearchSettings:
    """The `search` section of the configuration."""

    threads: int = setting(1, min=1, max=_MAX_THREADS)
    kernel: Literal["auto", "serial", "avx2", "avx512", "neon"] = "auto"


def kernels() -> list[str]:
    """Kernels this CPU can run, preferred first (``serial`` is always there)."""
    return [name for name in _scan.compiled_kernels() if _scan.supported(name)]


def _pick_kernel(requested: str | None) -> str:
    name = requested if requested not in (None, "", "auto") else os.environ.get(ENV_KERNEL, "")
    where = "kernel" if requested not in (None, "", "auto") else ENV_KERNEL
    name = name.strip().lower()
    if name in ("", "auto"):
        return _scan.best()
    if name not in _KNOWN_KERNELS:
        known = ", ".join(["auto", *_KNOWN_KERNELS])
        raise ValueError(f"{where}={name!r}: unknown kernel (expected one of: {known})")
    if name not in _scan.compiled_kernels() or not _scan.supported(name):
        raise ValueError(f"{where}={name!r}: this CPU cannot run it (it can: {kernels()})")
    return name


def _check_vectors(vectors: object) -> np.ndarray:
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
    bad = _scan.count_nonfinite(vectors) if len(vectors) else 0
    if bad:
        raise ValueError(f"vectors: {bad} row(s) hold NaN or infinity")
    return vectors


def _check_sketch(sketch: Sketch | None, shape: tuple[int, int]) -> Sketch | None:
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


@dataclass(frozen=True)
class _SketchStages:
    """The sketch laid out for the scan (see dispatch.h): the first stage every query streams, in
    blocks of 16 rows (the codes of the first axes pair by pair, then float32 |scale * codes_i|^2
    over them), and for the few rows that pass it one record each (the other codes, then float32
    |scale * codes_i|^2 over all axes and the tail norm), at most one cache line."""

    mean: np.ndarray  # float64 (d,), contiguous
    rotation: np.ndarray  # float64 (d, d), C-contiguous
    scale: np.ndarray  # float64 (m,)
    blocks: np.ndarray  # uint8 (ceil(N / 16), 16 m1 + 64)
    first_axes: int  # m1
    records: np.ndarray  # uint8 (N, s)
    rest_axes: int  # m - m1
    l1_max: float  # largest sum |codes_i| over all m axes


def first_stage_blocks(codes: np.ndarray, norms2: np.ndarray) -> np.ndarray:
    """(N, m) int8 codes and float32 |scale * codes_i|^2 laid out in the first stage's blocks of
    16 rows (dispatch.h): (ceil(N / 16), 16 m + 64) uint8, padding rows zero."""
    n, m = codes.shape
    blocks = _huge_zeros(-(-n // 16), 16 * m + 64)
    for start in range(0, n, _CHUNK_ROWS):
        _fill_blocks(blocks, start, codes[start : start + _CHUNK_ROWS],
                     norms2[start : start + _CHUNK_ROWS])
    return blocks


def _fill_blocks(blocks: np.ndarray, start: int, codes: np.ndarray, norms2: np.ndarray) -> None:
    """Lay rows start.. (start a multiple of 16) of codes and norms into their blocks."""
    m = codes.shape[1]
    rows = -(-len(codes) // 16) * 16
    part = np.zeros((rows, m), np.int8)
    part[: len(codes)] = codes
    a2 = np.zeros(rows, "=f4")
    a2[: len(codes)] = norms2
    first, last = start // 16, start // 16 + rows // 16
    pairs = part.reshape(rows // 16, 16, m // 2, 2).transpose(0, 2, 1, 3)
    blocks[first:last, : 16 * m] = pairs.reshape(rows // 16, 16 * m).view(np.uint8)
    blocks[first:last, 16 * m :] = a2.reshape(rows // 16, 16).view(np.uint8)


def _sketch_stages(sketch: Sketch) -> _SketchStages:
    """Split the codes after `_FIRST_STAGE_AXES` (one stage when the sketch has no more)."""
    m = sketch.axes
    m1 = min(m, _FIRST_STAGE_AXES)
    rest_axes = m - m1
    scale = sketch.scale.astype(np.float64)
    n = len(sketch)
    blocks = _huge_zeros(-(-n // 16), 16 * m1 + 64)
    width = 8  # a power of two up to a cache line, so that no record straddles two lines
    while width < rest_axes + 8:
        width *= 2
    records = _huge_zeros(n, width)
    records[:, rest_axes + 4 : rest_axes + 8] = sketch.tails.astype("=f4").reshape(n, 1).view(
        np.uint8)
    # |scale * codes_i|^2 as codes_i^2 . scale^2: each term c^2 s^2 is the same single rounding of
    # the same exact product as (c s)^2, and the float64 sum's own error (~m 2^-53) is far
    # inside the float32 rounding the slacks allow for
    first_weights = np.where(np.arange(m) < m1, scale**2, 0.0)
    both = np.stack([first_weights, scale**2], axis=1)  # (m, 2)
    l1 = 0
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, n, _CHUNK_ROWS):
            stop = min(n, start + _CHUNK_ROWS)
            codes = np.asarray(sketch.codes[start:stop])
            wide = codes.astype(np.float64)
            norms2 = (wide * wide) @ both
            _fill_blocks(blocks, start, codes[:, :m1], norms2[:, 0])
            records[start:stop, :rest_axes] = codes[:, m1:].view(np.uint8)
            all_norms2 = norms2[:, 1].astype("=f4").reshape(-1, 1)
            records[start:stop, rest_axes : rest_axes + 4] = all_norms2.view(np.uint8)
            l1 = max(l1, int(np.abs(wide).sum(axis=1).max()))
    mean = np.ascontiguousarray(sketch.mean, np.float64)
    rotation = np.ascontiguousarray(sketch.rotation, np.float64)
    return _SketchStages(mean, rotation, scale, blocks, m1, records, rest_axes, float(l1))


def _huge_zeros(rows: int, width: int) -> np.ndarray:
    """A zeroed C-contiguous (rows, width) uint8 array starting on a 2 MB boundary: the kernel
    may back it with huge pages, which the streamed first pass reads markedly faster."""
    size = max(1, rows * width)
    buffer = np.zeros(size + _HUGE_PAGE, np.uint8)
    skip = -buffer.__array_interface__["data"][0] % _HUGE_PAGE
    return buffer[skip : skip + rows * width].reshape(rows, width)


def _check_threads(threads: object) -> int:
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads: expected an integer >= 1, got {threads!r}")
    return int(min(threads, _MAX_THREADS))


class Scanner:
    """Exact top-k by Euclidean distance over the rows of an (N, d) float16 array.

    ``vectors``: float16, shape (N, d), d a multiple of 8; a numpy memmap at any byte offset or
    row stride works and is never copied (unless its columns are strided).
    ``norms``: optional float32[N] Euclidean row norms (squared norms are accepted too); they
    are checked against the vectors (ValueError if they do not belong to them). The scanner
    computes its own squared norms when its kernel prefers the norm trick.
    ``threads``: rows are split into that many contiguous chunks scanned in parallel.
    ``kernel``: ``serial``, ``avx2``, ``avx512`` or ``neon``; default: ``SOSIE_KERNEL`` if set,
    else the best this CPU runs (see `kernels()`).
    ``norm_trick``: scan with ||x||^2 - 2 q.x + ||q||^2 instead of direct differences;
    default: the kernel's preference. Both are exact after rescoring.
    ``sketch``: the rows' `Sketch` (same N and d): a scan then reads the int8 sketch and only
    the float16 rows it cannot rule out (one thread; exact all the same).

    After each `topk`, ``rows_read`` holds the rows it read in float16 and ``bytes_read`` the
    bytes of the corpus it touched (the sketch's blocks, a cache line per second-stage record,
    the float16 rows): what a memory-bound board pays for.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        norms: np.ndarray | None = None,
        *,
        threads: int = 1,
        kernel: str | None = None,
        norm_trick: bool | None = None,
        sketch: Sketch | None = None,
    ) -> None:
        self._vectors = _check_vectors(vectors)
        self._sketch = _check_sketch(sketch, self._vectors.shape)
        self.rows_read = 0  # float16 rows read by the last scan (N without a sketch)
        self.bytes_read = 0  # bytes of the corpus the last scan touched
        if self._sketch is not None:
            self._stages = _sketch_stages(self._sketch)
        self._threads = _check_threads(threads)
        self._kernel = _pick_kernel(kernel)
        n, d = self._vectors.shape
        depth = 2 * _scan.rounding_depth(self._kernel, d) + 8  # doubled for safety
        self._rel = depth * _U / (1.0 - depth * _U)
        self._tiny = (d + depth) * 2.0 * _TINY
        use_trick = self._kernel in _NORM_TRICK_KERNELS if norm_trick is None else norm_trick
        self._norms2: np.ndarray | None = None
        self._max_norm = 0.0
        if (use_trick or norms is not None) and n:
            norms2 = self._values(np.zeros(d, np.float32), None, 0.0, _scan.L2)
            if norms is not None:
                _check_norms(norms, norms2, n, d)
            if use_trick:
                self._norms2 = norms2
                self._max_norm = math.sqrt(float(norms2.max()) * (1 + self._rel) + self._tiny)

    # -- public -----------------------------------------------------------------------------

    @property
    def kernel(self) -> str:
        """Name of the kernel in use."""
        return self._kernel

    @property
    def threads(self) -> int:
        """Number of threads a scan uses (at most)."""
        return self._threads

    @property
    def norm_trick(self) -> bool:
        """True if scans use precomputed squared norms instead of direct differences."""
        return self._norms2 is not None

    @property
    def shape(self) -> tuple[int, int]:
        """(N, d) of the scanned matrix."""
        return self._vectors.shape

    @property
    def sketch(self) -> Sketch | None:
        """The sketch scans read first, or None."""
        return self._sketch

    def __repr__(self) -> str:
        n, d = self.shape
        trick = ", norm trick" if self.norm_trick else ""
        if self._sketch is not None:
            trick += f", sketch {self._sketch.axes} axes"
        return f"Scanner({n}x{d} float16, kernel={self._kernel}, threads={self._threads}{trick})"

    def topk(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest rows: (indices int64[m], distances float32[m]), m = min(k, N).

        Sorted by ascending Euclidean distance, ties by lower row index; exact with respect to
        float64 arithmetic on the float16 rows and the query as given.
        """
        q64, q32, delta = self._check_query(query)  # delta: the float32 query's distance
        m = min(self._check_k(k), len(self._vectors))
        if m == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)

        if self._sketch is not None:
            found = self._sketch_topk(q64, q32, delta, m)
            if found is not None:
                return found
        self.rows_read = len(self._vectors)
        self.bytes_read = self._vectors.nbytes
        metric, kq, qnorm2, norms2, rel, absolute = self._metric(q32)
        n = len(self._vectors)
        cap = min(n, 2 * m + 8)
        threads = max(1, min(self._threads, n // _MIN_ROWS_PER_THREAD))
        _, rows, bound = _scan.scan(
            self._kernel, metric, self._vectors, kq, norms2, qnorm2, cap, threads, PREFETCH_ROWS
        )
        best, exact = _scan.nearest(self._vectors, rows, q64, m)
        kth = float(exact[-1])
        if len(rows) < n and not kth < _lower_bound(bound, rel, absolute, delta):
            # Some row left out might still tie or beat the k-th: rescore every row that could.
            values = self._values(kq, norms2, qnorm2, metric)
            limit = _upper_bound(kth, rel, absolute, delta)
            with np.errstate(over="ignore"):  # a limit beyond float32: every row qualifies
                rows = np.flatnonzero((values <= limit) | ~np.isfinite(values))
            best, exact = _scan.nearest(self._vectors, rows.astype(np.int64), q64, m)
        return best, np.sqrt(exact).astype(np.float32)

    # -- internals --------------------------------------------------------------------------

    def _sketch_topk(self, q64: np.ndarray, q32: np.ndarray, delta: float,
                     m: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The sketch scan's answer, or None when its certificate fails (then a full scan).

        `_scan.sketch_query` rotates the query, derives the int16 weights and the slacks (its
        docstring has the derivation) and runs the scan; the rows it kept are rescored here.
        """
        sketch = self._sketch
        assert sketch is not None
        stages = self._stages
        n = len(self._vectors)
        found = _scan.sketch_query(
            self._kernel, q64, stages.mean, stages.rotation,
            stages.scale, stages.l1_max, sketch.code_norm, sketch.error, sketch.radius,
            _ROTATION_SLACK, _SKETCH_RHO, stages.blocks, stages.first_axes, stages.records,
            stages.rest_axes, self._vectors, q32, self._rel, self._tiny, delta, m,
            min(n, 2 * m + 8),
        )
        if found is None:
            return None
        _, rows, bound, read, second = found
        self.rows_read = read
        # the first stage's blocks, a cache line per second-stage record, the float16 rows
        self.bytes_read = stages.blocks.nbytes + 64 * second + read * 2 * self._vectors.shape[1]
        best, exact = _scan.nearest(self._vectors, rows, q64, m)
        kth = float(exact[-1])
        if read > len(rows) and not kth < _lower_bound(bound, self._rel, self._tiny, delta):
            return None
        return best, np.sqrt(exact).astype(np.float32)

    def _check_query(self, query: object) -> tuple[np.ndarray, np.ndarray, float]:
        """(the query as given, in float64 (exact for a float32 query), the float32 query for the
        kernels with subnormals flushed to zero (DAZ), how far that is from the query as
        given)."""
        q = np.asarray(query)
        d = self._vectors.shape[1]
        if q.dtype.kind not in "fiu" or q.shape != (d,):
            raise ValueError(f"query: expected {d} real numbers, got {q.dtype} {q.shape}")
        given = np.ascontiguousarray(q, np.float32 if q.dtype == np.float32 else np.float64)
        q32, delta, problem = _scan.query32(given)
        if problem == 1:
            raise ValueError("query: holds NaN or infinity")
        if problem == 2:
            raise ValueError("query: values beyond the float32 range")
        return given.astype(np.float64, copy=False), q32, delta

    @staticmethod
    def _check_k(k: object) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k: expected an integer >= 1, got {k!r}")
        return int(k)

    def _metric(self, q32: np.ndarray) -> tuple[int, np.ndarray, float, np.ndarray | None, float,
                                                 float]:
        """(metric, kernel query, ||q||^2, norms2, relative error, absolute error) for a scan."""
        if self._norms2 is None:
            return _scan.L2, q32, 0.0, None, self._rel, self._tiny
        qnorm = float(np.sqrt(np.dot(q32.astype(np.float64), q32.astype(np.float64))))
        if (self._max_norm + qnorm) ** 2 < 1e36:
            absolute = (self._rel + 3 * _U) * (self._max_norm + qnorm) ** 2 + 2 * self._tiny
            kq = np.ascontiguousarray(-2.0 * q32, dtype=np.float32)
            return _scan.DOT, kq, float(np.float32(qnorm**2)), self._norms2, 0.0, absolute
        return _scan.L2, q32, 0.0, None, self._rel, self._tiny

    def _values(self, kq: np.ndarray, norms2: np.ndarray | None, qnorm2: float,
                metric: int) -> np.ndarray:
        return _scan.values(self._kernel, metric, self._vectors, kq, norms2, qnorm2,
                            self._threads)


def _lower_bound(value: float, rel: float, absolute: float, delta: float) -> float:
    """Least true squared distance of a row whose float32 value is at least `value`."""
    if not math.isfinite(value):
        return 0.0  # overflowed values say nothing useful: take the slow path
    s = max(0.0, (value - absolute) / (1.0 + rel))
    return max(0.0, math.sqrt(s) - delta) ** 2


def _upper_bound(exact: float, rel: float, absolute: float, delta: float) -> float:
    """Greatest float32 value of a row whose true squared distance is at most `exact`."""
    return (math.sqrt(exact) + delta) ** 2 * (1.0 + rel) + absolute


def _check_norms(norms: object, norms2: np.ndarray, n: int, d: int) -> None:
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
