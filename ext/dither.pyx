# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""1-bit dithering kernels for thermal printing: error diffusion and ordered thresholds.

Every kernel takes uint8 grayscale (H, W), C-contiguous, and returns uint8 (H, W) holding 0 (a dot
of ink) or 255 (bare paper). The integer arithmetic is specified exactly so a short pure-Python
reference (tests/test_dither.py) reproduces every bit:

* error diffusion: a pixel is white when its value plus the diffused error is >= 128; its error
  e = value - output is spread with arithmetic right shifts (floor division by 16 or 8) onto
  neighbours not yet visited; errors falling outside the image are dropped.
* Floyd-Steinberg: right (e*7)>>4, below-left (e*3)>>4, below (e*5)>>4, below-right takes the rest,
  so the error is conserved exactly.
* Atkinson: e>>3 to right, right+2, below-left, below, below-right and two rows below (6/8 of e).
* serpentine: odd rows run right to left with the kernel mirrored.
* ordered: white when gray >= thresholds[y % n, x % m].
"""

import numpy as np

cimport numpy as cnp
from libc.stdlib cimport calloc, free

cnp.import_array()

ctypedef cnp.uint8_t u8

# Row buffers carry PAD cells on each side so kernels write without bounds checks.
cdef enum:
    PAD = 2


cdef inline void _rotate(int** rows, int count) noexcept nogil:
    cdef int* first = rows[0]
    cdef int i
    for i in range(count - 1):
        rows[i] = rows[i + 1]
    rows[count - 1] = first


cdef void _fs_row(const u8* src, u8* out, int* cur, int* nxt, Py_ssize_t w, int d) noexcept nogil:
    """One Floyd-Steinberg row; src/out/cur/nxt point at the first pixel visited, step d."""
    cdef Py_ssize_t i
    cdef int carry = 0, value, e, e7, e3, e5, printed
    cdef int below_prev = 0, below_here = 0  # pending sums for nxt[x - d] and nxt[x]
    for i in range(w):
        value = src[0] + cur[0] + carry
        printed = (value >= 128) * 255  # branch-free: dither patterns defeat prediction
        out[0] = <u8> printed
        e = value - printed
        e7 = (e * 7) >> 4
        e3 = (e * 3) >> 4
        e5 = (e * 5) >> 4
        carry = e7
        nxt[-d] = below_prev + e3  # final: no later pixel touches nxt[x - d]
        below_prev = below_here + e5
        below_here = e - e7 - e3 - e5
        src += d
        out += d
        cur += d
        nxt += d
    nxt[-d] = below_prev
    nxt[0] = below_here


cdef void _atkinson_row(const u8* src, u8* out, int* cur, int* nxt, int* nxt2, Py_ssize_t w,
                        int d) noexcept nogil:
    """One Atkinson row; cur/nxt hold errors from earlier rows, nxt2 is written afresh."""
    cdef Py_ssize_t i
    cdef int carry1 = 0, carry2 = 0, value, e, e8, printed
    cdef int below_prev = 0, below_here = 0
    for i in range(w):
        value = src[0] + cur[0] + carry1
        printed = (value >= 128) * 255  # branch-free: dither patterns defeat prediction
        out[0] = <u8> printed
        e = value - printed
        e8 = e >> 3
        carry1 = carry2 + e8
        carry2 = e8
        nxt[-d] += below_prev + e8
        below_prev = below_here + e8
        below_here = e8
        nxt2[0] = e8
        src += d
        out += d
        cur += d
        nxt += d
        nxt2 += d
    nxt[-d] += below_prev
    nxt[0] += below_here


cdef int _diffuse(const u8[:, ::1] gray, u8[:, ::1] out, int kernel, bint serpentine) noexcept nogil:
    """Run an error-diffusion kernel (0 = Floyd-Steinberg, 1 = Atkinson); -1 if out of memory."""
    cdef Py_ssize_t h = gray.shape[0], w = gray.shape[1]
    cdef Py_ssize_t stride = w + 2 * PAD
    cdef int* block = <int*> calloc(3 * stride, sizeof(int))
    cdef int* rows[3]
    cdef Py_ssize_t y, start
    cdef int d
    if block == NULL:
        return -1
    if w == 0:
        free(block)
        return 0
    for y in range(3):
        rows[y] = block + y * stride + PAD
    for y in range(h):
        d = -1 if (serpentine and (y & 1)) else 1
        start = w - 1 if d < 0 else 0
        if kernel == 0:
            _fs_row(&gray[y, start], &out[y, start], rows[0] + start, rows[1] + start, w, d)
        else:
            _atkinson_row(&gray[y, start], &out[y, start], rows[0] + start, rows[1] + start,
                          rows[2] + start, w, d)
        _rotate(rows, 3)
    free(block)
    return 0


def _check(gray):
    if gray.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale array, got shape {gray.shape}")
    return np.ascontiguousarray(gray, dtype=np.uint8)


def _run(gray, int kernel, bint serpentine):
    cdef const u8[:, ::1] src = _check(gray)
    result = np.empty((src.shape[0], src.shape[1]), dtype=np.uint8)
    cdef u8[:, ::1] out = result
    cdef int rc
    with nogil:
        rc = _diffuse(src, out, kernel, serpentine)
    if rc != 0:
        raise MemoryError("dither: cannot allocate error buffers")
    return result


def floyd_steinberg(gray, bint serpentine=False):
    """Floyd-Steinberg error diffusion of uint8 gray (H, W) to 0/255."""
    return _run(gray, 0, serpentine)


def atkinson(gray, bint serpentine=False):
    """Atkinson error diffusion (6/8 of the error kept) of uint8 gray (H, W) to 0/255."""
    return _run(gray, 1, serpentine)


def ordered(gray, thresholds):
    """Ordered dithering: 255 where gray >= the tiled uint8 threshold map, else 0."""
    cdef const u8[:, ::1] src = _check(gray)
    cdef const u8[:, ::1] t = _check(thresholds)
    cdef Py_ssize_t h = src.shape[0], w = src.shape[1]
    cdef Py_ssize_t n = t.shape[0], m = t.shape[1]
    if n == 0 or m == 0:
        raise ValueError("ordered: empty threshold map")
    result = np.empty((h, w), dtype=np.uint8)
    # each threshold row tiled once across the width, so the inner loop vectorises
    tiled_rows = np.ascontiguousarray(np.tile(np.asarray(t), (1, (w + m - 1) // m + 1)))
    cdef const u8[:, ::1] tiled = tiled_rows
    cdef u8[:, ::1] out = result
    cdef Py_ssize_t y, x
    cdef const u8* s
    cdef const u8* r
    cdef u8* o
    with nogil:
        for y in range(h):
            s = &src[y, 0] if w else NULL
            r = &tiled[y % n, 0]
            o = &out[y, 0] if w else NULL
            for x in range(w):
                o[x] = 255 if s[x] >= r[x] else 0
    return result
