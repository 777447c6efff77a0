"""The numpy DCGAN: each layer equals a plain-loop reference, the weights are checked against
the network, and face i of a seed is the same whatever batch or process draws it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_zip_writer import dcgan_state, write_dcgan

from appliance import _draw
from appliance.generator import dcgan
from appliance.generator.dcgan import (
    BN_EPS,
    DCGAN,
    LANDED_MIN_PRODUCT,
    LandedTaps,
    Layer,
    WeightsNotFound,
    conv_taps,
    conv_transpose,
    default_weights_path,
    fold_layers,
)
from appliance.generator.torch_zip import WeightsFormatError

SMALL = (6, 5, 4, 3, 2, 3)


def reference_conv_transpose(x: np.ndarray, weight: np.ndarray, stride: int,
                             padding: int) -> np.ndarray:
    """ConvTranspose2d by its definition, in float64 loops. x: NHWC; weight: (cin, cout, k, k)."""
    n, h, w, cin = x.shape
    _, cout, k, _ = weight.shape
    oh, ow = (h - 1) * stride - 2 * padding + k, (w - 1) * stride - 2 * padding + k
    out = np.zeros((n, oh, ow, cout))
    for b in range(n):
        for iy in range(h):
            for ix in range(w):
                for ky in range(k):
                    for kx in range(k):
                        oy, ox = iy * stride - padding + ky, ix * stride - padding + kx
                        if 0 <= oy < oh and 0 <= ox < ow:
                            for ci in range(cin):
                                out[b, oy, ox] += x[b, iy, ix, ci] * weight[ci, :, ky, kx]
    return out


def reference_forward(state: dict, z: np.ndarray, channels=SMALL) -> np.ndarray:
    """The generator layer by layer as PyTorch defines it: conv, batch norm, ReLU; tanh."""
    x = z.reshape(1, 1, 1, -1).astype(np.float64)
    count = len(channels) - 1
    for i in range(count):
        x = reference_conv_transpose(x, state[f"main.{3 * i}.weight"].astype(np.float64),
                                     dcgan.STRIDES[i], dcgan.PADDINGS[i])
        if i < count - 1:
            bn = f"main.{3 * i + 1}"
            x = (x - state[f"{bn}.running_mean"]) / np.sqrt(state[f"{bn}.running_var"] + BN_EPS)
            x = np.maximum(x * state[f"{bn}.weight"] + state[f"{bn}.bias"], 0)
    return (np.tanh(x[0]) + 1) * 127.5


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), h=st.integers(1, 4), w=st.integers(1, 4), cin=st.integers(1, 4),
       cout=st.sampled_from([1, 3, 8, 9]), stride=st.integers(1, 3), padding=st.integers(0, 1),
       kernel=st.sampled_from([2, 3, 4]), seed=st.integers(0, 2**16))
def test_conv_transpose_equals_the_definition(n, h, w, cin, cout, stride, padding, kernel, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    weight = rng.standard_normal((cin, cout, kernel, kernel)).astype(np.float32)
    matrix = weight.transpose(0, 2, 3, 1).reshape(cin, -1)
    got = conv_transpose(x, matrix, stride, padding, kernel)
    expected = reference_conv_transpose(x, weight, stride, padding)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_every_folded_layer_equals_conv_then_batch_norm():
    state = dcgan_state(SMALL, seed=3)
    layers = fold_layers(state, SMALL)
    rng = np.random.default_rng(4)
    side = 1
    for i, layer in enumerate(layers):
        x = rng.standard_normal((2, side, side, SMALL[i])).astype(np.float32)
        got = conv_transpose(x, layer.weights, layer.stride, layer.padding) + layer.bias
        expected = reference_conv_transpose(x, state[f"main.{3 * i}.weight"], dcgan.STRIDES[i],
                                            dcgan.PADDINGS[i])
        if i < len(layers) - 1:
            bn = f"main.{3 * i + 1}"
            expected = ((expected - state[f"{bn}.running_mean"])
                        / np.sqrt(state[f"{bn}.running_var"] + BN_EPS)
                        * state[f"{bn}.weight"] + state[f"{bn}.bias"])
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5, err_msg=f"layer {i}")
        side = got.shape[1]
    assert side == 64


def test_the_whole_network_equals_the_reference():
    state = dcgan_state(SMALL, seed=5)
    net = DCGAN(fold_layers(state, SMALL))
    z = np.random.default_rng(6).standard_normal((3, SMALL[0])).astype(np.float32)
    faces = net.render(z)
    assert faces.shape == (3, 64, 64, 3) and faces.dtype == np.uint8
    for face, latent in zip(faces, z, strict=True):
        expected = reference_forward(state, latent)
        assert np.abs(face - expected).max() <= 0.5 + 1e-3  # rounding only
        assert face.std() > 1  # not a flat image: the test could tell a broken net


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Random weights with the real network's shapes, as a torch.save-style file."""
    return write_dcgan(tmp_path_factory.mktemp("w") / "weights.tar", dcgan_state(seed=1))


def test_load_checks_and_checksums_the_file(weights):
    net = DCGAN.load(weights)
    assert len(net.checksum) == 64 and net.path == weights
    assert [layer.weights.shape for layer in net.layers] == [
        (100, 16 * 512), (512, 16 * 256), (256, 16 * 128), (128, 16 * 64), (64, 16 * 3)]


@pytest.mark.parametrize("change, words", [
    (lambda s: s.__setitem__("main.3.weight", np.zeros((512, 256, 4, 3), np.float32)),
     "main.3.weight is float32 (512, 256, 4, 3) (expected float of shape (512, 256, 4, 4))"),
    (lambda s: s.pop("main.7.running_var"), "missing main.7.running_var"),
    (lambda s: s.__setitem__("main.13.weight", np.zeros(3, np.float32)),
     "unexpected main.13.weight"),
    (lambda s: s.__setitem__("main.1.bias", np.zeros(512, np.int64)), "main.1.bias is int64"),
    (lambda s: s["main.0.weight"].__setitem__((0, 0, 0, 0), np.nan), "not finite"),
    (lambda s: s["main.4.running_var"].__setitem__(3, -1.0), "negative variances"),
    (lambda s: s.__setitem__("main.1.num_batches_tracked", np.zeros(1, np.int64)),
     "num_batches_tracked"),
])
def test_tensors_that_do_not_fit_the_network_are_refused(tmp_path, change, words):
    state = dcgan_state(seed=2)
    change(state)
    path = write_dcgan(tmp_path / "w.tar", state)
    with pytest.raises(WeightsFormatError) as info:
        DCGAN.load(path)
    assert str(info.value).startswith(f"{path}: ") and words in str(info.value)
    assert "\n" not in str(info.value)


def test_a_file_without_the_generator_is_refused(tmp_path):
    from torch_zip_writer import as_tensors, write_torch_zip

    path = write_torch_zip(tmp_path / "w.tar", {"netD_state_dict": as_tensors(dcgan_state(SMALL))})
    with pytest.raises(WeightsFormatError, match="no netG_state_dict"):
        DCGAN.load(path)


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
    with pytest.raises(WeightsNotFound) as info:
        DCGAN.load(tmp_path / "nowhere.tar")
    assert str(info.value).startswith(f"{tmp_path / 'nowhere.tar'}: no such weights file")

    def absent(name):
        raise dcgan.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(dcgan.importlib.metadata, "distribution", absent)
    with pytest.raises(WeightsNotFound) as info:
        default_weights_path()
    message = str(info.value)
    assert "pip install --no-deps gan-face-generate==1.1.1" in message
    assert "--weights PATH" in message and "\n" not in message


def test_latents_are_a_pure_function_of_seed_and_index():
    a = DCGAN.latent(7, 3)
    assert a.shape == (100,) and a.dtype == np.float32
    np.testing.assert_array_equal(a, DCGAN.latent(7, 3))
    assert not np.array_equal(a, DCGAN.latent(7, 4))
    assert not np.array_equal(a, DCGAN.latent(8, 3))
    assert not np.array_equal(DCGAN.latent(0, 1), DCGAN.latent(1, 0))
    code = ("from appliance.generator.dcgan import DCGAN; import sys; "
            "sys.stdout.buffer.write(DCGAN.latent(7, 3).tobytes())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    assert other == a.tobytes()
    with pytest.raises(ValueError, match="seed -1"):
        DCGAN.latent(-1, 0)


def test_a_face_does_not_depend_on_its_batch(weights):
    net = DCGAN.load(weights)
    count = dcgan.RENDER_BATCH + 3  # a full batch and a partial one
    together = net.faces(3, range(count), size=64)
    assert together.shape == (count, 64, 64, 3)
    for i in range(count):
        np.testing.assert_array_equal(net.faces(3, [i], size=64)[0], together[i])
    np.testing.assert_array_equal(net.faces(3, [4, 2], size=64), together[[4, 2]])
    assert not np.array_equal(together[0], together[1])


def test_the_shipped_network_draws_the_same_pixels_in_any_batch():
    net = DCGAN.load(installed_weights())  # real layers: 16 to 1024 rows per face, wide outputs
    latents = np.stack([DCGAN.latent(5, i) for i in range(2 * dcgan.RENDER_BATCH + 1)])
    together = net.render(latents)
    for size in (1, 3):
        apart = np.concatenate([net.render(latents[i:i + size])
                                for i in range(0, len(latents), size)])
        np.testing.assert_array_equal(apart, together)


def whole_product_layer(layer: Layer, x: np.ndarray, relu: bool,
                        kernel: int = dcgan.KERNEL) -> np.ndarray:
    """The layer as one product of every tap, then col2im + bias (+ ReLU)."""
    return _draw.col2im(conv_taps(x, layer.weights, kernel), layer.stride, layer.padding,
                        layer.bias, relu)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 6), w=st.integers(1, 6), cin=st.integers(1, 9),
       cout=st.sampled_from([1, 3, 8]), stride=st.integers(1, 3), padding=st.integers(0, 2),
       kernel=st.sampled_from([2, 3, 4, 5]), relu=st.booleans(), seed=st.integers(0, 2**16))
def test_landed_taps_equal_the_whole_product(n, h, w, cin, cout, stride, padding, kernel, relu,
                                             seed):
    """Any geometry: the products on the taps that land, gathered, give the whole product's
    layer. Small integers make every sum exact whatever order BLAS adds in (numpy sends a
    one-row or one-column product to another routine), so this checks which taps are computed
    and where they are added; the shipped layers' bits are checked below."""
    if min((h - 1) * stride + kernel, (w - 1) * stride + kernel) <= 2 * padding:
        return
    rng = np.random.default_rng(seed)
    layer = Layer(rng.integers(-8, 9, (cin, kernel * kernel * cout)).astype(np.float32),
                  rng.integers(-8, 9, cout).astype(np.float32), stride, padding)
    x = rng.integers(-8, 9, (n, h, w, cin)).astype(np.float32)
    landed = LandedTaps(layer, n, h, w, kernel)
    got = landed(x, layer.bias, relu)
    assert got.tobytes() == whole_product_layer(layer, x, relu, kernel).tobytes()
    # only landing taps were multiplied: one (row, column block) pair per tap that lands
    pairs = sum(len(rows if rows is not None else x.reshape(-1, cin)) * columns // cout
                for rows, _, _, columns in landed.products)
    assert pairs == np.count_nonzero(landed.offsets >= 0)


def test_the_shipped_layers_multiply_only_the_taps_that_land():
    """The real 4x4 -> 8x8 and 8x8 -> 16x16 layers on real activations: (14 / 16)^2 and
    (30 / 32)^2 of the whole product's multiply-adds, the same bits, for batches from the
    smallest that uses them; a smaller batch (BLAS's small products) gets the whole product."""
    net = DCGAN.load(installed_weights())
    latents = np.stack([DCGAN.latent(11, i) for i in range(16)])
    x = np.concatenate([conv_taps(z.reshape(1, 1, 1, -1), net.layers[0].weights)
                        for z in latents])
    x = _draw.col2im(x, 1, 0, net.layers[0].bias, True)
    for i, share in ((1, (14 / 16) ** 2), (2, (30 / 32) ** 2)):
        layer = net.layers[i]
        for n in (8, 11, 16):
            landed = net.landed_taps(i, x[:n].shape)
            assert landed is not None and landed.smallest >= LANDED_MIN_PRODUCT
            assert landed(x[:n], layer.bias, True).tobytes() == \
                whole_product_layer(layer, x[:n], True).tobytes()
        macs = sum((16 * x[0, ..., 0].size if rows is None else len(rows)) * columns
                   for rows, _, _, columns in landed.products)
        assert macs == pytest.approx(share * 16 * x[0, ..., 0].size * layer.weights.shape[1])
        assert net.landed_taps(i, x[:1].shape) is None
        x = whole_product_layer(layer, x, True)


def test_faces_are_upscaled_with_lanczos(weights):
    from PIL import Image

    net = DCGAN.load(weights)
    small = net.render(DCGAN.latent(1, 9)[None])[0]
    big = net.faces(1, [9], size=200)[0]
    assert big.shape == (200, 200, 3)
    expected = Image.fromarray(small).resize((200, 200), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(big, np.asarray(expected))
    with pytest.raises(ValueError, match="face size 8"):
        net.faces(1, [0], size=8)


def test_render_runs_on_one_blas_thread(weights, monkeypatch):
    from threadpoolctl import threadpool_info

    net = DCGAN.load(weights)
    seen = []
    forward = DCGAN.forward

    def numpy_blas() -> list[int]:  # other libraries' BLAS (scipy, faiss) do not run our GEMMs
        return [p["num_threads"] for p in threadpool_info()
                if p["user_api"] == "blas" and "numpy" in p["filepath"]]

    if not numpy_blas():
        pytest.skip("numpy's BLAS is not the one bundled in its wheel: cannot tell it apart")

    def spy(self, latents):
        seen.extend(numpy_blas())
        return forward(self, latents)

    monkeypatch.setattr(DCGAN, "forward", spy)
    net.render(np.zeros((dcgan.RENDER_BATCH + 1, 100), np.float32))  # two batches
    assert seen == [1, 1]


def test_render_refuses_latents_of_the_wrong_width(weights):
    with pytest.raises(ValueError, match=r"expected \(n, 100\)"):
        DCGAN.load(weights).render(np.zeros((2, 99), np.float32))


def installed_weights() -> Path:
    try:
        return default_weights_path()
    except WeightsNotFound as exc:
        pytest.skip(str(exc))


def test_the_shipped_network_draws_faces_dlib_finds():
    from appliance.corpus.engines import DlibEngine

    net = DCGAN.load(installed_weights())
    faces = net.faces(0, range(12), size=256)
    analyzer = DlibEngine().create()
    found = sum(hasattr(analyzer.analyze(face), "descriptor") for face in faces)
    assert found >= 6, f"dlib found a face in {found} of 12 generated images"
    noise = DCGAN(fold_layers(dcgan_state(seed=9))).faces(0, range(4), size=256)
    assert not any(hasattr(analyzer.analyze(face), "descriptor") for face in noise)
