"""appliance.faces.resnet: dlib's face ResNet on numpy, against dlib itself and plain references."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import photos
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.faces import resnet
from appliance.faces.analyzer import FaceAnalyzer
from appliance.faces.face import Face
from appliance.faces.model_files import DESCRIPTOR_FILE
from appliance.faces.resnet import FaceNet, NetworkFormatError
from appliance.faces.settings import FaceSettings

#: Largest per-component difference allowed between dlib's descriptor and ours: float32 sums in
#: another order (measured ~4e-7 on the astronaut; descriptors are ~0.13 per component).
TOLERANCE = 2e-5

MODEL = Path(importlib.util.find_spec("face_recognition_models")
             .submodule_search_locations[0]) / "models" / DESCRIPTOR_FILE


@pytest.fixture(scope="module")
def net() -> FaceNet:
    return FaceNet.load(MODEL)


@pytest.fixture(scope="module")
def dlib_net():
    import dlib

    return dlib.face_recognition_model_v1(str(MODEL))


def dlib_descriptor(dlib_net, chip: np.ndarray) -> np.ndarray:
    return np.asarray(dlib_net.compute_face_descriptor(np.ascontiguousarray(chip), 0), np.float32)


# ---------------------------------------------------------------------------------------------
# the whole network against dlib


@pytest.fixture(scope="module")
def real_chips() -> list[np.ndarray]:
    analyzer = FaceAnalyzer(FaceSettings(descriptor_engine="dlib"))
    images = [photos.astronaut()] + [photos.lfw_photo(i) for i in range(0, 100, 12)]
    faces = [analyzer.analyze(image) for image in images]
    return [face.chip for face in faces if isinstance(face, Face)]


@pytest.mark.slow
def test_real_faces_give_dlibs_descriptor(net, dlib_net, real_chips):
    assert len(real_chips) >= 8
    for chip in real_chips:
        ours, theirs = net.descriptor(chip), dlib_descriptor(dlib_net, chip)
        assert ours.dtype == np.float32 and ours.shape == (128,)
        assert np.abs(ours - theirs).max() < TOLERANCE


chips = st.one_of(
    st.integers(0, 2**32 - 1).map(
        lambda seed: np.random.default_rng(seed).integers(0, 256, (150, 150, 3), np.uint8)),
    st.sampled_from([0, 1, 128, 254, 255]).map(lambda v: np.full((150, 150, 3), v, np.uint8)),
    st.integers(0, 2**32 - 1).map(  # smooth gradients, closer to photos than noise
        lambda seed: np.clip(np.random.default_rng(seed).normal(128, 60, (1, 1, 3))
                             + np.linspace(-90, 90, 150)[:, None, None]
                             * np.random.default_rng(seed + 1).normal(0, 1, (1, 150, 3)),
                             0, 255).astype(np.uint8)),
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None)
@given(chip=chips)
def test_any_chip_gives_dlibs_descriptor(net, dlib_net, chip):
    assert np.abs(net.descriptor(chip) - dlib_descriptor(dlib_net, chip)).max() < TOLERANCE


def test_same_chip_same_bits(net, real_chips):
    chip = real_chips[0]
    assert net.descriptor(chip).tobytes() == net.descriptor(chip.copy()).tobytes()


def test_a_batch_gives_each_chips_descriptor(net, real_chips):
    singles = np.stack([net.descriptor(chip) for chip in real_chips])
    batch = net.descriptors(np.stack(real_chips))
    assert batch.dtype == np.float32 and batch.shape == (len(real_chips), 128)
    assert np.abs(batch - singles).max() < 1e-6  # float32 rounding of other BLAS blocking
    reordered = net.descriptors(np.stack(real_chips[::-1]))[::-1]
    assert np.abs(reordered - singles).max() < 1e-6
    assert net.descriptors(np.stack(real_chips[:1]))[0].tobytes() == singles[0].tobytes()
    assert net.descriptors(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)
    with pytest.raises(ValueError, match=r"\(n, 150, 150, 3\)"):
        net.descriptors(np.stack(real_chips)[:, :64])


def test_blas_threads_are_limited_only_during_a_descriptor(real_chips):
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:  # numpy's own BLAS (faiss & co. may load others later)
        return [lib["num_threads"] for lib in threadpool_info()
                if lib["user_api"] == "blas" and "numpy" in lib["filepath"]]

    before = blas_threads()
    assert before, "numpy has no BLAS threadpoolctl can see"
    seen: list[list[int]] = []
    net = FaceNet.load(MODEL, threads=1)
    forward = net.forward
    net.forward = lambda chip: (seen.append(blas_threads()), forward(chip))[1]
    one = net.descriptor(real_chips[0])
    assert seen == [[1] * len(before)] and blas_threads() == before
    free = FaceNet.load(MODEL, threads=0)
    assert np.abs(free.descriptor(real_chips[0]) - one).max() < TOLERANCE


def test_wrong_chip_shape_is_refused(net):
    with pytest.raises(ValueError, match=r"\(150, 150, 3\)"):
        net.descriptor(np.zeros((64, 64, 3), np.uint8))


# ---------------------------------------------------------------------------------------------
# the layers against plain loops


def reference_conv(x, filters, bias, stride, padding):
    """Direct convolution of an HWC image with (cout, cin, k, k) filters, dlib's output size."""
    x = np.pad(x.astype(np.float64), ((padding, padding), (padding, padding), (0, 0)))
    cout, _, k, _ = filters.shape
    oh = 1 + (x.shape[0] - k) // stride
    ow = 1 + (x.shape[1] - k) // stride
    out = np.zeros((oh, ow, cout))
    for r in range(oh):
        for c in range(ow):
            patch = x[r * stride:r * stride + k, c * stride:c * stride + k, :]  # (k, k, cin)
            for o in range(cout):
                out[r, c, o] = np.sum(patch * filters[o].transpose(1, 2, 0)) + bias[o]
    return out


@settings(max_examples=60, deadline=None)
@given(data=st.data(), k=st.sampled_from([1, 3, 5, 7]), stride=st.integers(1, 2),
       padding=st.integers(0, 3), cin=st.integers(1, 4), cout=st.integers(1, 4))
def test_convolution_matches_a_direct_loop(data, k, stride, padding, cin, cout):
    h = data.draw(st.integers(max(1, k - 2 * padding), 11))
    w = data.draw(st.integers(max(1, k - 2 * padding), 11))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    batch = data.draw(st.integers(1, 3))
    x = rng.normal(size=(batch, h, w, cin)).astype(np.float32)
    filters = rng.normal(size=(cout, cin, k, k)).astype(np.float32)
    bias = rng.normal(size=cout).astype(np.float32)
    gamma, beta = rng.normal(size=cout).astype(np.float32), rng.normal(size=cout).astype(np.float32)
    (_, conv), = resnet.fold_layers([("con", (filters, bias, k, stride, padding)),
                               ("affine", (gamma, beta))])
    expected = np.stack([reference_conv(image, filters, bias, stride, padding) * gamma + beta
                         for image in x])
    got = resnet.conv_layer(x, conv)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), k=st.sampled_from([1, 3, 7]), stride=st.integers(1, 2),
       padding=st.integers(0, 3), tile=st.integers(1, 40))
def test_a_convolution_by_tiles_matches_a_direct_loop(data, k, stride, padding, tile):
    h = data.draw(st.integers(max(1, k - 2 * padding), 14))
    w = data.draw(st.integers(max(1, k - 2 * padding), 14))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.normal(size=(data.draw(st.integers(1, 3)), h, w, 3)).astype(np.float32)
    filters = rng.normal(size=(5, 3, k, k)).astype(np.float32)
    bias = rng.normal(size=5).astype(np.float32)
    conv = resnet.Conv(np.ascontiguousarray(filters.transpose(2, 3, 1, 0).reshape(-1, 5)), bias,
                       k, stride, padding)
    original, resnet.TILE_ROWS = resnet.TILE_ROWS, tile  # tiles of a few output rows per chip
    try:
        got = resnet.conv_layer(x, conv)
    finally:
        resnet.TILE_ROWS = original
    expected = np.stack([reference_conv(image, filters, bias, stride, padding) for image in x])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_tiles_give_the_descriptor_of_one_product_per_layer(net, real_chips, monkeypatch):
    batch = np.stack(real_chips[:5])
    tiled = net.descriptors(batch)
    monkeypatch.setattr(resnet, "TILE_ROWS", 10**9)
    # a row of a matrix product is the same bits whatever rows surround it (at these sizes)
    assert net.descriptors(batch).tobytes() == tiled.tobytes()


@settings(max_examples=60, deadline=None)
@given(data=st.data(), h=st.integers(1, 9), w=st.integers(1, 9), cin=st.integers(1, 5),
       cout=st.integers(1, 5), batch=st.integers(1, 3), tiles=st.sampled_from([1, 5, 400]),
       scale=st.sampled_from([1e-3, 1.0, 300.0]))
def test_winograd_convolution_matches_a_direct_loop(data, h, w, cin, cout, batch, tiles, scale):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = (rng.normal(size=(batch, h, w, cin)) * scale).astype(np.float32)
    filters = rng.normal(size=(cout, cin, 3, 3)).astype(np.float32)
    bias = rng.normal(size=cout).astype(np.float32)
    conv = resnet.Conv(np.ascontiguousarray(filters.transpose(2, 3, 1, 0).reshape(-1, cout)),
                       bias, 3, 1, 1)
    work = resnet.Workspace()
    grid = resnet.Grid.of(x, work)
    out = work.grid(batch, h, w, cout, grid)
    out.data.fill(np.nan)  # a reused buffer's leftovers must not survive
    original, resnet.WINOGRAD_TILES = resnet.WINOGRAD_TILES, tiles  # chunks of chips
    try:
        assert resnet.winograd_conv(grid, conv, out, work) is out
    finally:
        resnet.WINOGRAD_TILES = original
    expected = np.stack([reference_conv(image, filters, bias, 1, 1) for image in x])
    got = out.image()
    assert got.shape == expected.shape
    # float32 rounding: of the order of the direct convolution's (sums of 9 cin products)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale * (1 + 9 * cin))
    assert np.array_equal(resnet.Grid.of(got, work, out).data, out.data)  # zero border


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 4), batch=st.integers(1, 3),
       seed=st.integers(0, 99))
def test_grid_holds_the_image_zero_bordered_even_columns_first(h, w, c, batch, seed):
    x = np.random.default_rng(seed).normal(size=(batch, h, w, c)).astype(np.float32) + 5
    work = resnet.Workspace()
    work.grid(batch, h, w, c).data.fill(np.nan)  # the buffer Grid.of will reuse
    grid = resnet.Grid.of(x, work)
    assert grid.data.shape == resnet.Grid.shape_for(batch, h, w, c)
    padded = np.zeros((batch, grid.data.shape[1], 2 * grid.data.shape[3], c), np.float32)
    padded[:, 1:h + 1, 1:w + 1] = x
    for p in range(padded.shape[2]):
        assert np.array_equal(grid.data[:, :, p % 2, p // 2], padded[:, :, p])
    assert np.array_equal(grid.image(), x)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cout=st.integers(1, 5), size=st.sampled_from([1, 3, 7]),
       stride=st.integers(1, 2))
def test_stem_takes_raw_pixels_for_normalised_ones(seed, cout, size, stride):
    rng = np.random.default_rng(seed)
    means = rng.uniform(0, 255, 3).astype(np.float32)
    pixels = rng.integers(0, 256, (2, 9, 9, 3)).astype(np.float32)
    conv = resnet.Conv(rng.normal(size=(size * size * 3, cout)).astype(np.float32),
                       rng.normal(size=cout).astype(np.float32), size, stride, 0)
    expected = resnet.conv_layer((pixels - means) / np.float32(256), conv)
    got = resnet.conv_layer(pixels, resnet._normalising(conv, means))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_workspaces_leave_no_trace_between_batches_or_threads(net, real_chips):
    from concurrent.futures import ThreadPoolExecutor

    first, second = np.stack(real_chips[:3]), np.stack(real_chips[3:6])
    expected = [net.descriptors(first), net.descriptors(second)]
    assert net.descriptors(first).tobytes() == expected[0].tobytes()  # after another batch
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(net.descriptors, [first, second] * 3))
    for got, want in zip(results, expected * 3, strict=True):
        assert got.tobytes() == want.tobytes()


@settings(max_examples=40, deadline=None)
@given(a=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 4)),
       b=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 4)),
       seed=st.integers(0, 99))
def test_residual_add_is_top_left_aligned_and_zero_padded(a, b, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=a).astype(np.float32), rng.normal(size=b).astype(np.float32)
    out = resnet.add_residual(x[None], y[None])[0]
    assert out.shape == tuple(max(p, q) for p, q in zip(a, b, strict=True))
    for index in np.ndindex(out.shape):
        inside = [t[index] if all(i < s for i, s in zip(index, t.shape, strict=True)) else 0.0
                  for t in (x, y)]
        assert out[index] == pytest.approx(sum(inside), abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(3, 12), w=st.integers(3, 12), kind=st.sampled_from(["max", "avg"]),
       size=st.integers(2, 3), stride=st.integers(1, 2), seed=st.integers(0, 99))
def test_pooling_matches_a_loop(h, w, kind, size, stride, seed):
    x = np.random.default_rng(seed).normal(size=(h, w, 2)).astype(np.float32)
    got = resnet.pool_layer(x[None], resnet.Pool(kind, size, stride))[0]
    reduce = np.max if kind == "max" else np.mean
    oh, ow = 1 + (h - size) // stride, 1 + (w - size) // stride
    expected = np.array([[reduce(x[r * stride:r * stride + size, c * stride:c * stride + size],
                                 axis=(0, 1)) for c in range(ow)] for r in range(oh)])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# files it must refuse


@pytest.mark.parametrize("damage", ["not dlib", "truncated", "layer renamed", "pooling swapped",
                                    "empty"])
def test_unusable_model_file_is_refused_on_one_line(tmp_path, damage):
    data = MODEL.read_bytes()
    if damage == "not dlib":
        data = b"PK\x03\x04" + data[4:]
    elif damage == "truncated":
        data = data[:len(data) // 2]
    elif damage == "layer renamed":  # the 10th residual block loses its relu: another network
        at = [i for i in range(len(data)) if data.startswith(b"\x05relu_", i)][10]
        data = data[:at] + b"\x05relX_" + data[at + 6:]
    elif damage == "pooling swapped":  # the stem's max pooling becomes an average one
        data = data.replace(b"\x0amax_pool_2", b"\x0aavg_pool_2", 1)
    else:
        data = b""
    path = tmp_path / "model.dat"
    path.write_bytes(data)
    with pytest.raises(NetworkFormatError) as caught:
        FaceNet.load(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message


def test_analyzer_falls_back_to_dlib_when_the_numpy_engine_refuses(monkeypatch, real_chips,
                                                                   dlib_net):
    from appliance.faces.models import ProcessModels

    def refuse(path, threads=1):
        raise NetworkFormatError(f"{path}: refused for the test")

    monkeypatch.setattr(FaceNet, "load", staticmethod(refuse))
    models = ProcessModels().for_settings(FaceSettings(descriptor_model=MODEL))  # loads afresh
    assert models.engine == "dlib"
    chip = real_chips[0]
    assert np.array_equal(models.describe(chip), dlib_descriptor(dlib_net, chip))
