"""The training loop: a DCGAN fine-tuned (or trained) on aligned faces with JAX and optax.

Each step updates the discriminator once (non-saturating logistic loss on DiffAugmented real
and generated images), then the generator once against the updated discriminator; both with
Adam (lr 2e-4, beta1 0.5: DCGAN's settings). Real images are also mirrored at random. The
randomness of step k comes from `fold_in(root key, k)`, so a run resumed from a checkpoint
draws exactly what the uninterrupted run draws, and ends with the same bytes.

RUN_DIR holds: checkpoint.safetensors (every `checkpoint_every` steps and on Ctrl-C),
samples/step-NNNNNN.png (fixed latents: faces 0-31 of `sosie generate --seed SEED`, every
`sample_every` steps, step 0 = the starting generator), losses.png, and at the end
generator.safetensors and summary.json.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from appliance.files import atomic_write_bytes, sha256_file
from appliance.generator.dcgan import DCGAN, LATENT, default_weights_path, read_state
from appliance.train import networks
from appliance.train.augment import diff_augment
from appliance.train.checkpoint import load_checkpoint, save_checkpoint
from appliance.train.dataset import Dataset
from appliance.train.export import GENERATOR, write_generator
from appliance.train.pictures import grid, loss_curves, save_png

SAMPLES = "samples"
LOSS_CURVES = "losses.png"
SUMMARY = "summary.json"
SAMPLE_FACES = 32


@dataclass(frozen=True)
class TrainOptions:
    """What a run does; `start` is "shipped", "scratch" or a weights file."""

    steps: int
    start: str = "shipped"
    seed: int = 0
    batch: int = 16
    checkpoint_every: int = 25
    sample_every: int = 100
    learning_rate: float = 2e-4
    beta1: float = 0.5


class TrainError(ValueError):
    """A run that cannot go on (one line)."""


def starting_generator(start: str, key: jax.Array) -> tuple[dict, dict, str]:
    """(trainable, statistics, label) of the generator a run starts from. The label names it
    in the run's identity: "scratch", or "sha256:<digest>" of the weights file."""
    if start == "scratch":
        params, stats = networks.scratch_generator(key)
        return params, stats, "scratch"
    path = default_weights_path() if start == "shipped" else Path(start)
    net = DCGAN.load(path)  # checks the file (WeightsNotFound / WeightsFormatError)
    params, stats = networks.split_state(read_state(path))
    return params, stats, f"sha256:{net.checksum}"


def make_step(stats: dict, batch: int, options: TrainOptions,
              optimiser: optax.GradientTransformation) -> Any:
    """The jitted step: (state, faces, step) -> (state, [d_loss, g_loss])."""

    def d_loss(d: dict, g: dict, faces: jax.Array, key: jax.Array) -> jax.Array:
        k_pick, k_flip, k_z, k_real, k_fake = jax.random.split(key, 5)
        real = faces[jax.random.randint(k_pick, (batch,), 0, faces.shape[0])]
        flip = jax.random.bernoulli(k_flip, 0.5, (batch, 1, 1, 1))
        real = jnp.where(flip, real[:, :, ::-1], real)
        fake = jax.lax.stop_gradient(networks.generate(g, stats, _latents(k_z, batch)))
        real_logits = networks.discriminate(d, diff_augment(k_real, real))
        fake_logits = networks.discriminate(d, diff_augment(k_fake, fake))
        return jax.nn.softplus(-real_logits).mean() + jax.nn.softplus(fake_logits).mean()

    def g_loss(g: dict, d: dict, key: jax.Array) -> jax.Array:
        k_z, k_aug = jax.random.split(key)
        fake = networks.generate(g, stats, _latents(k_z, batch))
        return jax.nn.softplus(-networks.discriminate(d, diff_augment(k_aug, fake))).mean()

    @jax.jit
    def step(state: dict, faces: jax.Array, number: jax.Array) -> tuple[dict, jax.Array]:
        k_d, k_g = jax.random.split(jax.random.fold_in(state["key"], number))
        loss_d, grads = jax.value_and_grad(d_loss)(state["d"], state["g"], faces, k_d)
        updates, opt_d = optimiser.update(grads, state["opt_d"], state["d"])
        d = optax.apply_updates(state["d"], updates)
        loss_g, grads = jax.value_and_grad(g_loss)(state["g"], d, k_g)
        updates, opt_g = optimiser.update(grads, state["opt_g"], state["g"])
        g = optax.apply_updates(state["g"], updates)
        new = {"key": state["key"], "g": g, "d": d, "opt_g": opt_g, "opt_d": opt_d}
        return new, jnp.stack([loss_d, loss_g])

    return step


def _latents(key: jax.Array, batch: int) -> jax.Array:
    return jax.random.normal(key, (batch, LATENT), jnp.float32)


def train(dataset: Dataset, run_dir: Path, options: TrainOptions, *, progress: bool = True,
          interrupt_after: int | None = None) -> dict[str, Any]:
    """Train (or resume) in `run_dir`; returns the summary also written to summary.json.

    `interrupt_after` (tests) raises KeyboardInterrupt once that many steps are done, as
    Ctrl-C would between two steps.
    """
    from appliance.corpus.workers import progress_bar

    root = jax.random.PRNGKey(options.seed)
    k_start, k_d = jax.random.split(jax.random.fold_in(root, 2**31 - 1))
    params, stats, start_label = starting_generator(options.start, k_start)
    optimiser = optax.adam(options.learning_rate, b1=options.beta1)
    discriminator = networks.new_discriminator(k_d)
    state: dict[str, Any] = {"key": root, "g": params, "d": discriminator,
                             "opt_g": optimiser.init(params),
                             "opt_d": optimiser.init(discriminator)}
    identity = {"start": start_label, "seed": options.seed, "batch": options.batch,
                "faces": dataset.digest(), "learning_rate": options.learning_rate,
                "beta1": options.beta1}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SAMPLES).mkdir(exist_ok=True)
    done, losses = 0, np.zeros((0, 2), np.float32)
    resumed = load_checkpoint(run_dir, state, identity)
    if resumed is not None:
        state, done, losses = resumed
        state = jax.tree_util.tree_map(jnp.asarray, state)
    if done > options.steps:
        raise TrainError(f"{run_dir} is already at step {done}: ask for --steps {done} or more")
    fixed = jnp.asarray(np.stack([DCGAN.latent(options.seed, i) for i in range(SAMPLE_FACES)]))
    render = jax.jit(lambda g: networks.generate(g, stats, fixed))
    if done == 0:
        save_png(grid(networks.to_pixels(render(state["g"]))), _sample_path(run_dir, 0))
    faces = jnp.asarray(dataset.faces, jnp.float32) / 127.5 - 1
    step = make_step(stats, options.batch, options, optimiser)
    bar = progress_bar(options.steps, done, progress, unit="step", desc="training")
    history = [losses]
    started, first = time.perf_counter(), done
    step_seconds: list[float] = []
    try:
        while done < options.steps:
            if interrupt_after is not None and done >= interrupt_after:
                raise KeyboardInterrupt
            tick = time.perf_counter()
            state, pair = step(state, faces, jnp.asarray(done, jnp.uint32))
            pair = np.asarray(pair, np.float32)  # waits for the step
            step_seconds.append(time.perf_counter() - tick)
            if not np.isfinite(pair).all():
                raise TrainError(f"the losses diverged at step {done + 1} ({pair[0]:.3g}, "
                                 f"{pair[1]:.3g}); resume from the last checkpoint with another "
                                 f"--seed or --batch")
            history.append(pair[None])
            done += 1
            bar.update(1)
            bar.set_postfix(d=f"{pair[0]:.3f}", g=f"{pair[1]:.3f}", refresh=False)
            if done % options.checkpoint_every == 0 or done == options.steps:
                save_checkpoint(run_dir, state, done, np.concatenate(history), identity)
            if done % options.sample_every == 0 or done == options.steps:
                save_png(grid(networks.to_pixels(render(state["g"]))), _sample_path(run_dir, done))
                save_png(loss_curves(np.concatenate(history)), run_dir / LOSS_CURVES)
    except KeyboardInterrupt:
        save_checkpoint(run_dir, state, done, np.concatenate(history), identity)
        bar.close()
        raise
    bar.close()
    seconds = time.perf_counter() - started
    losses = np.concatenate(history)
    made = {"steps": str(done), "start": start_label, "seed": str(options.seed),
            "batch": str(options.batch), "faces": dataset.digest()}
    weights = run_dir / GENERATOR
    write_generator(weights, networks.join_state(state["g"], stats), made)
    if done == 0 or not (run_dir / LOSS_CURVES).exists():
        save_png(loss_curves(losses if len(losses) else np.zeros((1, 2))), run_dir / LOSS_CURVES)
    trained = done - first
    timed = step_seconds[1:]  # the session's first step compiles
    median = float(np.median(timed)) if timed else None
    tail = losses[-50:] if len(losses) else np.zeros((1, 2))
    summary = {
        "generator": {"path": GENERATOR, "sha256": sha256_file(weights)},
        "start": start_label, "steps": done, "seed": options.seed, "batch": options.batch,
        "faces": len(dataset.faces), "rejected": len(dataset.rejected),
        "losses_last_50": {"discriminator": round(float(tail[:, 0].mean()), 4),
                           "generator": round(float(tail[:, 1].mean()), 4)},
        "this_session": {"steps": trained, "seconds": round(seconds, 1),
                         "steps_per_second": round(trained / seconds, 4) if trained else None,
                         "images_per_second": (round(trained * options.batch / seconds, 2)
                                               if trained else None),
                         "median_step_seconds": round(median, 4) if median else None,
                         "images_per_second_after_compiling": (
                             round(options.batch / median, 2) if median else None)},
        "device": jax.devices()[0].device_kind, "machine": platform.processor() or
        platform.machine(),
    }
    atomic_write_bytes(run_dir / SUMMARY, (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def _sample_path(run_dir: Path, step: int) -> Path:
    return run_dir / SAMPLES / f"step-{step:06d}.png"
