"""Which generator made a corpus: its weights' sha256 (recorded by the build) given a name.

The shipped weights are recognised by their digest; a weights file this machine knows (the
config's `generator.weights`, a `--weights` given) by its digest too, and if `sosie train`
wrote it, its safetensors metadata says how it was made (steps, starting point, seed, batch,
the name of the photos' folder). A build records that too (`training_record`, in the manifest's
source), so a corpus still says how its generator was made where the weights file is not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path, PurePath
from typing import Any

from appliance.files import sha256_file


def describe_weights(sha256: str, known: Iterable[Path | None] = (),
                     recorded: Any = None) -> str:
    """A noun phrase naming the weights with digest `sha256` ("the shipped ... weights",
    "weights trained by sosie train (...), PATH", "weights PATH", "weights trained by sosie
    train (...)" from the `recorded` training record of a manifest, "other weights")."""
    from appliance.generator.dcgan import PACKAGE, PACKAGE_VERSION

    short = str(sha256)[:12]
    if _shipped() == sha256:
        return f"the shipped {PACKAGE} {PACKAGE_VERSION} weights (sha256 {short})"
    for path in known:
        if path is None or not Path(path).is_file():
            continue
        try:
            if _digest(Path(path)) != sha256:
                continue
        except OSError:
            continue
        how = trained_how(Path(path))
        return f"weights {how + ', ' if how else ''}{path} (sha256 {short})"
    if isinstance(recorded, dict) and recorded.get("steps"):
        return f"weights {_how(recorded)} (sha256 {short}; as its build recorded)"
    return f"other weights (sha256 {short}: not the shipped ones nor generator.weights)"


def trained_how(path: Path) -> str | None:
    """"trained by sosie train (N steps from ..., seed S, batch B, photos NAME)" for a file it
    wrote."""
    made = training_record(path)
    return _how(made) if made else None


def training_record(path: Path) -> dict[str, Any] | None:
    """How `sosie train` made the weights file at `path` (None for other files): {"steps",
    "start" ("scratch" or "sha256:<digest>"), "seed", "batch", and "data", the photos' folder
    name where the run gave it}; every value bounded, the folder a bare name, never a path."""
    try:
        info = path.stat()
    except OSError:
        return None
    return _record(path, info.st_size, info.st_mtime_ns)


@cache
def _record(path: Path, size: int, mtime_ns: int) -> dict[str, Any] | None:
    from appliance.generator.safetensors_weights import is_safetensors, read_metadata
    from appliance.generator.torch_zip import WeightsFormatError

    if not is_safetensors(path):
        return None
    try:
        made = json.loads(read_metadata(path).get("sosie", "{}"))
    except (WeightsFormatError, ValueError):
        return None
    if not isinstance(made, dict) or not made.get("steps"):
        return None
    record = {key: str(made.get(key, "?"))[:80] for key in ("steps", "start", "seed", "batch")}
    if made.get("data"):
        record["data"] = PurePath(str(made["data"]).replace("\\", "/")).name[:80]
    return record


def _how(made: dict[str, Any]) -> str:
    start = str(made.get("start", "?"))
    if start != "scratch":
        digest = start.removeprefix("sha256:")
        start = "the shipped weights" if digest == _shipped() else f"weights {digest[:12]}"
    photos = f", photos {made['data']!r}" if made.get("data") else ""
    return (f"trained by sosie train ({made.get('steps')} steps from {start}, seed "
            f"{made.get('seed')}, batch {made.get('batch')}{photos})")


def _digest(path: Path) -> str:
    """The file's sha256, computed once per version of the file (a long-running process sees
    a rewritten weights file anew)."""
    info = path.stat()
    return _digest_of(path, info.st_size, info.st_mtime_ns)


@cache
def _digest_of(path: Path, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def _shipped() -> str | None:
    """The digest of the installed wheel's weights (None when not installed)."""
    from appliance.generator.dcgan import WeightsNotFound, default_weights_path

    try:
        return _digest(default_weights_path())
    except (WeightsNotFound, OSError):
        return None
