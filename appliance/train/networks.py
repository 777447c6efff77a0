"""The two networks in JAX: the appliance's DCGAN generator, exactly, and a discriminator.

The generator is the numpy one (`appliance.generator.dcgan`) written with `lax` convolutions on
the same PyTorch-named tensors. `generate` is what the appliance runs (batch norm on the running
statistics, which the numpy forward folds in): the sample grids and the weights written out use
it, so they are exactly what `sosie generate` will draw. `generate_training` is how DCGAN
trains (each batch normalised on its own statistics, the running ones following them); with the
statistics frozen instead, the fine-tuned weights' activations drifted unchecked through the
four layers (blown-out highlights and a checkerboard within a few hundred steps, dlib finding a
face in 35 % of the draws instead of 73 %). From scratch, the statistics are first measured on a
batch of latents (data-dependent initialisation).

The discriminator is DCGAN's (4x4 stride-2 convolutions 3 -> 64 -> 128 -> 256 -> 512, leaky
ReLU 0.2, a 4x4 convolution to one logit) without batch norm: its batches mix real and
generated images, and DiffAugment makes each one differently. Its width (64 channels first) can
be narrowed: a discriminator with a quarter of the weights has less to memorise a few hundred
photos with, and costs less per step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from appliance.generator.dcgan import (
    BN_EPS,
    CHANNELS,
    KERNEL,
    LATENT,
    PADDINGS,
    STRIDES,
    expected_tensors,
)

Params = dict[str, Any]
LAYERS = len(CHANNELS) - 1
#: Running statistics: part of the weights file, not trained.
STAT_NAMES = ("running_mean", "running_var", "num_batches_tracked")
D_CHANNELS = (3, 64, 128, 256, 512)
D_WIDTH = D_CHANNELS[1]
LEAK = 0.2
INIT_STD = 0.02  # DCGAN's initialisation
BN_MOMENTUM = 0.1  # PyTorch's


def split_state(state: dict[str, np.ndarray]) -> tuple[Params, Params]:
    """(trainable, frozen statistics) of a generator state dict, as float32/int jnp arrays."""
    trainable, stats = {}, {}
    for name, value in state.items():
        target = stats if name.rsplit(".", 1)[1] in STAT_NAMES else trainable
        target[name] = jnp.asarray(value)
    return trainable, stats


def join_state(params: Params, stats: Params) -> dict[str, np.ndarray]:
    """The PyTorch-named state dict (numpy, float32 and int64) the weights file holds."""
    out = {}
    for name, (_, kind) in expected_tensors().items():
        value = params[name] if name in params else stats[name]
        out[name] = np.asarray(value, dtype=np.float32 if kind == "f" else np.int64)
    return out


def layer_of(name: str) -> int:
    """The layer (0-4) a generator tensor belongs to: main.{3i} is its convolution,
    main.{3i+1} the batch norm after it."""
    return int(name.split(".")[1]) // 3


def conv_transpose(x: jax.Array, weight: jax.Array, stride: int, padding: int) -> jax.Array:
    """PyTorch's ConvTranspose2d (weight (cin, cout, k, k)) on NHWC: the equivalent convolution
    of the input dilated by `stride`, with the kernel flipped."""
    kernel = jnp.flip(weight, (2, 3)).transpose(2, 3, 0, 1)  # HWIO
    edge = KERNEL - 1 - padding
    return jax.lax.conv_general_dilated(
        x, kernel, window_strides=(1, 1), padding=[(edge, edge), (edge, edge)],
        lhs_dilation=(stride, stride), dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=jax.lax.Precision.HIGHEST)


def generate(params: Params, stats: Params, z: jax.Array) -> jax.Array:
    """(n, 64, 64, 3) images in [-1, 1] of (n, 100) latents, as the appliance computes them."""
    x = z.reshape(z.shape[0], 1, 1, LATENT)
    for i in range(LAYERS):
        x = conv_transpose(x, params[f"main.{3 * i}.weight"], STRIDES[i], PADDINGS[i])
        if i < LAYERS - 1:
            bn = f"main.{3 * i + 1}"
            scale = params[f"{bn}.weight"] / jnp.sqrt(stats[f"{bn}.running_var"] + BN_EPS)
            x = (x - stats[f"{bn}.running_mean"]) * scale + params[f"{bn}.bias"]
            x = jax.nn.relu(x)
    return jnp.tanh(x)


def generate_training(params: Params, stats: Params, z: jax.Array) -> tuple[jax.Array, Params]:
    """(images, updated statistics): the generator as DCGAN trains it, each batch norm on the
    batch's own statistics, the running ones moved towards them as PyTorch does (momentum 0.1,
    the unbiased variance) - without gradient through the statistics kept."""
    x = z.reshape(z.shape[0], 1, 1, LATENT)
    new: Params = {}
    for i in range(LAYERS):
        x = conv_transpose(x, params[f"main.{3 * i}.weight"], STRIDES[i], PADDINGS[i])
        if i < LAYERS - 1:
            bn = f"main.{3 * i + 1}"
            mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
            count = x.shape[0] * x.shape[1] * x.shape[2]
            unbiased = jax.lax.stop_gradient(var) * count / max(count - 1, 1)
            new[f"{bn}.running_mean"] = ((1 - BN_MOMENTUM) * stats[f"{bn}.running_mean"]
                                         + BN_MOMENTUM * jax.lax.stop_gradient(mean))
            new[f"{bn}.running_var"] = ((1 - BN_MOMENTUM) * stats[f"{bn}.running_var"]
                                        + BN_MOMENTUM * unbiased)
            new[f"{bn}.num_batches_tracked"] = stats[f"{bn}.num_batches_tracked"] + 1
            scale = params[f"{bn}.weight"] / jnp.sqrt(var + BN_EPS)
            x = jax.nn.relu((x - mean) * scale + params[f"{bn}.bias"])
    return jnp.tanh(x), new


def to_pixels(images: jax.Array) -> np.ndarray:
    """uint8 RGB of [-1, 1] images, rounded as the numpy generator rounds."""
    pixels = (np.asarray(images, dtype=np.float32) + np.float32(1)) * np.float32(127.5)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def scratch_generator(key: jax.Array) -> tuple[Params, Params]:
    """A new generator: DCGAN's N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales, and each
    layer's statistics measured on 64 latents (so the frozen batch norm normalises)."""
    params: Params = {}
    keys = jax.random.split(key, 2 * LAYERS + 1)
    for i in range(LAYERS):
        cin, cout = CHANNELS[i], CHANNELS[i + 1]
        params[f"main.{3 * i}.weight"] = INIT_STD * jax.random.normal(
            keys[2 * i], (cin, cout, KERNEL, KERNEL), jnp.float32)
        if i < LAYERS - 1:
            bn = f"main.{3 * i + 1}"
            params[f"{bn}.weight"] = 1 + INIT_STD * jax.random.normal(keys[2 * i + 1], (cout,))
            params[f"{bn}.bias"] = jnp.zeros(cout, jnp.float32)
    x = jax.random.normal(keys[-1], (64, 1, 1, LATENT), jnp.float32)
    stats: Params = {}
    for i in range(LAYERS - 1):
        x = conv_transpose(x, params[f"main.{3 * i}.weight"], STRIDES[i], PADDINGS[i])
        bn = f"main.{3 * i + 1}"
        mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
        stats[f"{bn}.running_mean"], stats[f"{bn}.running_var"] = mean, var
        stats[f"{bn}.num_batches_tracked"] = jnp.asarray(0, jnp.int32)
        scale = params[f"{bn}.weight"] / jnp.sqrt(var + BN_EPS)
        x = jax.nn.relu((x - mean) * scale + params[f"{bn}.bias"])
    return params, stats


def new_discriminator(key: jax.Array, width: int = D_WIDTH) -> Params:
    """DCGAN's discriminator weights (HWIO), N(0, 0.02), zero biases; `width` channels in its
    first layer, doubling at each of the next three (64: DCGAN's)."""
    params: Params = {}
    channels = (3, width, 2 * width, 4 * width, 8 * width)
    keys = jax.random.split(key, len(channels))
    for i in range(len(channels) - 1):
        cin, cout = channels[i], channels[i + 1]
        params[f"conv{i}.weight"] = INIT_STD * jax.random.normal(
            keys[i], (KERNEL, KERNEL, cin, cout), jnp.float32)
        params[f"conv{i}.bias"] = jnp.zeros(cout, jnp.float32)
    params["out.weight"] = INIT_STD * jax.random.normal(
        keys[-1], (KERNEL, KERNEL, channels[-1], 1), jnp.float32)
    return params


def discriminate(params: Params, images: jax.Array) -> jax.Array:
    """(n,) logits, real > 0, of (n, 64, 64, 3) images in [-1, 1]."""
    x = images
    for i in range(len(D_CHANNELS) - 1):
        x = jax.lax.conv_general_dilated(
            x, params[f"conv{i}.weight"], window_strides=(2, 2), padding=[(1, 1), (1, 1)],
            dimension_numbers=("NHWC", "HWIO", "NHWC"))
        x = jax.nn.leaky_relu(x + params[f"conv{i}.bias"], LEAK)
    x = jax.lax.conv_general_dilated(x, params["out.weight"], window_strides=(1, 1),
                                     padding="VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return x.reshape(x.shape[0])
