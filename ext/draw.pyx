# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin Cython layer over ext/draw_kernels (see draw.h): the DCGAN's col2im and Pillow's
Lanczos resize, bit-identical to the numpy and Pillow code they replace."""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint8_t

cnp.import_array()


cdef extern from "draw.h" nogil:
    const char *draw_kernel_name(int kernel)
    int draw_kernel_supported(int kernel)
    int draw_kernel_best()
    int draw_col2im(int kernel, const float *taps, size_t n, size_t h, size_t w, size_t k,
                    size_t cout, size_t stride, size_t padding, const float *bias, int relu,
                    float *out)
    int draw_gather(int kernel, const float *base, size_t base_len, const int64_t *offsets,
                    size_t npix, size_t per, size_t cout, const float *bias, int relu,
                    float *out)
    enum: DRAW_MAX_SIDE
    int draw_lanczos_taps(int in_size, int out_size)
    int draw_lanczos_coeffs(int in_size, int out_size, int *bounds, int32_t *coeffs)
    int draw_resize(int kernel, const uint8_t *src, size_t n, size_t h, size_t w, size_t ch,
                    size_t out_h, size_t out_w, const int *bounds_x, const int32_t *coeffs_x,
                    int ksize_x, const int *bounds_y, const int32_t *coeffs_y, int ksize_y,
                    uint8_t *scratch, int32_t *acc, uint8_t *out)


def compiled_kernels():
    """Names of the kernels compiled into this build, preferred first."""
    names = []
    cdef int k = 0
    while draw_kernel_name(k) != NULL:
        names.append(draw_kernel_name(k).decode())
        k += 1
    return names


def supported(str name):
    """True if the kernel is compiled in and this CPU can run it."""
    names = compiled_kernels()
    return name in names and bool(draw_kernel_supported(names.index(name)))


def best_kernel():
    """The name of the kernel this CPU runs by default."""
    return draw_kernel_name(draw_kernel_best()).decode()


cdef int _kernel(kernel) except -1:
    if kernel is None:
        return draw_kernel_best()
    names = compiled_kernels()
    if kernel not in names or not draw_kernel_supported(names.index(kernel)):
        raise ValueError(f"drawing kernel {kernel!r} is not available here "
                         f"(compiled: {', '.join(names)})")
    return names.index(kernel)


def col2im(taps, int stride, int padding, bias=None, bint relu=False, kernel=None):
    """(n, oh, ow, cout) float32: the taps (n, h, w, k, k, cout) of a transposed convolution
    added into place in (ky, kx) order, cropped by `padding`, then + bias, then ReLU."""
    array = np.ascontiguousarray(taps, dtype=np.float32)
    if array.ndim != 6:
        raise ValueError(f"taps of shape {array.shape}: expected (n, h, w, k, k, cout)")
    cdef const float[:, :, :, :, :, ::1] t = array
    cdef Py_ssize_t n = t.shape[0], h = t.shape[1], w = t.shape[2], k = t.shape[3]
    cdef Py_ssize_t cout = t.shape[5]
    if t.shape[4] != k or stride < 1 or padding < 0 or k < 1 or h < 1 or w < 1:
        raise ValueError(f"taps of shape {array.shape}, stride {stride}, padding {padding}: "
                         "expected (n, h, w, k, k, cout), stride >= 1, padding >= 0")
    cdef Py_ssize_t oh = (h - 1) * stride + k - 2 * padding
    cdef Py_ssize_t ow = (w - 1) * stride + k - 2 * padding
    if oh < 1 or ow < 1:
        raise ValueError(f"padding {padding} leaves no output of taps {array.shape}")
    cdef const float[::1] b = _bias(bias, cout)
    cdef const float *bias_ptr = &b[0] if bias is not None else NULL
    out = np.empty((n, oh, ow, cout), dtype=np.float32)
    cdef float[:, :, :, ::1] o = out
    cdef int kern = _kernel(kernel)
    if n == 0 or cout == 0:
        return out
    cdef int status
    with nogil:
        status = draw_col2im(kern, &t[0, 0, 0, 0, 0, 0], n, h, w, k, cout, stride, padding,
                             bias_ptr, relu, &o[0, 0, 0, 0])
    if status == -2:
        raise MemoryError("col2im: no memory for its index tables")
    return out


def _bias(bias, Py_ssize_t cout):
    """`bias` as cout contiguous float32 (ValueError otherwise); one zero when there is none."""
    if bias is None:
        return np.zeros(1, dtype=np.float32)
    b = np.ascontiguousarray(bias, dtype=np.float32)
    if b.ndim != 1 or b.shape[0] != cout:
        raise ValueError(f"bias of {b.size} values for {cout} channels")
    return b


def gather(base, offsets, int cout, bias=None, bint relu=False, kernel=None):
    """(npix, cout) float32: output pixel p the sum of its taps, the cout floats at
    base[offsets[p, j]:][:cout] for j ascending up to the first negative offset, added from 0
    (as `col2im` adds them), then + bias, then ReLU; for taps computed in pieces, only those
    that land. base: float32 taps (flattened), offsets: (npix, per) int64, each tap inside
    base (ValueError otherwise)."""
    buf = np.ascontiguousarray(base, dtype=np.float32).reshape(-1)
    table = np.ascontiguousarray(offsets, dtype=np.int64)
    if table.ndim != 2 or cout < 1:
        raise ValueError(f"offsets of shape {table.shape}, cout {cout}: expected (npix, per), "
                         "cout >= 1")
    cdef const int64_t[:, ::1] off = table
    cdef Py_ssize_t npix = off.shape[0], per = off.shape[1]
    cdef const float[::1] b = _bias(bias, cout)
    cdef const float *bias_ptr = &b[0] if bias is not None else NULL
    out = np.empty((npix, cout), dtype=np.float32)
    if npix == 0:
        return out
    if per == 0 or buf.shape[0] == 0:
        raise ValueError(f"{per} taps a pixel in {buf.shape[0]} floats: nothing to add")
    cdef const float[::1] t = buf
    cdef float[:, ::1] o = out
    cdef int kern = _kernel(kernel)
    cdef int status
    with nogil:
        status = draw_gather(kern, &t[0], t.shape[0], &off[0, 0], npix, per, cout, bias_ptr,
                             relu, &o[0, 0])
    if status:
        raise ValueError(f"a tap offset lies outside the {buf.shape[0]} floats of taps "
                         f"(cout {cout})")
    return out


def lanczos_coefficients(int in_size, int out_size):
    """Pillow's LANCZOS (bounds (out_size, 2) int32, coefficients (out_size, taps) int32) for
    in_size pixels enlarged to out_size over the whole image."""
    cdef int taps = draw_lanczos_taps(in_size, out_size)
    if taps == 0:
        raise ValueError(f"cannot enlarge {in_size} pixels to {out_size}: expected "
                         f"1 <= in_size <= out_size <= {DRAW_MAX_SIDE}")
    bounds = np.empty((out_size, 2), dtype=np.intc)
    coeffs = np.empty((out_size, taps), dtype=np.int32)
    cdef int[:, ::1] bv = bounds
    cdef int32_t[:, ::1] cv = coeffs
    draw_lanczos_coeffs(in_size, out_size, &bv[0, 0], &cv[0, 0])
    return bounds, coeffs


_COEFFICIENTS = {}


def _coefficients(int in_size, int out_size):
    key = (in_size, out_size)
    if key not in _COEFFICIENTS:
        if len(_COEFFICIENTS) > 64:
            _COEFFICIENTS.clear()
        _COEFFICIENTS[key] = lanczos_coefficients(in_size, out_size)
    return _COEFFICIENTS[key]


def lanczos_enlarge(images, int height, int width, kernel=None):
    """(n, height, width, c) uint8: each of the uint8 images (n, h, w, c) resized as Pillow's
    `Image.resize((width, height), Image.Resampling.LANCZOS)` does, bit for bit, for
    height >= h and width >= w (Pillow may run an image's reduction vertical pass first)."""
    array = np.ascontiguousarray(images, dtype=np.uint8)
    if array.ndim != 4:
        raise ValueError(f"images of shape {array.shape}: expected (n, h, w, channels)")
    cdef const uint8_t[:, :, :, ::1] src = array
    cdef Py_ssize_t n = src.shape[0], h = src.shape[1], w = src.shape[2], ch = src.shape[3]
    if h < 1 or w < 1 or ch < 1 or height < h or width < w or height > DRAW_MAX_SIDE or \
            width > DRAW_MAX_SIDE:
        raise ValueError(f"cannot enlarge {w}x{h} images to {width}x{height}: expected "
                         f"1 <= w <= width <= {DRAW_MAX_SIDE}, 1 <= h <= height <= {DRAW_MAX_SIDE}")
    out = np.empty((n, height, width, ch), dtype=np.uint8)
    if n == 0:
        return out
    bx, kx = _coefficients(w, width)
    by, ky = _coefficients(h, height)
    cdef const int[:, ::1] bxv = bx
    cdef const int32_t[:, ::1] kxv = kx
    cdef const int[:, ::1] byv = by
    cdef const int32_t[:, ::1] kyv = ky
    scratch = np.empty(h * (w + width) * ch, dtype=np.uint8)
    acc = np.empty(max(h, width) * ch, dtype=np.int32)
    cdef uint8_t[::1] sv = scratch
    cdef int32_t[::1] av = acc
    cdef uint8_t[:, :, :, ::1] o = out
    cdef int kern = _kernel(kernel)
    with nogil:
        draw_resize(kern, &src[0, 0, 0, 0], n, h, w, ch, height, width, &bxv[0, 0],
                    &kxv[0, 0], kxv.shape[1], &byv[0, 0], &kyv[0, 0], kyv.shape[1], &sv[0],
                    &av[0], &o[0, 0, 0, 0])
    return out
