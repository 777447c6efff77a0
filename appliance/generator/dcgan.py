"""A DCGAN face generator run with numpy: 100 random numbers in, a 64x64 face out.

The network is the PyTorch-tutorial DCGAN generator whose trained weights ship in the
`gan-face-generate` wheel (`gan_face_generate/weights.tar`, read by `torch_zip` without torch):
five 4x4 transposed convolutions, 100 -> 512 -> 256 -> 128 -> 64 -> 3 channels, batch norm and
ReLU between them, tanh out. Batch norm is folded into the convolutions at load time; each
transposed convolution is one float32 matrix product (every input pixel times every kernel
tap) and a col2im that adds the taps into place, fused with the bias and ReLU in one C pass
(`appliance._draw`, ext/draw_kernels) that adds them in the order of `col2im_numpy`'s strided
adds, so every bit is theirs (tests/test_draw_kernels.py). BLAS runs one thread per process.
The upscale is Pillow's LANCZOS, in C for an enlargement (the same integer arithmetic, 6x less
CPU; Pillow itself for a reduction).

The 4x4 -> 8x8 and 8x8 -> 16x16 layers compute only the taps that land inside the padding's
crop (`LandedTaps`: 23 % and 12 % fewer multiplications, 8 % less CPU a draw), one product per
class of input pixels and taps, their taps added by `_draw.gather` in col2im's order: the same
bits, since each tap is the same dot product in a smaller product (tested on the real layers).

Faces are rendered `RENDER_BATCH` at a time past the first layer (its matrix product is a
matrix-vector one per face, which BLAS sums in another order for a taller matrix): a row of a
matrix product is the same bits whatever rows surround it, and col2im, bias, ReLU and tanh work
element by element, so a batch moves no pixel (tests/test_generator_dcgan.py checks it) and
reads the large middle layers' weights once per batch instead of once per face (1.5x faster);
the last two layers run `CACHED_FACES` of a batch at a time, for the caches.

    >>> net = DCGAN.load()                            # ~0.06 s
    >>> net.faces(seed=7, indices=[0, 1, 2])          # (3, 256, 256, 3) uint8 RGB

Face i of seed s is a pure function of (s, i): its latent comes from `latent(s, i)`, and
neither the batch it is drawn in nor the process changes a bit.
"""

from __future__ import annotations

import importlib.metadata
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from appliance import _draw
from appliance.files import sha256_file
from appliance.generator.torch_zip import WeightsFormatError, read_torch_zip

CHANNELS = (100, 512, 256, 128, 64, 3)
KERNEL = 4
STRIDES = (1, 2, 2, 2, 2)
PADDINGS = (0, 1, 1, 1, 1)
BN_EPS = 1e-5
LATENT = CHANNELS[0]
SIDE = 64
STATE_KEY = "netG_state_dict"
#: Bumped whenever a change here moves any output pixel (same weights, other faces): builds and
#: generate runs record it, so work made by another version is not mixed with this one's.
RENDERER = 2
#: Faces whose layers past the first are drawn together (`DCGAN.render`); the build passes 16.
RENDER_BATCH = 16
#: Faces whose 16x16 -> 32x32 and RGB layers run together, in a batch: their taps (1 MB a
#: face) stay in the caches for col2im (with RENDER_BATCH 16, 5 % less CPU than 8 at a time).
CACHED_FACES = 4
#: Layers whose products compute only the taps that land in the output (`LandedTaps`): the
#: 4x4 -> 8x8 and 8x8 -> 16x16 ones, where the padding crops 23 % and 12 % of the taps.
LANDED_LAYERS = (1, 2)
#: Multiply-adds of the smallest of those products, at least; a smaller batch runs the layer
#: as one product. OpenBLAS (SkylakeX kernels here) may send products under 28 * 512 * 512 to
#: other routines (`sgemm_direct`, matrix-vector) that sum in another order: seen here for a
#: few rows times 256 columns, which would move pixels (a face's corner taps are 9 rows).
LANDED_MIN_PRODUCT = 28 * 512 * 512
PACKAGE = "gan-face-generate"
PACKAGE_VERSION = "1.1.1"
WEIGHTS_IN_PACKAGE = "gan_face_generate/weights.tar"
MISSING = (
    f"DCGAN weights not found: install them with `.venv/bin/pip install --no-deps "
    f"{PACKAGE}=={PACKAGE_VERSION}` (./dev setup does), or pass --weights PATH "
    f"(config key generator.weights) to a copy of its {WEIGHTS_IN_PACKAGE}"
)


class WeightsNotFound(LookupError):
    """No weights file where they were looked for (one line telling how to get them)."""


@dataclass(frozen=True)
class Layer:
    """One transposed convolution with its batch norm folded in."""

    weights: np.ndarray  # (cin, k * k * cout) float32, columns ordered (ky, kx, cout)
    bias: np.ndarray  # (cout,) float32
    stride: int
    padding: int


def default_weights_path() -> Path:
    """The weights file of the installed `gan-face-generate` wheel (WeightsNotFound if none)."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise WeightsNotFound(MISSING) from None
    path = Path(str(dist.locate_file(WEIGHTS_IN_PACKAGE)))
    if not path.is_file():
        raise WeightsNotFound(MISSING)
    return path


def conv_transpose(x: np.ndarray, weights: np.ndarray, stride: int, padding: int,
                   kernel: int = KERNEL) -> np.ndarray:
    """ConvTranspose2d (no bias) of an NHWC float32 batch: one GEMM, then col2im."""
    taps = conv_taps(x, weights, kernel)
    return col2im_numpy(taps, stride, padding)


def conv_taps(x: np.ndarray, weights: np.ndarray, kernel: int = KERNEL) -> np.ndarray:
    """(n, h, w, k, k, cout) float32: every input pixel times every kernel tap, one GEMM."""
    n, h, w, cin = x.shape
    cout = weights.shape[1] // (kernel * kernel)
    return (x.reshape(n * h * w, cin) @ weights).reshape(n, h, w, kernel, kernel, cout)


def col2im_numpy(taps: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """The taps (n, h, w, k, k, cout) added into place by strided numpy adds, (ky, kx) in order
    from zero, cropped by `padding`: the reference of the C kernel `_draw.col2im`."""
    n, h, w, kernel, _, cout = taps.shape
    full_h, full_w = (h - 1) * stride + kernel, (w - 1) * stride + kernel
    span_h, span_w = (h - 1) * stride + 1, (w - 1) * stride + 1  # where one tap lands
    if cout < 8:
        # few channels (the RGB layer): add the taps channel-planar, where numpy's inner loop
        # runs along a row instead of over 3 floats (2x faster); the same sums in the same order
        planes = np.ascontiguousarray(taps.transpose(0, 5, 3, 4, 1, 2))
        out = np.zeros((n, cout, full_h, full_w), dtype=np.float32)
        for ky in range(kernel):
            for kx in range(kernel):
                out[:, :, ky:ky + span_h:stride, kx:kx + span_w:stride] += planes[:, :, ky, kx]
        out = out.transpose(0, 2, 3, 1)
    else:
        out = np.zeros((n, full_h, full_w, cout), dtype=np.float32)
        for ky in range(kernel):
            for kx in range(kernel):
                out[:, ky:ky + span_h:stride, kx:kx + span_w:stride] += taps[:, :, :, ky, kx]
    return out[:, padding:full_h - padding, padding:full_w - padding]


def tap_classes(size: int, kernel: int, stride: int, padding: int
                ) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Along one axis of `size` input pixels: (taps, pixels) pairs, the taps grouped by the
    input pixels whose tap lands inside the cropped output (those pixels, ascending)."""
    out = (size - 1) * stride + kernel - 2 * padding
    classes: dict[tuple[int, ...], list[int]] = {}
    for tap in range(kernel):
        pixels = tuple(i for i in range(size) if 0 <= i * stride + tap - padding < out)
        classes.setdefault(pixels, []).append(tap)
    return [(tuple(taps), pixels) for pixels, taps in classes.items() if pixels]


def landed_weights(layer: Layer, h: int, w: int, kernel: int = KERNEL) -> list[np.ndarray]:
    """`LandedTaps`' weight matrices for an h x w input: per (row class, column class) of
    `tap_classes`, the columns of its taps, (ky, kx) ascending, contiguous."""
    cin = layer.weights.shape[0]
    cout = layer.weights.shape[1] // (kernel * kernel)
    grid = layer.weights.reshape(cin, kernel, kernel, cout)
    return [np.ascontiguousarray(grid[:, ytaps][:, :, xtaps]).reshape(cin, -1)
            for ytaps, _ in tap_classes(h, kernel, layer.stride, layer.padding)
            for xtaps, _ in tap_classes(w, kernel, layer.stride, layer.padding)]


class LandedTaps:
    """A transposed convolution that computes only the taps landing in its output, for `n`
    faces of h x w pixels: one matrix product per (row class, column class) of taps, each on
    the input pixels where those taps land (rows gathered) and the weight columns of those taps
    (copied contiguous), into one buffer; then `_draw.gather` adds every output pixel's taps in
    col2im's (ky, kx) order from a table of offsets. Each tap is the same dot product BLAS makes
    in the whole product (a row or column of a product does not depend on the rows or columns
    around it, for products past BLAS's small-matrix sizes), so the output is `conv_taps` +
    `_draw.col2im`'s, bit for bit, with 23 % fewer multiplications for the 4x4 input."""

    def __init__(self, layer: Layer, n: int, h: int, w: int, kernel: int = KERNEL,
                 weights: list[np.ndarray] | None = None):
        """`weights`: `landed_weights(layer, h, w, kernel)` if already made (any n's)."""
        cin = layer.weights.shape[0]
        self.cout = layer.weights.shape[1] // (kernel * kernel)
        self.shape = (n, (h - 1) * layer.stride + kernel - 2 * layer.padding,
                      (w - 1) * layer.stride + kernel - 2 * layer.padding, self.cout)
        if weights is None:
            weights = landed_weights(layer, h, w, kernel)
        classes = [(ytaps, ypix, xtaps, xpix)
                   for ytaps, ypix in tap_classes(h, kernel, layer.stride, layer.padding)
                   for xtaps, xpix in tap_classes(w, kernel, layer.stride, layer.padding)]
        faces = np.arange(n)[:, None] * (h * w)
        # (rows or None for all, weights, buffer start, columns); where[(ky, kx)] = (buffer
        # start, the tap's first column, the product's row of each input pixel (-1: none),
        # columns, floats a face)
        self.products: list[tuple[np.ndarray | None, np.ndarray, int, int]] = []
        where: dict[tuple[int, int], tuple[int, int, np.ndarray, int, int]] = {}
        start = 0
        for (ytaps, ypix, xtaps, xpix), matrix in zip(classes, weights, strict=True):
            pixels = np.array([y * w + x for y in ypix for x in xpix])
            rows = (faces + pixels).reshape(-1)
            columns = matrix.shape[1]
            index = np.full(h * w, -1)
            index[pixels] = np.arange(len(pixels))
            for a, ky in enumerate(ytaps):
                for b, kx in enumerate(xtaps):
                    where[ky, kx] = (start, (a * len(xtaps) + b) * self.cout, index,
                                     columns, len(pixels) * columns)
            self.products.append((None if len(rows) == n * h * w else rows, matrix, start,
                                  columns))
            start += len(rows) * columns
        self.size = max(start, 1)  # (a float never read when no tap lands)
        #: multiply-adds of the smallest product (`LANDED_MIN_PRODUCT`)
        self.smallest = min(((n * h * w if rows is None else len(rows)) * columns * cin
                             for rows, _, _, columns in self.products), default=0)
        # offsets of each output pixel's taps, (ky, kx) ascending, for face 0, then each face's
        _, oh, ow, _ = self.shape
        table = []
        for oy in range(oh):
            for ox in range(ow):
                taps = []
                for ky in range(kernel):
                    iy, ry = divmod(oy + layer.padding - ky, layer.stride)
                    if ry or not 0 <= iy < h:
                        continue
                    for kx in range(kernel):
                        ix, rx = divmod(ox + layer.padding - kx, layer.stride)
                        if rx or not 0 <= ix < w:
                            continue
                        group, column, index, columns, face_floats = where[ky, kx]
                        row = index[iy * w + ix]
                        taps.append((group + row * columns + column, face_floats))
                table.append(taps)
        per = max(1, *map(len, table))  # border pixels have fewer: -1 ends them
        pairs = np.array([taps + [(-1, 0)] * (per - len(taps)) for taps in table],
                         dtype=np.int64)  # (oh * ow, per, [face-0 offset, face step])
        self.offsets = (pairs[None, :, :, 0] + np.arange(n)[:, None, None] * pairs[None, :, :, 1]
                        ).reshape(n * oh * ow, per)

    def __call__(self, x: np.ndarray, bias: np.ndarray | None, relu: bool) -> np.ndarray:
        """(n, oh, ow, cout) float32: the layer (+ bias, ReLU) of the NHWC batch x."""
        rows_in = x.reshape(-1, x.shape[-1])
        buffer = np.empty(self.size, dtype=np.float32)
        for rows, weights, start, columns in self.products:
            a = rows_in if rows is None else rows_in[rows]
            out = buffer[start:start + len(a) * columns].reshape(len(a), columns)
            np.matmul(a, weights, out=out)
        return _draw.gather(buffer, self.offsets, self.cout, bias, relu).reshape(self.shape)


def expected_tensors(channels: Sequence[int] = CHANNELS) -> dict[str, tuple[tuple[int, ...], str]]:
    """The generator's state dict as PyTorch names it: name -> (shape, dtype kind 'f' or 'i')."""
    expected: dict[str, tuple[tuple[int, ...], str]] = {}
    count = len(channels) - 1
    for i in range(count):
        cin, cout = channels[i], channels[i + 1]
        expected[f"main.{3 * i}.weight"] = ((cin, cout, KERNEL, KERNEL), "f")
        if i < count - 1:
            for name in ("weight", "bias", "running_mean", "running_var"):
                expected[f"main.{3 * i + 1}.{name}"] = ((cout,), "f")
            expected[f"main.{3 * i + 1}.num_batches_tracked"] = ((), "i")
    return expected


def expected_bytes(channels: Sequence[int] = CHANNELS) -> int:
    """Bytes of the generator's tensors (float32, int64 counters): the cap of a weights read."""
    return sum(math.prod(shape) * (4 if kind == "f" else 8)
               for shape, kind in expected_tensors(channels).values())


def read_state(path: Path) -> dict[str, Any]:
    """The generator's state dict from a weights file: our safetensors (sosie train) or the
    wheel's torch.save archive, told apart by their content, never unpickled beyond plain
    tensors. WeightsFormatError (naming `path`) for anything else."""
    from appliance.generator.safetensors_weights import is_safetensors, read_generator_state

    if is_safetensors(path):
        return read_generator_state(path, expected_tensors())
    # twice the network's size: a file with a few tensors too many is still named by fold_layers
    state = read_torch_zip(path, max_tensor_bytes=2 * expected_bytes())
    if not isinstance(state, dict) or not isinstance(state.get(STATE_KEY), dict):
        raise WeightsFormatError(f"{path}: no {STATE_KEY} in the archive")
    return state[STATE_KEY]


def fold_layers(state: Mapping[str, Any], channels: Sequence[int] = CHANNELS) -> list[Layer]:
    """Check a generator state dict against the network and fold batch norm into the weights.

    WeightsFormatError names the first missing, extra or misshapen tensor.
    """
    expected = expected_tensors(channels)
    count = len(channels) - 1
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        what = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise WeightsFormatError(f"not the DCGAN generator ({what})")
    for key, (shape, kind) in expected.items():
        value = state[key]
        if not isinstance(value, np.ndarray) or value.dtype.kind != kind or value.shape != shape:
            got = (f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray)
                   else type(value).__name__)
            raise WeightsFormatError(f"{key} is {got} (expected {'float' if kind == 'f' else 'int'}"
                                     f" of shape {shape})")
        if kind == "f" and not np.isfinite(value).all():
            raise WeightsFormatError(f"{key} holds values that are not finite")
    layers = []
    for i in range(count):
        cout = channels[i + 1]
        scale, bias = np.ones(cout), np.zeros(cout)
        if i < count - 1:
            bn = f"main.{3 * i + 1}"
            var = state[f"{bn}.running_var"].astype(np.float64)
            if (var < 0).any():
                raise WeightsFormatError(f"{bn}.running_var holds negative variances")
            scale = state[f"{bn}.weight"] / np.sqrt(var + BN_EPS)
            bias = state[f"{bn}.bias"] - state[f"{bn}.running_mean"] * scale
        # (cin, cout, k, k) -> (cin, k, k, cout), scaled per output channel, in one float32 pass
        weight = state[f"main.{3 * i}.weight"].astype(np.float32, copy=False)
        matrix = weight.transpose(0, 2, 3, 1) * scale.astype(np.float32)
        layers.append(Layer(matrix.reshape(channels[i], KERNEL * KERNEL * cout),
                            bias.astype(np.float32), STRIDES[i], PADDINGS[i]))
    return layers


class DCGAN:
    """The face generator (see the module docstring)."""

    def __init__(self, layers: list[Layer], checksum: str = "", path: Path | None = None):
        self.layers = layers
        self.checksum = checksum
        self.path = path
        self._landed: dict[tuple[int, ...], LandedTaps | None] = {}
        self._landed_weights: dict[tuple[int, ...], list[np.ndarray]] = {}

    @classmethod
    def load(cls, path: Path | None = None) -> DCGAN:
        """Read the weights (`default_weights_path()` when None).

        WeightsNotFound when there is no file; WeightsFormatError (naming the file) for a file
        that is not this network's torch.save archive nor its safetensors (`read_state`).
        """
        path = Path(path) if path is not None else default_weights_path()
        if not path.is_file():
            raise WeightsNotFound(f"{path}: no such weights file. {MISSING}")
        state = read_state(path)
        try:
            layers = fold_layers(state)
        except WeightsFormatError as exc:
            raise WeightsFormatError(f"{path}: {exc}") from None
        digest = sha256_file(path)
        return cls(layers, digest, path)

    @staticmethod
    def latent(seed: int, index: int) -> np.ndarray:
        """The float32[100] latent of face `index` of `seed` (both integers >= 0)."""
        if seed < 0 or index < 0:
            raise ValueError(f"seed {seed}, index {index}: expected integers >= 0")
        return np.random.default_rng([seed, index]).standard_normal(LATENT).astype(np.float32)

    def render(self, latents: np.ndarray) -> np.ndarray:
        """(n, 64, 64, 3) uint8 RGB faces of (n, 100) latents, `RENDER_BATCH` at a time; a
        face's pixels do not depend on the batch (module docstring)."""
        latents = np.asarray(latents, dtype=np.float32)
        width = self.layers[0].weights.shape[0]
        if latents.ndim != 2 or latents.shape[1] != width:
            raise ValueError(f"latents of shape {latents.shape}: expected (n, {width})")
        out = np.empty((len(latents), SIDE, SIDE, 3), dtype=np.uint8)
        with _blas_controller().limit(limits=1, user_api="blas"):
            for start in range(0, len(latents), RENDER_BATCH):
                out[start:start + RENDER_BATCH] = self.forward(
                    latents[start:start + RENDER_BATCH])
        return out

    def faces(self, seed: int, indices: Sequence[int], size: int = 256) -> np.ndarray:
        """(n, size, size, 3) uint8 RGB faces `indices` of `seed`, upscaled with Lanczos."""
        if not 16 <= size <= 4096:
            raise ValueError(f"face size {size}: expected 16 to 4096 pixels")
        latents = np.stack([self.latent(seed, i) for i in indices]) if len(indices) else (
            np.zeros((0, LATENT), np.float32))
        return enlarge(self.render(latents), size)

    def forward(self, latents: np.ndarray) -> np.ndarray:
        """(n, 64, 64, 3) uint8 faces of (n, 100) float32 latents, on the threads BLAS has
        (`render` runs this on one)."""
        first = self.layers[0]
        last = len(self.layers) - 1
        # the first layer face by face: one row is BLAS's matrix-vector product, whose sums a
        # matrix of several rows would order otherwise (and move pixels); col2im, + bias and
        # ReLU in one C pass: the sums of `col2im_numpy`, bit for bit
        taps = np.concatenate([conv_taps(z.reshape(1, 1, 1, -1), first.weights) for z in latents])
        x = _draw.col2im(taps, first.stride, first.padding, first.bias, True)
        for i, layer in enumerate(self.layers[1:], start=1):
            bias, relu = None if i == last else layer.bias, i < last
            landed = self.landed_taps(i, x.shape) if i in LANDED_LAYERS else None
            if landed is not None:  # only the taps that land, the same bits
                x = landed(x, bias, relu)
            else:  # a few faces at a time: their taps stay in cache for col2im
                x = np.concatenate([
                    _draw.col2im(conv_taps(x[s:s + CACHED_FACES], layer.weights), layer.stride,
                                 layer.padding, bias, relu)
                    for s in range(0, len(x), CACHED_FACES)])
        # tanh out; training images were normalised with mean 0.5, std 0.5
        pixels = (np.tanh(x) + np.float32(1)) * np.float32(127.5)
        if pixels.shape[1:] != (SIDE, SIDE, 3):
            raise ValueError(f"the network makes {pixels.shape[1:]} images, not {SIDE}x{SIDE} "
                             "RGB")
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)

    def landed_taps(self, i: int, shape: tuple[int, ...]) -> LandedTaps | None:
        """Layer i's `LandedTaps` for an input batch of `shape` (n, h, w, cin), or None when its
        smallest product is under `LANDED_MIN_PRODUCT` (kept for the next batch alike)."""
        n, h, w, _ = shape
        key = (i, n, h, w)
        if key not in self._landed:
            if len(self._landed) >= 64:  # a few batch sizes in practice
                self._landed.clear()
            if (i, h, w) not in self._landed_weights:  # one copy of the layer's weights
                self._landed_weights[i, h, w] = landed_weights(self.layers[i], h, w)
            plan = LandedTaps(self.layers[i], n, h, w, weights=self._landed_weights[i, h, w])
            self._landed[key] = plan if plan.smallest >= LANDED_MIN_PRODUCT else None
        return self._landed[key]


def enlarge(small: np.ndarray, size: int) -> np.ndarray:
    """(n, size, size, 3) uint8: (n, 64, 64, 3) faces resized with Pillow's LANCZOS, bit for bit
    (enlargements in C, 6x less CPU; smaller sizes by Pillow itself)."""
    if size == SIDE:
        return small
    if size > SIDE:
        return _draw.lanczos_enlarge(small, size, size)
    from PIL import Image

    out = np.empty((len(small), size, size, 3), dtype=np.uint8)
    for row, face in enumerate(small):
        out[row] = np.asarray(Image.fromarray(face).resize((size, size), Image.Resampling.LANCZOS))
    return out


@cache
def _blas_controller() -> Any:
    """threadpoolctl's view of the loaded BLAS libraries (built once)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()
