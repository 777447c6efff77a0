"""`sosie rank`: rank a folder of lookalikes by face distance to a reference photo.

The folder is described by the corpus build (parallel, resumable, bad files skipped and listed)
into OUT/corpus; every described face is then ranked by Euclidean descriptor distance to the
reference (nearest first, ties by file name) and written as OUT/ranking.csv and ranking.json.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.files import atomic_output, atomic_write_bytes
from appliance.likeness import likeness


@dataclass(frozen=True)
class RankedFace:
    """One image of the folder, its place in the ranking and how alike it is."""

    rank: int
    distance: float
    likeness: float
    file: str
    row: int  # row in OUT/corpus


@dataclass
class Ranking:
    """The whole ranking plus the files the build could not use."""

    reference: str
    folder: str
    faces: list[RankedFace]
    skipped: list[tuple[str, str]]  # (file, reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "folder": self.folder,
            "count": len(self.faces),
            "ranking": [asdict(f) for f in self.faces],
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
        }


def rank_rows(vectors: np.ndarray, reference: np.ndarray, names: list[str]) -> list[RankedFace]:
    """Rank rows of `vectors` by distance to `reference` (ties: by name, then by row)."""
    x = np.asarray(vectors, dtype=np.float64)
    q = np.asarray(reference, dtype=np.float64).reshape(-1)
    if x.size and x.shape[1] != q.shape[0]:
        raise ValueError(f"reference has {q.shape[0]} values, the descriptors {x.shape[1]}")
    distances = np.sqrt(np.maximum(((x - q) ** 2).sum(axis=1), 0.0)) if len(x) else np.zeros(0)
    order = sorted(range(len(names)), key=lambda i: (float(distances[i]), names[i], i))
    return [
        RankedFace(rank=r + 1, distance=round(float(distances[i]), 6),
                   likeness=round(likeness(float(distances[i])), 2), file=names[i], row=int(i))
        for r, i in enumerate(order)
    ]


def build_folder_corpus(
    folder: Path,
    corpus_dir: Path,
    *,
    workers: int | None = None,
    settings: Any = None,
    face_settings: Any = None,
    progress: bool = True,
) -> Any:
    """Describe every image of `folder` into `corpus_dir` with the corpus build (parallel,
    resumable, bad files listed in rejected.tsv) and open the result."""
    from appliance.corpus import Corpus, CorpusError, DlibEngine, build

    if (corpus_dir / "manifest.yaml").exists():
        try:
            corpus = Corpus.open(corpus_dir, face_settings=face_settings)
        except CorpusError:
            corpus = None
        if corpus is not None and _up_to_date(corpus, folder, corpus_dir):
            return corpus
        if corpus is not None:
            corpus.close()
    build(folder, corpus_dir, workers=workers, settings=settings,
          engine=DlibEngine(face_settings), progress=progress, force=True)
    return Corpus.open(corpus_dir, face_settings=face_settings)


def _up_to_date(corpus: Any, folder: Path, corpus_dir: Path) -> bool:
    """True when the finished corpus covers exactly the files the build would list in the
    folder (the same walk: hidden folders such as `sosie generate`'s journal skipped), none
    changed since."""
    from appliance.corpus.walk import list_sources

    built = (corpus_dir / "manifest.yaml").stat().st_mtime_ns
    known = {corpus.source(i) for i in range(corpus.count)} | {p for p, _ in corpus.rejected()}
    files, problems = list_sources(folder, exclude=corpus_dir)
    if any(f.mtime_ns > built for f in files):
        return False
    return {f.rel for f in files} | {p for p, _ in problems} == known


def rank_corpus(corpus: Any, reference: np.ndarray, reference_name: str, folder: str) -> Ranking:
    """The ranking of every row of an opened corpus against a reference descriptor."""
    names = [corpus.source(i) for i in range(corpus.count)]
    faces = rank_rows(np.asarray(corpus.vectors), reference, names)
    rejected = corpus.rejected() if hasattr(corpus, "rejected") else []
    return Ranking(reference_name, folder, faces, [(str(p), str(r)) for p, r in rejected])


def write_ranking(ranking: Ranking, out_dir: Path) -> tuple[Path, Path]:
    """Write OUT/ranking.csv (rank, distance, likeness, file) and OUT/ranking.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / "ranking.csv", out_dir / "ranking.json"
    with atomic_output(csv_path, fsync=False) as raw:  # whole or absent; errors name the file
        fh = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
        writer = csv.writer(fh)
        writer.writerow(["rank", "distance", "likeness_percent", "file"])
        for f in ranking.faces:
            writer.writerow([f.rank, f"{f.distance:.6f}", f"{f.likeness:.2f}", f.file])
        fh.flush()
        fh.detach()
    atomic_write_bytes(json_path, json.dumps(
        ranking.to_json(), indent=1, ensure_ascii=False, allow_nan=False)
        .encode("utf-8", "surrogateescape").decode("utf-8", "replace").encode("utf-8"),
        fsync=False)
    return csv_path, json_path


def format_table(ranking: Ranking, top: int | None = None) -> str:
    """The ranking as an aligned text table (the first `top` rows)."""
    rows = ranking.faces if top is None else ranking.faces[:top]
    width = max(4, len(str(len(ranking.faces))))
    lines = [f"{'rank':>{width}}  distance  likeness  file"]
    for f in rows:
        lines.append(f"{f.rank:>{width}}  {f.distance:8.4f}  {f.likeness:6.1f} %  {f.file}")
    if top is not None and len(ranking.faces) > top:
        lines.append(f"{'':>{width}}  … {len(ranking.faces) - top} more in ranking.csv")
    return "\n".join(lines)
