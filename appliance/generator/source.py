"""A generator as the source of `sosie build`: `dcgan:COUNT[:SEED]`, faces without image files.

The build treats draw i as the source named `dcgan:SEED:i` (that is what `sources.tsv` and
`rejected.tsv` show, so any row's face can be drawn again) and analyses the face at `size`
pixels straight from memory, as it would analyse a lossless file of that image with the
generated-face settings of `face_settings` (analysis version `ANALYSIS`, in the build key and
the manifest):

- the detector looks once, at a `DETECT_SIDE` (96) px copy: a drawn face fills its 64-px frame,
  so HOG (80-px window) finds it there at 1/7 of the cost of the 256-px look, and a draw without
  a confident face is rejected after that one look (no 512-px look for small faces, which a
  draw never holds); landmarks, chip and thumbnail still come from the `size`-px face;
- the descriptors of up to `DESCRIBE_GROUP` consecutive draws (those sharing index // 16) are
  computed as one batch (`FaceNet.descriptors`), locally and on a cluster alike.

Analysis version 1 (before 2026-12-07) looked at 256 px, then at 512 px for every draw without a
face, and described each face alone: 1.66x the CPU per kept face of version 2 end to end
(`bench/build.py --generator`), 12x in detection; it kept 74 % of the draws, version 2 keeps
67 % (the difference: mostly weak detections). Version 3 describes the faces of 16 draws in one
batch instead of 8 (~11 chips instead of ~5: 0.4 ms less CPU a face; another batch moves a
descriptor only at float32 rounding, ~4e-7). How the faces pipeline itself turns a face into
a descriptor and a thumbnail has its own version in the build key (`faces.face.PIPELINE`, in the
engine's settings).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_SIZE = 256
#: How a build analyses drawn faces (see the module docstring): bumped when that changes a bit.
ANALYSIS = 3
#: Longest side of the one copy the detector sees of a drawn face.
DETECT_SIDE = 96
#: Draws whose faces are described in one batch: those sharing index // DESCRIBE_GROUP.
DESCRIBE_GROUP = 16
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
        _networks.setdefault(net.path, net)  # this process's draws use it (no second load)
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
        """What changes the faces: network and its code, seed, size (build key, manifest); for
        weights `sosie train` wrote, how they were made too ("trained": a function of the
        weights' bytes, so it changes no key their digest does not)."""
        from appliance.generator.dcgan import RENDERER
        from appliance.generator.provenance import training_record

        trained = training_record(self.weights)
        return {"generator": "dcgan", "weights": self.weights_sha256, "renderer": RENDERER,
                "seed": self.seed, "size": self.size, "analysis": ANALYSIS,
                **({"trained": trained} if trained else {})}

    def face(self, name: str) -> np.ndarray:
        """The (size, size, 3) uint8 face of draw `name`."""
        return self.faces([self.index(name)])[0]

    def faces(self, indices: Sequence[int], net: Any = None) -> np.ndarray:
        """The (n, size, size, 3) uint8 faces of draws `indices` (each drawn on its own)."""
        return (net or _network(self.weights)).faces(self.seed, list(indices), self.size)

    @staticmethod
    def face_settings(settings: Any = None) -> Any:
        """`settings` (a FaceSettings, default the defaults) with the detection of drawn faces:
        one look at a DETECT_SIDE copy, whatever `size` (up- or down-scaled to it)."""
        from appliance.faces.settings import FaceSettings

        return replace(settings or FaceSettings(), detect_max_side=DETECT_SIDE,
                       detect_min_side=DETECT_SIDE, detect_first_side=0, small_face_zoom=1.0)


def describe_groups(indices: Sequence[int]) -> list[list[int]]:
    """`indices` (ascending) cut where index // DESCRIBE_GROUP changes or a run breaks: the
    draws whose descriptors are one batch, the same however a build splits its work."""
    groups: list[list[int]] = []
    for index in indices:
        if groups and index == groups[-1][-1] + 1 and (
                index // DESCRIBE_GROUP == groups[-1][-1] // DESCRIBE_GROUP):
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


_networks: dict[Path, Any] = {}


def _network(path: Path) -> Any:
    """The DCGAN of `path`, loaded once per process."""
    if path not in _networks:
        from appliance.generator.dcgan import DCGAN

        _networks[path] = DCGAN.load(path)
    return _networks[path]
