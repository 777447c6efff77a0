"""The few-image remedies of `sosie train`: ADA's adaptive augmentation probability, the
ramped moving average of the generator, a narrower discriminator, and the measurements taken
while it trains."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("optax")
pytest.importorskip("safetensors")

import jax.numpy as jnp  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

from appliance.generator.dcgan import DCGAN, read_state  # noqa: E402
from appliance.train import networks, track  # noqa: E402
from appliance.train.augment import diff_augment  # noqa: E402
from appliance.train.dataset import Dataset  # noqa: E402
from appliance.train.loop import (  # noqa: E402
    ADA_IMAGES,
    TrainOptions,
    ada_adjust,
    ema_decay_at,
    train,
)


def tiny_dataset(shipped: DCGAN) -> Dataset:
    faces = shipped.faces(5, list(range(6)), 64)
    return Dataset(faces, [f"f{i}" for i in range(6)], [])


def test_ada_raises_p_while_the_discriminator_is_sure_of_the_photos_and_lowers_it_otherwise():
    step = 8 / ADA_IMAGES
    sure = jnp.full(8, 3.0)  # every photo called real: E[sign] = 1 > 0.6, overfitting
    unsure = jnp.array([1.0, -1, 1, -1, 1, -1, 1, 1])  # E[sign] = 0.25 < 0.6
    assert float(ada_adjust(jnp.float32(0.3), sure, 8, 0.6)) == pytest.approx(0.3 + step)
    assert float(ada_adjust(jnp.float32(0.3), unsure, 8, 0.6)) == pytest.approx(0.3 - step)
    assert float(ada_adjust(jnp.float32(1.0), sure, 8, 0.6)) == 1.0
    assert float(ada_adjust(jnp.float32(0.0), unsure, 8, 0.6)) == 0.0
    p = jnp.float32(0)
    for _ in range(ADA_IMAGES // 8):
        p = ada_adjust(p, sure, 8, 0.6)
    assert float(p) == pytest.approx(1.0, abs=1e-4)  # 0 to 1 in ADA_IMAGES images


def test_augment_probability_applies_each_operation_to_about_that_share_of_images():
    key = jax.random.PRNGKey(2)
    x = jax.random.uniform(key, (400, 16, 16, 3), minval=-1, maxval=1)
    assert np.array_equal(np.asarray(diff_augment(key, x, jnp.float32(0))), np.asarray(x))
    always = np.asarray(diff_augment(key, x))
    assert np.array_equal(np.asarray(diff_augment(key, x, jnp.float32(1))), always)
    half = np.asarray(diff_augment(key, x, jnp.float32(0.5)))
    untouched = np.all(half == np.asarray(x), axis=(1, 2, 3)).mean()
    assert 0.06 < untouched < 0.2, untouched  # all three skipped: 0.5^3 = 0.125
    grad = jax.grad(lambda v: diff_augment(key, v, jnp.float32(0.5)).sum())(x)
    assert np.abs(np.asarray(grad)).sum() > 0


def test_the_moving_average_is_the_closed_form_of_the_trained_weights(shipped, tmp_path):
    """After each of 3 steps the checkpoint holds the trained weights g_k and the average e_k;
    e_k = d_k e_(k-1) + (1 - d_k) g_k with d_k = min(decay, k / (9 + k)), e_0 = the start."""
    dataset, run = tiny_dataset(shipped), tmp_path / "run"
    assert shipped.path is not None
    start, _ = networks.split_state(read_state(shipped.path))
    trained, averaged = [], []
    for steps in (1, 2, 3):  # each resumes the last (bit-exact, see test_train)
        train(dataset, run, TrainOptions(steps=steps, batch=2, checkpoint_every=1,
                                         sample_every=10, ema_decay=0.2), progress=False)
        saved = load_file(run / "checkpoint.safetensors")
        trained.append({k: saved[f"['g']['{k}']"] for k in start})
        averaged.append({k: saved[f"['ema']['{k}']"] for k in start})
    decays = [float(ema_decay_at(k, 0.2)) for k in range(3)]
    assert decays == pytest.approx([0.1, 2 / 11, 0.2])  # the ramp, then the ceiling
    for name in ("main.0.weight", "main.4.bias", "main.12.weight"):
        expected = np.asarray(start[name], np.float64)
        for k in range(3):
            expected = decays[k] * expected + (1 - decays[k]) * trained[k][name]
        assert np.abs(averaged[-1][name] - expected).max() < 1e-6
        assert np.abs(averaged[-1][name] - trained[-1][name]).max() > 1e-7  # not the raw ones


def test_a_resumed_ada_run_with_a_narrow_discriminator_ends_with_the_same_bytes(shipped,
                                                                                tmp_path):
    dataset = tiny_dataset(shipped)
    options = TrainOptions(steps=3, batch=2, checkpoint_every=2, sample_every=3,
                           augment_p=None, d_width=8)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    summary = train(dataset, whole, options, progress=False)
    with pytest.raises(KeyboardInterrupt):
        train(dataset, resumed, options, progress=False, interrupt_after=1)
    train(dataset, resumed, options, progress=False)
    for name in ("generator.safetensors", "checkpoint.safetensors"):
        assert (whole / name).read_bytes() == (resumed / name).read_bytes(), name
    saved = load_file(whole / "checkpoint.safetensors")
    assert saved["['d']['conv0.weight']"].shape == (4, 4, 3, 8)
    assert summary["augment_p"] == pytest.approx(float(saved["['augment_p']"].reshape(())))
    assert summary["augment_p"] in (0.0, pytest.approx(2 * 2 / ADA_IMAGES),
                                    pytest.approx(3 * 2 / ADA_IMAGES),
                                    pytest.approx(2 / ADA_IMAGES))  # 3 steps from 0
    # an ADA run is not resumed as an always-augmenting one, nor the other way round
    from appliance.train.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match=r"another (augment|ada_target)"):
        train(dataset, resumed, TrainOptions(steps=4, batch=2, d_width=8), progress=False)


def test_the_tracker_finds_the_training_faces_at_distance_zero_from_themselves(analyzer):
    from photos import lfw_photo

    from appliance.train.dataset import frame

    faces = []
    for i in range(4):
        photo = lfw_photo(i, 250)
        found = analyzer.faces(photo)
        if found:
            faces.append(frame(found[0]))
    if len(faces) < 2:
        pytest.skip("too few LFW faces found")
    faces = np.stack(faces)
    reference = track.faces_reference(analyzer, faces)
    figures = track.Tracker(analyzer, reference)(faces)
    assert figures["faces"] == len(faces) and figures["detected_share"] > 0.5
    assert figures["median_distance"] < 1e-6  # each face's nearest reference is itself
    assert figures["diversity"] > 0.3  # LFW faces of different people
    noise = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    blank = track.Tracker(analyzer, reference)(noise)
    assert blank["detected_share"] == 0 and "median_distance" not in blank


def test_only_the_first_layers_learn_when_asked(shipped, tmp_path):
    assert shipped.path is not None
    start = read_state(shipped.path)
    train(tiny_dataset(shipped), tmp_path / "run", TrainOptions(
        steps=2, batch=2, sample_every=5, train_layers=2, ema_decay=0.0), progress=False)
    trained = read_state(tmp_path / "run" / "generator.safetensors")
    for name in ("main.0.weight", "main.1.weight", "main.1.bias", "main.3.weight",
                 "main.4.bias"):
        assert not np.array_equal(trained[name], start[name]), name
    for name in ("main.6.weight", "main.7.weight", "main.7.bias", "main.9.weight",
                 "main.10.weight", "main.10.bias", "main.12.weight"):
        assert np.array_equal(trained[name], start[name]), name
    # the running statistics of every batch norm still follow the batches they see
    assert not np.array_equal(trained["main.10.running_mean"], start["main.10.running_mean"])


def test_with_frozen_batch_norm_the_generator_trains_the_function_numpy_runs(shipped, tmp_path):
    from test_train import numpy_float_forward

    assert shipped.path is not None
    start = read_state(shipped.path)
    train(tiny_dataset(shipped), tmp_path / "run", TrainOptions(
        steps=2, batch=2, sample_every=5, frozen_bn=True, ema_decay=0.0), progress=False)
    weights = tmp_path / "run" / "generator.safetensors"
    trained = read_state(weights)
    for name in start:  # the statistics are kept, the weights learn
        kept = name.rsplit(".", 1)[1] in networks.STAT_NAMES
        assert np.array_equal(trained[name], start[name]) == kept, name
    params, stats = networks.split_state(trained)
    latents = np.stack([DCGAN.latent(4, i) for i in range(6)])
    # what the generator's step differentiated (networks.generate with the kept statistics) ...
    ours = np.asarray(networks.generate(params, stats, jnp.asarray(latents)))
    # ... is what the appliance's numpy forward draws with the written weights
    net = DCGAN.load(weights)
    reference = np.stack([numpy_float_forward(net, z) for z in latents])
    assert np.abs(ours - reference).max() < 1e-5
