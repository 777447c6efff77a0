"""One item of a build: a source file's bytes or a drawn face -> `ItemResult`.

Shared by the local worker processes (`appliance.corpus.build`) and the Dask workers
(`appliance.corpus.cluster_tasks`); nothing here raises for a bad image, only for broken models.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from appliance.corpus.chunks import DIM, ItemResult
from appliance.corpus.thumbs import encode


def item_of_file(
    path: str, rel: str, analyzer: Any, size: int, encoding: str, quality: int,
    known: tuple[str, int, int] | None = None,
) -> ItemResult:
    """One source file -> ItemResult; never raises for a bad file (model errors do raise).

    `known`: where `sosie generate` recorded its analysis of this file
    (`appliance.generator.analyses.recorded`), reused when the file still has that sha256."""
    data = read_source(path)
    if isinstance(data, ItemResult):
        return data
    return item_of_bytes(data, rel, analyzer, size, encoding, quality, known)


def read_source(path: str) -> bytes | ItemResult:
    """A source file's bytes, or the rejection of an unreadable or empty one."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return ItemResult(f"unreadable file ({exc.strerror or exc})")
    if not data:
        return ItemResult("empty file")
    return data


def item_of_bytes(
    data: bytes, rel: str, analyzer: Any, size: int, encoding: str, quality: int,
    known: tuple[str, int, int] | None = None,
) -> ItemResult:
    """The bytes of source file `rel` -> ItemResult (never raises for a bad image)."""
    from appliance.images import ImageError, load_image

    digest = hashlib.sha256(data).hexdigest()
    try:
        rgb = load_image(data, name=rel)
    except ImageError as exc:
        return ItemResult(_strip_name(str(exc), rel), digest)
    except Exception as exc:  # a decoder crash must not stop a 200k-image build
        return ItemResult(f"unreadable image ({type(exc).__name__}: {exc})", digest)
    face = _recorded_face(known, rel, digest, rgb, analyzer) if known is not None else None
    if face is not None:
        return _result(face, digest, size, encoding, quality)
    return item_of_image(rgb, digest, analyzer, size, encoding, quality)


def _recorded_face(known: tuple[str, int, int], rel: str, digest: str, rgb: np.ndarray,
                   analyzer: Any) -> Any:
    """The face `sosie generate` recorded for file `rel` when its journal line still names this
    file with this sha256 and the record fits these pixels (`generator.analyses.reuse`); else
    None, and the file is analysed afresh."""
    from appliance.generator.analyses import recalled, reuse

    entry = recalled(known)
    if entry is None or entry[:2] != (PurePosixPath(rel).name, digest):
        return None
    try:
        return reuse(entry[2], rgb, analyzer)
    except Exception as exc:
        if type(exc).__name__ == "ModelError":
            raise
        return None


def item_of_drawn_face(
    face: np.ndarray, analyzer: Any, size: int, encoding: str, quality: int
) -> ItemResult:
    """A face drawn by the generator -> ItemResult (its digest: sha256 of its pixels)."""
    return items_of_drawn_faces(face[None], analyzer, size, encoding, quality)[0]


def items_of_drawn_faces(
    faces: np.ndarray, analyzer: Any, size: int, encoding: str, quality: int
) -> list[ItemResult]:
    """Faces drawn by the generator -> ItemResults, their descriptors computed as one batch
    (`FaceAnalyzer.analyze_many`) when the analyzer can; one by one otherwise, or when the
    batch fails, so that one bad face is rejected alone."""
    digests = [hashlib.sha256(face.tobytes()).hexdigest() for face in faces]
    if len(faces) > 1 and hasattr(analyzer, "analyze_many"):
        try:
            outcomes = analyzer.analyze_many(list(faces))
        except Exception as exc:
            if type(exc).__name__ == "ModelError":
                raise
        else:
            return [_result(o, d, size, encoding, quality)
                    for o, d in zip(outcomes, digests, strict=True)]
    return [item_of_image(face, digest, analyzer, size, encoding, quality)
            for face, digest in zip(faces, digests, strict=True)]


def item_of_image(
    rgb: np.ndarray, digest: str, analyzer: Any, size: int, encoding: str, quality: int
) -> ItemResult:
    """One decoded image -> ItemResult (`digest` identifies its source for duplicates)."""
    try:
        outcome = analyzer.analyze(rgb)
    except Exception as exc:
        if type(exc).__name__ == "ModelError":  # a broken model stops the build
            raise
        return ItemResult(f"analysis failed ({type(exc).__name__}: {exc})", digest)
    return _result(outcome, digest, size, encoding, quality)


def _result(outcome: Any, digest: str, size: int, encoding: str, quality: int) -> ItemResult:
    """A face (descriptor + encoded thumbnail) or a rejection with the analyzer's reason."""
    if not hasattr(outcome, "descriptor"):
        return ItemResult(getattr(outcome, "reason", "no face found"), digest)
    descriptor = np.asarray(outcome.descriptor, dtype=np.float32).reshape(DIM)
    thumbnail = encode(outcome.aligned(size), encoding, quality)  # type: ignore[arg-type]
    return ItemResult(None, digest, descriptor, thumbnail)


def _strip_name(message: str, rel: str) -> str:
    first = message.splitlines()[0] if message else "unreadable image"
    prefix = f"{rel}: "
    return first[len(prefix) :] if first.startswith(prefix) else first
