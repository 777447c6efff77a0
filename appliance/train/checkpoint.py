"""A training run's state in one file, written atomically: RUN_DIR/checkpoint.safetensors.

It holds every array of the state (both networks, both optimisers' moments and counts, the
root random key) under its pytree path, the loss history, and in its metadata the step and the
run's identity (starting weights, seed, batch, the faces' digest). A run resumed from it
continues bit for bit: each step's randomness is derived from the root key and the step
number, never from a generator's position.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from appliance.files import atomic_write_bytes

CHECKPOINT = "checkpoint.safetensors"
LOSSES = "losses"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed here (one line)."""


def save_checkpoint(run_dir: Path, state: Any, step: int, losses: np.ndarray,
                    identity: dict[str, Any]) -> None:
    """Write the state after `step` steps (all or nothing)."""
    tensors = {name: np.array(leaf, order="C") for name, leaf in _named_leaves(state)}
    tensors[LOSSES] = np.ascontiguousarray(losses, dtype=np.float32)
    # one metadata entry: safetensors orders several at random, and resumed runs must match
    metadata = {"run": json.dumps({"step": step, "identity": identity}, sort_keys=True)}
    atomic_write_bytes(run_dir / CHECKPOINT, save(tensors, metadata=metadata))


def load_checkpoint(run_dir: Path, template: Any,
                    identity: dict[str, Any]) -> tuple[Any, int, np.ndarray] | None:
    """(state, step, losses) of RUN_DIR's checkpoint, shaped like `template`; None if there is
    none; CheckpointError if it belongs to another run or does not fit."""
    path = run_dir / CHECKPOINT
    if not path.is_file():
        return None
    try:
        raw = path.read_bytes()
        run = json.loads(_metadata(raw).get("run", "{}"))
        tensors = load(raw)
    except (OSError, SafetensorError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({str(exc)[:100]}); remove it to "
                              f"start again") from None
    run = run if isinstance(run, dict) else {}
    saved = run.get("identity") if isinstance(run.get("identity"), dict) else {}
    for key in sorted(set(identity) | set(saved)):  # an option either run lacks differs too
        value = identity.get(key)
        if saved.get(key) != value:
            raise CheckpointError(f"{run_dir} holds a run with another {key} "
                                  f"({str(saved.get(key))[:40]}, not {str(value)[:40]}): use the "
                                  f"same options or another --out")
    leaves, tree = jax.tree_util.tree_flatten(template)
    names = [name for name, _ in _named_leaves(template)]
    restored = []
    for name, leaf in zip(names, leaves, strict=True):
        value = tensors.get(name)
        want = np.asarray(leaf)
        # safetensors keeps a scalar (the optimisers' step counts) as shape (1,)
        if value is None or value.size != want.size or value.dtype != want.dtype:
            raise CheckpointError(f"{path}: {name} missing or misshapen; remove it to start again")
        restored.append(value.reshape(want.shape))
    step = run.get("step", -1) if isinstance(run.get("step"), int) else -1
    losses = tensors.get(LOSSES)
    if step < 0 or losses is None or losses.shape != (step, 2):
        raise CheckpointError(f"{path}: step {step} and its losses disagree")
    return jax.tree_util.tree_unflatten(tree, restored), step, losses


def _named_leaves(state: Any) -> list[tuple[str, np.ndarray]]:
    pairs = jax.tree_util.tree_flatten_with_path(state)[0]
    return [(jax.tree_util.keystr(path), np.asarray(leaf)) for path, leaf in pairs]


def _metadata(raw: bytes) -> dict[str, str]:
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + length])
    metadata = header.get("__metadata__", {}) if isinstance(header, dict) else {}
    return metadata if isinstance(metadata, dict) else {}
