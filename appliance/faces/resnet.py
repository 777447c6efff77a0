"""dlib's face-recognition ResNet, run on numpy's BLAS.

The `dlib-bin` wheels are built without BLAS, so `compute_face_descriptor` spends ~100-170 ms in
dlib's own matrix code on x86 and far more on a Pi 4. This module reads the very same model file
(`dlib_face_recognition_resnet_model_v1.dat`) and runs the same network with numpy: the 3x3
stride-1 convolutions of the residual blocks (86 % of the multiplications) by Winograd
F(2x2, 3x3), 16 float32 matrix products of 2.25x fewer multiplications in all, on a zero-bordered
`Grid` layout that needs no padding copy, the transforms around the products (and the relu or
residual sum that follows) in C (`appliance._resnet`, ext/resnet_kernels: the bits of the numpy
passes `winograd_input_numpy` / `winograd_output_numpy`, 1.3x the whole network); the other
convolutions (the 7x7 stem, the stride-2 ones, the smallest images) by one im2col + one float32
matrix product (OpenBLAS; the large stem tile by tile, each tile's im2col still in cache when the
product reads it). The batch-norm
("affine") layers are folded into the convolutions at load time, the input normalisation into
the stem's. Descriptors agree with dlib's to ~1e-6 (float32 rounding in another summation
order); tests compare them on real faces.

    >>> net = FaceNet.load(path)          # parses the dlib file once (~40 ms CPU, x86)
    >>> net.descriptor(chip)              # chip: (150, 150, 3) uint8 RGB, dlib's aligned chip
    array([...], dtype=float32)           # (128,)

BLAS runs one thread per descriptor by default (`threads`): on a busy machine, multi-threaded BLAS
waits for descheduled threads (measured here with one competing process: 1 thread 20-26 ms,
2 threads 42-59 ms median and 264 ms p90).

Only the network this model file holds is accepted: a file whose layer sequence or shapes differ
is refused with `NetworkFormatError`, and the caller falls back to dlib.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from appliance import _resnet

CHIP_SIZE = 150
#: im2col rows per tile of a large convolution (~0.3-0.6 MB of float32 here: in L2 cache).
TILE_ROWS = 512
#: Winograd tiles (2x2 outputs each) per chunk of chips: a chunk's transforms stay in L2 cache.
WINOGRAD_TILES = 400
#: Smaller images take the direct convolution: a few tiles per chip leave Winograd's 16 products
#: bound by reading its 16/9 x larger weights (4x4x256: 0.19 ms a face against 0.20 direct).
WINOGRAD_MIN_SIDE = 4


class NetworkFormatError(ValueError):
    """The model file is not the dlib face ResNet this module knows how to run (one line)."""


# ---------------------------------------------------------------------------------------------
# Reading dlib's serialization


class _Reader:
    """A cursor over dlib's serialized bytes (packed integers, floats, tensors)."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = data
        self.pos = offset

    def integer(self) -> int:
        head = self.data[self.pos]
        size = head & 0x0F
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def real(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        return float(np.ldexp(float(mantissa), exponent))

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise NetworkFormatError(f"tensor version {version} at byte {self.pos} (expected 2)")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        # a read-only view of the file's bytes (float32 already on little-endian CPUs): a copy
        # of 22 MB costs every process 5,400 page faults; `fold_layers` makes the arrays kept
        return values.astype(np.float32, copy=False).reshape(shape)


# Layer names in the file, in forward order (dlib serializes the input side first).
_LAYER = re.compile(
    rb"(input_rgb_image_sized|con_4|affine_|relu_|max_pool_2|avg_pool_2|add_prev_|fc_2)"
)


@dataclass(frozen=True)
class Conv:
    weights: np.ndarray  # (kh * kw * cin, cout), batch norm folded in
    bias: np.ndarray  # (cout,)
    size: int
    stride: int
    padding: int

    @property
    def winograd(self) -> bool:
        """A 3x3 stride-1 'same' convolution: run by `winograd_conv` on a `Grid`."""
        return (self.size, self.stride, self.padding) == (3, 1, 1)

    @cached_property
    def winograd_weights(self) -> np.ndarray:
        """(16, cin, cout) float32: G f G^T of each 3x3 filter, in float64 before rounding,
        G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]: rows then columns as
        float64 sums (exact unless a filter's weights span more than ~2^25, so the bits of any
        summation order: einsum's, checked on the model file), 2-4x faster than einsum's loop."""
        cout = self.weights.shape[1]
        f = self.weights.reshape(3, 3, -1)  # (kh, kw, cin * cout)
        rows = np.empty((4, 3, f.shape[2]), np.float64)  # G f
        rows[0], rows[3] = f[0], f[2]
        np.add(f[0], f[2], out=rows[1], dtype=np.float64)
        np.subtract(rows[1], f[1], out=rows[2])
        rows[1] += f[1]
        rows[1:3] *= 0.5
        both = np.empty((4, 4, f.shape[2]), np.float64)  # (G f) G^T
        both[:, 0], both[:, 3] = rows[:, 0], rows[:, 2]
        np.add(rows[:, 0], rows[:, 2], out=both[:, 1])
        np.subtract(both[:, 1], rows[:, 1], out=both[:, 2])
        both[:, 1] += rows[:, 1]
        both[:, 1:3] *= 0.5
        return both.astype(np.float32).reshape(16, -1, cout)


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" | "avg" | "mean" (average over everything)
    size: int
    stride: int


def _parse(data: bytes) -> tuple[tuple[float, float, float], list[tuple[str, object]]]:
    """The input layer's channel means and the layer list [(kind, params)] of a dlib net file."""
    layers: list[tuple[str, object]] = []
    means: tuple[float, float, float] | None = None
    position = 0
    # layer by layer, each search starting past the last layer's parameters (a scan of the
    # whole file tried the names at every byte of 22 MB of floats: 0.25 s per process)
    while (match := _LAYER.search(data, position)) is not None:
        position = match.end()
        name = match.group().decode()
        if data[match.start() - 1] != len(name):  # a string's length byte precedes it
            continue
        reader = _Reader(data, match.end())
        if name == "input_rgb_image_sized":
            means = (reader.real(), reader.real(), reader.real())
            size = (reader.integer(), reader.integer())
            if size != (CHIP_SIZE, CHIP_SIZE):
                raise NetworkFormatError(f"input is {size[0]}x{size[1]} (expected 150x150)")
        elif name == "con_4":
            params = reader.tensor().reshape(-1)
            cout, kh, kw, sy, sx, py, px = (reader.integer() for _ in range(7))
            if kh != kw or sy != sx or py != px:
                raise NetworkFormatError(f"non-square convolution {kh}x{kw}/{sy}x{sx}")
            cin = (params.size - cout) // (cout * kh * kw)
            if cin < 1 or params.size != cout * (cin * kh * kw + 1):
                raise NetworkFormatError(f"convolution with {params.size} parameters for "
                                         f"{cout} {kh}x{kw} filters")
            filters = params[:cout * cin * kh * kw].reshape(cout, cin, kh, kw)
            layers.append(("con", (filters, params[-cout:], kh, sy, py)))
        elif name == "affine_":
            params = reader.tensor().reshape(-1)
            half = params.size // 2
            layers.append(("affine", (params[:half], params[half:])))
        elif name == "fc_2":
            outputs, inputs = reader.integer(), reader.integer()
            params = reader.tensor()
            if params.shape[0] != inputs or params.shape[1] != outputs:
                raise NetworkFormatError(f"fully connected layer shaped {params.shape}")
            layers.append(("fc", params.reshape(inputs, outputs).copy()))  # not a view
        elif name in ("max_pool_2", "avg_pool_2"):
            nr, nc, sy, sx, py, px = (reader.integer() for _ in range(6))
            if py or px or nr != nc or sy != sx:
                raise NetworkFormatError(f"unexpected pooling {nr}x{nc}/{sy} pad {py}")
            kind = "max" if name == "max_pool_2" else ("mean" if nr == 0 else "avg")
            layers.append(("pool", Pool(kind, nr, sy)))
        else:
            layers.append((name.rstrip("_"), None))
        position = reader.pos
    if means is None:
        raise NetworkFormatError("no input_rgb_image_sized layer (not a dlib face ResNet file)")
    return means, layers


def fold_layers(layers: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """Fold every affine (inference-mode batch norm) into the convolution before it."""
    folded: list[tuple[str, object]] = []
    for kind, params in layers:
        if kind == "affine":
            if not folded or folded[-1][0] != "con":
                raise NetworkFormatError("an affine layer that does not follow a convolution")
            filters, bias, size, stride, padding = folded[-1][1]  # type: ignore[misc]
            gamma, beta = params  # type: ignore[misc]
            if gamma.size != filters.shape[0]:
                raise NetworkFormatError("affine layer size differs from its convolution's")
            # scaled straight into the (kh, kw, cin, cout) layout of the weights kept (one
            # pass over the filters instead of two): a (cout, cin, kh, kw) view of it
            scaled = np.empty(filters.shape[2:] + filters.shape[1::-1], np.float32)
            np.multiply(filters.transpose(2, 3, 1, 0), gamma, out=scaled)
            filters = scaled.transpose(3, 2, 0, 1)
            bias = bias * gamma + beta
            folded[-1] = ("con", (filters, bias, size, stride, padding))
        else:
            folded.append((kind, params))
    out: list[tuple[str, object]] = []
    for kind, params in folded:
        if kind == "con":
            filters, bias, size, stride, padding = params  # type: ignore[misc]
            # rows ordered (kh, kw, cin) to match the im2col windows of an HWC image
            weights = np.ascontiguousarray(
                filters.transpose(2, 3, 1, 0).reshape(-1, filters.shape[0]), dtype=np.float32)
            params = Conv(weights, bias.astype(np.float32), size, stride, padding)
        out.append((kind, params))
    return out


# ---------------------------------------------------------------------------------------------
# Running it


def conv_layer(x: np.ndarray, conv: Conv, out: np.ndarray | None = None) -> np.ndarray:
    """Convolution of an NHWC batch: im2col, then one matrix product for the whole batch, or
    per tile of `TILE_ROWS` im2col rows for the large early layers (1.25x faster here); into
    `out` (n, oh, ow, cout) if given."""
    if conv.padding:
        p = conv.padding
        padded = np.zeros((x.shape[0], x.shape[1] + 2 * p, x.shape[2] + 2 * p, x.shape[3]),
                          dtype=np.float32)  # np.pad's copy, without its per-call overhead
        padded[:, p:-p, p:-p] = x
        x = padded
    x = np.ascontiguousarray(x)
    n, height, width, cin = x.shape
    k, s = conv.size, conv.stride
    oh, ow = (height - k) // s + 1, (width - k) // s + 1
    # a read-only (n, oh, ow, kh, kw * cin) view of the windows (a window row's kw pixels are
    # adjacent in NHWC): its reshape is the im2col matrix with rows ordered (kh, kw, cin) like
    # the weights', copied in one pass in runs of kw * cin floats
    bn, bh, bw, bc = x.strides
    columns = as_strided(x, (n, oh, ow, k, k * cin), (bn, bh * s, bw * s, bh, bc),
                         writeable=False)
    rows = max(1, TILE_ROWS // ow)  # output rows per tile
    if out is None:
        out = np.empty((n, oh, ow, conv.weights.shape[1]), dtype=np.float32)
    if n * oh <= rows:
        flat = out.reshape(n * oh * ow, -1)
        np.matmul(columns.reshape(n * oh * ow, k * k * cin), conv.weights, out=flat)
        flat += conv.bias
        return out
    # a large layer: im2col and product tile by tile, each tile's copy still in cache when the
    # product reads it (a row of a product is the same bits whatever rows surround it)
    out = out.reshape(n * oh * ow, -1)
    for chip in range(n):
        for top in range(0, oh, rows):
            tile = columns[chip, top:top + rows]
            first = (chip * oh + top) * ow
            part = out[first:first + len(tile) * ow]
            np.matmul(tile.reshape(-1, k * k * cin), conv.weights, out=part)
            part += conv.bias
    return out.reshape(n, oh, ow, -1)


class Workspace:
    """Scratch arrays reused from one batch to the next (fresh multi-MB arrays cost a page fault
    per 4 kB on first touch: more CPU than the arithmetic of the 35x35 layers). One per thread."""

    def __init__(self) -> None:
        self.arrays: dict[tuple, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """An uninitialised float32 array, the same one for the same name and shape."""
        key = (name, shape)
        if (found := self.arrays.get(key)) is None:
            found = self.arrays[key] = np.empty(shape, dtype=np.float32)
        return found

    def grid(self, n: int, height: int, width: int, channels: int, *busy: Grid) -> Grid:
        """A `Grid` whose buffer none of `busy` holds (three rotate per shape)."""
        shape = Grid.shape_for(n, height, width, channels)
        taken = [g.data for g in busy if g is not None]
        for slot in range(3):
            data = self.array(f"grid{slot}", shape)
            if not any(data is t for t in taken):
                return Grid(data, height, width)
        raise AssertionError("more than two grids of one shape in use")


@dataclass(frozen=True)
class Grid:
    """An NHWC batch zero-bordered by one pixel, its columns stored even ones first:
    `data[:, 1 + y, p % 2, p // 2]` holds pixel (y, p - 1), every other cell is 0. A 3x3
    convolution reads it without a padding copy, and the Winograd transforms read and write it
    in runs of whole rows (not of one pixel's channels)."""

    data: np.ndarray  # (n, 2 * ceil(h / 2) + 2, 2, ceil(w / 2) + 1, c)
    height: int
    width: int

    @staticmethod
    def shape_for(n: int, height: int, width: int, channels: int) -> tuple[int, ...]:
        return (n, 2 * ((height + 1) // 2) + 2, 2, (width + 1) // 2 + 1, channels)

    @classmethod
    def of(cls, x: np.ndarray, work: Workspace, *busy: Grid) -> Grid:
        n, height, width, channels = x.shape
        grid = work.grid(n, height, width, channels, *busy)
        grid.data.fill(0)
        grid.data[:, 1:height + 1, 1, :(width + 1) // 2] = x[:, :, 0::2]
        grid.data[:, 1:height + 1, 0, 1:width // 2 + 1] = x[:, :, 1::2]
        return grid

    def image(self) -> np.ndarray:
        """The (n, h, w, c) batch it holds (a copy)."""
        n, _, _, half, channels = self.data.shape
        rows = self.data[:, 1:self.height + 1].transpose(0, 1, 3, 2, 4)
        return rows.reshape(n, self.height, 2 * half, channels)[:, :, 1:self.width + 1].copy()


def winograd_conv(grid: Grid, conv: Conv, out: Grid, work: Workspace,
                  residual: Grid | None = None, relu: bool = False,
                  reference: bool = False) -> Grid:
    """A 3x3 stride-1 'same' convolution by Winograd F(2x2, 3x3) (Lavin & Gray 2015), `grid`
    into `out` (same size), then + `residual` (a grid of out's shape) and ReLU if asked: each
    4x4 input tile goes through B^T d B (additions), the 16 tile positions are 16 matrix
    products (tiles x cin) @ (cin x cout) of 2.25x fewer multiplications than the direct
    convolution's, the 2x2 outputs come out of A^T m A. A chunk of chips at a time
    (`WINOGRAD_TILES`): a chip's output is the same bits whatever its batch. The transforms are
    the C kernels of `appliance._resnet`, or (`reference`) the numpy passes
    `winograd_input_numpy` and `winograd_output_numpy` whose bits they give."""
    data, target = grid.data, out.data
    n, _, _, _, cin = data.shape
    height, width = grid.height, grid.width
    th, tw = (height + 1) // 2, (width + 1) // 2
    weights = conv.winograd_weights
    cout = weights.shape[2]
    into_input = winograd_input_numpy if reference else _resnet.winograd_input
    into_output = winograd_output_numpy if reference else _resnet.winograd_output
    chunk = max(1, WINOGRAD_TILES // (th * tw))
    for first in range(0, n, chunk):
        x = data[first:first + chunk]
        m = len(x)
        tiles = work.array("tiles", (16, m * th * tw, cin))
        into_input(x, height, width, tiles)
        products = work.array("products", (16, m * th * tw, cout))
        np.matmul(tiles, weights, out=products)
        into_output(products, conv.bias, target[first:first + m], height, width,
                    None if residual is None else residual.data[first:first + m], relu)
    return out


def winograd_input_numpy(x: np.ndarray, height: int, width: int, tiles: np.ndarray
                         ) -> np.ndarray:
    """B^T d B of every 4x4 tile of the grid data `x` (m, 2 th + 2, 2, tw + 1, cin) holding
    images of height x width, rows then columns, into `tiles` (16, m * th * tw, cin): the numpy
    reference of `_resnet.winograd_input`."""
    m, _, _, half, cin = x.shape
    th, tw = (height + 1) // 2, (width + 1) // 2
    # B^T = [[1,0,-1,0], [0,1,1,0], [0,-1,1,0], [0,1,0,-1]]
    rows = np.empty((4, m, th, 2, half, cin), dtype=np.float32)
    r0, r1, r2, r3 = (x[:, i:i + 2 * th:2] for i in range(4))
    np.subtract(r0, r2, out=rows[0])
    np.add(r1, r2, out=rows[1])
    np.subtract(r2, r1, out=rows[2])
    np.subtract(r1, r3, out=rows[3])
    out = tiles.reshape(4, 4, m, th, tw, cin)
    c0, c1 = rows[:, :, :, 0, :tw], rows[:, :, :, 1, :tw]  # tile columns 0 and 1
    c2, c3 = rows[:, :, :, 0, 1:], rows[:, :, :, 1, 1:]  # 2 and 3
    np.subtract(c0, c2, out=out[:, 0])
    np.add(c1, c2, out=out[:, 1])
    np.subtract(c2, c1, out=out[:, 2])
    np.subtract(c1, c3, out=out[:, 3])
    return tiles


def winograd_output_numpy(products: np.ndarray, bias: np.ndarray, y: np.ndarray, height: int,
                          width: int, residual: np.ndarray | None = None, relu: bool = False
                          ) -> np.ndarray:
    """A^T m A of `products` (16, m * th * tw, cout), position 5 + bias first (it reaches all
    four outputs with weight 1), columns then rows, as images of height x width into the grid
    data `y` (m, 2 th + 2, 2, tw + 1, cout), its other cells 0; then + `residual` (grid data
    shaped as `y`) and ReLU if asked: the numpy reference of `_resnet.winograd_output`."""
    m, _, _, _, cout = y.shape
    th, tw = (height + 1) // 2, (width + 1) // 2
    products = products.copy()
    products[5] += bias
    # A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
    m6 = products.reshape(4, 4, m, th, tw, cout)
    cols = np.empty((4, 2, m, th, tw, cout), dtype=np.float32)
    np.add(m6[:, 0], m6[:, 1], out=cols[:, 0])
    cols[:, 0] += m6[:, 2]
    np.subtract(m6[:, 1], m6[:, 2], out=cols[:, 1])
    cols[:, 1] -= m6[:, 3]
    result = np.empty((2, m, th, tw, cout), dtype=np.float32)
    for a in range(2):  # output row 2 ty + a, column 2 tx + b: grid column 2 tx + b + 1
        if a == 0:
            np.add(cols[0], cols[1], out=result)
            result += cols[2]
        else:
            np.subtract(cols[1], cols[2], out=result)
            result -= cols[3]
        y[:, 1 + a:1 + a + 2 * th:2, 1, :tw] = result[0]
        y[:, 1 + a:1 + a + 2 * th:2, 0, 1:] = result[1]
    # the border, and the row / column past an odd size the last tiles computed
    y[:, 0] = 0
    y[:, 2 * th + 1] = 0
    y[:, :, 0, 0] = 0
    y[:, :, 1, tw] = 0
    if height % 2:
        y[:, height + 1] = 0
    if width % 2:
        y[:, :, 0, tw] = 0
    if residual is not None:
        np.add(y, residual, out=y)
    if relu:
        np.maximum(y, 0, out=y)
    return y


def pool_layer(x: np.ndarray, pool: Pool) -> np.ndarray:
    """Max, average or global-mean pooling of an NHWC batch."""
    if pool.kind == "mean":
        return x.mean(axis=(1, 2), dtype=np.float32)
    if pool.kind == "max":  # the maximum of the window's shifted grids (4x a window reduce)
        k, s = pool.size, pool.stride
        rows, cols = (x.shape[1] - k) // s * s + 1, (x.shape[2] - k) // s * s + 1
        out = x[:, :rows:s, :cols:s].copy()
        for dy in range(k):
            for dx in range(k):
                if dy or dx:
                    np.maximum(out, x[:, dy:dy + rows:s, dx:dx + cols:s], out=out)
        return out
    if pool.size == pool.stride == 2:  # the shortcut of a downsampling block: four strided sums
        rows, cols = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
        out = x[:, 0:rows:2, 0:cols:2] + x[:, 1:rows:2, 0:cols:2]
        out += x[:, 0:rows:2, 1:cols:2]
        out += x[:, 1:rows:2, 1:cols:2]
        out *= np.float32(0.25)
        return out
    windows = sliding_window_view(x, (pool.size, pool.size), axis=(1, 2))
    windows = windows[:, ::pool.stride, ::pool.stride]
    return windows.mean(axis=(4, 5), dtype=np.float32)


def add_residual(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """dlib's add_prev: tensors of different sizes are added top-left aligned, zero-padded."""
    if a.shape == b.shape:
        return a + b
    out = np.zeros(tuple(max(p, q) for p, q in zip(a.shape, b.shape, strict=True)), np.float32)
    out[:, :a.shape[1], :a.shape[2], :a.shape[3]] += a
    out[:, :b.shape[1], :b.shape[2], :b.shape[3]] += b
    return out


class FaceNet:
    """dlib's 128-D face descriptor network on numpy (see the module docstring); `threads`: BLAS
    threads per descriptor (0: the BLAS library's own choice)."""

    def __init__(self, means: tuple[float, float, float], layers: list[tuple[str, object]],
                 threads: int = 1):
        self.means = np.asarray(means, dtype=np.float32)
        self.layers = layers
        self.threads = threads
        _check_structure(layers)
        self.stem = _normalising(layers[0][1], self.means)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path, threads: int = 1) -> FaceNet:
        """Read a dlib face ResNet file; NetworkFormatError (naming `path`) for anything else."""
        try:
            data = Path(path).read_bytes()
            if not data.startswith(b"\x01\x01\x01\x0dloss_metric_"):
                raise NetworkFormatError("not a dlib loss_metric network file")
            means, layers = _parse(data)
            return cls(means, fold_layers(layers), threads)
        except (NetworkFormatError, ValueError, IndexError, OSError) as exc:
            raise NetworkFormatError(f"{path}: {exc}".splitlines()[0]) from None

    def descriptor(self, chip: np.ndarray) -> np.ndarray:
        """The float32[128] descriptor of a (150, 150, 3) uint8 RGB aligned chip."""
        if chip.shape != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"chip must be (150, 150, 3) RGB, got {chip.shape}")
        return self.descriptors(chip[None])[0]

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        """(n, 128) float32 descriptors of (n, 150, 150, 3) uint8 chips, the matrix products of
        each layer on the whole batch (the small late layers gain most: their weights are read once
        per batch). A chip's descriptor depends on its batch only at float32 rounding (~4e-7):
        BLAS blocks a taller matrix differently; a batch of one is `descriptor`'s."""
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"chips must be (n, 150, 150, 3) RGB, got {chips.shape}")
        if not len(chips):
            return np.zeros((0, 128), dtype=np.float32)
        if not self.threads:
            return self.forward(chips)
        with _blas_controller().limit(limits=self.threads, user_api="blas"):
            return self.forward(chips)

    def forward(self, chips: np.ndarray) -> np.ndarray:
        """(n, 128) descriptors of (n, 150, 150, 3) chips, layer by layer, on the threads BLAS
        has (`descriptors` runs this within its thread limit). Between the 3x3 stride-1
        convolutions the batch stays a `Grid` (Winograd, relu and residual add in place; those
        that follow a Winograd convolution fused into its output transform)."""
        n = len(chips)
        work = _workspace(n)
        stem = self.stem
        out = work.array("stem", (n, *stem_output(chips.shape[1:3], stem), stem.bias.size))
        x: np.ndarray | Grid = conv_layer(chips.astype(np.float32), stem, out=out)
        # "con relu max" (checked): the max pool first, then relu on a quarter of the pixels
        x = pool_layer(x, self.layers[2][1])  # type: ignore[arg-type]
        x = block_input = np.maximum(x, 0, out=x)
        previous = "pool"
        layers, i = self.layers, 2
        while (i := i + 1) < len(layers):
            kind, params = layers[i]
            if kind == "con":
                conv: Conv = params  # type: ignore[assignment]
                side = min(x.height, x.width) if isinstance(x, Grid) else min(x.shape[1:3])
                if not conv.winograd or side < WINOGRAD_MIN_SIDE:
                    x = conv_layer(_image(x), conv)
                else:
                    if not isinstance(x, Grid):
                        grid = Grid.of(x, work, _grid_or_none(block_input))
                        block_input = grid if block_input is x else block_input
                        x = grid
                    out_grid = work.grid(n, x.height, x.width, conv.bias.size, x,
                                         _grid_or_none(block_input))
                    # the relu after it, or the residual sum and relu, fused into its output
                    after = [k for k, _ in layers[i + 1:i + 3]]
                    if after == ["add_prev", "relu"] and isinstance(block_input, Grid) \
                            and block_input.data.shape == out_grid.data.shape:
                        x = block_input = winograd_conv(x, conv, out_grid, work,
                                                        residual=block_input, relu=True)
                        i, kind = i + 2, "relu"
                    elif after[:1] == ["relu"]:
                        x = winograd_conv(x, conv, out_grid, work, relu=True)
                        i, kind = i + 1, "relu"
                    else:
                        x = winograd_conv(x, conv, out_grid, work)
            elif kind == "relu":
                data = x.data if isinstance(x, Grid) else x
                np.maximum(data, 0, out=data)
                if previous == "add_prev":  # a residual block ends: the next one starts here
                    block_input = x
            elif kind == "pool":
                pool: Pool = params  # type: ignore[assignment]
                if pool.kind == "avg":  # the shortcut of a downsampling block
                    block_input = pool_layer(_image(block_input), pool)
                else:
                    x = pool_layer(_image(x), pool)
                    block_input = x
            elif kind == "add_prev":  # x, a convolution's fresh output, takes the sum
                if (isinstance(x, Grid) and isinstance(block_input, Grid)
                        and x.data.shape == block_input.data.shape):
                    np.add(x.data, block_input.data, out=x.data)
                else:
                    x = add_residual(_image(x), _image(block_input))
            elif kind == "fc":
                x = _image(x).reshape(n, -1) @ params
            previous = kind
        return np.asarray(x, dtype=np.float32).reshape(n, -1)


def stem_output(size: tuple[int, int], conv: Conv) -> tuple[int, int]:
    """The (height, width) a convolution without padding makes of an image of `size`."""
    return tuple((side - conv.size) // conv.stride + 1 for side in size)  # type: ignore[return-value]


def _image(x: np.ndarray | Grid) -> np.ndarray:
    return x.image() if isinstance(x, Grid) else x


def _grid_or_none(x: np.ndarray | Grid) -> Grid | None:
    return x if isinstance(x, Grid) else None


_threads = threading.local()


def _workspace(n: int) -> Workspace:
    """This thread's workspace for batches of `n` chips (those of the last two sizes kept)."""
    spaces: dict[int, Workspace] = _threads.__dict__.setdefault("spaces", {})
    if n not in spaces:
        if len(spaces) >= 2:
            del spaces[next(iter(spaces))]
        spaces[n] = Workspace()
    return spaces[n]


def _normalising(conv: Conv, means: np.ndarray) -> Conv:
    """`conv` applied to raw pixels gives `conv` of the network's input, (pixel - mean) / 256
    per channel (the normalisation folded into the first layer's weights and bias)."""
    weights = conv.weights.astype(np.float64) / 256
    channel_means = np.resize(means.astype(np.float64), len(weights))  # rows (kh, kw, cin)
    bias = conv.bias - channel_means @ weights
    return Conv(weights.astype(np.float32), bias.astype(np.float32), conv.size, conv.stride,
                conv.padding)


@cache
def _blas_controller() -> Any:
    """threadpoolctl's view of the loaded BLAS libraries (built once: ~16 us per limit after)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _check_structure(layers: list[tuple[str, object]]) -> None:
    """Accept only the residual layout this runner implements (the dlib face ResNet's)."""
    kinds = [p.kind if k == "pool" else k for k, p in layers]  # type: ignore[union-attr]
    text = " ".join(kinds)
    first, last = "con relu max", "mean fc"
    if not text.startswith(first) or not text.endswith(last):
        raise NetworkFormatError(f"unexpected network layout: {text[:60]}...")
    body = text[len(first):-len(last)].split()
    block = ["con", "relu", "con", "add_prev", "relu"]
    down = ["con", "relu", "con", "avg", "add_prev", "relu"]
    while body:
        if body[:5] == block:
            body = body[5:]
        elif body[:6] == down:
            body = body[6:]
        else:
            raise NetworkFormatError(f"unexpected residual block: {' '.join(body[:6])}")
    if layers[-1][1].shape[1] != 128:  # type: ignore[union-attr]
        raise NetworkFormatError("the network does not end in 128 outputs")
