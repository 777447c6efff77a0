# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin Cython layer over ext/kernels: validated by appliance/search.py, runs without the GIL."""

import numpy as np

from libc.math cimport INFINITY, NAN, fabs, isfinite, ldexp, nearbyint, sqrt
from libc.stdint cimport int64_t, uintptr_t
from libc.stdlib cimport free, malloc, qsort


cdef extern from "dispatch.h" nogil:
    ctypedef struct sosie_job:
        const char *base
        Py_ssize_t stride
        size_t d
        size_t begin
        size_t end
        const float *q
        const float *norms2
        float qnorm2
        size_t prefetch_rows

    const char *sosie_kernel_name(int kernel)
    int sosie_kernel_supported(int kernel)
    int sosie_kernel_find(const char *name)
    int sosie_kernel_best()
    size_t sosie_rounding_depth(int kernel, size_t d)
    int sosie_scan(int kernel, int metric, const sosie_job *job, size_t cap, int threads,
                   float *dist, int64_t *rows, size_t *counts, float *bound)
    int sosie_values(int kernel, int metric, const sosie_job *job, int threads, float *out)
    ctypedef struct sosie_sketch_job:
        const char *blocks
        size_t m
        const char *rest
        Py_ssize_t rest_stride
        size_t m_rest
        const short *weights
        float step
        float qhead2
        float qhead2_all
        double h2_slack
        double qtail
        double head_slack
        double tail_slack
        double rho
        sosie_job rows
        double rel
        double absolute
        double delta

    int sosie_sketch_scan(int kernel, const sosie_sketch_job *job, size_t k, size_t cap,
                          float *dist, int64_t *rows, size_t *count, float *bound, size_t *read,
                          size_t *second)
    int sosie_sketch_dots(int kernel, const signed char *codes, Py_ssize_t stride, size_t m,
                          const short *w, size_t n, int *out)
    int sosie_sketch_block_dots(int kernel, const char *blocks, size_t m, const short *w,
                                size_t n, int *out)
    size_t sosie_count_nonfinite(const char *base, Py_ssize_t stride, size_t n, size_t d)

cdef extern from "sketch_shared.h" nogil:
    int SOSIE_MAX_SKETCH_AXES

L2 = 0
DOT = 1
#: Most axes a sketch may have, as the kernels are built (ext/kernels/sketch_shared.h).
MAX_SKETCH_AXES = SOSIE_MAX_SKETCH_AXES


def compiled_kernels():
    """Names of the kernels compiled into this build, preferred first."""
    names = []
    cdef int k = 0
    while sosie_kernel_name(k) != NULL:
        names.append(sosie_kernel_name(k).decode())
        k += 1
    return names


def supported(str name):
    """True if the kernel is compiled in and this CPU can run it."""
    return bool(sosie_kernel_supported(sosie_kernel_find(name.encode())))


def best():
    """Name of the best kernel this CPU runs."""
    return sosie_kernel_name(sosie_kernel_best()).decode()


def rounding_depth(str name, size_t d):
    """Longest chain of float32 roundings behind one row value of the kernel."""
    return sosie_rounding_depth(sosie_kernel_find(name.encode()), d)


cdef int _kernel(str name) except -1:
    cdef int k = sosie_kernel_find(name.encode())
    if k < 0 or not sosie_kernel_supported(k):
        raise ValueError(f"kernel {name!r} is not available on this CPU")
    return k


cdef void _job(sosie_job *job, object vectors, size_t begin, size_t end, const float *q,
               const float *norms2, float qnorm2, size_t prefetch_rows):
    job.base = <const char *><uintptr_t>vectors.__array_interface__["data"][0]
    job.stride = vectors.strides[0]
    job.d = vectors.shape[1]
    job.begin = begin
    job.end = end
    job.q = q
    job.norms2 = norms2
    job.qnorm2 = qnorm2
    job.prefetch_rows = prefetch_rows


cdef const float *_pointer(const float[::1] values):
    """First element of an optional float32 vector (NULL for None); the caller keeps it alive."""
    if values is None:
        return NULL
    return &values[0]


def scan(str kernel, int metric, vectors, const float[::1] q, norms2, float qnorm2,
         size_t cap, int threads, size_t prefetch_rows=0):
    """Per-thread top-`cap` of the rows: (dist float32[m], rows int64[m], bound).

    `vectors` must be a validated (N, d) float16 array with unit inner stride; `bound` is a
    value no row left out is below (+inf when every row is kept)."""
    cdef int k = _kernel(kernel)
    cdef size_t n = vectors.shape[0]
    if threads < 1:
        threads = 1
    cdef float[::1] dist = np.empty(threads * cap, np.float32)
    cdef int64_t[::1] rows = np.empty(threads * cap, np.int64)
    counts_arr = np.zeros(threads, np.uintp)
    cdef size_t[::1] counts = counts_arr
    bounds_arr = np.empty(threads, np.float32)
    cdef float[::1] bounds = bounds_arr
    cdef sosie_job job
    _job(&job, vectors, 0, n, &q[0], _pointer(norms2), qnorm2, prefetch_rows)
    cdef int rc
    with nogil:
        rc = sosie_scan(k, metric, &job, cap, threads, &dist[0], &rows[0], &counts[0],
                        &bounds[0])
    if rc != 0:
        raise RuntimeError(f"sosie_scan failed ({rc})")
    if threads == 1:
        kept = counts[0]
        return np.asarray(dist)[:kept], np.asarray(rows)[:kept], float(bounds[0])
    keep = np.concatenate([np.arange(t * cap, t * cap + int(counts_arr[t])) for t in range(threads)])
    return np.asarray(dist)[keep], np.asarray(rows)[keep], float(bounds_arr.min())


def values(str kernel, int metric, vectors, const float[::1] q, norms2, float qnorm2,
           int threads=1):
    """float32 row values of every row (the scan's own arithmetic)."""
    cdef int k = _kernel(kernel)
    cdef size_t n = vectors.shape[0]
    out_arr = np.empty(n, np.float32)
    if n == 0:
        return out_arr
    cdef float[::1] out = out_arr
    cdef sosie_job job
    _job(&job, vectors, 0, n, &q[0], _pointer(norms2), qnorm2, 0)
    with nogil:
        sosie_values(k, metric, &job, threads, &out[0])
    return out_arr


def count_nonfinite(vectors):
    """Rows of a validated float16 matrix holding a NaN or infinity."""
    cdef const char *base = <const char *><uintptr_t>vectors.__array_interface__["data"][0]
    cdef Py_ssize_t stride = vectors.strides[0]
    cdef size_t n = vectors.shape[0], d = vectors.shape[1]
    cdef size_t bad
    with nogil:
        bad = sosie_count_nonfinite(base, stride, n, d)
    return bad



#: float32 unit roundoff and smallest normal, for the slacks here and in search.py
cdef double _U = 2.0 ** -24
cdef double _TINY = 2.0 ** -126
FLOAT32_ROUNDOFF = _U
FLOAT32_TINY = _TINY
#: largest query dimension of the sketch path (stack buffers)
cdef enum:
    _MAX_D = 512


cdef double _pairwise(const double *a, Py_ssize_t n) noexcept nogil:
    """numpy's pairwise summation of n contiguous doubles (add.reduce along a contiguous axis):
    below 8 values in order; up to 128, eight running sums combined as a tree, then the rest;
    beyond, the two halves (the first a multiple of 8) summed alike."""
    cdef Py_ssize_t i, j, n2
    cdef double res
    cdef double r[8]
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    if n <= 128:
        for j in range(8):
            r[j] = a[j]
        i = 8
        while i < n - (n % 8):
            for j in range(8):
                r[j] += a[i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(a, n2) + _pairwise(a + n2, n - n2)


cdef struct _Scored:
    double distance
    int64_t row


cdef int _by_distance_then_row(const void *a, const void *b) noexcept nogil:
    cdef const _Scored *x = <const _Scored *>a
    cdef const _Scored *y = <const _Scored *>b
    if x.distance != y.distance:
        return -1 if x.distance < y.distance else 1
    return (x.row > y.row) - (x.row < y.row)


def nearest(vectors, const int64_t[::1] rows, const double[::1] query, Py_ssize_t m):
    """The m best of `rows` (distinct rows of a validated (N, d) float16 array) by float64
    squared distance to `query`, ties by lower row: (rows int64[m'], squared float64[m']),
    m' = min(m, len(rows)). The arithmetic is numpy's: each difference and square rounded once,
    the squares summed pairwise as ((rows - query) ** 2).sum(axis=1) does, so a float64
    reference gives the same bits and the same order."""
    cdef Py_ssize_t count = rows.shape[0], d = vectors.shape[1], i, j
    cdef Py_ssize_t stride = vectors.strides[0], n = vectors.shape[0]
    if query.shape[0] != d or d > _MAX_D:
        raise ValueError("nearest: inconsistent dimensions")
    for i in range(count):
        if rows[i] < 0 or rows[i] >= n:
            raise IndexError("nearest: row out of range")
    cdef Py_ssize_t kept = min(m, count)
    best_rows = np.empty(kept, np.int64)
    best = np.empty(kept, np.float64)
    if kept <= 0:
        return best_rows, best
    cdef int64_t[::1] out_rows = best_rows
    cdef double[::1] out = best
    cdef const char *base = <const char *><uintptr_t>vectors.__array_interface__["data"][0]
    cdef _Scored *scored = <_Scored *>malloc(count * sizeof(_Scored))
    if scored == NULL:
        raise MemoryError()
    cdef double squares[_MAX_D]
    cdef double x
    cdef const unsigned short *row
    with nogil:
        for i in range(count):
            row = <const unsigned short *>(base + rows[i] * stride)
            for j in range(d):
                x = _half_to_double(row[j]) - query[j]
                squares[j] = x * x
            scored[i].distance = _pairwise(squares, d)
            scored[i].row = rows[i]
        qsort(scored, count, sizeof(_Scored), _by_distance_then_row)
        for i in range(kept):
            out_rows[i] = scored[i].row
            out[i] = scored[i].distance
    free(scored)
    return best_rows, best


cdef inline double _half_to_double(unsigned short h) noexcept nogil:
    """A float16's exact value."""
    cdef int exponent = (h >> 10) & 0x1f
    cdef int mantissa = h & 0x3ff
    cdef double v
    if exponent == 0:
        v = ldexp(<double>mantissa, -24)
    elif exponent == 31:
        v = INFINITY if mantissa == 0 else NAN
    else:
        v = ldexp(<double>(mantissa | 0x400), exponent - 25)
    return -v if h & 0x8000 else v


def query32(given):
    """(q32, delta, problem) for a 1-D float32 or float64 query: the float32 query the kernels see
    (subnormals flushed to zero: the kernels may run with denormals-are-zero), its Euclidean
    distance `delta` from the query as given (float64), and 0, or 1 when the query holds NaN or
    infinity, 2 when a value is beyond the float32 range."""
    cdef Py_ssize_t d = given.shape[0], j
    q_arr = np.empty(d, np.float32)
    cdef float[::1] q = q_arr
    cdef double v, gap, delta2 = 0.0
    cdef float f
    cdef const double[::1] g64
    cdef const float[::1] g32
    if given.dtype == np.float32:
        g32 = given
        for j in range(d):
            f = g32[j]
            if not isfinite(f):
                return q_arr, 0.0, 1
            if fabs(f) < _TINY:
                delta2 += <double>f * f
                f = 0.0
            q[j] = f
    else:
        g64 = given
        for j in range(d):
            v = g64[j]
            if not isfinite(v):
                return q_arr, 0.0, 1
            f = <float>v  # IEEE rounding: beyond the float32 range gives infinity
            if not isfinite(f):
                return q_arr, 0.0, 2
            if fabs(f) < _TINY:
                f = 0.0
            q[j] = f
            gap = v - <double>f
            delta2 += gap * gap
    return q_arr, sqrt(delta2), 0


def sketch_query(str kernel, const double[::1] query, const double[::1] mean,
                 const double[:, ::1] rotation, const double[::1] scale, double l1_max,
                 double code_norm, double error, double radius, double rotation_slack,
                 double rho, blocks, size_t m_first, records, size_t m_rest,
                 vectors, const float[::1] q, double rel, double absolute, double delta,
                 size_t k, size_t cap):
    """One sketch query (dispatch.h): rotate `query` (float64, as given) onto the sketch's axes,
    derive the int16 weights and the slacks, run the scan. Returns (dist float32[c], rows
    int64[c], bound, rows read in float16, rows whose record the second stage read), or None
    when the query is too far from the corpus for float32 bounds (then a full scan answers).

    The weights: w = rint(scale * head / S), S = max |scale * head| / 32767; h2 in float32 is
    within h2_slack of |scale * codes - head|^2 (the weights' rounding, at most S/2 times a row's
    sum of |codes| (l1_max), plus six float32 roundings of terms bounded by Cauchy-Schwarz). The
    head bound then loses the quantization error and the rotation's rounding (rotation_slack
    times the data's extent); the tail bound the float32 tails' rounding (rho).
    `blocks` (B, 16 m_first + 64) uint8, C-contiguous, B = ceil(N / 16): the first stage in
    blocks of 16 rows (dispatch.h); `records` (N, s) uint8, C-contiguous, s a
    multiple of 4 >= m_rest + 8: each row's m_rest second-stage codes, then float32 A_i over all
    axes and its tail norm; `vectors` a validated (N, d) float16 array, `q` the float32 query the
    kernels see; 1 <= k <= cap."""
    cdef int kk = _kernel(kernel)
    cdef Py_ssize_t d = query.shape[0], m = scale.shape[0], m1 = m_first, a, j
    if (d > _MAX_D or mean.shape[0] != d or rotation.shape[0] != d or rotation.shape[1] != d
            or m1 + <Py_ssize_t>m_rest != m or m > d or q.shape[0] != d):
        raise ValueError("sketch_query: inconsistent dimensions")
    cdef size_t n = vectors.shape[0]
    if (blocks.dtype != np.uint8 or blocks.ndim != 2 or not blocks.flags.c_contiguous
            or blocks.shape[0] != (n + 15) // 16 or blocks.shape[1] != 16 * m_first + 64):
        raise ValueError("blocks: expected (ceil(N / 16), 16 m + 64) uint8 blocks")
    if (records.dtype != np.uint8 or records.ndim != 2 or records.shape[0] != n
            or not records.flags.c_contiguous or records.shape[1] % 4
            or records.shape[1] < m_rest + 8 or n == 0):
        raise ValueError("records: expected (N, s) uint8 rows of codes and two floats")
    cdef double diff[_MAX_D]
    cdef double turned[_MAX_D]
    cdef double extent2 = 0.0, head2 = 0.0, first2 = 0.0, tail2 = 0.0, peak = 0.0, v
    for j in range(d):
        diff[j] = query[j] - mean[j]
        extent2 += diff[j] * diff[j]
    cdef double extent = sqrt(extent2)
    if not isfinite(extent) or extent > 1e15:
        return None  # far beyond any descriptor: bounds would overflow float32
    for a in range(d):
        v = 0.0
        for j in range(d):
            v += rotation[a, j] * diff[j]
        turned[a] = v
        if a < m1:
            first2 += v * v
        if a < m:
            head2 += v * v
            peak = max(peak, fabs(scale[a] * v))
        else:
            tail2 += v * v
    cdef double step = peak / 32767.0 if peak > 0 else 1.0
    weights_arr = np.empty(m, np.int16)
    cdef short[::1] weights = weights_arr
    for a in range(m):
        weights[a] = <short>min(32767.0, max(-32767.0, nearbyint(scale[a] * turned[a] / step)))
    cdef double head_norm = sqrt(head2), coarse = step * l1_max
    cdef double slack_rotation = rotation_slack * (radius + extent)
    cdef float[::1] dist = np.empty(cap, np.float32)
    cdef int64_t[::1] rows = np.empty(cap, np.int64)
    cdef size_t count = 0, read = 0, second = 0
    cdef float bound = 0
    cdef sosie_sketch_job job
    job.blocks = <const char *><uintptr_t>blocks.__array_interface__["data"][0]
    job.m = m_first
    job.weights = &weights[0]
    job.rest = <const char *><uintptr_t>records.__array_interface__["data"][0]
    job.rest_stride = records.shape[1]
    job.m_rest = m_rest
    job.step = -2.0 * step
    job.qhead2 = first2
    job.qhead2_all = head2
    job.h2_slack = 1.01 * coarse + 8 * _U * ((code_norm + head_norm) ** 2 + coarse) + 8 * _TINY
    job.qtail = sqrt(tail2)
    job.head_slack = error + slack_rotation
    job.tail_slack = slack_rotation
    job.rho = rho
    _job(&job.rows, vectors, 0, vectors.shape[0], &q[0], NULL, 0.0, 0)
    job.rel = rel
    job.absolute = absolute
    job.delta = delta
    cdef int rc
    with nogil:
        rc = sosie_sketch_scan(kk, &job, k, cap, &dist[0], &rows[0], &count, &bound, &read,
                               &second)
    if rc != 0:
        raise RuntimeError(f"sosie_sketch_scan failed ({rc})")
    return (np.asarray(dist)[:count], np.asarray(rows)[:count], float(bound), int(read),
            int(second))


def sketch_dots(str kernel, codes, const short[::1] weights):
    """int32 D_i = sum_j codes_ij weights_j of every row of (N, m) int8 codes with unit inner
    stride (the second stage's kernel)."""
    cdef int kk = _kernel(kernel)
    cdef size_t n = codes.shape[0], m = codes.shape[1]
    out_arr = np.empty(n, np.int32)
    if n == 0:
        return out_arr
    if codes.dtype != np.int8 or codes.strides[1] != 1 or weights.shape[0] != m:
        raise ValueError("codes: expected (N, m) int8 rows, m weights")
    cdef int[::1] out = out_arr
    cdef const signed char *base = <const signed char *><uintptr_t>codes.__array_interface__["data"][0]
    cdef Py_ssize_t stride = codes.strides[0]
    cdef int rc
    with nogil:
        rc = sosie_sketch_dots(kk, base, stride, m, &weights[0], n, &out[0])
    if rc != 0:
        raise ValueError(f"sketch_dots: {m} codes, expected a multiple of 8")
    return out_arr


def sketch_block_dots(str kernel, blocks, size_t m, size_t n, const short[::1] weights):
    """int32 D_i of the first n rows of first-stage blocks of m axes (the first pass' kernel)."""
    cdef int kk = _kernel(kernel)
    out_arr = np.empty(n, np.int32)
    if n == 0:
        return out_arr
    if (blocks.dtype != np.uint8 or blocks.ndim != 2 or not blocks.flags.c_contiguous
            or blocks.shape[0] * 16 < n or blocks.shape[1] != 16 * m + 64
            or weights.shape[0] < m):
        raise ValueError("blocks: expected (ceil(n / 16), 16 m + 64) uint8 blocks, m weights")
    cdef int[::1] out = out_arr
    cdef const char *base = <const char *><uintptr_t>blocks.__array_interface__["data"][0]
    cdef int rc
    with nogil:
        rc = sosie_sketch_block_dots(kk, base, m, &weights[0], n, &out[0])
    if rc != 0:
        raise ValueError(f"sketch_block_dots: {m} axes, expected a multiple of 8 up to 128")
    return out_arr
