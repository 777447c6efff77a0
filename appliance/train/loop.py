"""The training loop: a DCGAN fine-tuned (or trained) on aligned faces with JAX and optax.

Each step updates the discriminator once (non-saturating logistic loss on DiffAugmented real
and generated images), then the generator once against the updated discriminator (its batch
norm on batch statistics, the running ones following: `networks.generate_training`); both with
Adam (beta1 0.5; the discriminator at DCGAN's 2e-4, the generator at a tenth of it when
fine-tuning, see FINE_TUNE_LR); what is written out is the generator's moving average
(EMA_DECAY, ramped up). DiffAugment's probability p is fixed, or adapted as ADA does
(ADA_TARGET). Real images are also mirrored at random. The
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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from appliance.files import atomic_write_bytes, sha256_file
from appliance.generator.dcgan import DCGAN, LATENT, default_weights_path, read_state
from appliance.progress import progress_bar
from appliance.train import networks
from appliance.train.augment import diff_augment
from appliance.train.checkpoint import load_checkpoint, save_checkpoint
from appliance.train.dataset import Dataset
from appliance.train.export import GENERATOR, write_generator
from appliance.train.pictures import grid, loss_curves, save_png

SAMPLES = "samples"
LOSS_CURVES = "losses.png"
SUMMARY = "summary.json"
TRACK = "track.jsonl"
#: What `track` measures: faces 0-99 of seed 1000, those `bench/train.py measure` starts with.
TRACK_SEED = 1000
TRACK_FACES = 100
SAMPLE_FACES = 32
#: DCGAN's Adam rate: the discriminator's always, the generator's from scratch.
SCRATCH_LR = 2e-4
#: The generator's rate when fine-tuning. Adam moves every weight by up to the rate each step,
#: whatever its gradient's scale; the shipped weights are ~0.03 in size, so at 2e-4 fifty steps
#: could move them by a third: seen here as washed-out faces by step 50. A quarter of it keeps
#: the faces while they drift towards the photos (2e-5 barely moved them in 268 steps).
FINE_TUNE_LR = 5e-5
#: The weights written out (samples, generator.safetensors) are an exponential moving average
#: of the trained ones (as in StyleGAN and BigGAN): it smooths the step-to-step noise of
#: adversarial training that shows as artefacts. The decay after k steps is
#: min(EMA_DECAY, (1 + k) / (10 + k)) (the usual ramp-up): a memory of ~k/9 steps, at most
#: ~1/(1 - decay), so a short run's average is not held back at its starting weights.
EMA_DECAY = 0.99
#: ADA's overfitting heuristic: r = E[sign(D(real))], the share of real images the
#: discriminator is sure of, minus those it is wrong on; p rises while r is above the target.
ADA_TARGET = 0.6
#: ... by up to batch / ADA_IMAGES a step: p can go from 0 to 1 in this many images (ADA's
#: 500k images are for runs of millions; a CPU run sees tens of thousands).
ADA_IMAGES = 2000


@dataclass(frozen=True)
class TrainOptions:
    """What a run does; `start` is "shipped", "scratch" or a weights file."""

    steps: int
    start: str = "shipped"
    seed: int = 0
    batch: int = 16
    checkpoint_every: int = 25
    sample_every: int = 100
    learning_rate: float | None = None  # the generator's; None: FINE_TUNE_LR or SCRATCH_LR
    beta1: float = 0.5
    ema_decay: float = EMA_DECAY
    r1_gamma: float = 0.0  # weight of the R1 penalty on the discriminator (0: none)
    augment_p: float | None = 1.0  # DiffAugment's probability; None: adaptive (ADA)
    ada_target: float = ADA_TARGET
    d_width: int = networks.D_WIDTH  # the discriminator's first layer's channels
    train_layers: int = networks.LAYERS  # the generator's first layers that learn
    frozen_bn: bool = False  # the generator's batch norm on its running statistics, kept
    track_every: int = 0  # steps between measurements of what the generator draws (0: none)

    def identity(self) -> dict[str, Any]:
        """The options a resumed run must share (those at their defaults left out, so runs
        started before the option existed still resume)."""
        out: dict[str, Any] = {}
        if self.augment_p != 1.0:
            out["augment"] = "adaptive" if self.augment_p is None else self.augment_p
            if self.augment_p is None:
                out["ada_target"] = self.ada_target
        if self.d_width != networks.D_WIDTH:
            out["d_width"] = self.d_width
        if self.train_layers != networks.LAYERS:
            out["train_layers"] = self.train_layers
        return out

    def generator_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return SCRATCH_LR if self.start == "scratch" else FINE_TUNE_LR


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


def ema_decay_at(number: jax.Array | int, ceiling: float) -> jax.Array:
    """The moving average's decay at step `number` (0-based): min(ceiling, (1+k)/(10+k))."""
    k = jnp.asarray(number, jnp.float32)
    return jnp.minimum(jnp.float32(ceiling), (1 + k) / (10 + k))


def ada_adjust(p: jax.Array, real_logits: jax.Array, batch: int, target: float) -> jax.Array:
    """ADA's step: p up by batch/ADA_IMAGES while E[sign(D(real))] is above `target` (the
    discriminator sure of the photos it has seen: overfitting), down while below; in [0, 1]."""
    r = jnp.sign(real_logits).mean()
    return jnp.clip(p + jnp.sign(r - target) * batch / ADA_IMAGES, 0.0, 1.0)


@cache
def make_step(batch: int, g_rate: float, beta1: float, ema_decay: float,
              r1_gamma: float, augment_p: float | None = 1.0,
              ada_target: float = ADA_TARGET,
              train_layers: int = networks.LAYERS,
              frozen_bn: bool = False) -> tuple[Any, Any, Any]:
    """(generator's optimiser, discriminator's, the jitted step (state, faces, step) ->
    (state, [d_loss, g_loss, p])), made once per process for a setting (runs in one process
    share the compiled step). With `augment_p` None the state carries ADA's p ("augment_p").
    Only the generator's first `train_layers` layers learn (their gradient alone is taken, so
    Adam leaves the others exactly as they were). With `frozen_bn` the generator trains as it
    runs (`networks.generate`: batch norm on the running statistics, which stay as they are)."""

    def draw(g: dict, stats: dict, z: jax.Array) -> tuple[jax.Array, dict]:
        if frozen_bn:
            return networks.generate(g, stats, z), stats
        return networks.generate_training(g, stats, z)

    g_optimiser = optax.adam(g_rate, b1=beta1)
    d_optimiser = optax.adam(SCRATCH_LR, b1=beta1)

    def d_loss(d: dict, g: dict, stats: dict, faces: jax.Array, key: jax.Array,
               p: jax.Array | float) -> tuple[jax.Array, jax.Array]:
        """(the discriminator's loss, its logits on the real images). The statistics the
        generator's batch gives are dropped: the generator's own step moves them, once per
        step as in DCGAN."""
        k_pick, k_flip, k_z, k_real, k_fake = jax.random.split(key, 5)
        real = faces[jax.random.randint(k_pick, (batch,), 0, faces.shape[0])]
        flip = jax.random.bernoulli(k_flip, 0.5, (batch, 1, 1, 1))
        real = jnp.where(flip, real[:, :, ::-1], real)
        fake = jax.lax.stop_gradient(draw(g, stats, _latents(k_z, batch))[0])
        real = diff_augment(k_real, real, p)
        real_logits = networks.discriminate(d, real)
        fake_logits = networks.discriminate(d, diff_augment(k_fake, fake, p))
        loss = jax.nn.softplus(-real_logits).mean() + jax.nn.softplus(fake_logits).mean()
        if r1_gamma:  # R1: the discriminator's slope at the real images, kept small
            slope = jax.grad(lambda x: networks.discriminate(d, x).sum())(real)
            loss = loss + r1_gamma / 2 * (slope ** 2).sum(axis=(1, 2, 3)).mean()
        return loss, real_logits

    def g_loss(g: dict, d: dict, stats: dict, key: jax.Array,
               p: jax.Array | float) -> tuple[jax.Array, dict]:
        k_z, k_aug = jax.random.split(key)
        if train_layers < networks.LAYERS:  # the later layers kept as they are
            g = {name: value if networks.layer_of(name) < train_layers
                 else jax.lax.stop_gradient(value) for name, value in g.items()}
        fake, moved = draw(g, stats, _latents(k_z, batch))
        loss = jax.nn.softplus(-networks.discriminate(d, diff_augment(k_aug, fake, p))).mean()
        return loss, moved

    @jax.jit
    def step(state: dict, faces: jax.Array, number: jax.Array) -> tuple[dict, jax.Array]:
        k_d, k_g = jax.random.split(jax.random.fold_in(state["key"], number))
        stats = state["stats"]
        p = state["augment_p"] if augment_p is None else augment_p
        (loss_d, real_logits), grads = jax.value_and_grad(d_loss, has_aux=True)(
            state["d"], state["g"], stats, faces, k_d, p)
        updates, opt_d = d_optimiser.update(grads, state["opt_d"], state["d"])
        d = optax.apply_updates(state["d"], updates)
        (loss_g, moved), grads = jax.value_and_grad(g_loss, has_aux=True)(state["g"], d, stats,
                                                                          k_g, p)
        updates, opt_g = g_optimiser.update(grads, state["opt_g"], state["g"])
        g = optax.apply_updates(state["g"], updates)
        decay = ema_decay_at(number, ema_decay)
        ema = jax.tree_util.tree_map(lambda a, b: decay * a + (1 - decay) * b, state["ema"], g)
        new = {"key": state["key"], "g": g, "ema": ema, "stats": moved, "d": d, "opt_g": opt_g,
               "opt_d": opt_d}
        if augment_p is None:
            new["augment_p"] = ada_adjust(state["augment_p"], real_logits, batch, ada_target)
        return new, jnp.stack([loss_d, loss_g, jnp.asarray(p, jnp.float32)])

    return g_optimiser, d_optimiser, step


@jax.jit
def _render(g: dict, stats: dict, latents: jax.Array) -> jax.Array:
    return networks.generate(g, stats, latents)


def _latents(key: jax.Array, batch: int) -> jax.Array:
    return jax.random.normal(key, (batch, LATENT), jnp.float32)


def train(dataset: Dataset, run_dir: Path, options: TrainOptions, *, progress: bool = True,
          interrupt_after: int | None = None,
          tracker: Callable[[np.ndarray], dict[str, Any]] | None = None,
          data_name: str | None = None) -> dict[str, Any]:
    """Train (or resume) in `run_dir`; returns the summary also written to summary.json.

    `interrupt_after` (tests) raises KeyboardInterrupt once that many steps are done, as
    Ctrl-C would between two steps. `tracker` (with `options.track_every`) measures the
    moving average's faces of TRACK_LATENTS every that many steps, each line appended to
    RUN_DIR/track.jsonl (it reads the state, never changes it). `data_name`, the photos'
    folder's name (never a path), goes into the weights' metadata and the summary.
    """
    root = jax.random.PRNGKey(options.seed)
    k_start, k_d = jax.random.split(jax.random.fold_in(root, 2**31 - 1))
    params, stats, start_label = starting_generator(options.start, k_start)
    g_optimiser, d_optimiser, step = make_step(options.batch, options.generator_rate(),
                                               options.beta1, options.ema_decay, options.r1_gamma,
                                               options.augment_p, options.ada_target,
                                               options.train_layers, options.frozen_bn)
    discriminator = networks.new_discriminator(k_d, options.d_width)
    state: dict[str, Any] = {"key": root, "g": params, "ema": params, "stats": stats,
                             "d": discriminator,
                             "opt_g": g_optimiser.init(params),
                             "opt_d": d_optimiser.init(discriminator)}
    if options.augment_p is None:  # ADA starts without augmenting
        state["augment_p"] = jnp.zeros((), jnp.float32)
    identity = {"start": start_label, "seed": options.seed, "batch": options.batch,
                "faces": dataset.digest(), "learning_rate": options.generator_rate(),
                "beta1": options.beta1, "ema_decay": options.ema_decay,
                "batch_norm": "running statistics" if options.frozen_bn else "batch statistics",
                "r1_gamma": options.r1_gamma,
                **options.identity()}
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

    def save_samples(step: int) -> None:
        """The fixed latents' faces as the moving average draws them after `step` steps."""
        faces_now = networks.to_pixels(_render(state["ema"], state["stats"], fixed))
        save_png(grid(faces_now), run_dir / SAMPLES / f"step-{step:06d}.png")

    def track(step: int) -> None:
        pixels = networks.to_pixels(_render(state["ema"], state["stats"], tracked))
        figures = {"step": step, **tracker(pixels)}
        if "augment_p" in state:
            figures["augment_p"] = round(float(state["augment_p"]), 4)
        with open(run_dir / TRACK, "a") as out:
            out.write(json.dumps(figures) + "\n")
        if progress:
            bar.write(f"step {step}: " + ", ".join(f"{k} {v}" for k, v in figures.items()
                                                     if k != "step"), file=sys.stderr)

    tracking = tracker is not None and options.track_every > 0
    if tracking:
        tracked = jnp.asarray(np.stack([DCGAN.latent(TRACK_SEED, i)
                                        for i in range(TRACK_FACES)]))
    if done == 0:
        save_samples(0)
    faces = jnp.asarray(dataset.faces, jnp.float32) / 127.5 - 1
    bar = progress_bar(options.steps, done, progress, unit="step", desc="training")
    if tracking and done == 0:
        track(0)
    history = [losses]
    started, first = time.perf_counter(), done
    step_seconds: list[float] = []
    try:
        while done < options.steps:
            if interrupt_after is not None and done >= interrupt_after:
                raise KeyboardInterrupt
            tick = time.perf_counter()
            state, out = step(state, faces, jnp.asarray(done, jnp.uint32))
            out = np.asarray(out, np.float32)  # waits for the step
            pair, p = out[:2], out[2]
            step_seconds.append(time.perf_counter() - tick)
            if not np.isfinite(pair).all():
                raise TrainError(f"the losses diverged at step {done + 1} ({pair[0]:.3g}, "
                                 f"{pair[1]:.3g}); resume from the last checkpoint with another "
                                 f"--seed or --batch")
            history.append(pair[None])
            done += 1
            bar.update(1)
            bar.set_postfix(d=f"{pair[0]:.3f}", g=f"{pair[1]:.3f}", p=f"{p:.2f}", refresh=False)
            if done % options.checkpoint_every == 0 or done == options.steps:
                save_checkpoint(run_dir, state, done, np.concatenate(history), identity)
            if done % options.sample_every == 0 or done == options.steps:
                save_samples(done)
                save_png(loss_curves(np.concatenate(history)), run_dir / LOSS_CURVES)
            if tracking and (done % options.track_every == 0 or done == options.steps):
                track(done)
    except KeyboardInterrupt:
        save_checkpoint(run_dir, state, done, np.concatenate(history), identity)
        bar.close()
        raise
    bar.close()
    seconds = time.perf_counter() - started
    losses = np.concatenate(history)
    made = {"steps": str(done), "start": start_label, "seed": str(options.seed),
            "batch": str(options.batch), "faces": dataset.digest(),
            **({"data": data_name} if data_name else {})}
    weights = run_dir / GENERATOR
    write_generator(weights, networks.join_state(state["ema"], state["stats"]), made)
    if done == 0 or not (run_dir / LOSS_CURVES).exists():
        save_png(loss_curves(losses if len(losses) else np.zeros((1, 2))), run_dir / LOSS_CURVES)
    trained = done - first
    timed = step_seconds[1:]  # the session's first step compiles
    median = float(np.median(timed)) if timed else None
    tail = losses[-50:] if len(losses) else np.zeros((1, 2))
    summary = {
        "generator": {"path": GENERATOR, "sha256": sha256_file(weights)},
        "start": start_label, "steps": done, "seed": options.seed, "batch": options.batch,
        "data": data_name,
        "faces": len(dataset.faces), "rejected": len(dataset.rejected),
        "augment_p": (round(float(state["augment_p"]), 4) if "augment_p" in state
                      else options.augment_p),
        "d_width": options.d_width, "train_layers": options.train_layers,
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
