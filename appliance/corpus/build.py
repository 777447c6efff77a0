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
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.compute.pool import guard_orphan, run_tasks
from appliance.corpus import format as fmt
from appliance.corpus.analysis import item_of_file, items_of_drawn_faces
from appliance.corpus.chunks import (
    DIM,
    ItemResult,
    SourceFile,
    chunk_bytes,
    chunk_is_current,
    chunk_path,
    read_chunk,
)
from appliance.corpus.engines import DlibEngine, Engine
from appliance.corpus.format import CorpusError, atomic_write_bytes
from appliance.corpus.settings import CorpusSettings
from appliance.corpus.thumbs import PackWriter
from appliance.corpus.walk import list_sources
from appliance.corpus.writer import clear_manifest, finalize
from appliance.files import exclusive, refuse_links, remove_tree
from appliance.generator.analyses import recorded
from appliance.generator.source import GeneratorSource, describe_groups
from appliance.progress import progress_bar

WORK_DIR = ".build"
#: Testing hook: SIGKILL the build itself after writing this many chunks in this run.
KILL_AFTER_ENV = "SOSIE_BUILD_KILL_AFTER_CHUNKS"


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
        if cluster is not None and pending:
            from appliance.compute.dask_session import ClusterError
            from appliance.corpus.cluster import ClusterBuildError

            try:
                cluster.build_chunks(images_dir, Collector(work, key, chunks, pending, bar, done),
                                     engine, settings, progress)
            except ClusterError as exc:
                kept = sum(1 for k in range(len(chunks)) if chunk_path(work, k).exists())
                raise ClusterBuildError(f"{exc}; {kept} of {len(chunks)} chunks are kept in "
                                        f"{work}: run the same command again to resume") from None
        else:
            _run(images_dir, work, key, chunks, pending, engine, settings, count, bar, done)
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


# ---------------------------------------------------------------------------------------------
# Processing


#: One task of a local build: (chunk, indices in the chunk, file paths, names, what
#: `sosie generate` recorded of the file); a folder's tasks hold one file each, a generator's
#: the draws described as one batch.
Task = tuple[int, tuple[int, ...], tuple[str, ...], tuple[str, ...], Any]
Item = tuple[int, int, ItemResult]


def _run(
    images_dir: Path | GeneratorSource,
    work: Path,
    key: str,
    chunks: list[list[SourceFile]],
    pending: list[int],
    engine: Engine,
    settings: CorpusSettings,
    workers: int,
    bar: Any,
    done: tuple[int, int] = (0, 0),
) -> None:
    generator = images_dir if isinstance(images_dir, GeneratorSource) else None
    known = {} if generator is not None else recorded(Path(images_dir), engine)
    tasks: list[Task] = []
    for k in pending:
        if generator is not None:  # the draws described as one batch make one task
            first = generator.index(chunks[k][0].rel)
            indices = [generator.index(f.rel) for f in chunks[k]]
            tasks += [(k, tuple(i - first for i in group), (), tuple(generator.name(i)
                       for i in group), None) for group in describe_groups(indices)]
        else:  # a folder `sosie generate` made: what it learned of each face goes along
            tasks += [(k, (j,), (str(Path(images_dir) / f.rel),), (f.rel,), known.get(f.rel))
                      for j, f in enumerate(chunks[k])]
    if not tasks:
        return
    collect = Collector(work, key, chunks, pending, bar, done).add
    thumbs = (settings.thumbnail_size, settings.thumbnail_encoding, settings.jpeg_quality)
    if workers <= 1 or len(tasks) == 1:
        _init_worker(engine, thumbs, watch_parent=False, generator=generator)
        for task in tasks:
            for item in _process(task):
                collect(*item)
        return
    for items in run_tasks(tasks, workers, _init_worker, (engine, thumbs, True, generator),
                           _process, _crashed):
        for item in items:
            collect(*item)


def counted(paths: Iterable[Path]) -> tuple[int, int]:
    """(faces, rejections) in the finished chunk files among `paths` (unreadable ones: none)."""
    faces = rejected = 0
    for path in paths:
        try:
            _, results = read_chunk(path)
        except (OSError, ValueError, CorpusError):
            continue
        accepted = sum(r.accepted for r in results)
        faces, rejected = faces + accepted, rejected + len(results) - accepted
    return faces, rejected


def kept(corpus_dir: Path) -> tuple[int, int]:
    """(finished chunks, faces in them) that an interrupted build of `corpus_dir` keeps."""
    paths = sorted((Path(corpus_dir) / WORK_DIR).glob("chunk-*.bin"))
    return len(paths), counted(paths)[0]


class Collector:
    """Gathers results as they come, in any order, and writes each chunk (atomically) once its
    last image is in; counts faces and rejections on the progress bar."""

    def __init__(self, work: Path, key: str, chunks: list[list[SourceFile]], pending: list[int],
                 bar: Any, done: tuple[int, int] = (0, 0)) -> None:
        self.work, self.key, self.chunks, self.bar = work, key, chunks, bar
        self.buffers: dict[int, list[ItemResult | None]] = {
            k: [None] * len(chunks[k]) for k in pending}
        self.remaining = {k: len(chunks[k]) for k in pending}
        self.kill_after = int(os.environ.get(KILL_AFTER_ENV, "0") or 0)
        self.written = 0
        self.faces, self.rejected = done  # in the chunks a resumed build keeps
        if any(done):
            self.bar.set_postfix(faces=self.faces, rejected=self.rejected, refresh=False)

    def add(self, k: int, j: int, result: ItemResult) -> None:
        """The result of image j of chunk k."""
        self.buffers[k][j] = result
        self.remaining[k] -= 1
        self._count([result])
        if self.remaining[k] == 0:
            results = self.buffers.pop(k)
            self._write(k, chunk_bytes(self.key, self.chunks[k], results))  # type: ignore[arg-type]

    def add_chunk(self, k: int, results: list[ItemResult], data: bytes) -> None:
        """A whole chunk at once, with its file's bytes (`chunk_bytes` of the same results)."""
        del self.buffers[k], self.remaining[k]
        self._count(results)
        self._write(k, data)

    def _count(self, results: list[ItemResult]) -> None:
        accepted = sum(r.accepted for r in results)
        self.faces += accepted
        self.rejected += len(results) - accepted
        self.bar.update(len(results))
        self.bar.set_postfix(faces=self.faces, rejected=self.rejected, refresh=False)

    def _write(self, k: int, data: bytes) -> None:
        atomic_write_bytes(chunk_path(self.work, k), data)
        self.written += 1
        if self.kill_after and self.written >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)


def _crashed(task: Task, exitcode: int | None) -> list[Item]:
    how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit {exitcode}"
    return [(task[0], j, ItemResult(f"analyzer crashed on this file twice ({how})"))
            for j in task[1]]


_analyzer: Any = None
_thumbs: tuple[int, str, int] = (256, "jpeg", 92)
_generator: GeneratorSource | None = None


def _init_worker(engine: Engine, thumbs: tuple[int, str, int], watch_parent: bool = True,
                 generator: GeneratorSource | None = None) -> None:
    """Per worker process: load the models once; exit if the parent dies (e.g. SIGKILL)."""
    global _analyzer, _thumbs, _generator
    if watch_parent:
        guard_orphan()
    _analyzer = engine.create()
    _thumbs = thumbs
    _generator = generator


def _process(task: Task) -> list[Item]:
    k, js, paths, names, known = task
    if _generator is not None:
        faces = _generator.faces([_generator.index(name) for name in names])
        return list(zip([k] * len(js), js, items_of_drawn_faces(faces, _analyzer, *_thumbs),
                        strict=True))
    return [(k, js[0], item_of_file(paths[0], names[0], _analyzer, *_thumbs, known))]


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

