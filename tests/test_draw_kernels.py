"""The C drawing kernels (ext/draw_kernels, appliance._draw) against what they replace, bit for
bit, on every kernel this CPU runs: col2im + bias + ReLU against the numpy strided adds, gather
(the same sums for taps stored anywhere) against col2im, the LANCZOS enlargement against
Pillow's. Then ext/draw_kernels/tests/draw_check.c (fixed inputs, a hash per output) gives the
same lines on every kernel here and on the Raspberry Pi 4's build (aarch64 -mcpu=cortex-a72,
vectorized to NEON, run under qemu): the same faces on the Pi."""

from __future__ import annotations

from pathlib import Path

import c_drivers
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from appliance import _draw
from appliance.generator.dcgan import col2im_numpy

KERNELS = [name for name in _draw.compiled_kernels() if _draw.supported(name)]


def numpy_layer(taps: np.ndarray, stride: int, padding: int, bias: np.ndarray | None,
                relu: bool) -> np.ndarray:
    """The layer as dcgan.py computed it before the kernel: col2im, += bias, np.maximum."""
    x = np.ascontiguousarray(col2im_numpy(taps, stride, padding))
    if bias is not None:
        x += bias
    if relu:
        np.maximum(x, 0, out=x)
    return x


def test_serial_is_always_there_and_preferred_last():
    assert _draw.compiled_kernels()[-1] == "serial" and _draw.supported("serial")
    assert _draw.best_kernel() == KERNELS[0]
    with pytest.raises(ValueError, match="drawing kernel 'nope' is not available"):
        _draw.col2im(np.zeros((1, 1, 1, 2, 2, 1), np.float32), 1, 0, kernel="nope")


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 5), w=st.integers(1, 5),
       cout=st.sampled_from([1, 2, 3, 4, 8, 17, 64]), kernel=st.sampled_from([1, 2, 3, 4, 5]),
       stride=st.integers(1, 3), padding=st.integers(0, 2), bias=st.booleans(),
       relu=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_col2im_adds_the_taps_as_numpy_does(n, h, w, cout, kernel, stride, padding, bias, relu,
                                            seed):
    if min((h - 1) * stride + kernel, (w - 1) * stride + kernel) <= 2 * padding:
        return
    rng = np.random.default_rng(seed)
    # magnitudes spread over decades: a sum in another order would round otherwise
    taps = (rng.standard_normal((n, h, w, kernel, kernel, cout))
            * 10.0 ** rng.integers(-4, 5, (n, h, w, kernel, kernel, cout))).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32) if bias else None
    expected = numpy_layer(taps, stride, padding, b, relu)
    for name in KERNELS:
        got = _draw.col2im(taps, stride, padding, b, relu, kernel=name)
        assert got.shape == expected.shape and got.dtype == np.float32
        assert got.tobytes() == expected.tobytes(), name


def test_col2im_order_is_the_one_that_matters():
    """Taps -1e8, 1, 1e8 land on pixel (1, 1) in (ky, kx) order: (-1e8 + 1) + 1e8 = 0 in
    float32, while adding 1e8 and -1e8 first gives 1; ReLU keeps NaN and makes -0 +0."""
    taps = np.zeros((1, 2, 2, 2, 2, 3), np.float32)  # stride 1: output (3, 3)
    taps[0, 0, 0, 1, 1] = 1e8   # lands on (1, 1) first: (iy, ix) = (0, 0), (ky, kx) = (1, 1)
    taps[0, 0, 1, 1, 0] = 1.0   # (0, 1), (1, 0): second in (ky, kx) order
    taps[0, 1, 0, 0, 1] = -1e8  # (1, 0), (0, 1): comes before (1, 0) in ky order
    expected = numpy_layer(taps, 1, 0, None, False)
    assert expected[0, 1, 1, 0] == 0.0
    for name in KERNELS:
        np.testing.assert_array_equal(_draw.col2im(taps, 1, 0, kernel=name), expected)
    special = np.zeros((1, 1, 1, 1, 1, 3), np.float32)
    special[..., :] = [-0.0, np.nan, -2.0]
    expected = numpy_layer(special, 1, 0, None, True)
    for name in KERNELS:
        got = _draw.col2im(special, 1, 0, relu=True, kernel=name)
        assert got.tobytes() == expected.tobytes(), name


def test_col2im_refuses_shapes_it_cannot_place():
    with pytest.raises(ValueError, match=r"expected \(n, h, w, k, k, cout\)"):
        _draw.col2im(np.zeros((1, 2, 2, 4, 4), np.float32), 2, 1)
    with pytest.raises(ValueError, match="padding 2 leaves no output"):
        _draw.col2im(np.zeros((1, 1, 1, 4, 4, 3), np.float32), 1, 2)
    with pytest.raises(ValueError, match="bias of 2 values for 3 channels"):
        _draw.col2im(np.zeros((1, 1, 1, 4, 4, 3), np.float32), 1, 0, np.zeros(2, np.float32))


def landing_offsets(shape: tuple[int, ...], stride: int, padding: int) -> np.ndarray:
    """For taps (n, h, w, k, k, cout) in C order: (pixels, per) offsets of each output pixel's
    taps in (ky, kx) order, -1 past its last, by the definition of the transposed convolution."""
    n, h, w, k, _, cout = shape
    oh, ow = (h - 1) * stride + k - 2 * padding, (w - 1) * stride + k - 2 * padding
    rows = []
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                row = []
                for ky in range(k):
                    for kx in range(k):
                        (iy, ry), (ix, rx) = (divmod(oy + padding - ky, stride),
                                              divmod(ox + padding - kx, stride))
                        if ry == rx == 0 and 0 <= iy < h and 0 <= ix < w:
                            row.append(((((b * h + iy) * w + ix) * k + ky) * k + kx) * cout)
                rows.append(row)
    per = max(1, *map(len, rows))
    return np.array([r + [-1] * (per - len(r)) for r in rows], dtype=np.int64)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 5), w=st.integers(1, 5),
       cout=st.sampled_from([1, 3, 8, 17, 64]), kernel=st.sampled_from([1, 2, 3, 4, 5]),
       stride=st.integers(1, 3), padding=st.integers(0, 2), bias=st.booleans(),
       relu=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_gather_adds_taps_stored_anywhere_as_col2im_does(n, h, w, cout, kernel, stride, padding,
                                                        bias, relu, seed):
    """The same taps, moved to shuffled places in a larger buffer with a dirty remainder: the
    offsets table finds them, and the sums are col2im's bit for bit (order, -0, NaN, bias)."""
    if min((h - 1) * stride + kernel, (w - 1) * stride + kernel) <= 2 * padding:
        return
    rng = np.random.default_rng(seed)
    shape = (n, h, w, kernel, kernel, cout)
    taps = (rng.standard_normal(shape) * 10.0 ** rng.integers(-4, 5, shape)).astype(np.float32)
    taps.reshape(-1)[rng.integers(0, taps.size, 3)] = [-0.0, np.nan, 0.0]
    b = rng.standard_normal(cout).astype(np.float32) if bias else None
    expected = _draw.col2im(taps, stride, padding, b, relu)
    offsets = landing_offsets(shape, stride, padding)
    blocks = taps.reshape(-1, cout)
    place = rng.permutation(2 * len(blocks))[:len(blocks)]  # block i stored at block place[i]
    buffer = rng.standard_normal((2 * len(blocks), cout)).astype(np.float32)
    buffer[place] = blocks
    moved = np.where(offsets < 0, -1, place[offsets // cout] * cout)
    for name in KERNELS:
        got = _draw.gather(buffer, moved, cout, b, relu, kernel=name)
        assert got.tobytes() == expected.reshape(-1, cout).tobytes(), name


def test_gather_refuses_taps_outside_its_buffer():
    buffer = np.zeros(12, np.float32)
    np.testing.assert_array_equal(_draw.gather(buffer + 1, [[9, -1], [0, 3]], 3),
                                  [[1, 1, 1], [2, 2, 2]])
    for offsets in ([[10]], [[12]], [[2**40]]):
        with pytest.raises(ValueError, match="outside the 12 floats of taps"):
            _draw.gather(buffer, offsets, 3)
    with pytest.raises(ValueError, match="bias of 2 values for 3 channels"):
        _draw.gather(buffer, [[0]], 3, np.zeros(2, np.float32))
    with pytest.raises(ValueError, match=r"expected \(npix, per\)"):
        _draw.gather(buffer, [0, 3], 3)


def pillow_lanczos(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))


@settings(max_examples=80, deadline=None)
@given(h=st.integers(1, 70), w=st.integers(1, 70), grow_h=st.integers(0, 300),
       grow_w=st.integers(0, 300), kind=st.sampled_from(["noise", "binary", "flat"]),
       channels=st.sampled_from([1, 3]), seed=st.integers(0, 2**32 - 1))
def test_lanczos_enlarge_is_pillows(h, w, grow_h, grow_w, kind, channels, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (2, h, w, channels), dtype=np.uint8)
    if kind == "binary":  # full-scale edges: the overshoot Pillow clips
        images = np.where(images > 127, 255, 0).astype(np.uint8)
    elif kind == "flat":
        images[:] = images[:, :1, :1]
    height, width = h + grow_h, w + grow_w
    expected = np.stack([pillow_lanczos(image[..., 0] if channels == 1 else image, height,
                                        width).reshape(height, width, channels)
                         for image in images])
    for name in KERNELS:
        got = _draw.lanczos_enlarge(images, height, width, kernel=name)
        assert got.tobytes() == expected.tobytes(), name


def test_lanczos_enlarge_refuses_a_reduction():
    with pytest.raises(ValueError, match="cannot enlarge 64x64 images to 32x32"):
        _draw.lanczos_enlarge(np.zeros((1, 64, 64, 3), np.uint8), 32, 32)


def test_lanczos_coefficients_are_made_for_enlargements_only():
    """A reduction's taps grow with its ratio (on the C stack, and past int for 2**31 - 1 -> 1):
    the coefficients are made for what lanczos_enlarge asks, 1 <= in <= out <= 16384."""
    bounds, coeffs = _draw.lanczos_coefficients(64, 256)
    assert bounds.shape == (256, 2) and coeffs.shape == (256, 7)
    for in_size, out_size in ((2**15, 1), (2**31 - 1, 1), (65, 64), (0, 5), (1, 2**14 + 1)):
        with pytest.raises(ValueError, match=f"cannot enlarge {in_size} pixels to {out_size}: "
                           r"expected 1 <= in_size <= out_size <= 16384"):
            _draw.lanczos_coefficients(in_size, out_size)


DRAW_KERNELS = Path(__file__).resolve().parents[1] / "ext" / "draw_kernels"
# setup.py's flags for appliance._draw (its common_c + -ffp-contract=off), so the check runs
# the code the extension ships
CFLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Werror",
          "-ffp-contract=off", f"-I{DRAW_KERNELS}"]
SOURCES = [str(DRAW_KERNELS / "tests" / "draw_check.c"), str(DRAW_KERNELS / "dispatch.c")]


@pytest.fixture(scope="module")
def native_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """draw_check's lines on this machine, the same for every kernel it runs."""
    return c_drivers.native_lines(tmp_path_factory.mktemp("draw"), CFLAGS, SOURCES, KERNELS, 9)


def test_draw_check_agrees_across_the_kernels_here(native_lines):
    assert len(set(native_lines)) == len(native_lines)  # nine different outputs


@c_drivers.needs_arm
def test_the_pi_4_build_draws_the_same_bits(native_lines, tmp_path):
    lines, disassembly = c_drivers.pi_lines(tmp_path, CFLAGS, SOURCES)
    assert lines == native_lines
    # the serial build is NEON on aarch64: its float adds run 4 lanes at a time
    col2im = disassembly.split("<serial_col2im>:")[1].split("\n\n")[0]
    assert "fadd\tv" in col2im and ".4s" in col2im
    gather = disassembly.split("<draw_gather>:")[1].split("\n\n")[0]  # serial_gather inlined
    assert "fadd\tv" in gather and ".4s" in gather
