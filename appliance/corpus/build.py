"""`sosie build`: a folder of face images -> a corpus, in parallel, resumable after SIGKILL.

The source can also be a generator (`dcgan:COUNT[:SEED]`, see `appliance.generator.source`):
its draws are listed, chunked, analysed and assembled like files, without image files.

The sorted file list is cut into chunks of `chunk_size` images; worker processes (one per core,
dlib models loaded once each) analyse images in any order and the parent writes each chunk to
`CORPUS_DIR/.build/` as soon as all its images are done (see `chunks`). A restarted build reuses
every chunk made with the same settings for the same files, so it ends with the same bytes as
an uninterrupted one (only the manifest's `built` and `build_seconds` differ). At the end the
chunks are concatenated in order, exact duplicate files are dropped (the first in path order
stays), PCA is fitted over all descriptors and the manifest is written last.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.corpus import format as fmt
from appliance.corpus.chunks import (
    DIM,
    SourceFile,
    chunk_is_current,
    chunk_path,
    read_chunk,
)
from appliance.corpus.collector import Collector, counted
from appliance.corpus.engines import DlibEngine, Engine
from appliance.corpus.format import CorpusError
from appliance.corpus.local_run import run_locally
from appliance.corpus.settings import CorpusSettings
from appliance.corpus.thumbs import PackWriter
from appliance.corpus.walk import list_sources
from appliance.corpus.writer import clear_manifest, finalize
from appliance.files import exclusive, refuse_links, remove_tree
from appliance.generator.source import GeneratorSource
from appliance.progress import progress_bar

WORK_DIR = ".build"


@dataclass(frozen=True)
class BuildReport:
    """What a build did."""

    corpus_dir: Path
    files: int
    faces: int
    rejected: int
    reused_chunks: int
    total_chunks: int
    seconds: float
    where: str = ""  # "on tcp://HOST:PORT (how the files got there)" for a cluster build


def build(
    images_dir: str | Path | GeneratorSource,
    corpus_dir: str | Path,
    *,
    workers: int | None = None,
    settings: CorpusSettings | None = None,
    engine: Engine | None = None,
    progress: bool = True,
    force: bool = False,
    scheduler: str | None = None,
    cluster_files: str = "auto",
) -> BuildReport:
    """Build (or resume building) the corpus of the faces in `images_dir` into `corpus_dir`.

    `images_dir` may be a `GeneratorSource` instead of a folder: its draws are the sources.

    `workers`: processes (default `settings.workers`, 0 = one per core; 1 runs in this
    process). `engine`: `DlibEngine(face_settings)` by default. `force` replaces an existing
    finished corpus. Unreadable files and images without a face are listed in rejected.tsv;
    only a build with no face at all fails (CorpusError).

    `scheduler` (`tcp://HOST:PORT`, default `settings.scheduler`) runs the chunks on that Dask
    cluster instead of local processes (`appliance.corpus.cluster`; `cluster_files`: auto,
    shared or stream, how the workers get a folder's files). The corpus is the same, byte for
    byte, except `built` and `build_seconds`.
    """
    started = time.monotonic()
    settings = settings or CorpusSettings()
    engine = engine or DlibEngine()
    if isinstance(images_dir, GeneratorSource) and isinstance(engine, DlibEngine):
        engine = DlibEngine(images_dir.face_settings(engine.face_settings))  # drawn faces' look
    corpus_dir = Path(corpus_dir)
    scheduler = scheduler or settings.scheduler
    cluster = None
    if scheduler:
        from appliance.corpus.cluster import ClusterBuild

        cluster = ClusterBuild(scheduler, cluster_files)  # checks the address before any write
    if not isinstance(images_dir, GeneratorSource):
        images_dir = Path(images_dir)
        if not images_dir.is_dir():
            raise CorpusError(f"{images_dir}: not a folder of images")
    _prepare(corpus_dir, force)
    work = corpus_dir / WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    with exclusive(work / "lock", CorpusError(f"{corpus_dir}: another build is writing this "
                                              "corpus")):
        return _build(images_dir, corpus_dir, work, workers, settings, engine, progress, started,
                      cluster)


def _build(
    images_dir: Path | GeneratorSource,
    corpus_dir: Path,
    work: Path,
    workers: int | None,
    settings: CorpusSettings,
    engine: Engine,
    progress: bool,
    started: float,
    cluster: Any = None,
) -> BuildReport:
    if isinstance(images_dir, GeneratorSource):
        files = [SourceFile(images_dir.name(i), images_dir.size, 0)
                 for i in range(images_dir.count)]
        walk_problems: list[tuple[str, str]] = []
    else:
        files, walk_problems = list_sources(images_dir, exclude=corpus_dir)
    size = settings.chunk_size
    chunks = [files[i : i + size] for i in range(0, len(files), size)]
    key = _build_key(engine, settings, images_dir)
    current = {k for k, c in enumerate(chunks) if chunk_is_current(chunk_path(work, k), key, c)}
    _remove_stale(work, len(chunks), current)
    pending = [k for k in range(len(chunks)) if k not in current]
    count = workers if workers is not None else settings.workers
    count = count or os.cpu_count() or 1

    bar = progress_bar(len(files), sum(len(chunks[k]) for k in current), progress,
                       unit="img", desc="sosie build")
    done = counted(chunk_path(work, k) for k in current)  # a resumed bar counts them too
    try:
        collector = Collector(work, key, chunks, pending, bar, done) if pending else None
        if cluster is not None and collector is not None:
            from appliance.compute.dask_session import ClusterError
            from appliance.corpus.cluster import ClusterBuildError

            try:
                cluster.build_chunks(images_dir, collector, engine, settings, progress)
            except ClusterError as exc:
                kept = sum(1 for k in range(len(chunks)) if chunk_path(work, k).exists())
                raise ClusterBuildError(f"{exc}; {kept} of {len(chunks)} chunks are kept in "
                                        f"{work}: run the same command again to resume") from None
        elif collector is not None:
            run_locally(images_dir, collector, engine, settings, count)
    finally:
        bar.close()

    faces, rejected = _assemble(images_dir, corpus_dir, chunks, walk_problems, settings)
    origin = (images_dir.key() if isinstance(images_dir, GeneratorSource)
              else {"folder": str(images_dir.resolve())})
    fields = {
        "synthetic": False,
        "build_seconds": round(time.monotonic() - started, 3),
        "source": {
            **origin,
            "files": len(files) + len(walk_problems),
            "rejected": rejected,
            "duplicates": settings.duplicates,
        },
        "model": {"files": engine.checksums(), "settings": engine.settings()},
        "thumbnails": {
            "encoding": settings.thumbnail_encoding,
            "size": settings.thumbnail_size,
            "gray": False,
            "quality": settings.jpeg_quality if settings.thumbnail_encoding == "jpeg" else None,
        },
    }
    if faces == 0:
        raise CorpusError(
            f"{images_dir}: no usable face in {len(files)} files "
            f"(reasons in {corpus_dir / fmt.REJECTED})"
        )
    finalize(corpus_dir, faces, DIM, fields)
    remove_tree(work, ignore_errors=True)
    return BuildReport(
        corpus_dir, len(files) + len(walk_problems), faces, rejected, len(current), len(chunks),
        time.monotonic() - started, cluster.where() if cluster is not None else "",
    )


# ---------------------------------------------------------------------------------------------
# Preparing and resuming


def _prepare(corpus_dir: Path, force: bool) -> None:
    try:  # the build overwrites and removes these: never through a link out of the folder
        refuse_links(corpus_dir, [*fmt.DATA_FILES, fmt.MANIFEST, WORK_DIR], "sosie build")
    except ValueError as exc:
        raise CorpusError(str(exc)) from None
    if (corpus_dir / fmt.MANIFEST).exists():
        if not force:
            raise CorpusError(
                f"{corpus_dir}: already holds a finished corpus (use --force to rebuild it)"
            )
        clear_manifest(corpus_dir)
        remove_tree(corpus_dir / WORK_DIR, ignore_errors=True)
    if corpus_dir.exists():
        if not corpus_dir.is_dir():
            raise CorpusError(f"{corpus_dir}: exists and is not a folder")
        known = {*fmt.DATA_FILES, WORK_DIR}
        strangers = sorted(p.name for p in corpus_dir.iterdir() if p.name not in known
                           and not p.name.startswith(".") )
        if strangers:
            raise CorpusError(
                f"{corpus_dir}: not empty and not a corpus (holds {strangers[0]}); "
                "choose an empty or new folder"
            )
    corpus_dir.mkdir(parents=True, exist_ok=True)


def _build_key(engine: Engine, settings: CorpusSettings,
               source: Path | GeneratorSource | None = None) -> str:
    """Identifies everything that changes a chunk's content: models, settings, chunk size (and
    a generator's network, seed and face size)."""
    record = {
        "models": engine.checksums(),
        "engine": engine.settings(),
        "thumbnails": [settings.thumbnail_size, settings.thumbnail_encoding,
                       settings.jpeg_quality, "rgb"],
        "chunk_size": settings.chunk_size,
    }
    if isinstance(source, GeneratorSource):
        record["generator"] = source.key()
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _remove_stale(work: Path, chunks: int, current: set[int]) -> None:
    for path in work.iterdir():
        name = path.name
        if name.startswith("chunk-") and name.endswith(".bin"):
            index = int(name[6:12]) if name[6:12].isdigit() else -1
            if index not in current or index >= chunks:
                path.unlink(missing_ok=True)
        elif name.startswith("."):  # temporary files of an interrupted write
            path.unlink(missing_ok=True)


def kept(corpus_dir: Path) -> tuple[int, int]:
    """(finished chunks, faces in them) that an interrupted build of `corpus_dir` keeps."""
    paths = sorted((Path(corpus_dir) / WORK_DIR).glob("chunk-*.bin"))
    return len(paths), counted(paths)[0]




# ---------------------------------------------------------------------------------------------
# Assembling the corpus from the chunks


def _assemble(
    images_dir: Path | GeneratorSource,
    corpus_dir: Path,
    chunks: list[list[SourceFile]],
    walk_problems: list[tuple[str, str]],
    settings: CorpusSettings,
) -> tuple[int, int]:
    """Concatenate the chunks in order into the data files; returns (faces, rejected)."""
    work = corpus_dir / WORK_DIR
    clear_manifest(corpus_dir)
    seen: dict[str, str] = {}
    sources: list[tuple[int, str]] = []
    rejected: list[tuple[str, str]] = list(walk_problems)
    with (
        open(corpus_dir / fmt.DESCRIPTORS, "wb") as vectors,
        open(corpus_dir / fmt.THUMBS_PACK, "wb") as pack_file,
    ):
        pack = PackWriter(pack_file)
        for k, files in enumerate(chunks):
            _, results = read_chunk(chunk_path(work, k))
            for source, result in zip(files, results, strict=True):
                reason = result.reason
                if result.sha256 and settings.duplicates == "reject":
                    first = seen.setdefault(result.sha256, source.rel)
                    if first != source.rel:
                        reason = f"duplicate of {first}"
                if reason is not None:
                    rejected.append((source.rel, reason))
                    continue
                vectors.write(np.asarray(result.descriptor, dtype="<f4").astype("<f2").tobytes())
                pack.add(result.thumbnail or b"")
                sources.append((len(sources), source.rel))
        (corpus_dir / fmt.THUMBS_INDEX).write_bytes(pack.index().tobytes())
    rejected.sort()
    (corpus_dir / fmt.SOURCES).write_bytes(fmt.tsv_bytes(("row", "path"), sources))
    (corpus_dir / fmt.REJECTED).write_bytes(fmt.tsv_bytes(("path", "reason"), rejected))
    return len(sources), len(rejected)

