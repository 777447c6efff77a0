"""The trained generator as the appliance reads it: RUN_DIR/generator.safetensors.

The tensors carry PyTorch's names and dtypes (float32, int64 batch counts), so the file is also
a plain `load_state_dict` for the PyTorch-tutorial generator; the metadata says what it is and
how it was made, and holds nothing that changes between two identical runs (no dates).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save

from appliance.files import atomic_write_bytes

GENERATOR = "generator.safetensors"
FORMAT = "sosie-dcgan-generator"
METADATA = "sosie"


def write_generator(path: Path, state: dict[str, np.ndarray], made: dict[str, str]) -> None:
    """Write the state dict, metadata {"sosie": JSON of format, network, **made} (all or
    nothing)."""
    # One metadata entry: safetensors writes several in a random order (a Rust HashMap), and
    # two identical runs must write the same bytes.
    made = {"format": FORMAT, "network": "dcgan-64 (100-512-256-128-64-3)", **made}
    metadata = {METADATA: json.dumps(made, sort_keys=True)}
    tensors = {name: np.array(value, order="C") for name, value in state.items()}  # keeps 0-d
    atomic_write_bytes(path, save(tensors, metadata=metadata))
