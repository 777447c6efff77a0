"""The `dcgan` engine of `sosie generate`: render, look for a face, encode, in worker processes.

A worker loads the network and the face analyzer once (`init`) and then turns blocks of draw
indices into `Draw`s (`draw_block`). A draw is accepted when the analyzer finds a face in the
image at the output size; its file bytes are then the PNG (or JPEG) of exactly that image.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMATS = {"png": ".png", "jpeg": ".jpg"}
JPEG_QUALITY = 95


@dataclass(frozen=True)
class DcganJob:
    """What every worker needs to draw faces: seed, output size and format, weights file (and
    its sha256 when the caller has it: the file is hashed once per run, by `DCGAN.load`)."""

    seed: int
    size: int
    image_format: str
    weights: Path
    weights_sha256: str = ""

    def name(self, index: int) -> str:
        return f"dcgan-{self.seed}-{index:07d}{FORMATS[self.image_format]}"

    def digest(self) -> str:
        """The weights' sha256: the one given, else the file's (hashed now)."""
        if self.weights_sha256:
            return self.weights_sha256
        from appliance.files import sha256_file

        return sha256_file(self.weights)


@dataclass(frozen=True)
class Draw:
    """What one draw gave: an encoded face, or the reason it was not kept."""

    index: int
    reason: str | None
    data: bytes = b""
    name: str = ""  # the file's name in the output folder (accepted draws)
    #: What the analyzer learned of an accepted face (`generator.analyses.record`), or None.
    analysis: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest() if self.data else ""


def encode(face: np.ndarray, image_format: str) -> bytes:
    """PNG or JPEG bytes of an RGB uint8 image (the same bytes for the same pixels)."""
    from PIL import Image

    buffer = io.BytesIO()
    if image_format == "png":
        # zlib level 1: ~8x faster than PIL's default 6 for 256 px faces, files ~20 % larger
        Image.fromarray(face).save(buffer, format="PNG", compress_level=1)
    else:
        Image.fromarray(face).save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buffer.getvalue()


def judge(analyzer: Any, face: np.ndarray) -> str | None:
    """None when the analyzer finds a face in `face`, else its reason."""
    return examine(analyzer, face)[0]


def examine(analyzer: Any, face: np.ndarray) -> tuple[str | None, dict[str, Any] | None]:
    """(None, what the analyzer learned of it) when it finds a face in `face`, else (its
    reason, None)."""
    from appliance.generator.analyses import record

    outcome = analyzer.analyze(face)
    if hasattr(outcome, "descriptor"):
        return None, record(outcome, face)
    return str(getattr(outcome, "reason", "no face found")), None


_state: dict[str, Any] = {}


def init(job: DcganJob, engine: Any, in_worker: bool = True, net: Any = None) -> None:
    """Per process: the network (`net` if the caller loaded it already) and the analyzer,
    loaded once."""
    from appliance.compute.pool import guard_orphan
    from appliance.generator.dcgan import DCGAN

    if in_worker:
        guard_orphan()
    if net is None or net.path != job.weights:
        net = DCGAN.load(job.weights)
    _state.update(job=job, net=net, analyzer=engine.create())


def draw_block(indices: tuple[int, ...]) -> list[Draw]:
    """The draws `indices` of the job `init` was given."""
    job: DcganJob = _state["job"]
    return judge_faces(job, _state["analyzer"], indices,
                       _state["net"].faces(job.seed, indices, job.size))


def judge_faces(job: DcganJob, analyzer: Any, indices: Iterable[int],
                faces: Iterable[np.ndarray]) -> list[Draw]:
    """The draws `indices` of `job` from their rendered `faces`: kept (encoded) or rejected."""
    out = []
    for index, face in zip(indices, faces, strict=True):
        reason, analysis = examine(analyzer, face)
        data = encode(face, job.image_format) if reason is None else b""
        out.append(Draw(index, reason, data, job.name(index) if data else "", analysis))
    return out


@dataclass(frozen=True)
class DcganDrawer:
    """The `dcgan` engine of `sosie generate`: blocks of draws on `workers` processes."""

    job: DcganJob
    engine: Any  # appliance.corpus.engines.Engine: the face analyzer that accepts draws
    workers: int = 1
    block: int = 4
    net: Any = field(default=None, compare=False, repr=False)  # the DCGAN, if loaded already

    def identity(self) -> dict[str, Any]:
        from appliance.generator.dcgan import RENDERER

        return {"engine": "dcgan", "renderer": RENDERER, "seed": self.job.seed,
                "size": self.job.size, "format": self.job.image_format,
                "weights": self.job.digest(),
                "analyzer": {"models": self.engine.checksums(),
                             "settings": self.engine.settings()}}

    def draws(self, indices: list[int], seen: dict[str, str]) -> Iterator[Draw]:
        """The draws `indices`, in any order (`seen`: only the url engine drops repeats)."""
        from appliance.compute.pool import run_tasks

        blocks = [tuple(indices[i:i + self.block]) for i in range(0, len(indices), self.block)]
        if self.workers <= 1 or len(blocks) <= 1:
            if _state.get("job") != self.job or _state.get("engine") != self.engine:
                init(self.job, self.engine, in_worker=False, net=self.net)
                _state["engine"] = self.engine
            for block in blocks:
                yield from draw_block(block)
            return
        for draws in run_tasks(blocks, self.workers, init, (self.job, self.engine), draw_block,
                               _crashed):
            yield from draws


def _crashed(block: tuple[int, ...], exitcode: int | None) -> list[Draw]:
    how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit {exitcode}"
    return [Draw(i, f"the generator crashed twice on this draw ({how})") for i in block]
