"""`Scanner`: exact k-nearest-neighbour search over a (memory-mapped) float16 matrix, read
through the int8 sketch's scan layout when there is one (see the package's docstring)."""

from __future__ import annotations

import math

import numpy as np

from appliance import _scan
from appliance.search.bounds import lower_bound, upper_bound
from appliance.search.checks import check_norms, check_sketch, check_threads, check_vectors
from appliance.search.kernels import NORM_TRICK_KERNELS, pick_kernel
from appliance.search.layout import ScanLayout, SketchArrays, scan_layout

#: Software prefetch distance of the fused scan, in rows (tuned with bench/scan.py).
PREFETCH_ROWS = 8
_MIN_ROWS_PER_THREAD = 64
_U = _scan.FLOAT32_ROUNDOFF  # float32 unit roundoff
_TINY = _scan.FLOAT32_TINY  # smallest normal float32 (covers underflow and flush-to-zero)
#: Relative margin of the sketch's tail bound over the float32 rounding of the tail norms.
_SKETCH_RHO = 2.0**-12
#: Absolute margin (relative to the data's extent) over the float64 rotation's rounding.
_ROTATION_SLACK = 2.0**-30


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
    ``layout``: that sketch's `ScanLayout` as stored (`layout.stored_layout`, the corpus's
    memory-mapped files); default: laid out here, in memory (a pass over every code).
    ``finite``: the caller vouches that every value of ``vectors`` is finite (a corpus counts
    them once, `Corpus.check_rows`); default: counted here (a pass over every row).

    After each `topk`, ``rows_read`` holds the rows it read in float16 and ``bytes_read`` the
    bytes of the corpus it touched (the sketch's blocks, a cache line per second-stage record,
    the float16 rows): what a memory-bound board pays for; ``rescored`` whether a full scan's
    certificate failed and the rows that could tie were rescored in a second pass.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        norms: np.ndarray | None = None,
        *,
        threads: int = 1,
        kernel: str | None = None,
        norm_trick: bool | None = None,
        sketch: SketchArrays | None = None,
        layout: ScanLayout | None = None,
        finite: bool = False,
    ) -> None:
        self._vectors = check_vectors(vectors, finite=finite)
        self._sketch = check_sketch(sketch, self._vectors.shape)
        self.rows_read = 0  # float16 rows read by the last scan (N without a sketch)
        self.bytes_read = 0  # bytes of the corpus the last scan touched
        self.rescored = False  # the last full scan's certificate failed: every row that could
        # tie or beat the k-th was rescored (the slow second pass)
        if self._sketch is not None:
            self._stages = layout if layout is not None else scan_layout(self._sketch)
        self._threads = check_threads(threads)
        self._kernel = pick_kernel(kernel)
        n, d = self._vectors.shape
        depth = 2 * _scan.rounding_depth(self._kernel, d) + 8  # doubled for safety
        self._rel = depth * _U / (1.0 - depth * _U)
        self._tiny = (d + depth) * 2.0 * _TINY
        use_trick = self._kernel in NORM_TRICK_KERNELS if norm_trick is None else norm_trick
        self._norms2: np.ndarray | None = None
        self._max_norm = 0.0
        if (use_trick or norms is not None) and n:
            norms2 = self._values(np.zeros(d, np.float32), None, 0.0, _scan.L2)
            if norms is not None:
                check_norms(norms, norms2, n, d)
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
    def sketch(self) -> SketchArrays | None:
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
        self.rescored = False
        if m == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)

        if self._sketch is not None:
            found = self._sketch_topk(q64, q32, delta, m)
            if found is not None:
                return found
        self.rows_read = len(self._vectors)
        self.bytes_read = self._vectors.nbytes
        metric, kq, qnorm2, norms2, rel, absolute = self.scan_terms(q32)
        n = len(self._vectors)
        cap = min(n, 2 * m + 8)
        threads = max(1, min(self._threads, n // _MIN_ROWS_PER_THREAD))
        _, rows, bound = _scan.scan(
            self._kernel, metric, self._vectors, kq, norms2, qnorm2, cap, threads, PREFETCH_ROWS
        )
        best, exact = _scan.nearest(self._vectors, rows, q64, m)
        kth = float(exact[-1])
        if len(rows) < n and not kth < lower_bound(bound, rel, absolute, delta):
            # Some row left out might still tie or beat the k-th: rescore every row that could.
            self.rescored = True
            values = self._values(kq, norms2, qnorm2, metric)
            limit = upper_bound(kth, rel, absolute, delta)
            with np.errstate(over="ignore"):  # a limit beyond float32: every row qualifies
                rows = np.flatnonzero((values <= limit) | ~np.isfinite(values))
            best, exact = _scan.nearest(self._vectors, rows.astype(np.int64), q64, m)
        return best, np.sqrt(exact).astype(np.float32)

    def scan_terms(self, q32: np.ndarray) -> tuple[int, np.ndarray, float, np.ndarray | None,
                                                   float, float]:
        """(metric, kernel query, ||q||^2, norms2, relative error, absolute error): what a full
        scan of the float32 query `q32` hands the kernel, and the error bounds its certificate
        assumes of the kernel's float32 values (`search.bounds`)."""
        if self._norms2 is None:
            return _scan.L2, q32, 0.0, None, self._rel, self._tiny
        qnorm = float(np.sqrt(np.dot(q32.astype(np.float64), q32.astype(np.float64))))
        if (self._max_norm + qnorm) ** 2 < 1e36:
            absolute = (self._rel + 3 * _U) * (self._max_norm + qnorm) ** 2 + 2 * self._tiny
            kq = np.ascontiguousarray(-2.0 * q32, dtype=np.float32)
            return _scan.DOT, kq, float(np.float32(qnorm**2)), self._norms2, 0.0, absolute
        return _scan.L2, q32, 0.0, None, self._rel, self._tiny

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
        if read > len(rows) and not kth < lower_bound(bound, self._rel, self._tiny, delta):
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

    def _values(self, kq: np.ndarray, norms2: np.ndarray | None, qnorm2: float,
                metric: int) -> np.ndarray:
        return _scan.values(self._kernel, metric, self._vectors, kq, norms2, qnorm2,
                            self._threads)
