# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin Cython layer over ext/resnet_kernels (see resnet.h): the face ResNet's Winograd input and
output transforms, bit-identical to the numpy passes they replace
(appliance.faces.resnet.winograd_input_numpy / winograd_output_numpy)."""

import numpy as np

cimport numpy as cnp

cnp.import_array()


cdef extern from "resnet.h" nogil:
    const char *resnet_kernel_name(int kernel)
    int resnet_kernel_supported(int kernel)
    int resnet_kernel_best()
    int resnet_winograd_input(int kernel, const float *grid, size_t m, size_t th, size_t tw,
                              size_t cin, float *tiles)
    int resnet_winograd_output(int kernel, const float *products, size_t m, size_t th,
                               size_t tw, size_t cout, size_t height, size_t width,
                               const float *bias, const float *residual, int relu, float *out)


def compiled_kernels():
    """Names of the kernels compiled into this build, preferred first."""
    names = []
    cdef int k = 0
    while resnet_kernel_name(k) != NULL:
        names.append(resnet_kernel_name(k).decode())
        k += 1
    return names


def supported(str name):
    """True if the kernel is compiled in and this CPU can run it."""
    names = compiled_kernels()
    return name in names and bool(resnet_kernel_supported(names.index(name)))


def best_kernel():
    """The name of the kernel this CPU runs by default."""
    return resnet_kernel_name(resnet_kernel_best()).decode()


cdef int _best = resnet_kernel_best()


cdef int _kernel(kernel) except -1:
    if kernel is None:
        return _best
    names = compiled_kernels()
    if kernel not in names or not resnet_kernel_supported(names.index(kernel)):
        raise ValueError(f"resnet kernel {kernel!r} is not available here "
                         f"(compiled: {', '.join(names)})")
    return names.index(kernel)


cdef bint _plain(cnp.ndarray a, bint written):
    """float32, C-contiguous and aligned (the kernels' pointer arithmetic), writeable if the
    kernel writes it (never into a read-only buffer such as a bytes object's)."""
    return (a.dtype == np.float32 and a.flags.c_contiguous and a.flags.aligned
            and (a.flags.writeable or not written))


cdef int _check_grid(str what, cnp.ndarray grid, Py_ssize_t th, Py_ssize_t tw,
                     bint written=False) except -1:
    if (not _plain(grid, written) or grid.ndim != 5
            or grid.shape[1] != 2 * th + 2 or grid.shape[2] != 2 or grid.shape[3] != tw + 1):
        raise ValueError(f"{what}: a C-contiguous float32 grid (m, {2 * th + 2}, 2, {tw + 1}, c) "
                         f"expected{' (aligned, writeable)' if written else ''}, got "
                         f"{grid.dtype} {np.shape(grid)}")
    return 0


cdef int _check_status(str what, int status) except -1:
    if status == -2:
        raise MemoryError(f"{what}: no memory for a row of tiles")
    if status:
        raise ValueError(f"{what}: refused by the C kernel (status {status})")
    return 0


def winograd_input(cnp.ndarray grid not None, int height, int width,
                   cnp.ndarray tiles not None, kernel=None):
    """B^T d B of every 4x4 tile of `grid` (m, 2 th + 2, 2, tw + 1, cin) holding images of
    height x width (th, tw: their halves rounded up) into `tiles` (16, m * th * tw, cin)."""
    if height < 1 or width < 1:
        raise ValueError(f"winograd_input: image of {height}x{width} pixels")
    cdef Py_ssize_t th = (<Py_ssize_t>height + 1) // 2, tw = (<Py_ssize_t>width + 1) // 2
    _check_grid("winograd_input grid", grid, th, tw)
    cdef Py_ssize_t m = grid.shape[0], cin = grid.shape[4]
    if (not _plain(tiles, True) or tiles.ndim != 3
            or tiles.shape[0] != 16 or tiles.shape[1] != m * th * tw or tiles.shape[2] != cin):
        raise ValueError(f"winograd_input: tiles must be C-contiguous, aligned, writeable float32 "
                         f"(16, {m * th * tw}, {cin}), got {tiles.dtype} {np.shape(tiles)}")
    cdef int kern = _kernel(kernel)
    if m == 0 or cin == 0:
        return tiles
    cdef const float *src = <const float *>cnp.PyArray_DATA(grid)
    cdef float *dst = <float *>cnp.PyArray_DATA(tiles)
    cdef int status
    with nogil:
        status = resnet_winograd_input(kern, src, m, th, tw, cin, dst)
    _check_status("winograd_input", status)
    return tiles


def winograd_output(cnp.ndarray products not None, cnp.ndarray bias not None,
                    cnp.ndarray out not None, int height, int width, cnp.ndarray residual=None,
                    bint relu=False, kernel=None):
    """A^T m A of `products` (16, m * th * tw, cout) (+ bias at position 5) into the grid `out`
    (m, 2 th + 2, 2, tw + 1, cout) as images of height x width, its other cells 0; then
    + `residual` (a grid shaped as `out`) and ReLU if asked."""
    if height < 1 or width < 1:
        raise ValueError(f"winograd_output: image of {height}x{width} pixels")
    cdef Py_ssize_t th = (<Py_ssize_t>height + 1) // 2, tw = (<Py_ssize_t>width + 1) // 2
    _check_grid("winograd_output out", out, th, tw, written=True)
    cdef Py_ssize_t m = out.shape[0], cout = out.shape[4]
    if (not _plain(products, False) or products.ndim != 3 or products.shape[0] != 16
            or products.shape[1] != m * th * tw or products.shape[2] != cout):
        raise ValueError(f"winograd_output: products must be C-contiguous, aligned float32 "
                         f"(16, {m * th * tw}, {cout}), got {products.dtype} "
                         f"{np.shape(products)}")
    if not _plain(bias, False) or bias.ndim != 1 or bias.shape[0] != cout:
        raise ValueError(f"winograd_output: bias must be C-contiguous, aligned float32 ({cout},), "
                         f"got {bias.dtype} {np.shape(bias)}")
    cdef const float *res = NULL
    if residual is not None:
        _check_grid("winograd_output residual", residual, th, tw)
        if residual.shape[0] != m or residual.shape[4] != cout:
            raise ValueError(f"winograd_output: residual {np.shape(residual)} differs from "
                             f"out {np.shape(out)}")
        res = <const float *>cnp.PyArray_DATA(residual)
    cdef int kern = _kernel(kernel)
    if m == 0 or cout == 0:
        return out
    cdef const float *src = <const float *>cnp.PyArray_DATA(products)
    cdef const float *b = <const float *>cnp.PyArray_DATA(bias)
    cdef float *dst = <float *>cnp.PyArray_DATA(out)
    cdef int status
    with nogil:
        status = resnet_winograd_output(kern, src, m, th, tw, cout, height, width, b, res, relu,
                                        dst)
    _check_status("winograd_output", status)
    return out
