"""`sosie build --scheduler tcp://HOST:PORT`: the build's chunks as tasks on a Dask cluster.

The client (this machine) lists the source, cuts it into the same chunks as a local build and
submits one task per unfinished chunk to the scheduler; a worker turns a chunk into the bytes of
its chunk file (`chunks.chunk_bytes`) and sends them back, and the client checks them and
writes them atomically into `CORPUS_DIR/.build/` as a local build does. Resume, rejected list,
duplicates, ordering and the assembled corpus are therefore those of a local build, byte for
byte (`built` and `build_seconds` aside).

The workers' side is `corpus/cluster_tasks.py`; the Dask session (deadlines, the window of
tasks) is `appliance.compute.dask_session`. Each worker thread loads the face models (and the
generator's network) once, on its first task, and checks their checksums against the client's:
a worker with other models stops the build instead of mixing descriptors. Sources on a cluster:

- `dcgan:COUNT[:SEED]`: only index ranges travel; the faces are drawn on the workers.
- a folder, `shared`: the workers read the files at the client's path (a shared file system).
  A worker first checks each file's size and mtime against the client's listing; a file it
  cannot see, or sees differently, sends its chunk back to the client, which streams it.
- a folder, `stream`: the client reads the files and sends them in batches of at most
  `STREAM_BATCH_BYTES`, with at most `STREAM_BUDGET_BYTES` in flight, never the whole folder.
  `auto` (default) asks one worker whether it sees the folder (first, middle and last files)
  and picks `shared` if it does.

Faults: a worker that dies mid-chunk has its chunk run again elsewhere by the scheduler; a chunk
that kills workers `distributed.scheduler.allowed-failures` times is split into single images,
and an image that does it again is rejected ("analyzer crashed"). A scheduler that goes away (no
reconnection within `CONNECT_TIMEOUT`), or has no worker for `NO_WORKER_TIMEOUT`, stops the
build with one line; the chunks finished so far stay for the resume. Every call to the
scheduler has a deadline.

Dask moves pickles between client, scheduler and workers: a cluster must only listen on a
network its users trust (see the README).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.compute.dask_session import (
    CALL_TIMEOUT,
    CONNECT_TIMEOUT,
    ClusterError,
    Session,
    Task,
    TaskWindow,
    parse_address,
)
from appliance.corpus.analysis import read_source
from appliance.corpus.chunks import ItemResult, SourceFile, parse_chunk
from appliance.corpus.cluster_tasks import (
    ChunkJob,
    NotShared,
    run_generated,
    run_shared,
    run_streamed,
    sees_files,
)
from appliance.corpus.format import CorpusError
from appliance.errors import one_line

STREAM_BATCH_BYTES = 8 << 20  # streamed files per task, at most (one larger file goes alone)
FILE_MODES = ("auto", "shared", "stream")


class ClusterBuildError(CorpusError, ClusterError):
    """The cluster cannot run the build (one line; finished chunks are kept)."""


# ---------------------------------------------------------------------------------------------
# The build on a cluster (client side)


@dataclass(frozen=True)
class ChunkBatch:
    """What one task carries: files `first`.. of chunk `chunk` (`whole`: all of it)."""

    chunk: int
    first: int  # index of its first image in the chunk
    files: tuple[SourceFile, ...]
    whole: bool


class ClusterBuild:
    """A build's processing step on the cluster at `address` (see the module)."""

    def __init__(self, address: str, files: str = "auto") -> None:
        self.address = parse_address(address)
        if files not in FILE_MODES:
            raise ValueError(f"cluster files {files!r}: expected one of {', '.join(FILE_MODES)}")
        self.files = files
        self.mode = ""  # what was used: generator, shared or stream
        self.threads = 0  # worker threads when the build started

    def where(self) -> str:
        """Where and how the chunks ran, for the build's report and first line."""
        how = {"generator": "faces drawn on the workers",
               "shared": "workers read the files at the same path (shared file system)",
               "stream": "files streamed from this machine in batches"}.get(self.mode, "")
        return f"on {self.address}: {how}" if how else f"on {self.address}"

    def build_chunks(self, source: Any, collector: Any, engine: Any, settings: Any,
                     progress: bool = True) -> None:
        """Run the collector's unfinished chunks as tasks on the cluster; each finished chunk
        goes to the collector as a local build's would."""
        from appliance.generator.source import GeneratorSource

        generator = source if isinstance(source, GeneratorSource) else None
        thumbs = (settings.thumbnail_size, settings.thumbnail_encoding, settings.jpeg_quality)
        job = ChunkJob(collector.key, engine, engine.checksums(), thumbs, generator,
                       "" if generator else str(Path(source).resolve()))
        batches = [ChunkBatch(k, 0, tuple(collector.chunks[k]), True)
                   for k in sorted(collector.remaining)]
        with Session(self.address) as session:
            self.threads = session.wait_for_workers()
            self.mode = "generator" if generator else self._choose(session, job, batches)
            if progress:
                collector.bar.write(f"sosie build {self.where()}", file=sys.stderr)
            def show(threads: int) -> None:
                collector.bar.set_description(f"sosie build ({threads} cluster threads)",
                                              refresh=False)

            show(self.threads)
            window = session.as_completed(self._tasks(job, batches, self.mode), show, self.threads)
            try:
                for task, result, error in window:
                    self.handle_outcome(window, job, task, result, error, collector)
            finally:
                window.close()

    def _choose(self, session: Session, job: ChunkJob, batches: list[ChunkBatch]) -> str:
        if self.files != "auto":
            return self.files
        files = [f for b in batches for f in b.files]
        if not files:
            return "stream"
        sample = [files[0], files[len(files) // 2], files[-1]]
        future = session.client.submit(sees_files, job.folder, sample, pure=False)
        try:
            return "shared" if future.result(timeout=CALL_TIMEOUT) else "stream"
        except Exception:
            session.check_alive(time.monotonic() - CONNECT_TIMEOUT - 6)
            return "stream"
        finally:
            with contextlib.suppress(Exception):
                future.release()

    def _tasks(self, job: ChunkJob, batches: Iterable[ChunkBatch], mode: str) -> Iterator[Task]:
        for batch in batches:
            if mode == "stream":
                yield from streamed_tasks(job, batch)
            elif mode == "generator":
                first = job.generator.index(batch.files[0].rel)
                yield Task(run_generated, (job, first, len(batch.files)),
                           f"chunk-{batch.chunk:06d}-{batch.first}", tag=batch)
            else:
                yield Task(run_shared, (job, batch.files),
                           f"chunk-{batch.chunk:06d}-{batch.first}", tag=batch)

    def handle_outcome(self, window: TaskWindow, job: ChunkJob, task: Task, result: Any,
                error: BaseException | None, collector: Any) -> None:
        """What the client does with one ended task: its chunk to the collector, or its
        files streamed (a worker that does not see them), split into single images (it killed
        workers), rejected (a single image that did), or the build stopped (ClusterError)."""
        batch: ChunkBatch = task.tag
        if error is None:
            results = checked_results(result, job, batch)
            if batch.whole:
                collector.add_chunk(batch.chunk, results, result)
            else:
                for j, item in enumerate(results):
                    collector.add(batch.chunk, batch.first + j, item)
            return
        if isinstance(error, NotShared):  # this worker cannot see the files: send them
            window.first(streamed_tasks(job, batch))
            return
        if type(error).__name__ == "KilledWorker":
            if len(batch.files) > 1:  # find the image that kills workers: one task each
                singles = [ChunkBatch(batch.chunk, batch.first + j, (f,), False)
                           for j, f in enumerate(batch.files)]
                window.first(self._tasks(job, singles, task_mode(task)))
                return
            collector.add(batch.chunk, batch.first, ItemResult(
                "analyzer crashed on this file (it killed the cluster's workers)"))
            return
        if isinstance(error, ClusterError):
            raise error
        raise ClusterError(f"{self.address}: {task.label} failed on the cluster: "
                           f"{one_line(error, typed=True)}{_hint(error)}") from None


def task_mode(task: Task) -> str:
    return {run_generated: "generator", run_shared: "shared"}.get(task.function, "stream")


def streamed_tasks(job: ChunkJob, batch: ChunkBatch) -> Iterator[Task]:
    """The batch's files read here, cut into tasks of at most `STREAM_BATCH_BYTES`."""

    files: list[SourceFile] = []
    payload: list[bytes | str] = []
    size, first = 0, batch.first
    whole = batch.whole
    for j, source in enumerate(batch.files):
        data = read_source(os.path.join(job.folder, source.rel))
        item = data if isinstance(data, bytes) else str(data.reason)
        length = len(data) if isinstance(data, bytes) else 0
        if files and size + length > STREAM_BATCH_BYTES:
            whole = False
            yield stream_task(job, batch, first, files, payload, size, whole)
            files, payload, size, first = [], [], 0, batch.first + j
        files.append(source)
        payload.append(item)
        size += length
    if files:
        yield stream_task(job, batch, first, files, payload, size,
                           whole and first == batch.first)


def stream_task(job: ChunkJob, batch: ChunkBatch, first: int, files: list[SourceFile],
                 payload: list[bytes | str], size: int, whole: bool) -> Task:
    part = ChunkBatch(batch.chunk, first, tuple(files), whole)
    return Task(run_streamed, (job, part.files, tuple(payload)),
                f"chunk-{batch.chunk:06d}-{first}", payload=size, tag=part)


def checked_results(data: Any, job: ChunkJob, batch: ChunkBatch) -> list[ItemResult]:
    """The results in a worker's chunk bytes, which must be of this build and these files."""
    try:
        if not isinstance(data, bytes):
            raise ValueError("not chunk bytes")
        header, results = parse_chunk(data, "a worker's chunk")
    except (ValueError, KeyError, TypeError) as exc:
        raise ClusterError(f"a worker sent a damaged chunk ({one_line(exc, typed=True)})") from None
    if (header.get("key") != job.key or header.get("files") != [f.key() for f in batch.files]
            or len(results) != len(batch.files)):
        raise ClusterError("a worker sent the chunk of another build or other files "
                           "(is it running another version of sosie?)")
    return results


def _hint(error: BaseException) -> str:
    if "deserializ" in str(error) or isinstance(error, ImportError):
        return (" (the scheduler or a worker cannot load this build's code: install the same "
                "sosie[cluster] on every machine of the cluster)")
    return ""
