"""The `generator` configuration section."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GeneratorSettings:
    """Where `sosie generate` and `sosie build dcgan:COUNT` find the DCGAN weights."""

    weights: Path | None = None  # None: the copy in the gan-face-generate wheel
