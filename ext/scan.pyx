# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin Cython layer over ext/kernels: validated by appliance/search.py, runs without the GIL."""

import numpy as np

from libc.stdint cimport int64_t, uintptr_t


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
        const signed char *codes
        Py_ssize_t code_stride
        size_t m
        const float *sq_norms
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
                          float *dist, int64_t *rows, size_t *count, float *bound, size_t *read)
    int sosie_sketch_dots(int kernel, const sosie_sketch_job *job, int *out)
    size_t sosie_count_nonfinite(const char *base, Py_ssize_t stride, size_t n, size_t d)

L2 = 0
DOT = 1


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


cdef void _sketch_job(sosie_sketch_job *job, object codes, const short[::1] weights):
    job.codes = <const signed char *><uintptr_t>codes.__array_interface__["data"][0]
    job.code_stride = codes.strides[0]
    job.m = codes.shape[1]
    job.rest = NULL
    job.rest_stride = 0
    job.m_rest = 0
    job.weights = &weights[0]


def sketch_scan(str kernel, codes, records, size_t m_rest, const float[::1] sq_norms,
                const short[::1] weights, float step, float qhead2, float qhead2_all,
                double h2_slack, double qtail, double head_slack, double tail_slack, double rho,
                vectors, const float[::1] q, double rel, double absolute, double delta, size_t k,
                size_t cap):
    """The sketch scan (dispatch.h): (dist float32[c], rows int64[c], bound, rows read).

    `codes` (N, m) int8 with unit inner stride, m + m_rest <= 128; `records` (N, s) uint8,
    C-contiguous, s a multiple of 4 >= m_rest + 8: each row's m_rest second-stage codes, then
    float32 A_i over all axes and its tail norm; `sq_norms` float32[N] over the first m axes;
    `weights` int16[m + m_rest]; `vectors` a validated (N, d) float16 array, `q` float32[d];
    1 <= k <= cap."""
    cdef int kk = _kernel(kernel)
    cdef float[::1] dist = np.empty(cap, np.float32)
    cdef int64_t[::1] rows = np.empty(cap, np.int64)
    cdef size_t count = 0, read = 0
    cdef float bound = 0
    cdef sosie_sketch_job job
    _sketch_job(&job, codes, weights)
    if (records.dtype != np.uint8 or records.ndim != 2 or records.shape[0] != codes.shape[0]
            or not records.flags.c_contiguous or records.shape[1] % 4
            or records.shape[1] < m_rest + 8 or weights.shape[0] != job.m + m_rest):
        raise ValueError("records: expected (N, s) uint8 rows of m_rest codes and two floats")
    if codes.shape[0] != sq_norms.shape[0] or codes.shape[0] != vectors.shape[0]:
        raise ValueError("sq_norms, vectors: expected one per row of codes")
    job.rest = <const char *><uintptr_t>records.__array_interface__["data"][0]
    job.rest_stride = records.shape[1]
    job.m_rest = m_rest
    job.sq_norms = &sq_norms[0]
    job.step = step
    job.qhead2 = qhead2
    job.qhead2_all = qhead2_all
    job.h2_slack = h2_slack
    job.qtail = qtail
    job.head_slack = head_slack
    job.tail_slack = tail_slack
    job.rho = rho
    _job(&job.rows, vectors, 0, vectors.shape[0], &q[0], NULL, 0.0, 0)
    job.rel = rel
    job.absolute = absolute
    job.delta = delta
    cdef int rc
    with nogil:
        rc = sosie_sketch_scan(kk, &job, k, cap, &dist[0], &rows[0], &count, &bound, &read)
    if rc != 0:
        raise RuntimeError(f"sosie_sketch_scan failed ({rc})")
    return np.asarray(dist)[:count], np.asarray(rows)[:count], float(bound), int(read)


def sketch_dots(str kernel, codes, const short[::1] weights):
    """int32 D_i = sum_j codes_ij weights_j of every row (the sketch pass' integer dots)."""
    cdef int kk = _kernel(kernel)
    cdef size_t n = codes.shape[0]
    out_arr = np.empty(n, np.int32)
    if n == 0:
        return out_arr
    cdef int[::1] out = out_arr
    cdef sosie_sketch_job job
    _sketch_job(&job, codes, weights)
    job.rows.begin = 0
    job.rows.end = n
    with nogil:
        sosie_sketch_dots(kk, &job, &out[0])
    return out_arr
