"""The study's inputs: named sets of faces and the references their doubles are sought for.

A set is a corpus directory (as `sosie build` / `sosie corpus import` write them) or a folder of
images (photos, generated faces, `sosie conjure` result folders), described through the corpus
build into OUT/sets/NAME (parallel, resumable, unusable files listed). A reference is a photo
(its face described as usual) or a .npy file of descriptors ((128,) or (N, 128)).

Every problem is one `StudyError` line naming the argument, the file and what is expected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from appliance.corpus import format as fmt

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
MAX_REFERENCES = 10_000
CONJURED_FACE = "conjured.png"  # the face of a `sosie conjure` result folder


class StudyError(ValueError):
    """Unusable study input: one line naming the argument, the file and what is expected."""


@dataclass
class FaceSet:
    """One named set of faces: an opened corpus and where it came from."""

    name: str
    corpus: Any
    origin: str  # the corpus or folder given on the command line
    kind: str  # "corpus" or "folder"
    model: dict[str, str] | None  # the descriptor model files' sha256, None when unrecorded
    rejected: list[tuple[str, str]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return int(self.corpus.count)

    def vectors(self) -> np.ndarray:
        """Every descriptor as float32 (N, 128), read once."""
        cached = getattr(self, "_vectors", None)
        if cached is None:
            cached = np.asarray(self.corpus.vectors, dtype=np.float32)
            self._vectors = cached
        return cached


@dataclass(frozen=True)
class Reference:
    """A face whose doubles are sought: its descriptor and, for a photo, its aligned face."""

    name: str
    descriptor: np.ndarray  # float32 (128,)
    thumbnail: np.ndarray | None  # uint8 RGB (h, w, 3), None for a .npy descriptor
    described: bool  # True when this appliance's face model described it (a photo)


def parse_set_argument(text: str) -> tuple[str, Path]:
    """NAME=PATH of a --set argument, the name checked (it names files in the report)."""
    name, sep, path = text.partition("=")
    if not sep or not path:
        raise StudyError(f"--set {text}: expected NAME=CORPUS_OR_FOLDER")
    if not NAME_PATTERN.match(name):
        raise StudyError(f"--set {text}: name {name!r}: expected 1-40 letters, digits, '_', '.' "
                         "or '-', starting with a letter or digit")
    return name, Path(path)


def open_set(name: str, path: Path, out: Path, *, build_corpus: Callable[[Path, Path], Any],
             say: Callable[[str], None]) -> FaceSet:
    """The set NAME from a corpus directory or a folder of images (described into
    OUT/sets/NAME by `build_corpus(folder, corpus_dir)`, which returns it opened)."""
    from appliance.corpus import Corpus, CorpusError

    if not path.exists():
        raise StudyError(f"--set {name}={path}: no such corpus or folder")
    if not path.is_dir():
        raise StudyError(f"--set {name}={path}: not a folder (expected a corpus directory or a "
                         "folder of images)")
    if (path / fmt.MANIFEST).exists():
        try:
            corpus = Corpus.open(path, check_model=False)
        except CorpusError as exc:
            raise StudyError(f"--set {name}: {exc}") from None
        kind = "corpus"
    else:
        if not any(p.is_file() for p in path.rglob("*")):
            raise StudyError(f"--set {name}={path}: empty folder (expected images or a corpus)")
        target = out / "sets" / name
        if path.resolve() == target.resolve() or target.resolve().is_relative_to(path.resolve()):
            raise StudyError(f"--out {out}: must not be inside the set's folder {path}")
        say(f"set {name}: describing the images of {path} into {target}")
        try:
            corpus = build_corpus(path, target)
        except CorpusError as exc:
            raise StudyError(f"--set {name}: {exc}") from None
        kind = "folder"
    if corpus.count == 0:
        corpus.close()
        raise StudyError(f"--set {name}={path}: holds no face")
    if corpus.dim != 128:
        corpus.close()
        raise StudyError(f"--set {name}={path}: descriptors of {corpus.dim} values, expected 128")
    files = (corpus.manifest.get("model") or {}).get("files") or None
    rejected = [(str(p), str(r)) for p, r in corpus.rejected()]
    return FaceSet(name, corpus, str(path), kind, dict(files) if files else None, rejected)


def check_models(sets: list[FaceSet], photo_model: dict[str, str] | None) -> list[str]:
    """Refuse sets described by different face models (or by another model than the one that
    describes the reference photos); return notes on sets that record no model."""
    recorded = [s for s in sets if s.model is not None]
    notes = [f"set {s.name} records no descriptor model (synthetic or imported): its rows are "
             "assumed comparable with the others" for s in sets if s.model is None]
    if recorded and len(recorded) < len(sets):
        bare = next(s for s in sets if s.model is None)
        raise StudyError(f"mixed descriptor models: set {recorded[0].name} was described by a "
                         f"face model, set {bare.name} ({bare.origin}) records none (synthetic or "
                         "imported); study sets of one kind")
    first = recorded[0] if recorded else None
    for other in recorded[1:]:
        if other.model != first.model:
            raise StudyError(f"mixed descriptor models: set {other.name} ({other.origin}) and set "
                             f"{first.name} ({first.origin}) were described by different face "
                             "models; describe them again with one model")
    if photo_model is not None and first is not None and first.model != photo_model:
        raise StudyError(f"mixed descriptor models: set {first.name} ({first.origin}) was "
                         "described by another face model than the one describing the reference "
                         "photos here (rebuild it, or give the references as .npy descriptors)")
    return notes


def load_npy_references(path: Path) -> list[Reference]:
    """References from a .npy file of one (128,) or N (N, 128) descriptors, every value checked
    (header and size first, no pickle)."""
    from appliance.corpus.importer import MAX_ABS, VectorsError, load_descriptors, read_header

    try:
        shape, _, _, _ = read_header(path)
        if len(shape) == 1 and shape[0] == 128:
            values = np.load(path, allow_pickle=False)
            rows = np.asarray(values, dtype=np.float64).reshape(1, 128)
            if not np.isfinite(rows).all() or np.abs(rows).max() > MAX_ABS:
                raise VectorsError(f"{path}: values must be finite, within +-{MAX_ABS:g}")
        else:
            rows = np.asarray(load_descriptors(path), dtype=np.float64)
    except (VectorsError, ValueError, OSError) as exc:
        raise StudyError(f"--reference {exc}") from None
    if len(rows) > MAX_REFERENCES:
        raise StudyError(f"--reference {path}: {len(rows)} descriptors, at most "
                         f"{MAX_REFERENCES} references")
    if len(rows) == 1:
        return [Reference(path.stem, rows[0].astype(np.float32), None, False)]
    return [Reference(f"{path.stem}:{i}", r.astype(np.float32), None, False)
            for i, r in enumerate(rows)]


def load_photo_reference(path: Path, analyzer: Any, size: int = 160) -> Reference:
    """A reference photo's face: descriptor and aligned colour face, or a one-line StudyError."""
    from appliance.faces.face import NoFaceFound
    from appliance.images import ImageError

    try:
        face = analyzer.analyze(path)
    except ImageError as exc:
        raise StudyError(f"--reference {exc}") from None
    if isinstance(face, NoFaceFound):
        raise StudyError(f"--reference {path}: no usable face ({face.reason})")
    return Reference(path.stem, np.asarray(face.descriptor, np.float32).reshape(-1),
                     np.asarray(face.aligned(size)), True)


def unique_names(references: list[Reference]) -> list[Reference]:
    """References with distinct names (a suffix added to repeated ones)."""
    seen: dict[str, int] = {}
    out = []
    for ref in references:
        count = seen.get(ref.name, 0)
        seen[ref.name] = count + 1
        name = ref.name if count == 0 else f"{ref.name}~{count + 1}"
        out.append(Reference(name, ref.descriptor, ref.thumbnail, ref.described))
    return out
