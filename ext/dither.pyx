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
from libc.string cimport memset

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


cdef int _diffuse(const u8[:, ::1] gray, u8[:, ::1] out, int kernel, bint serpentine) noexcept nogil:
    """Run an error-diffusion kernel (0 = Floyd-Steinberg, 1 = Atkinson); -1 if out of memory."""
    cdef Py_ssize_t h = gray.shape[0], w = gray.shape[1]
    cdef Py_ssize_t stride = w + 2 * PAD
    cdef int nrows = 3
    cdef int* block = <int*> calloc(nrows * stride, sizeof(int))
    cdef int* rows[3]
    cdef Py_ssize_t y, i, x
    cdef int d, value, e, e7, e3, e5, e8
    cdef int* r0
    cdef int* r1
    cdef int* r2
    if block == NULL:
        return -1
    for i in range(nrows):
        rows[i] = block + i * stride + PAD
    for y in range(h):
        r0 = rows[0]
        r1 = rows[1]
        r2 = rows[2]
        d = -1 if (serpentine and (y & 1)) else 1
        for i in range(w):
            x = (w - 1 - i) if d < 0 else i
            value = gray[y, x] + r0[x]
            if value >= 128:
                out[y, x] = 255
                e = value - 255
            else:
                out[y, x] = 0
                e = value
            if kernel == 0:
                e7 = (e * 7) >> 4
                e3 = (e * 3) >> 4
                e5 = (e * 5) >> 4
                r0[x + d] += e7
                r1[x - d] += e3
                r1[x] += e5
                r1[x + d] += e - e7 - e3 - e5
            else:
                e8 = e >> 3
                r0[x + d] += e8
                r0[x + 2 * d] += e8
                r1[x - d] += e8
                r1[x] += e8
                r1[x + d] += e8
                r2[x] += e8
        # the finished row becomes the furthest row ahead, cleared (padding included)
        memset(rows[0] - PAD, 0, stride * sizeof(int))
        _rotate(rows, nrows)
    free(block)
    return 0


def _check(gray):
    if gray.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale array, got shape {gray.shape}")
    return np.ascontiguousarray(gray, dtype=np.uint8)


def floyd_steinberg(gray, bint serpentine=False):
    """Floyd-Steinberg error diffusion of uint8 gray (H, W) to 0/255."""
    cdef const u8[:, ::1] src = _check(gray)
    result = np.empty((src.shape[0], src.shape[1]), dtype=np.uint8)
    cdef u8[:, ::1] out = result
    cdef int rc
    with nogil:
        rc = _diffuse(src, out, 0, serpentine)
    if rc != 0:
        raise MemoryError("dither: cannot allocate error buffers")
    return result


def atkinson(gray, bint serpentine=False):
    """Atkinson error diffusion (6/8 of the error kept) of uint8 gray (H, W) to 0/255."""
    cdef const u8[:, ::1] src = _check(gray)
    result = np.empty((src.shape[0], src.shape[1]), dtype=np.uint8)
    cdef u8[:, ::1] out = result
    cdef int rc
    with nogil:
        rc = _diffuse(src, out, 1, serpentine)
    if rc != 0:
        raise MemoryError("dither: cannot allocate error buffers")
    return result


def ordered(gray, thresholds):
    """Ordered dithering: 255 where gray >= the tiled uint8 threshold map, else 0."""
    cdef const u8[:, ::1] src = _check(gray)
    cdef const u8[:, ::1] t = _check(thresholds)
    cdef Py_ssize_t h = src.shape[0], w = src.shape[1]
    cdef Py_ssize_t n = t.shape[0], m = t.shape[1]
    if n == 0 or m == 0:
        raise ValueError("ordered: empty threshold map")
    result = np.empty((h, w), dtype=np.uint8)
    cdef u8[:, ::1] out = result
    cdef Py_ssize_t y, x, ty
    with nogil:
        for y in range(h):
            ty = y % n
            for x in range(w):
                out[y, x] = 255 if src[y, x] >= t[ty, x % m] else 0
    return result
