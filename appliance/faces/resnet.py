"""dlib's face-recognition ResNet, run on numpy's BLAS.

The `dlib-bin` wheels are built without BLAS, so `compute_face_descriptor` spends ~100-170 ms in
dlib's own matrix code on x86 and far more on a Pi 4. This module reads the very same model file
(`dlib_face_recognition_resnet_model_v1.dat`) and runs the same network with numpy: each
convolution is one im2col + one float32 matrix product (OpenBLAS; the large early layers tile
by tile, each tile's im2col still in cache when the product reads it), the batch-norm
("affine") layers are folded into the convolutions at load time. Descriptors agree with dlib's
to ~1e-6 (float32 rounding in another summation order); tests compare them on real faces.

    >>> net = FaceNet.load(path)          # parses the dlib file once (~0.3 s)
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
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

CHIP_SIZE = 150
#: im2col rows per tile of a large convolution (~0.3-0.6 MB of float32 here: in L2 cache).
TILE_ROWS = 512


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
        return values.astype(np.float32).reshape(shape)


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
            layers.append(("fc", params.reshape(inputs, outputs)))
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
            filters = filters * gamma[:, None, None, None]
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


def conv_layer(x: np.ndarray, conv: Conv) -> np.ndarray:
    """Convolution of an NHWC batch: im2col, then one matrix product for the whole batch, or
    per tile of `TILE_ROWS` im2col rows for the large early layers (1.25x faster here)."""
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
    if n * oh <= rows:
        out = columns.reshape(n * oh * ow, k * k * cin) @ conv.weights
        out += conv.bias
        return out.reshape(n, oh, ow, -1)
    # a large layer: im2col and product tile by tile, each tile's copy still in cache when the
    # product reads it (a row of a product is the same bits whatever rows surround it)
    out = np.empty((n * oh * ow, conv.weights.shape[1]), dtype=np.float32)
    for chip in range(n):
        for top in range(0, oh, rows):
            tile = columns[chip, top:top + rows]
            first = (chip * oh + top) * ow
            part = out[first:first + len(tile) * ow]
            np.matmul(tile.reshape(-1, k * k * cin), conv.weights, out=part)
            part += conv.bias
    return out.reshape(n, oh, ow, -1)


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
        """(n, 128) float32 descriptors of (n, 150, 150, 3) uint8 chips, one matrix product per
        layer for the whole batch (the small late layers gain most: their weights are read once
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
        has (`descriptors` runs this within its thread limit)."""
        x = (chips.astype(np.float32) - self.means) / np.float32(256)
        block_input, previous = x, ""
        for kind, params in self.layers:
            if kind == "con":
                x = conv_layer(x, params)  # type: ignore[arg-type]
            elif kind == "relu":
                x = np.maximum(x, 0, out=x)
                if previous == "add_prev":  # a residual block ends: the next one starts here
                    block_input = x
            elif kind == "pool":
                pool: Pool = params  # type: ignore[assignment]
                if pool.kind == "avg":  # the shortcut of a downsampling block
                    block_input = pool_layer(block_input, pool)
                else:
                    x = pool_layer(x, pool)
                    block_input = x
            elif kind == "add_prev":  # x, a convolution's fresh output, takes the sum
                x = np.add(x, block_input, out=x) if x.shape == block_input.shape else (
                    add_residual(x, block_input))
            elif kind == "fc":
                x = x.reshape(len(x), -1) @ params
            previous = kind
        return np.asarray(x, dtype=np.float32).reshape(len(chips), -1)


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
