"""`sosie train`: the JAX generator is the numpy one, a few steps make weights `generate` uses,
a resumed run ends with the bytes of an uninterrupted one, bad input gets one line, and the
appliance's runtime never imports JAX."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from photos import encode, lfw_photo, no_face_photo

jax = pytest.importorskip("jax")
pytest.importorskip("optax")
pytest.importorskip("safetensors")

import jax.numpy as jnp  # noqa: E402

from appliance.generator.dcgan import DCGAN, conv_transpose, read_state  # noqa: E402
from appliance.train import networks  # noqa: E402
from appliance.train.augment import cutout, diff_augment, translate  # noqa: E402
from appliance.train.checkpoint import CheckpointError  # noqa: E402
from appliance.train.dataset import Dataset, frame  # noqa: E402
from appliance.train.loop import TrainOptions, train  # noqa: E402


def sosie(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


def numpy_float_forward(net: DCGAN, z: np.ndarray) -> np.ndarray:
    """The numpy generator's tanh output before rounding to pixels."""
    x = z.reshape(1, 1, 1, -1)
    for i, layer in enumerate(net.layers):
        x = conv_transpose(x, layer.weights, layer.stride, layer.padding)
        if i < len(net.layers) - 1:
            x = np.maximum(x + layer.bias, 0)
    return np.tanh(x[0])


def test_the_jax_generator_computes_what_the_numpy_one_does(shipped):
    assert shipped.path is not None
    params, stats = networks.split_state(read_state(shipped.path))
    latents = np.stack([DCGAN.latent(11, i) for i in range(12)])
    ours = np.asarray(networks.generate(params, stats, jnp.asarray(latents)))
    reference = np.stack([numpy_float_forward(shipped, z) for z in latents])
    difference = np.abs(ours - reference).max()
    assert difference < 1e-5, difference  # measured: 1.6e-6
    pixels = networks.to_pixels(ours).astype(int) - shipped.render(latents)
    assert np.abs(pixels).max() <= 1 and (pixels == 0).mean() > 0.999
    # and the state written back is the state read, bit for bit
    joined = networks.join_state(params, stats)
    state = read_state(shipped.path)
    assert all(np.array_equal(joined[k], np.asarray(v)) for k, v in state.items())


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 2), side=st.integers(1, 5), cin=st.integers(1, 6), cout=st.integers(1, 5),
       stride=st.integers(1, 2), padding=st.integers(0, 1), seed=st.integers(0, 2**16))
def test_the_jax_transposed_convolution_is_the_numpy_one(n, side, cin, cout, stride, padding,
                                                          seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, side, side, cin)).astype(np.float32)
    weight = rng.standard_normal((cin, cout, 4, 4)).astype(np.float32)
    matrix = weight.transpose(0, 2, 3, 1).reshape(cin, 16 * cout)
    reference = conv_transpose(x, matrix, stride, padding)
    ours = np.asarray(networks.conv_transpose(jnp.asarray(x), jnp.asarray(weight), stride,
                                              padding))
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= 1e-5 * max(1.0, np.abs(reference).max())


def test_a_scratch_generator_starts_normalised():
    params, stats = networks.scratch_generator(jax.random.PRNGKey(3))
    images = np.asarray(networks.generate(params, stats, jax.random.normal(
        jax.random.PRNGKey(4), (8, 100))))
    assert images.shape == (8, 64, 64, 3)
    assert 0.05 < images.std() < 0.9  # neither collapsed to grey nor saturated


def test_diff_augment_is_differentiable_and_moves_and_cuts_as_said():
    key = jax.random.PRNGKey(0)
    x = jax.random.uniform(key, (4, 64, 64, 3), minval=-1, maxval=1)
    grad = jax.grad(lambda v: diff_augment(key, v).sum())(x)
    assert np.abs(np.asarray(grad)).sum() > 0
    moved = np.asarray(translate(jax.random.PRNGKey(5), x))
    for image, shifted in zip(np.asarray(x), moved, strict=True):
        # some shift within 8 px maps the image onto its translated copy (zeros uncovered)
        found = False
        for dy in range(-8, 9):
            for dx in range(-8, 9):
                expected = np.zeros_like(image)
                ys, xs = slice(max(dy, 0), 64 + min(dy, 0)), slice(max(dx, 0), 64 + min(dx, 0))
                src_y, src_x = slice(max(-dy, 0), 64 - max(dy, 0)), slice(max(-dx, 0),
                                                                           64 - max(dx, 0))
                expected[ys, xs] = image[src_y, src_x]
                found = found or np.array_equal(expected, shifted)
        assert found
    ones = jnp.ones((16, 64, 64, 3))
    cut = np.asarray(cutout(jax.random.PRNGKey(6), ones))
    zeroed = (cut == 0).all(axis=3).sum(axis=(1, 2))
    assert ((zeroed > 0) & (zeroed <= 32 * 32)).all() and (zeroed == 32 * 32).any()


def test_faces_aligned_at_the_generators_framing_come_back_in_place(shipped, analyzer):
    """Generated faces, enlarged and aligned by `frame`, land where the generator drew them."""
    from appliance.faces.face import Face

    ours, chips = [], []
    for i in range(24):
        small = shipped.faces(21, [i], 64)[0]
        found = analyzer.faces(shipped.faces(21, [i], 256)[0])
        if not found:
            continue
        ours.append(np.abs(frame(found[0]).astype(int) - small).mean())
        face: Face = found[0]
        import cv2

        plain = cv2.resize(face.aligned(256, padding=0.35), (64, 64), interpolation=cv2.INTER_AREA)
        chips.append(np.abs(plain.astype(int) - small).mean())
    assert len(ours) >= 10
    assert np.median(ours) < 0.6 * np.median(chips), (np.median(ours), np.median(chips))


def tiny_dataset(shipped: DCGAN) -> Dataset:
    faces = shipped.faces(5, list(range(6)), 64)
    return Dataset(faces, [f"f{i}" for i in range(6)], [])


def test_a_resumed_run_ends_with_the_bytes_of_an_uninterrupted_one(shipped, tmp_path):
    dataset = tiny_dataset(shipped)
    options = TrainOptions(steps=3, batch=2, checkpoint_every=2, sample_every=2, r1_gamma=0.1)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    train(dataset, whole, options, progress=False)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C after step 1: saved on the way out
        train(dataset, resumed, options, progress=False, interrupt_after=1)
    with pytest.raises(KeyboardInterrupt):  # and again after step 2 (a regular checkpoint)
        train(dataset, resumed, options, progress=False, interrupt_after=2)
    summary = train(dataset, resumed, options, progress=False)
    assert summary["this_session"]["steps"] == 1
    for name in ("generator.safetensors", "checkpoint.safetensors", "samples/step-000002.png"):
        assert (whole / name).read_bytes() == (resumed / name).read_bytes(), name
    # the trained weights are not the starting ones
    trained = DCGAN.load(whole / "generator.safetensors")
    assert not np.array_equal(trained.faces(0, [0], 64), shipped.faces(0, [0], 64))
    # another seed in the same folder is refused, naming what differs
    with pytest.raises(CheckpointError, match="holds a run with another seed"):
        train(dataset, resumed, TrainOptions(steps=4, batch=2, seed=1, r1_gamma=0.1),
              progress=False)
    # asking for fewer steps than done is refused too
    from appliance.train.loop import TrainError

    with pytest.raises(TrainError, match="already at step 3"):
        train(dataset, resumed, TrainOptions(steps=2, batch=2, checkpoint_every=2,
                                             sample_every=2, r1_gamma=0.1), progress=False)


@pytest.fixture(scope="module")
def photos_dir(tmp_path_factory, shipped) -> Path:
    """Four photos with a face, a photo without one, a file that is no image."""
    folder = tmp_path_factory.mktemp("photos")
    from photos import astronaut

    (folder / "astronaut.png").write_bytes(encode(astronaut()))
    (folder / "mirror.jpg").write_bytes(encode(np.ascontiguousarray(astronaut()[:, ::-1]), "JPEG"))
    for i in (0, 1):
        (folder / f"lfw-{i}.png").write_bytes(encode(lfw_photo(i, 200)))
    (folder / "coffee.png").write_bytes(encode(no_face_photo()))
    (folder / "notes.txt").write_text("not a photo\n")
    return folder


def test_a_few_steps_make_weights_that_generate_uses(photos_dir, tmp_path, shipped):
    from PIL import Image

    run = tmp_path / "run"
    done = sosie("train", str(photos_dir), "--out", str(run), "--steps", "2", "--batch", "2",
                 "--sample-every", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    weights = run / "generator.safetensors"
    assert done.stdout.startswith(f"{weights}: 2 steps on ")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["faces"] >= 3 and summary["rejected"] >= 2
    rejected = (run / "rejected.tsv").read_text()
    assert "coffee.png\tno face found" in rejected and "notes.txt\t" in rejected
    for name in ("samples/step-000000.png", "samples/step-000002.png", "losses.png", "faces.png"):
        assert (run / name).is_file(), name
    trained = DCGAN.load(weights)
    assert trained.checksum == summary["generator"]["sha256"]
    out = tmp_path / "faces"
    made = sosie("generate", str(out), "--count", "2", "--size", "64", "--weights",
                 str(weights), "--analyzer", "mock", "--quiet")
    assert made.returncode == 0, made.stderr
    drawn = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in sorted(out.glob("*.png"))])
    assert np.array_equal(drawn, trained.faces(0, [0, 1], 64))
    assert not np.array_equal(drawn, shipped.faces(0, [0, 1], 64))
    # the grid of step 0 is the shipped generator's faces 0-31 of seed 0
    grid = np.asarray(Image.open(run / "samples/step-000000.png").convert("RGB"))
    assert np.abs(grid[2:66, 2:66].astype(int) - shipped.faces(0, [0], 64)[0]).max() <= 1


def one_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_bad_input_gets_one_line(tmp_path, photos_dir):
    empty = tmp_path / "no-faces"
    empty.mkdir()
    (empty / "coffee.png").write_bytes(encode(no_face_photo()))
    (empty / "notes.txt").write_text("x")
    done = sosie("train", str(empty), "--out", str(tmp_path / "r1"), "--quiet")
    assert done.returncode == 1
    assert one_line(done).startswith(f"sosie train: {empty}: no usable face in 2 files (")
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    (tiny / "small.png").write_bytes(encode(lfw_photo(0, 40)))
    done = sosie("train", str(tiny), "--out", str(tmp_path / "r2"), "--quiet")
    assert done.returncode == 1
    line = one_line(done)
    assert line.startswith(f"sosie train: {tiny}: no usable face in 1 file (") and (
        "face too small" in line or "no face found" in line), line
    wrong = tmp_path / "wrong.safetensors"
    wrong.write_bytes(b"\x08\0\0\0\0\0\0\0{}      ")
    done = sosie("train", str(photos_dir), "--out", str(tmp_path / "r3"), "--from", str(wrong))
    assert done.returncode == 1
    assert one_line(done) == (f"sosie train: {wrong}: not the DCGAN generator "
                              f"(missing main.0.weight)")
    done = sosie("train", str(photos_dir), "--out", str(tmp_path / "r4"), "--steps", "0")
    assert done.returncode == 2
    assert one_line(done) == "sosie train: --steps 0: expected 1 to 10000000 steps"
    done = sosie("train", str(photos_dir), "--out", str(tmp_path / "r5"), "--from", "nowhere")
    assert done.returncode == 2
    assert one_line(done) == ("sosie train: --from nowhere: expected shipped, scratch or a "
                              "weights file")
    assert not (tmp_path / "r3").exists() and not (tmp_path / "r4").exists()


def test_without_the_extra_one_line_says_how_to_install_it(tmp_path, photos_dir):
    code = ("import sys; sys.modules['jax'] = None; from appliance.cli import main; "
            f"sys.exit(main(['train', {str(photos_dir)!r}, '--out', {str(tmp_path / 'r')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert one_line(done) == "sosie train: needs the training extra: pip install 'sosie[train]'"


def test_the_appliance_runtime_never_imports_jax(tmp_path, shipped):
    """Everything the appliance runs, the command line included, loads trained weights with
    numpy alone."""
    from safetensors.numpy import save_file

    weights = tmp_path / "g.safetensors"
    save_file(read_state(shipped.path), str(weights))  # type: ignore[arg-type]
    code = f"""
import sys
import appliance.cli
appliance.cli.build_parser()           # every command module, train and study included
import appliance.runtime.service, appliance.runtime.appliance, appliance.runtime.doctor
import appliance.corpus.build, appliance.corpus.info, appliance.conjure.double
import appliance.generator.source, appliance.generator.draws
from appliance.generator.dcgan import DCGAN
DCGAN.load({str(weights)!r}).faces(0, [0], 64)
heavy = sorted(m for m in sys.modules if m.split('.')[0] in
               ('jax', 'jaxlib', 'optax', 'safetensors', 'torch', 'appliance.train'))
heavy += sorted(m for m in sys.modules if m.startswith('appliance.train'))
print(heavy)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
