"""Helpers of the generator tests: a fast analyzer that rejects some draws, and a runner.

`python tests/generator_helpers.py OUT COUNT SEED WORKERS WEIGHTS` runs `generate` with the
DCGAN engine and `DarkEngine` (the kill-and-resume tests start it as a separate process).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Rejected:
    reason: str


@dataclass(frozen=True)
class Found:
    descriptor: np.ndarray


@dataclass(frozen=True)
class DarkEngine:
    """Accepts an image when its mean is above `threshold` ("too dark (mean 97)" otherwise)."""

    threshold: float = 128.0

    def checksums(self) -> dict[str, str]:
        return {"dark": hashlib.sha256(b"dark").hexdigest()}

    def settings(self) -> dict[str, Any]:
        return {"threshold": self.threshold}

    def create(self) -> DarkAnalyzer:
        return DarkAnalyzer(self.threshold)


@dataclass(frozen=True)
class DarkAnalyzer:
    threshold: float

    def analyze(self, image: np.ndarray) -> Any:
        mean = float(np.asarray(image).mean())
        if mean <= self.threshold:
            return Rejected(f"too dark (mean {mean:.0f})")
        return Found(np.zeros(128, np.float32))


@dataclass(frozen=True)
class DarkMockEngine:
    """The build's mock analyzer, except that dark images (mean <= 128) have no face."""

    def checksums(self) -> dict[str, str]:
        return {"dark-mock": hashlib.sha256(b"dark-mock").hexdigest()}

    def settings(self) -> dict[str, Any]:
        return {"engine": "dark-mock"}

    def create(self) -> DarkMockAnalyzer:
        return DarkMockAnalyzer()


class DarkMockAnalyzer:
    def analyze(self, image: np.ndarray) -> Any:
        from appliance.corpus.engines import MockAnalyzer

        mean = float(np.asarray(image).mean())
        if mean <= 128.0:
            return Rejected(f"too dark (mean {mean:.0f})")
        return MockAnalyzer().analyze(image)


@dataclass(frozen=True)
class BrokenEngine(DarkEngine):
    """An analyzer whose models cannot be loaded (in every worker)."""

    def create(self) -> DarkAnalyzer:
        raise RuntimeError("shape_predictor.dat: no such model file\nsecond line")


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones included, the lock file excluded) by path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "lock"}


def main(argv: list[str]) -> int:
    import generator_helpers as helpers

    from appliance.generator.draws import DcganDrawer, DcganJob
    from appliance.generator.job import generate

    out, count, seed, workers, weights = argv
    job = DcganJob(int(seed), 64, "png", Path(weights))
    drawer = DcganDrawer(job, helpers.DarkEngine(), workers=int(workers))
    report = generate(out, int(count), drawer, progress=False)
    print(report.faces, report.draws)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
