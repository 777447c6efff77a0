"""A generator as the source of `sosie build`: `dcgan:COUNT[:SEED]`, faces without image files.

The build treats draw i as the source named `dcgan:SEED:i` (that is what `sources.tsv` and
`rejected.tsv` show, so any row's face can be drawn again) and analyses the face at `size`
pixels straight from memory, exactly as it would analyse a lossless file of that image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_SIZE = 256
_SPEC = re.compile(r"dcgan:(\d{1,9})(?::(\d{1,18}))?")


def looks_like_spec(text: str) -> bool:
    """Whether a build source argument names a generator rather than a folder."""
    return text.startswith("dcgan:")


@dataclass(frozen=True)
class GeneratorSource:
    """COUNT draws of the DCGAN with SEED, analysed at `size` pixels."""

    count: int
    seed: int
    weights: Path
    weights_sha256: str
    size: int = DEFAULT_SIZE

    @classmethod
    def parse(cls, text: str, weights: Path | None = None) -> GeneratorSource:
        """`dcgan:COUNT[:SEED]` (ValueError naming the text otherwise); loads the weights once
        to check them (WeightsNotFound / WeightsFormatError)."""
        from appliance.generator.dcgan import DCGAN

        match = _SPEC.fullmatch(text)
        if not match or int(match.group(1)) < 1:
            raise ValueError(f"{text!r}: expected dcgan:COUNT[:SEED] (COUNT >= 1 draws, SEED >= 0)")
        net = DCGAN.load(weights)
        assert net.path is not None
        return cls(int(match.group(1)), int(match.group(2) or 0), net.path, net.checksum)

    def __str__(self) -> str:
        return f"dcgan:{self.count}:{self.seed}"

    def name(self, index: int) -> str:
        return f"dcgan:{self.seed}:{index}"

    def index(self, name: str) -> int:
        prefix = f"dcgan:{self.seed}:"
        if not name.startswith(prefix):
            raise ValueError(f"{name!r} is not a draw of {self}")
        return int(name[len(prefix):])

    def key(self) -> dict[str, Any]:
        """What changes the faces: network and its code, seed, size (build key, manifest)."""
        from appliance.generator.dcgan import RENDERER

        return {"generator": "dcgan", "weights": self.weights_sha256, "renderer": RENDERER,
                "seed": self.seed, "size": self.size}

    def face(self, name: str) -> np.ndarray:
        """The (size, size, 3) uint8 face of draw `name`."""
        return _network(self.weights).faces(self.seed, [self.index(name)], self.size)[0]


@cache
def _network(path: Path) -> Any:
    from appliance.generator.dcgan import DCGAN

    return DCGAN.load(path)
