"""The face ResNet's C kernels (ext/resnet_kernels, appliance._resnet) against the numpy passes
they replace (resnet.winograd_input_numpy / winograd_output_numpy), byte for byte, on every
kernel this CPU runs; the network with them against the network with the numpy passes; and
ext/resnet_kernels/tests/resnet_check.c (fixed inputs, a hash per output): the same lines from
every kernel here and from the Raspberry Pi 4's build (aarch64 -mcpu=cortex-a72, vectorized to
NEON, run under qemu)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import SimpleNamespace

import c_drivers
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import _resnet
from appliance.faces import resnet
from appliance.faces.model_files import DESCRIPTOR_FILE

KERNELS = [name for name in _resnet.compiled_kernels() if _resnet.supported(name)]
MODEL = Path(importlib.util.find_spec("face_recognition_models")
             .submodule_search_locations[0]) / "models" / DESCRIPTOR_FILE


def spread(rng: np.random.Generator, shape: tuple[int, ...], specials: bool) -> np.ndarray:
    """float32 of magnitudes over decades (sums in another order would round otherwise), with
    +0, -0 and (if `specials`) NaN and infinities sprinkled in."""
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-4, 5, shape)).astype(np.float32)
    flat = x.reshape(-1)
    picks = rng.integers(0, flat.size, (4, max(1, flat.size // 20)))
    flat[picks[0]] = 0.0
    flat[picks[1]] = -0.0
    if specials:
        flat[picks[2]] = np.nan
        flat[picks[3]] = rng.choice([np.inf, -np.inf], picks.shape[1])
    return x


def same_bits(got: np.ndarray, expected: np.ndarray) -> bool:
    """Byte for byte, NaNs where numpy has NaNs (their sign and payload depend on which operand
    the hardware keeps, which IEEE leaves open and compilers swap; a NaN never reaches a real
    descriptor)."""
    nan = np.isnan(expected)
    return (np.array_equal(np.isnan(got), nan)
            and np.where(nan, 0, got).tobytes() == np.where(nan, 0, expected).tobytes())


def grid_shape(m: int, h: int, w: int, c: int) -> tuple[int, ...]:
    return resnet.Grid.shape_for(m, h, w, c)


def test_serial_is_always_there_and_preferred_last():
    assert _resnet.compiled_kernels()[-1] == "serial" and _resnet.supported("serial")
    assert _resnet.best_kernel() == KERNELS[0]
    grid = np.zeros(grid_shape(1, 2, 2, 1), np.float32)
    with pytest.raises(ValueError, match="resnet kernel 'nope' is not available"):
        _resnet.winograd_input(grid, 2, 2, np.zeros((16, 1, 1), np.float32), kernel="nope")


@settings(max_examples=80, deadline=None)
@given(m=st.integers(1, 4), h=st.integers(1, 11), w=st.integers(1, 11),
       cin=st.sampled_from([1, 2, 3, 5, 8, 16, 17, 32, 64]), specials=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_winograd_input_is_numpys(m, h, w, cin, specials, seed):
    rng = np.random.default_rng(seed)
    grid = spread(rng, grid_shape(m, h, w, cin), specials)  # the border too: every cell read
    th, tw = (h + 1) // 2, (w + 1) // 2
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: NaN, as the kernels give
        expected = resnet.winograd_input_numpy(grid, h, w, np.empty((16, m * th * tw, cin),
                                                                    np.float32))
    for name in KERNELS:
        tiles = np.full((16, m * th * tw, cin), np.nan, np.float32)
        assert _resnet.winograd_input(grid, h, w, tiles, kernel=name) is tiles
        assert same_bits(tiles, expected), name


@settings(max_examples=80, deadline=None)
@given(m=st.integers(1, 4), h=st.integers(1, 11), w=st.integers(1, 11),
       cout=st.sampled_from([1, 2, 3, 5, 8, 16, 17, 32, 64]), residual=st.booleans(),
       relu=st.booleans(), specials=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_winograd_output_is_numpys(m, h, w, cout, residual, relu, specials, seed):
    rng = np.random.default_rng(seed)
    th, tw = (h + 1) // 2, (w + 1) // 2
    products = spread(rng, (16, m * th * tw, cout), specials)
    bias = spread(rng, (cout,), specials)
    res = spread(rng, grid_shape(m, h, w, cout), specials) if residual else None
    kept = products.copy()
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: NaN, as the kernels give
        expected = resnet.winograd_output_numpy(
            products, bias, np.full(grid_shape(m, h, w, cout), np.nan, np.float32), h, w, res,
            relu)
    for name in KERNELS:
        out = np.full(grid_shape(m, h, w, cout), np.nan, np.float32)  # a dirty reused buffer
        assert _resnet.winograd_output(products, bias, out, h, w, res, relu, kernel=name) is out
        assert same_bits(out, expected), name
    assert products.tobytes() == kept.tobytes()  # the products are only read


def test_shapes_are_checked_before_any_pointer_arithmetic():
    grid = np.zeros(grid_shape(2, 5, 5, 4), np.float32)
    tiles = np.zeros((16, 2 * 9, 4), np.float32)
    _resnet.winograd_input(grid, 5, 5, tiles)
    bad = [
        (lambda: _resnet.winograd_input(grid, 7, 5, tiles), "grid \\(m, 10, 2, 4, c\\)"),
        (lambda: _resnet.winograd_input(grid, 5, 5, tiles[:, :17]), "tiles must be"),
        (lambda: _resnet.winograd_input(grid.astype(np.float64), 5, 5, tiles), "float32 grid"),
        (lambda: _resnet.winograd_input(grid[:, :, :, :, ::2], 5, 5, tiles), "C-contiguous"),
        (lambda: _resnet.winograd_input(grid, 0, 5, tiles), "image of 0x5"),
        (lambda: _resnet.winograd_output(tiles, np.zeros(3, np.float32), grid, 5, 5),
         "bias must be"),
        (lambda: _resnet.winograd_output(tiles[:, :, :3], np.zeros(4, np.float32), grid, 5, 5),
         "products must be"),
        (lambda: _resnet.winograd_output(tiles, np.zeros(4, np.float32), grid, 5, 5, grid[:1]),
         "residual"),
        (lambda: _resnet.winograd_output(tiles, np.zeros(4, np.float32), grid, 5, 7),
         "out: a C-contiguous float32 grid"),
        # never a write into read-only memory (here a bytes object's) or a misaligned buffer
        (lambda: _resnet.winograd_input(grid, 5, 5, read_only(tiles)), "tiles must be"),
        (lambda: _resnet.winograd_input(grid, 5, 5, misaligned(tiles)), "tiles must be"),
        (lambda: _resnet.winograd_output(tiles, np.zeros(4, np.float32), read_only(grid), 5, 5),
         "out: .* \\(aligned, writeable\\)"),
        (lambda: _resnet.winograd_input(grid, 2**31 - 1, 5, tiles), "grid \\(m, 2147483650,"),
    ]
    for call, message in bad:
        with pytest.raises(ValueError, match=message) as caught:
            call()
        assert "\n" not in str(caught.value)
    for none in ((None, 5, 5, tiles), (grid, 5, 5, None)):
        with pytest.raises(TypeError, match="NoneType"):
            _resnet.winograd_input(*none)


def read_only(a: np.ndarray) -> np.ndarray:
    """A copy of `a` over an immutable bytes object."""
    return np.frombuffer(a.tobytes(), a.dtype).reshape(a.shape)


def misaligned(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of `a` one byte off float alignment."""
    raw = np.zeros(a.nbytes + 1, np.uint8)[1:]
    raw[:] = a.view(np.uint8).reshape(-1)
    return raw.view(a.dtype).reshape(a.shape)


@pytest.fixture(scope="module")
def net() -> resnet.FaceNet:
    return resnet.FaceNet.load(MODEL)


def test_the_network_gives_the_bits_of_its_numpy_passes(net, monkeypatch):
    """Chips of random pixels through the whole network (the relu and residual sums fused into
    the output transform), in batches of 1 and 3: the same bytes with the numpy passes."""
    chips = np.random.default_rng(7).integers(0, 256, (3, 150, 150, 3), np.uint8)
    fast = [net.descriptors(chips[:1]), net.descriptors(chips)]
    monkeypatch.setattr(resnet, "_resnet", SimpleNamespace(
        winograd_input=resnet.winograd_input_numpy, winograd_output=resnet.winograd_output_numpy))
    slow = [net.descriptors(chips[:1]), net.descriptors(chips)]
    assert [d.tobytes() for d in fast] == [d.tobytes() for d in slow]


def test_a_layer_gives_the_bits_of_its_numpy_passes():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 9, 7, 8)).astype(np.float32)
    conv = resnet.Conv(rng.normal(size=(72, 8)).astype(np.float32),
                       rng.normal(size=8).astype(np.float32), 3, 1, 1)
    work = resnet.Workspace()
    grid = resnet.Grid.of(x, work)
    shortcut = resnet.Grid.of(rng.normal(size=(3, 9, 7, 8)).astype(np.float32), work, grid)
    for residual, relu in ((None, False), (None, True), (shortcut, True)):
        fast = resnet.winograd_conv(grid, conv, work.grid(3, 9, 7, 8, grid, shortcut), work,
                                    residual, relu).data.copy()
        slow = resnet.winograd_conv(grid, conv, work.grid(3, 9, 7, 8, grid, shortcut), work,
                                    residual, relu, reference=True).data
        assert fast.tobytes() == slow.tobytes()


def einsum_winograd_weights(conv: resnet.Conv) -> np.ndarray:
    """G f G^T as it was computed before: one float64 einsum, rounded to float32."""
    g = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]])
    cout = conv.weights.shape[1]
    filters = conv.weights.reshape(3, 3, -1, cout).astype(np.float64)
    return np.einsum("ik,klco,jl->ijco", g, filters, g).reshape(16, -1, cout).astype(np.float32)


def test_the_models_winograd_weights_are_einsums(net):
    convs = [conv for kind, conv in net.layers if kind == "con" and conv.winograd]
    assert len(convs) > 20
    for conv in convs:
        assert conv.winograd_weights.tobytes() == einsum_winograd_weights(conv).tobytes()


@settings(max_examples=40, deadline=None)
@given(cin=st.integers(1, 9), cout=st.integers(1, 9), decades=st.integers(0, 6),
       seed=st.integers(0, 2**32 - 1))
def test_winograd_weights_are_einsums(cin, cout, decades, seed):
    rng = np.random.default_rng(seed)
    weights = (rng.standard_normal((9 * cin, cout))
               * 10.0 ** rng.integers(-decades, 1, (9 * cin, cout))).astype(np.float32)
    conv = resnet.Conv(weights, np.zeros(cout, np.float32), 3, 1, 1)
    assert conv.winograd_weights.shape == (16, cin, cout)
    assert conv.winograd_weights.tobytes() == einsum_winograd_weights(conv).tobytes()


RESNET_KERNELS = Path(__file__).resolve().parents[1] / "ext" / "resnet_kernels"
CFLAGS = ["-O3", "-Wall", "-Werror", "-ffp-contract=off", f"-I{RESNET_KERNELS}"]
SOURCES = [str(RESNET_KERNELS / "tests" / "resnet_check.c"), str(RESNET_KERNELS / "dispatch.c")]


@pytest.fixture(scope="module")
def native_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """resnet_check's lines on this machine, the same for every kernel it runs."""
    return c_drivers.native_lines(tmp_path_factory.mktemp("resnet"), CFLAGS, SOURCES, KERNELS,
                                  7)


def test_resnet_check_agrees_across_the_kernels_here(native_lines):
    assert len(set(native_lines)) == len(native_lines)  # seven different outputs


@c_drivers.needs_arm
def test_the_pi_4_build_transforms_the_same_bits(native_lines, tmp_path):
    lines, disassembly = c_drivers.pi_lines(tmp_path, CFLAGS, SOURCES)
    assert lines == native_lines
    # the serial build is NEON on aarch64: its float adds run 4 lanes at a time (the kernel's
    # own code, or the dispatcher's where the compiler inlined it)
    for name in ("winograd_input", "winograd_output"):
        code = [disassembly.split(f"<{f}>:")[1].split("\n\n")[0]
                for f in (f"serial_{name}", f"resnet_{name}") if f"<{f}>:" in disassembly]
        assert any(re.search(r"f(add|sub)\tv\d+\.4s", part) for part in code), name
